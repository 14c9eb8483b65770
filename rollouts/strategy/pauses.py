"""Pauses: the canary's pause steps, and the pause context of a pass (conditions added and removed,
abort) turned into ``status.pauseConditions`` / ``controllerPause`` / ``abort`` and the Paused condition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.spec import Step
from rollouts.strategy.replicasets import parse_time
from rollouts.strategy.steps import current_step

if TYPE_CHECKING:
    from rollouts.strategy.canary import _Planner


def reconcile_pause_step(p: _Planner) -> None:
    ro = p.ro
    if ro.paused or p.old.get("promoteFull"):
        return
    step, _ = current_step(ro, p.old)
    if step is None or not step.pause:
        return
    cond = p._pause_condition(cs.PAUSE_CANARY_STEP)
    if cond is None:
        if not p.old.get("controllerPause"):
            p.add_pause.append(cs.PAUSE_CANARY_STEP)
            if step.pause_seconds is not None:
                p.plan.requeue(step.pause_seconds)
        return
    if step.pause_seconds is not None:
        started = parse_time(cond.get("startTime")) or p.now
        p.plan.requeue(started + step.pause_seconds - p.now)


def completed_pause_step(p: _Planner, step: Step) -> bool:
    cond = p._pause_condition(cs.PAUSE_CANARY_STEP)
    if p.old.get("controllerPause") and cond is None:
        return True
    if step.pause_seconds is not None and cond is not None:
        started = parse_time(cond.get("startTime")) or p.now
        return p.now >= started + step.pause_seconds
    return False


def paused_conditions(p: _Planner, new: dict[str, Any]) -> None:
    """Argo's ``checkPausedConditions`` (folded into the same status write)."""
    if str(p.old.get("observedGeneration", "")) != str(p.ro.generation):
        return
    prog = cs.get_condition(p.old, cs.PROGRESSING)
    prog_paused = prog is not None and prog.get("reason") == cs.ROLLOUT_PAUSED_REASON
    is_paused = bool(p.old.get("pauseConditions")) or p.ro.paused
    abort_cond = prog is not None and prog.get("reason") == cs.ROLLOUT_ABORTED_REASON
    if is_paused != prog_paused and not abort_cond and not cs.rollout_completed(p.old):
        if is_paused:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "Unknown", cs.ROLLOUT_PAUSED_REASON, cs.ROLLOUT_PAUSED_MESSAGE, p.stamp
                ),
            )
        else:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "Unknown", cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE, p.stamp
                ),
            )
    if not p.old.get("abort") and abort_cond:
        cs.set_condition(
            new,
            cs.new_condition(cs.PROGRESSING, "Unknown", cs.ROLLOUT_RETRY_REASON, cs.ROLLOUT_RETRY_MESSAGE, p.stamp),
        )
    paused = cs.get_condition(p.old, cs.PAUSED)
    paused_true = paused is not None and paused.get("status") == "True"
    if is_paused != paused_true and not abort_cond:
        if paused_true and not is_paused and not p.old.get("abort"):
            p.event(cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE)
        cs.set_condition(
            new,
            cs.new_condition(
                cs.PAUSED,
                "True" if is_paused else "False",
                cs.ROLLOUT_PAUSED_REASON,
                cs.ROLLOUT_PAUSED_MESSAGE,
                p.stamp,
            ),
        )


def pause_status(p: _Planner, new: dict[str, Any]) -> None:
    """Argo's ``CalculatePauseStatus``."""
    new.pop("pauseConditions", None)
    new.pop("controllerPause", None)
    if p.add_abort or (not p.remove_abort and p.old.get("abort")):
        new["abort"] = True
        new["abortedAt"] = p.old.get("abortedAt") or p.stamp
        return
    new["abort"] = False
    new.pop("abortedAt", None)
    if p.clear_pause:
        return
    controller_pause = bool(p.old.get("controllerPause"))
    conditions = [dict(c) for c in p.old.get("pauseConditions") or [] if c.get("reason") not in p.remove_pause]
    existing = {c.get("reason") for c in p.old.get("pauseConditions") or []}
    for reason in p.add_pause:
        if reason not in existing:
            conditions.append({"reason": reason, "startTime": p.stamp})
            controller_pause = True
    if not conditions:
        return
    new["controllerPause"] = controller_pause
    new["pauseConditions"] = conditions
