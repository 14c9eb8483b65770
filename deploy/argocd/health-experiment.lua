-- Argo CD health of a pyrollouts Experiment (resource.customizations.health.pyrollouts.io_Experiment).
-- Successful: Healthy; Failed or Error: Degraded; Inconclusive: Suspended (a person decides, as for an
-- AnalysisRun); Pending or Running, or no status yet: Progressing.
local hs = {}

if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to start the experiment"
  return hs
end

local phase = obj.status.phase
local message = obj.status.message

if phase == "Successful" then
  hs.status = "Healthy"
  hs.message = message or "Experiment completed successfully"
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message or "Experiment failed"
elseif phase == "Error" then
  hs.status = "Degraded"
  hs.message = message or "Experiment had an error"
elseif phase == "Inconclusive" then
  hs.status = "Suspended"
  hs.message = message or "Experiment was inconclusive"
else
  hs.status = "Progressing"
  hs.message = message or ("Experiment is " .. phase)
end
return hs
