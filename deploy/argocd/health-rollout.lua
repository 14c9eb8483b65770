-- Argo CD health of a pyrollouts Rollout (resource.customizations.health.pyrollouts.io_Rollout).
-- Argo CD runs this with the live object as `obj` and reads hs.status / hs.message:
-- Healthy (the update is done), Progressing (the controller is working or has not seen the spec yet),
-- Suspended (paused: a pause step, an inconclusive analysis, spec.paused), Degraded (aborted, invalid,
-- out of time). The controller already computes Argo's phase; this reads it, after checking that the
-- phase belongs to the current spec.
local hs = {}

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to write a status (is it running?)"
  return hs
end

local generation = tonumber(obj.metadata.generation)
-- An integer here; Argo writes the number as a string; a non-numeric (old hash) value cannot be compared.
local observed = tonumber(obj.status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end

local phase = obj.status.phase
local message = obj.status.message

if phase == "Healthy" then
  hs.status = "Healthy"
  hs.message = message or "Rollout is healthy"
elseif phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message or "Rollout is degraded"
elseif phase == "Paused" or (obj.spec ~= nil and obj.spec.paused == true) then
  hs.status = "Suspended"
  hs.message = message or "Rollout is paused"
else
  hs.status = "Progressing"
  hs.message = message or "Rollout is progressing"
end
return hs
