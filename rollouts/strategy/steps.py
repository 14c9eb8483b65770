"""The canary step in force (Argo's ``GetCurrentCanaryStep``) and what it asks of the replica counts:
the ``setWeight`` and ``setCanaryScale`` in force at the current step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rollouts.model.spec import RolloutSpec, Step

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def current_step(ro: RolloutSpec, status: Mapping[str, Any]) -> tuple[Step | None, int | None]:
    """Argo's ``GetCurrentCanaryStep``: (step, index); step is None past the last step."""
    steps = ro.canary.steps if ro.canary else ()
    if not steps:
        return None, None
    index = int(status.get("currentStepIndex") or 0)
    if index >= len(steps):
        return None, index
    return steps[index], index


def canary_scale(planner: Planner) -> tuple[int | None, int | None]:
    """(replicas, weight) of the setCanaryScale step in force, Argo's ``UseSetCanaryScale``
    (extended to the canary without a traffic router)."""
    if planner.aborted():
        return None, None
    step, index = current_step(planner.ro, planner.old)
    if step is None or index is None:
        return None, None
    assert planner.ro.canary is not None
    for i in range(index, -1, -1):
        scale = planner.ro.canary.steps[i].canary_scale
        if scale is None:
            continue
        if scale.match_traffic_weight:
            return None, None
        if scale.replicas is not None:
            return scale.replicas, None
        if scale.weight is not None:
            return None, scale.weight
        return None, None
    return None, None


def set_weight(planner: Planner) -> int:
    """Argo's ``GetCurrentSetWeight``."""
    if planner.aborted():
        return 0
    step, index = current_step(planner.ro, planner.old)
    if step is None or index is None:
        return 100
    assert planner.ro.canary is not None
    for i in range(index, -1, -1):
        weight = planner.ro.canary.steps[i].set_weight
        if weight is not None:
            return weight
    return 0
