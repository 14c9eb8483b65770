"""The Rollout's conditions (Healthy, Progressing, Available, Completed) and the progress deadline:
Argo's ``calculateRolloutConditions`` and ``requeueStuckRollout``, shared by the strategies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.steps import current_step
from rollouts.model.timestamps import parse_time
from rollouts.strategy.replicasets import total_available

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def _indefinite_step(planner: Planner) -> bool:
    """A step with no deadline (pause, analysis, experiment), or paused: the progress deadline waits."""
    step, _ = current_step(planner.ro, planner.old)
    if step is not None and (step.pause or "analysis" in step.actions or "experiment" in step.actions):
        return True
    paused = cs.get_condition(planner.old, cs.PAUSED)
    return paused is not None and paused.get("status") == "True"


def _waiting_for_scale_down(planner: Planner) -> bool:
    """Does an old ReplicaSet wait for its scale-down deadline?"""
    return any(SCALE_DOWN_DEADLINE in rs.annotations for rs in planner.others)


def _timed_out(planner: Planner, status: Mapping[str, Any]) -> bool:
    """Has the rollout passed its progress deadline, as ``status`` records it?"""
    cond = cs.get_condition(status, cs.PROGRESSING)
    if cond is None or cond.get("reason") in (cs.ROLLOUT_ABORTED_REASON, cs.ROLLOUT_PAUSED_REASON):
        return False
    if cond.get("reason") == cs.TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + planner.ro.progress_deadline_seconds < planner.now


def _timeout_message(planner: Planner) -> str:
    """The message of the progress deadline's Progressing condition."""
    if planner.new_rs is not None:
        return cs.REPLICASET_TIMED_OUT_MESSAGE.format(planner.new_rs.name)
    return cs.ROLLOUT_TIMED_OUT_MESSAGE.format(planner.ro.name)


def progress_deadline_abort(planner: Planner, new: dict[str, Any]) -> None:
    """``progressDeadlineAbort``: abort a rollout that passed its progress deadline."""
    ro = planner.ro
    if not ro.progress_deadline_abort or planner.aborted() or cs.rollout_completed(new):
        return
    if cs.rollout_progressing(ro, planner.old, new):
        return
    if _indefinite_step(planner) or _waiting_for_scale_down(planner):
        return
    if not _timed_out(planner, planner.old):
        return
    planner.add_abort = True
    planner.abort_message = _timeout_message(planner)
    planner.event(cs.ROLLOUT_ABORTED_REASON, planner.abort_message, warning=True)


def rollout_conditions(planner: Planner, new: dict[str, Any]) -> None:
    """Argo's ``calculateRolloutConditions``."""
    ro = planner.ro
    is_paused = bool(new.get("pauseConditions")) or ro.paused
    aborted = planner.aborted()
    became_unhealthy = False
    healthy = cs.rollout_healthy(ro, planner.old, new)
    if not is_paused and healthy:
        cs.set_condition(
            new,
            cs.new_condition(cs.HEALTHY, "True", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_HEALTHY_MESSAGE, planner.stamp),
        )
    elif cs.get_condition(planner.old, cs.HEALTHY) is not None:
        became_unhealthy = cs.set_condition(
            new,
            cs.new_condition(
                cs.HEALTHY, "False", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_NOT_HEALTHY_MESSAGE, planner.stamp
            ),
        )
    if aborted:
        message = cs.ROLLOUT_ABORTED_MESSAGE.format(planner.revision())
        if planner.abort_message:
            message = f"{message}: {planner.abort_message}"
        if cs.set_condition(
            new, cs.new_condition(cs.PROGRESSING, "False", cs.ROLLOUT_ABORTED_REASON, message, planner.stamp)
        ):
            planner.event(cs.ROLLOUT_ABORTED_REASON, message, warning=True)
    else:
        rs_name = planner.new_rs.name if planner.new_rs is not None else ""
        if healthy:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING,
                    "True",
                    cs.NEW_RS_AVAILABLE_REASON,
                    cs.REPLICASET_COMPLETED_MESSAGE.format(rs_name),
                    planner.stamp,
                ),
            )
        elif cs.rollout_progressing(ro, planner.old, new) or became_unhealthy:
            message = (
                cs.REPLICASET_PROGRESSING_MESSAGE.format(rs_name)
                if rs_name
                else cs.ROLLOUT_PROGRESSING_MESSAGE.format(ro.name)
            )
            reason = cs.REPLICASET_UPDATED_REASON
            if new.get("stableRS") == new.get("currentPodHash") and became_unhealthy:
                reason, message = cs.REPLICASET_NOT_AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE
            cs.replace_condition(new, cs.new_condition(cs.PROGRESSING, "True", reason, message, planner.stamp))
        elif not _indefinite_step(planner) and not _waiting_for_scale_down(planner) and _timed_out(planner, new):
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "False", cs.TIMED_OUT_REASON, _timeout_message(planner), planner.stamp
                ),
            )
    if total_available(planner.all_rss) >= ro.replicas:
        cs.set_condition(
            new, cs.new_condition(cs.AVAILABLE, "True", cs.AVAILABLE_REASON, cs.AVAILABLE_MESSAGE, planner.stamp)
        )
    else:
        cs.set_condition(
            new, cs.new_condition(cs.AVAILABLE, "False", cs.AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE, planner.stamp)
        )
    if cs.rollout_completed(new):
        cs.set_condition(
            new,
            cs.new_condition(
                cs.COMPLETED, "True", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, planner.stamp
            ),
        )
    elif cs.set_condition(
        new,
        cs.new_condition(
            cs.COMPLETED, "False", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, planner.stamp
        ),
    ):
        planner.event(
            cs.ROLLOUT_NOT_COMPLETED_REASON,
            cs.ROLLOUT_NOT_COMPLETED_MESSAGE.format(planner.revision(), new.get("currentPodHash", "")),
        )


def requeue_for_deadline(planner: Planner, new: Mapping[str, Any]) -> None:
    """Argo's ``requeueStuckRollout``: look again when the progress deadline would pass."""
    cond = cs.get_condition(new, cs.PROGRESSING)
    if cond is None or cond.get("status") != "True":
        return
    if planner.ro.paused or new.get("pauseConditions") or new.get("abort") or _indefinite_step(planner):
        return
    if cs.rollout_healthy(planner.ro, planner.old, new):
        return
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return
    planner.plan.requeue(since + planner.ro.progress_deadline_seconds - planner.now + 1)
