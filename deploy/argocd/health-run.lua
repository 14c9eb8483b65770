-- Argo CD health of a pyrollouts AnalysisRun or Experiment (resource.customizations.health.pyrollouts.io_AnalysisRun
-- and _Experiment: both kinds end in the same phases). Successful: Healthy; Failed or Error: Degraded;
-- Inconclusive: Suspended (a person promotes or aborts the rollout); Pending or Running, or no status yet:
-- Progressing.
local hs = {}
local noun = "Analysis run"
if obj.kind == "Experiment" then
  noun = "Experiment"
end

if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to start the " .. string.lower(noun)
  return hs
end

local phase = obj.status.phase
local message = obj.status.message

if phase == "Successful" then
  hs.status = "Healthy"
  hs.message = message or (noun .. " completed successfully")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message or (noun .. " failed")
elseif phase == "Error" then
  hs.status = "Degraded"
  hs.message = message or (noun .. " had an error")
elseif phase == "Inconclusive" then
  hs.status = "Suspended"
  hs.message = message or (noun .. " was inconclusive: promote or abort the rollout")
else
  hs.status = "Progressing"
  hs.message = message or (noun .. " is " .. phase)
end
return hs
