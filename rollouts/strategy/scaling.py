"""Scaling the canary's ReplicaSets: the counts each side may have now (surge limits, setCanaryScale,
traffic routers), ``scaleDownDelaySeconds`` and ``abortScaleDownDelaySeconds``, and one scaling move per
pass (Argo's ``reconcileCanaryReplicaSets``). ``scale`` is shared by the strategies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.steps import current_step
from rollouts.model.timestamps import format_time, parse_time
from rollouts.strategy import analysis as ca
from rollouts.strategy.plan import PatchReplicaSet, scale_down_deadline_patch
from rollouts.strategy.replicas import approximate_weighted_counts, basic_canary_counts
from rollouts.strategy.replicasets import ReplicaSetView, by_creation, total_available
from rollouts.strategy.steps import canary_scale, set_weight
from rollouts.strategy.traffic import (
    canary_carry,
    routed_counts,
    routed_service_selects,
    traffic_left_old,
    traffic_off_canary,
)

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner
    from rollouts.strategy.canary import CanaryPlanner


def desired_counts(planner: CanaryPlanner) -> tuple[int, int]:
    """The (new, stable) replica counts the current step asks for, before surge limits."""
    ro = planner.ro
    old = planner.old
    stable_hash = old.get("stableRS") or ""
    if old.get("promoteFull") or not stable_hash or old.get("currentPodHash") == stable_hash:
        return ro.replicas, 0
    replicas, weight = canary_scale(planner)
    if replicas is not None:
        new = min(replicas, ro.replicas)
        stable = ro.replicas - new
    else:
        if weight is None:
            weight = set_weight(planner)
        new, stable = approximate_weighted_counts(ro.replicas, weight, 100, ro.max_surge())
    minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas) if ro.canary else 0
    if minimum:
        new = max(new, minimum) if new else 0
        stable = max(stable, minimum) if stable else 0
    return new, stable


def counts(planner: CanaryPlanner) -> tuple[int, int]:
    """The (new, stable) replica counts this pass may set (surge limits, a router's weights, a kept stable)."""
    if planner.traffic is not None:
        return routed_counts(planner)
    if _holding_stable(planner):
        assert planner.stable_rs is not None
        new_count, _ = basic_canary_counts(
            planner.ro.replicas,
            planner.ro.replicas,
            0,
            planner.ro.max_surge(),
            planner.ro.max_unavailable(),
            planner.new_rs,
            None,
            planner.active_others,
        )
        return new_count, planner.stable_rs.replicas
    desired_new, desired_stable = desired_counts(planner)
    return basic_canary_counts(
        planner.ro.replicas,
        desired_new,
        desired_stable,
        planner.ro.max_surge(),
        planner.ro.max_unavailable(),
        planner.new_rs,
        planner.stable_rs,
        planner.active_others,
    )


def _holding_stable(planner: CanaryPlanner) -> bool:
    """With a scale-down delay, the stable ReplicaSet keeps its pods while the canary goes to full
    size (all steps done, or a full promotion): as with a traffic router, the ReplicaSet that is
    about to become the previous stable is not drained before the switch, so it can be kept for
    the delay afterwards. Its pods are outside maxSurge, as Argo's traffic-routed stable is."""
    if planner.delay is None or planner.aborted() or planner.new_rs is None or planner.stable_rs is None:
        return False
    if planner.stable_rs.name == planner.new_rs.name:
        return False
    step, _ = current_step(planner.ro, planner.old)
    return bool(planner.old.get("promoteFull")) or step is None


def kept_for_scale_down_delay(planner: CanaryPlanner) -> dict[str, float]:
    """Argo's ``scaleDownDelayHelper`` (rollout/replicaset.go) for the old ReplicaSets, newest
    revision first: once the rollout is fully promoted, an old ReplicaSet with pods and no
    deadline gets one (now + delay); one with a deadline keeps its pods until it passes. At
    most ``scaleDownDelayRevisionLimit`` of them are kept; the rest (and an intermediate
    ReplicaSet of an unfinished update, which has no deadline) are scaled down at once.
    Returns name -> deadline of those to keep now."""
    if planner.delay is None:
        return {}
    limit = planner.ro.scale_down_delay_revision_limit()
    promoted = cs.rollout_completed(planner.old)
    kept: dict[str, float] = {}
    annotated = 0
    for rs in sorted(planner.others, key=lambda r: (r.revision, r.created, r.name), reverse=True):
        if rs.replicas <= 0:
            continue
        if not rs.annotations.get(SCALE_DOWN_DEADLINE):
            if promoted and (limit is None or annotated < limit):
                annotated += 1
                # the annotation has whole seconds: keep the deadline we will write
                kept[rs.name] = parse_time(format_time(planner.now + planner.delay)) or planner.now + planner.delay
            continue
        annotated += 1
        if limit is not None and annotated > limit:
            continue  # "At ScaleDownDelayRevisionLimit and scaling down the rest"
        deadline = rs.scale_down_deadline()
        if deadline is not None and deadline > planner.now:
            kept[rs.name] = deadline
    return kept


def _keep_delayed(planner: CanaryPlanner) -> None:
    """Write the deadline on the old ReplicaSets that have none yet, and look again at the first deadline."""
    for rs in planner.others:
        deadline = planner.kept.get(rs.name)
        if deadline is None:
            continue
        if not rs.annotations.get(SCALE_DOWN_DEADLINE):
            planner.plan.actions.append(scale_down_deadline_patch(rs.name, deadline, "scale-down delay"))
        planner.plan.requeue(deadline - planner.now)


def scale(planner: Planner, rs: ReplicaSetView, replicas: int) -> bool:
    """Scale ``rs`` to ``replicas`` (with an Event); False when it is there already."""
    if rs.replicas == replicas:
        return False
    direction = "up" if replicas > rs.replicas else "down"
    patch: dict[str, Any] = {"spec": {"replicas": replicas}}
    if replicas == 0 and SCALE_DOWN_DEADLINE in rs.annotations and not planner.delaying_abort_scale_down():
        patch["metadata"] = {"annotations": {SCALE_DOWN_DEADLINE: None}}
    planner.plan.actions.append(PatchReplicaSet(rs.name, patch, f"scale {direction}"))
    planner.event(
        cs.SCALING_REPLICASET_REASON,
        cs.SCALING_REPLICASET_MESSAGE.format(direction, rs.name, rs.revision, rs.replicas, replicas),
    )
    return True


def reconcile_replicasets(planner: CanaryPlanner) -> bool:
    """Argo's ``reconcileCanaryReplicaSets``: one scaling move per pass (stable, then new, then old).
    True when something was scaled. Nothing moves while the rollout is paused by the user or by an
    inconclusive analysis (Argo's ``haltProgress``)."""
    if planner.ro.paused or planner.pause_condition(ca.PAUSE_INCONCLUSIVE) is not None:
        return False
    new_rs, stable_rs = planner.new_rs, planner.stable_rs
    assert new_rs is not None
    _keep_delayed(planner)
    delaying = planner.delaying_abort_scale_down()
    clear = [] if delaying else [new_rs]
    if stable_rs is not None and stable_rs.name != new_rs.name:
        clear.append(stable_rs)
    for rs in clear:
        if SCALE_DOWN_DEADLINE not in rs.annotations:
            continue
        planner.plan.actions.append(scale_down_deadline_patch(rs.name, None, "clear deadline"))
    new_count, stable_count = counts(planner)
    if delaying:
        stable_count = planner.ro.replicas
    if stable_rs is not None and stable_rs.name != new_rs.name and scale(planner, stable_rs, stable_count):
        return True
    if delaying:
        delay = planner.ro.abort_scale_down_delay()
        assert delay is not None and stable_rs is not None
        deadline = new_rs.scale_down_deadline()
        if deadline is None:
            if stable_rs.available >= planner.ro.replicas and traffic_off_canary(planner):
                planner.plan.actions.append(
                    scale_down_deadline_patch(new_rs.name, planner.now + delay, "abort scale-down delay")
                )
                planner.plan.requeue(delay)
            return False
        if deadline > planner.now:
            planner.plan.requeue(deadline - planner.now)
            return False
        new_count = 0
    new_count = max(new_count, canary_carry(planner))
    if scale(planner, new_rs, new_count):
        return True
    return _scale_down_others(planner)


def _scale_down_others(planner: CanaryPlanner) -> bool:
    """Argo's ``scaleDownOldReplicaSetsForCanary`` (basic canary): unhealthy replicas first, then
    the newest old ReplicaSets, never below minAvailable."""
    others = [rs for rs in planner.others if rs.replicas > 0 and not routed_service_selects(planner, rs)]
    if not others or not traffic_left_old(planner):
        return False
    scaled = False
    remaining: list[ReplicaSetView] = []
    for rs in by_creation(others):
        if rs.replicas != rs.available:
            scaled |= scale(planner, rs, rs.available)
            rs = ReplicaSetView(**{**rs.__dict__, "replicas": rs.available})
        remaining.append(rs)
    available = total_available(planner.all_rss)
    min_available = planner.ro.replicas - planner.ro.max_unavailable()
    max_scale_down = available - min_available
    if max_scale_down <= 0:
        return scaled
    for rs in sorted(remaining, key=lambda r: r.revision, reverse=True):
        if max_scale_down <= 0:
            break
        if rs.replicas == 0 or rs.name in planner.kept:
            continue
        target = rs.replicas - max_scale_down if rs.replicas > max_scale_down else 0
        if scale(planner, rs, target):
            scaled = True
        max_scale_down -= rs.replicas - target
    return scaled


def at_desired_counts(planner: CanaryPlanner) -> bool:
    """Argo's ``AtDesiredReplicaCountsForCanary`` (basic canary)."""
    new_count, stable_count = counts(planner)
    new_rs = planner.new_rs
    if new_rs is None or not progress_threshold_met(planner, new_rs, new_count):
        return False
    stable = planner.stable_rs
    if stable is None:
        return False
    if stable.name != new_rs.name and (stable.replicas != stable_count or stable.status_replicas != stable_count):
        return False
    return total_available(planner.active_others) == 0


def progress_threshold_met(planner: CanaryPlanner, rs: ReplicaSetView, desired: int) -> bool:
    """Has ``rs`` the available pods ``replicaProgressThreshold`` asks of ``desired`` (default: all)?"""
    assert planner.ro.canary is not None
    threshold = planner.ro.canary.raw.get("replicaProgressThreshold")
    if isinstance(threshold, Mapping) and int(threshold.get("value", -1)) >= 0:
        value = int(threshold["value"])
        if threshold.get("type") == "Percent":
            return desired == 0 or rs.available * 100 / desired >= value - 1e-10
        return rs.available >= value
    return rs.replicas == desired and rs.available == desired
