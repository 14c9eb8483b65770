"""Typed views of the API objects and the Rollout rules shared by the controller, the plugin and the dashboard.

spec          typed, read-only views of a Rollout's spec with Argo's defaults (RolloutSpec, CanarySpec, ...)
validation    the semantic checks that become an InvalidSpec condition (and `lint` findings)
phase         the phase and message (CalculateRolloutPhase, GetRolloutPhase), generation observed
steps         the current canary step, its set weight, the "2/4" step text
conditions    condition types, reasons, messages and phase names; setting conditions; completed/healthy/progressing
revisions     the revision annotation
timestamps    RFC 3339 parsing and formatting
durations     Go durations (the one parser), Kubernetes' HumanDuration
hashing       the pod-template hash;  labelselector: LabelSelector strings
"""
