"""``spec.restartAt``: delete the pods created before it, as many at a time as maxUnavailable allows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollouts.model.timestamps import parse_time
from rollouts.strategy.plan import DeletePod, PodView
from rollouts.strategy.replicasets import total_replicas

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def restart_pods(planner: Planner) -> bool:
    """Delete pods older than spec.restartAt, as many at a time as maxUnavailable allows.
    True when pods were deleted in this pass."""
    ro = planner.ro
    restart_at = parse_time(ro.restart_at)
    if restart_at is None or ro.restart_at == planner.old.get("restartedAt"):
        return False
    if planner.now < restart_at:
        planner.plan.requeue(restart_at - planner.now)
        return False
    if planner.obs.pods is None:
        return False
    uids = {rs.uid for rs in planner.all_rss}
    pods = [PodView.parse(p) for p in planner.obs.pods]
    pods = [p for p in pods if p.owner_uid in uids]
    total = total_replicas(planner.all_rss)
    available = sum(1 for p in pods if p.ready and not p.deleting)
    concurrent = max(ro.max_unavailable(), 1)
    can_restart = available - (max(ro.replicas, total) - concurrent)
    needs = 0
    restarted = 0
    for pod in sorted(pods, key=lambda p: (p.created, p.name)):
        if pod.created >= restart_at:
            continue
        needs += 1
        if can_restart <= 0 or pod.deleting:
            continue
        planner.plan.actions.append(DeletePod(pod.name))
        can_restart -= 1
        restarted += 1
    if needs - restarted != 0:
        planner.plan.requeue(1.0)
    else:
        planner.restarted_at = ro.restart_at
    return restarted > 0
