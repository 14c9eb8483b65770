"""The Rollout's conditions (Healthy, Progressing, Available, Completed) and the progress deadline:
Argo's ``calculateRolloutConditions`` and ``requeueStuckRollout``, shared by the strategies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.strategy.replicasets import SCALE_DOWN_DEADLINE, parse_time, total_available
from rollouts.strategy.steps import current_step

if TYPE_CHECKING:
    from rollouts.strategy.canary import _Planner


def indefinite_step(p: _Planner) -> bool:
    step, _ = current_step(p.ro, p.old)
    if step is not None and (step.pause or "analysis" in step.actions or "experiment" in step.actions):
        return True
    paused = cs.get_condition(p.old, cs.PAUSED)
    return paused is not None and paused.get("status") == "True"


def waiting_for_scale_down(p: _Planner) -> bool:
    return any(SCALE_DOWN_DEADLINE in rs.annotations for rs in p.others)


def timed_out(p: _Planner, status: Mapping[str, Any]) -> bool:
    cond = cs.get_condition(status, cs.PROGRESSING)
    if cond is None or cond.get("reason") in (cs.ROLLOUT_ABORTED_REASON, cs.ROLLOUT_PAUSED_REASON):
        return False
    if cond.get("reason") == cs.TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + p.ro.progress_deadline_seconds < p.now


def timeout_message(p: _Planner) -> str:
    if p.new_rs is not None:
        return cs.REPLICASET_TIMED_OUT_MESSAGE.format(p.new_rs.name)
    return cs.ROLLOUT_TIMED_OUT_MESSAGE.format(p.ro.name)


def progress_deadline_abort(p: _Planner, new: dict[str, Any]) -> None:
    ro = p.ro
    if not ro.progress_deadline_abort or p.aborted() or cs.rollout_completed(new):
        return
    if cs.rollout_progressing(ro, p.old, new):
        return
    if indefinite_step(p) or waiting_for_scale_down(p):
        return
    if not timed_out(p, p.old):
        return
    p.add_abort = True
    p.abort_message = timeout_message(p)
    p.event(cs.ROLLOUT_ABORTED_REASON, p.abort_message, warning=True)


def rollout_conditions(p: _Planner, new: dict[str, Any]) -> None:
    """Argo's ``calculateRolloutConditions``."""
    ro = p.ro
    is_paused = bool(new.get("pauseConditions")) or ro.paused
    aborted = p.aborted()
    became_unhealthy = False
    healthy = cs.rollout_healthy(ro, p.old, new)
    if not is_paused and healthy:
        cs.set_condition(
            new,
            cs.new_condition(cs.HEALTHY, "True", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_HEALTHY_MESSAGE, p.stamp),
        )
    elif cs.get_condition(p.old, cs.HEALTHY) is not None:
        became_unhealthy = cs.set_condition(
            new,
            cs.new_condition(cs.HEALTHY, "False", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_NOT_HEALTHY_MESSAGE, p.stamp),
        )
    if aborted:
        message = cs.ROLLOUT_ABORTED_MESSAGE.format(p.revision())
        if p.abort_message:
            message = f"{message}: {p.abort_message}"
        if cs.set_condition(
            new, cs.new_condition(cs.PROGRESSING, "False", cs.ROLLOUT_ABORTED_REASON, message, p.stamp)
        ):
            p.event(cs.ROLLOUT_ABORTED_REASON, message, warning=True)
    else:
        rs_name = p.new_rs.name if p.new_rs is not None else ""
        if healthy:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING,
                    "True",
                    cs.NEW_RS_AVAILABLE_REASON,
                    cs.REPLICASET_COMPLETED_MESSAGE.format(rs_name),
                    p.stamp,
                ),
            )
        elif cs.rollout_progressing(ro, p.old, new) or became_unhealthy:
            message = (
                cs.REPLICASET_PROGRESSING_MESSAGE.format(rs_name)
                if rs_name
                else cs.ROLLOUT_PROGRESSING_MESSAGE.format(ro.name)
            )
            reason = cs.REPLICASET_UPDATED_REASON
            if new.get("stableRS") == new.get("currentPodHash") and became_unhealthy:
                reason, message = cs.REPLICASET_NOT_AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE
            cs.replace_condition(new, cs.new_condition(cs.PROGRESSING, "True", reason, message, p.stamp))
        elif not indefinite_step(p) and not waiting_for_scale_down(p) and timed_out(p, new):
            cs.set_condition(
                new,
                cs.new_condition(cs.PROGRESSING, "False", cs.TIMED_OUT_REASON, timeout_message(p), p.stamp),
            )
    if total_available(p.all_rss) >= ro.replicas:
        cs.set_condition(
            new, cs.new_condition(cs.AVAILABLE, "True", cs.AVAILABLE_REASON, cs.AVAILABLE_MESSAGE, p.stamp)
        )
    else:
        cs.set_condition(
            new, cs.new_condition(cs.AVAILABLE, "False", cs.AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE, p.stamp)
        )
    if cs.rollout_completed(new):
        cs.set_condition(
            new,
            cs.new_condition(cs.COMPLETED, "True", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, p.stamp),
        )
    elif cs.set_condition(
        new,
        cs.new_condition(cs.COMPLETED, "False", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, p.stamp),
    ):
        p.event(
            cs.ROLLOUT_NOT_COMPLETED_REASON,
            cs.ROLLOUT_NOT_COMPLETED_MESSAGE.format(p.revision(), new.get("currentPodHash", "")),
        )


def requeue_for_deadline(p: _Planner, new: Mapping[str, Any]) -> None:
    """Argo's ``requeueStuckRollout``: look again when the progress deadline would pass."""
    cond = cs.get_condition(new, cs.PROGRESSING)
    if cond is None or cond.get("status") != "True":
        return
    if p.ro.paused or new.get("pauseConditions") or new.get("abort") or indefinite_step(p):
        return
    if cs.rollout_healthy(p.ro, p.old, new):
        return
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return
    p.plan.requeue(since + p.ro.progress_deadline_seconds - p.now + 1)
