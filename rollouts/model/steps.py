"""Where a canary is in its steps (Argo's ``GetCurrentCanaryStep`` and ``GetCurrentSetWeight``), for the
controller's planner and for what the plugin shows ("Step: 2/4", "SetWeight: 50").

Pure functions over the typed spec view and the status dict (the JSON of ``Rollout.status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollouts.model.spec import MAX_TRAFFIC_WEIGHT, RolloutSpec, Step, max_traffic_weight, optional_int


def _step_index(status: Mapping[str, Any]) -> int | None:
    """``status.currentStepIndex`` as a number, None when unset or unreadable."""
    return optional_int(status.get("currentStepIndex"))


def current_step(ro: RolloutSpec, status: Mapping[str, Any]) -> tuple[Step | None, int | None]:
    """Argo's ``GetCurrentCanaryStep``: (step, index); the step is None past the last one, and both are
    None without canary steps. An unset index is step 0."""
    steps = ro.canary.steps if ro.canary is not None else ()
    if not steps:
        return None, None
    index = _step_index(status) or 0
    if index >= len(steps):
        return None, index
    return steps[index], index


def set_weight_at(ro: RolloutSpec, index: int | None) -> int:
    """The weight in force at step ``index``: the last ``setWeight`` at or before it (0 if none); the
    whole ``maxTrafficWeight`` past the last step or without steps."""
    if ro.canary is None:
        return MAX_TRAFFIC_WEIGHT
    steps = ro.canary.steps
    if index is None or index >= len(steps):
        return max_traffic_weight(ro.canary)
    for i in range(index, -1, -1):
        weight = steps[i].set_weight
        if weight is not None:
            return weight
    return 0


def current_set_weight(ro: RolloutSpec, status: Mapping[str, Any]) -> int:
    """Argo's ``GetCurrentSetWeight``: the weight the current step asks for (not the weight reached);
    0 once aborted."""
    if status.get("abort"):
        return 0
    _step, index = current_step(ro, status)
    return set_weight_at(ro, index)


def step_text(ro: RolloutSpec, status: Mapping[str, Any]) -> str:
    """"2/4" (``status.currentStepIndex`` / number of steps), or "" when there is nothing to count."""
    index = _step_index(status)
    if ro.canary is None or not ro.canary.steps or index is None:
        return ""
    return f"{index}/{len(ro.canary.steps)}"
