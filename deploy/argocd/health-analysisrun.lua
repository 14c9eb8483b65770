-- Argo CD health of a pyrollouts AnalysisRun (resource.customizations.health.pyrollouts.io_AnalysisRun).
-- Successful: Healthy; Failed or Error: Degraded; Inconclusive: Suspended (the rollout waits for a
-- person to promote or abort); Pending or Running, or no status yet: Progressing.
local hs = {}

if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to start the analysis"
  return hs
end

local phase = obj.status.phase
local message = obj.status.message

if phase == "Successful" then
  hs.status = "Healthy"
  hs.message = message or "Analysis run completed successfully"
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message or "Analysis run failed"
elseif phase == "Error" then
  hs.status = "Degraded"
  hs.message = message or "Analysis run had an error"
elseif phase == "Inconclusive" then
  hs.status = "Suspended"
  hs.message = message or "Analysis run was inconclusive: promote or abort the rollout"
else
  hs.status = "Progressing"
  hs.message = message or ("Analysis run is " .. phase)
end
return hs
