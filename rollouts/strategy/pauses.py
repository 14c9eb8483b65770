"""Pauses: the canary's pause steps, and the pause context of a pass (conditions added and removed,
abort) turned into ``status.pauseConditions`` / ``controllerPause`` / ``abort`` and the Paused condition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.spec import Step
from rollouts.model.steps import current_step
from rollouts.model.timestamps import parse_time

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def reconcile_pause_step(planner: Planner) -> None:
    """A pause step: add its pause condition when the step starts, look again when a timed pause ends."""
    ro = planner.ro
    if ro.paused or planner.old.get("promoteFull"):
        return
    step, _ = current_step(ro, planner.old)
    if step is None or not step.pause:
        return
    cond = planner.pause_condition(cs.PAUSE_CANARY_STEP)
    if cond is None:
        if not planner.old.get("controllerPause"):
            planner.add_pause.append(cs.PAUSE_CANARY_STEP)
            if step.pause_seconds is not None:
                planner.plan.requeue(step.pause_seconds)
        return
    if step.pause_seconds is not None:
        started = parse_time(cond.get("startTime")) or planner.now
        planner.plan.requeue(started + step.pause_seconds - planner.now)


def completed_pause_step(planner: Planner, step: Step) -> bool:
    """Is the pause step done (its time is up, or the user promoted: the condition is gone)?"""
    cond = planner.pause_condition(cs.PAUSE_CANARY_STEP)
    if planner.old.get("controllerPause") and cond is None:
        return True
    if step.pause_seconds is not None and cond is not None:
        started = parse_time(cond.get("startTime")) or planner.now
        return planner.now >= started + step.pause_seconds
    return False


def paused_conditions(planner: Planner, new: dict[str, Any]) -> None:
    """Argo's ``checkPausedConditions`` (folded into the same status write)."""
    if str(planner.old.get("observedGeneration", "")) != str(planner.ro.generation):
        return
    prog = cs.get_condition(planner.old, cs.PROGRESSING)
    prog_paused = prog is not None and prog.get("reason") == cs.ROLLOUT_PAUSED_REASON
    is_paused = bool(planner.old.get("pauseConditions")) or planner.ro.paused
    abort_cond = prog is not None and prog.get("reason") == cs.ROLLOUT_ABORTED_REASON
    if is_paused != prog_paused and not abort_cond and not cs.rollout_completed(planner.old):
        if is_paused:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "Unknown", cs.ROLLOUT_PAUSED_REASON, cs.ROLLOUT_PAUSED_MESSAGE, planner.stamp
                ),
            )
        else:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "Unknown", cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE, planner.stamp
                ),
            )
    if not planner.old.get("abort") and abort_cond:
        cs.set_condition(
            new,
            cs.new_condition(
                cs.PROGRESSING, "Unknown", cs.ROLLOUT_RETRY_REASON, cs.ROLLOUT_RETRY_MESSAGE, planner.stamp
            ),
        )
    paused = cs.get_condition(planner.old, cs.PAUSED)
    paused_true = paused is not None and paused.get("status") == "True"
    if is_paused != paused_true and not abort_cond:
        if paused_true and not is_paused and not planner.old.get("abort"):
            planner.event(cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE)
        cs.set_condition(
            new,
            cs.new_condition(
                cs.PAUSED,
                "True" if is_paused else "False",
                cs.ROLLOUT_PAUSED_REASON,
                cs.ROLLOUT_PAUSED_MESSAGE,
                planner.stamp,
            ),
        )


def pause_status(planner: Planner, new: dict[str, Any]) -> None:
    """Argo's ``CalculatePauseStatus``."""
    new.pop("pauseConditions", None)
    new.pop("controllerPause", None)
    if planner.add_abort or (not planner.remove_abort and planner.old.get("abort")):
        new["abort"] = True
        new["abortedAt"] = planner.old.get("abortedAt") or planner.stamp
        return
    new["abort"] = False
    new.pop("abortedAt", None)
    if planner.clear_pause:
        return
    controller_pause = bool(planner.old.get("controllerPause"))
    conditions = [
        dict(c) for c in planner.old.get("pauseConditions") or [] if c.get("reason") not in planner.remove_pause
    ]
    existing = {c.get("reason") for c in planner.old.get("pauseConditions") or []}
    for reason in planner.add_pause:
        if reason not in existing:
            conditions.append({"reason": reason, "startTime": planner.stamp})
            controller_pause = True
    if not conditions:
        return
    new["controllerPause"] = controller_pause
    new["pauseConditions"] = conditions
