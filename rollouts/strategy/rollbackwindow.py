"""``spec.rollbackWindow: {revisions: N}`` (Argo's ``isRollbackWithinWindow``): going back to a version that
was stable no more than N releases ago skips the steps and the analysis, since that version has run in
production already. A rollback is a new ReplicaSet created before the stable one; it is within the
window when fewer than N ReplicaSets were created between the two."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rollouts.model.timestamps import parse_time

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner

#: The Event of a rollback that skips the steps (Argo's reason and message).
SKIP_STEPS_MESSAGE = "Rollback to active ReplicaSets within RollbackWindow"
PROMOTION_REASON = "Rollback within window"


def window_revisions(planner: Planner) -> int:
    window = planner.ro.raw_spec.get("rollbackWindow")
    revisions = window.get("revisions") if isinstance(window, Mapping) else None
    return revisions if isinstance(revisions, int) and not isinstance(revisions, bool) else 0


def rollback_within_window(planner: Planner) -> bool:
    """Is this version a rollback to one of the last ``rollbackWindow.revisions`` stable versions?"""
    revisions = window_revisions(planner)
    new_rs, stable_rs = planner.new_rs, planner.stable_rs
    if revisions <= 0 or new_rs is None or stable_rs is None or new_rs.pod_hash == stable_rs.pod_hash:
        return False
    new_created, stable_created = parse_time(new_rs.created), parse_time(stable_rs.created)
    if new_created is None or stable_created is None or not new_created < stable_created:
        return False  # not older than the stable version: no rollback
    between = 0
    for rs in planner.all_rss:
        created = parse_time(rs.created)
        if created is not None and new_created < created < stable_created:
            between += 1
    return between < revisions
