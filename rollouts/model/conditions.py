"""Rollout status vocabulary: condition types, reasons, messages and phase names in Argo Rollouts'
words (``utils/conditions``), and the condition rules: setting a condition, and whether a Rollout is
completed, healthy or progressing. The phase derivation is in :mod:`rollouts.model.phase`.

Pure functions over plain status dicts (the JSON shape of ``Rollout.status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollouts.model.jsoncopy import copy_object
from rollouts.model.spec import RolloutSpec

# condition types
PROGRESSING = "Progressing"
AVAILABLE = "Available"
HEALTHY = "Healthy"
PAUSED = "Paused"
INVALID_SPEC = "InvalidSpec"
COMPLETED = "Completed"

# reasons and messages (utils/conditions/conditions.go)
INVALID_SPEC_REASON = "InvalidSpec"
AVAILABLE_REASON = "AvailableReason"
NOT_AVAILABLE_MESSAGE = "Rollout does not have minimum availability"
AVAILABLE_MESSAGE = "Rollout has minimum availability"
REPLICASET_UPDATED_REASON = "ReplicaSetUpdated"
ROLLOUT_PROGRESSING_MESSAGE = 'Rollout "{}" is progressing.'
REPLICASET_PROGRESSING_MESSAGE = 'ReplicaSet "{}" is progressing.'
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
FAILED_RS_CREATE_MESSAGE = 'Failed to create new replica set "{}": {}'
NEW_RS_REASON = "NewReplicaSetCreated"
NEW_RS_MESSAGE = 'Created new replica set "{}"'
NEW_RS_DETAILED_MESSAGE = "Created ReplicaSet {} (revision {})"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
FOUND_NEW_RS_MESSAGE = 'Found new replica set "{}"'
ROLLOUT_UPDATED_REASON = "RolloutUpdated"
ROLLOUT_UPDATED_MESSAGE = "Rollout updated to revision {}"
ROLLOUT_COMPLETED_REASON = "RolloutCompleted"
ROLLOUT_COMPLETED_MESSAGE = "Rollout completed update to revision {} ({}): {}"
ROLLOUT_NOT_COMPLETED_REASON = "RolloutNotCompleted"
ROLLOUT_NOT_COMPLETED_MESSAGE = "Rollout not completed, started update to revision {} ({})"
ROLLOUT_HEALTHY_REASON = "RolloutHealthy"
ROLLOUT_HEALTHY_MESSAGE = "Rollout is healthy"
ROLLOUT_NOT_HEALTHY_MESSAGE = "Rollout is not healthy"
ROLLOUT_ABORTED_REASON = "RolloutAborted"
ROLLOUT_ABORTED_MESSAGE = "Rollout aborted update to revision {}"
ROLLOUT_RETRY_REASON = "RolloutRetry"
ROLLOUT_RETRY_MESSAGE = "Retrying Rollout after abort"
ROLLOUT_PAUSED_REASON = "RolloutPaused"
ROLLOUT_PAUSED_MESSAGE = "Rollout is paused"
INCONCLUSIVE_ANALYSIS_PAUSE = "InconclusiveAnalysisRun"
REPLICASET_NOT_AVAILABLE_REASON = "ReplicaSetNotAvailable"
ROLLOUT_RESUMED_REASON = "RolloutResumed"
ROLLOUT_RESUMED_MESSAGE = "Rollout is resumed"
ROLLOUT_STEP_COMPLETED_REASON = "RolloutStepCompleted"
ROLLOUT_STEP_COMPLETED_MESSAGE = "Rollout step {}/{} completed ({})"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
ROLLOUT_TIMED_OUT_MESSAGE = 'Rollout "{}" has timed out progressing.'
REPLICASET_TIMED_OUT_MESSAGE = 'ReplicaSet "{}" has timed out progressing.'
REPLICASET_COMPLETED_MESSAGE = 'ReplicaSet "{}" has successfully progressed.'
SCALING_REPLICASET_REASON = "ScalingReplicaSet"
SCALING_REPLICASET_MESSAGE = "Scaled {} ReplicaSet {} (revision {}) from {} to {}"
SKIP_STEPS_REASON = "SkipSteps"
SERVICE_REFERENCE_REASON = "ServiceReferenceError"
SWITCH_SERVICE_REASON = "SwitchService"

# pause reasons
PAUSE_CANARY_STEP = "CanaryPauseStep"
PAUSE_BLUE_GREEN = "BlueGreenPause"

# phases
HEALTHY_PHASE = "Healthy"
PROGRESSING_PHASE = "Progressing"
PAUSED_PHASE = "Paused"
DEGRADED_PHASE = "Degraded"


def get_condition(status: Mapping[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> bool:
    """Argo's ``SetRolloutCondition``: no change when status and reason are the same; the transition
    time survives a reason change with the same status. True when the conditions changed."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return False
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)
    return True


def replace_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """Set a condition even when status and reason are unchanged (refreshes message and lastUpdateTime),
    keeping the transition time when the status is the same."""
    current = get_condition(status, cond["type"])
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def rollout_completed(status: Mapping[str, Any]) -> bool:
    """Argo's ``RolloutCompleted``: the current pod template is the stable one."""
    stable = status.get("stableRS") or ""
    return bool(stable) and stable == status.get("currentPodHash")


def rollout_healthy(ro: RolloutSpec, old_status: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Argo's ``RolloutHealthy``: for blue/green, both Services select the current pod template."""
    replicas = ro.replicas
    if ro.canary is None and ro.blue_green is not None:
        selectors = new.get("blueGreen") or {}
        current = new.get("currentPodHash")
        completed_strategy = selectors.get("activeSelector") == current and (
            not ro.blue_green.preview_service or selectors.get("previewSelector") == current
        )
    else:
        steps = len(ro.canary.steps) if ro.canary else 0
        executed_all = True
        if steps > 0 and new.get("currentStepIndex") is not None:
            executed_all = int(new["currentStepIndex"]) == steps
        completed_strategy = executed_all and rollout_completed(new) and int(new.get("replicas") or 0) == replicas
    return (
        int(new.get("updatedReplicas") or 0) == replicas
        and int(new.get("availableReplicas") or 0) == replicas
        and str(old_status.get("observedGeneration", "")) == str(ro.generation)
        and completed_strategy
    )


def rollout_progressing(ro: RolloutSpec, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Argo's ``RolloutProgressing``: did this reconcile make progress (refreshes the deadline)?"""
    strategy_progress = (
        (new.get("stableRS") or "") != (old.get("stableRS") or "")
        or (
            new.get("currentStepIndex") is not None
            and old.get("currentStepIndex") is not None
            and new.get("currentStepIndex") != old.get("currentStepIndex")
        )
        or (new.get("currentStepHash") or "") != (old.get("currentStepHash") or "")
    )
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (
        int(new.get("updatedReplicas") or 0) != int(old.get("updatedReplicas") or 0)
        or new_old < old_old
        or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
        or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0)
        or strategy_progress
    )


def status_copy(status: Mapping[str, Any] | None) -> dict[str, Any]:
    return copy_object(status or {})
