"""Argo's built-in triggers and their templates (its notifications catalog), and how an Event's reason
names its trigger.

Argo Rollouts sends a notification when it records an Event on a Rollout: the Event's reason, in kebab
case after ``on-``, names the trigger (``RolloutCompleted`` -> ``on-rollout-completed``). The nine below
are the ones Argo documents; each sends the template of the same name. The ConfigMap may redefine any of
them (a ``trigger.<name>`` or ``template.<name>`` key wins) or add its own for another reason."""

from __future__ import annotations

import re

#: Event reason -> the built-in trigger it fires.
BUILTIN_TRIGGERS: dict[str, str] = {
    "RolloutCompleted": "on-rollout-completed",
    "RolloutStepCompleted": "on-rollout-step-completed",
    "RolloutUpdated": "on-rollout-updated",
    "RolloutPaused": "on-rollout-paused",
    "RolloutAborted": "on-rollout-aborted",
    "ScalingReplicaSet": "on-scaling-replica-set",
    "AnalysisRunRunning": "on-analysis-run-running",
    "AnalysisRunError": "on-analysis-run-error",
    "AnalysisRunFailed": "on-analysis-run-failed",
}


def trigger_of(reason: str) -> str:
    """Argo's translation of an Event reason into a trigger name."""
    return "on-" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", reason).lower()


def _template_name(trigger: str) -> str:
    return {"on-scaling-replica-set": "scaling-replicaset"}.get(trigger, trigger.removeprefix("on-"))


#: The built-in trigger definitions, as the ConfigMap would spell them (``send`` lists templates).
DEFAULT_TRIGGERS: dict[str, str] = {
    trigger: f"- send: [{_template_name(trigger)}]\n" for trigger in BUILTIN_TRIGGERS.values()
}

_NAME = "{{.rollout.metadata.name}}"
_MESSAGES = {
    "rollout-completed": f"Rollout {_NAME} has been completed.",
    "rollout-step-completed": (
        f"Rollout {_NAME} step number {{{{.rollout.status.currentStepIndex}}}}"
        "/{{len .rollout.spec.strategy.canary.steps}} has been completed."
    ),
    "rollout-updated": f"Rollout {_NAME} has been updated.",
    "rollout-paused": f"Rollout {_NAME} has been paused.",
    "rollout-aborted": f"Rollout {_NAME} has been aborted.",
    "scaling-replicaset": f"Scaling Rollout {_NAME}'s replicaset to {{{{.rollout.spec.replicas}}}}.",
    "analysis-run-running": f"Rollout {_NAME}'s analysis run is running.",
    "analysis-run-error": f"Rollout {_NAME}'s analysis run is in error state.",
    "analysis-run-failed": f"Rollout {_NAME}'s analysis run failed.",
}

#: The built-in templates: a message and an email subject, as Argo's catalog has them (its step number is
#: ``status.currentStepIndex``, which counts the steps completed when the Event is recorded).
DEFAULT_TEMPLATES: dict[str, str] = {
    name: f"message: {message!r}\nemail:\n  subject: {message!r}\n" for name, message in _MESSAGES.items()
}
