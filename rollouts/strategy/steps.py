"""The canary step in force (Argo's ``GetCurrentCanaryStep``) and what it asks of the replica counts:
the ``setWeight`` and ``setCanaryScale`` in force at the current step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollouts.model.steps import current_step, set_weight_at

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


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
    """Argo's ``GetCurrentSetWeight`` (with this pass's abort, not only the recorded one)."""
    if planner.aborted():
        return 0
    _step, index = current_step(planner.ro, planner.old)
    return set_weight_at(planner.ro, index)
