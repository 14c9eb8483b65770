"""Replica arithmetic of the canary (Argo Rollouts' ``utils/replicaset/canary.go``): how many pods each
side gets for a weight, and how far the new and stable ReplicaSets may move toward their desired counts
in one pass without breaking maxSurge / maxUnavailable. Pure functions of numbers and ReplicaSet views.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rollouts.strategy.replicasets import ReplicaSetView, total_replicas


def _floor_ceiling_tied(weight: int, max_weight: int, total: int) -> bool:
    frac = math.modf(total * (weight / max_weight))[0]
    return frac == 0.5


def _weight_delta(weight: int, max_weight: int, canary: int, total: int) -> float:
    return abs(canary * max_weight / total - weight)


def approximate_weighted_counts(replicas: int, weight: int, max_weight: int, max_surge: int) -> tuple[int, int]:
    """Argo's ``approximateWeightedCanaryStableReplicaCounts``: the (canary, stable) counts closest to
    ``weight``, possibly using one surge replica; 1-99% never rounds a side to zero when there are 2+ pods."""
    if replicas == 0:
        return 0, 0
    ceil_count = math.ceil(replicas * weight / max_weight)
    floor_count = math.floor(replicas * weight / max_weight)
    tied = _floor_ceiling_tied(weight, max_weight, replicas)
    zero_allowed = weight in (max_weight, 0) or (replicas == 1 and max_surge == 0)
    options: list[tuple[int, int]] = []
    if ceil_count < replicas or zero_allowed:
        options.append((ceil_count, replicas))
    if not tied and (floor_count != 0 or zero_allowed):
        options.append((floor_count, replicas))
    if max_surge > 0:
        options.append((ceil_count, replicas + 1))
        if not _floor_ceiling_tied(weight, max_weight, replicas + 1) and (floor_count != 0 or zero_allowed):
            options.append((floor_count, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    best_delta = _weight_delta(weight, max_weight, *best)
    for option in options[1:]:
        delta = _weight_delta(weight, max_weight, *option)
        if delta < best_delta:
            best, best_delta = option, delta
    return best[0], best[1] - best[0]


def _replicas_for_scale_down(rs: ReplicaSetView | None, ignore_availability: bool) -> int:
    if rs is None:
        return 0
    if rs.replicas < rs.available:
        return rs.replicas
    if ignore_availability:
        return rs.replicas
    return rs.available


def _scale_down_count(drain: ReplicaSetView | None, desired: int, scale_down: int, current: int) -> int:
    if drain is not None and drain.replicas > desired:
        return max(desired, drain.replicas - scale_down)
    return current


def _adjust_within_limits(
    drain: ReplicaSetView | None,
    adjust: ReplicaSetView | None,
    drain_count: int,
    adjust_count: int,
    max_allowed: int,
    min_available: int,
) -> tuple[int, int]:
    over = max(0, adjust_count + drain_count - max_allowed)
    available = 0
    if drain is not None:
        available += min(drain.available, drain_count)
    if adjust is not None:
        adjust_count -= over
        available += min(adjust.available, adjust_count)
        extra = max(0, adjust.available - adjust_count)
        need = max(0, min_available - available)
        adjust_count += min(extra, need)
        over = max(0, adjust_count + drain_count - max_allowed)
        drain_count -= over
    return drain_count, adjust_count


def basic_canary_counts(
    replicas: int,
    desired_new: int,
    desired_stable: int,
    max_surge: int,
    max_unavailable: int,
    new: ReplicaSetView | None,
    stable: ReplicaSetView | None,
    others: Sequence[ReplicaSetView],
) -> tuple[int, int]:
    """Argo's ``CalculateReplicaCountsForBasicCanary`` after the desired counts are known: how far the
    new and stable ReplicaSets may move toward them now without breaking maxSurge / maxUnavailable.
    Returns (new, stable)."""
    scale_stable = stable is not None and (new is None or new.name != stable.name)
    new_count = new.replicas if new is not None else 0
    stable_count = stable.replicas if (scale_stable and stable is not None) else 0
    if not scale_stable:
        desired_new, desired_stable = replicas, 0
    max_allowed = replicas + max_surge
    all_rss: list[ReplicaSetView | None] = [*others, new]
    if scale_stable:
        all_rss.append(stable)
    scale_up = max_allowed - total_replicas(all_rss)
    if scale_stable and stable is not None and stable.replicas < desired_stable and scale_up > 0:
        if stable.replicas + scale_up < desired_stable:
            stable_count = stable.replicas + scale_up
            scale_up = 0
        else:
            stable_count = desired_stable
            scale_up -= desired_stable - stable.replicas
    if new is not None and new.replicas < desired_new and scale_up > 0:
        new_count = min(new.replicas + scale_up, desired_new)
    if total_replicas(others) > 0:
        return new_count, stable_count
    min_available = replicas - max_unavailable
    increasing = new is None or desired_new >= new.replicas
    to_scale_down = _replicas_for_scale_down(new, not increasing) + _replicas_for_scale_down(
        stable if scale_stable else None, increasing
    )
    if to_scale_down <= min_available:
        return new_count, stable_count
    scale_down = to_scale_down - min_available
    if not increasing:
        new_count = _scale_down_count(new, desired_new, scale_down, new_count)
        new_count, stable_count = _adjust_within_limits(
            new, stable if scale_stable else None, new_count, stable_count, max_allowed, min_available
        )
    elif scale_stable:
        stable_count = _scale_down_count(stable, desired_stable, scale_down, stable_count)
        stable_count, new_count = _adjust_within_limits(
            stable, new, stable_count, new_count, max_allowed, min_available
        )
    return new_count, stable_count
