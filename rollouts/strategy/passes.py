"""One reconcile pass as the controller runs it: the strategy's planner applied again and again in
memory until its plan needs the cluster to act.

A single plan makes one move (Argo's reconciler does the same), and most moves only change the
Rollout's status: a completed step advances ``currentStepIndex``, the next step is a pause that adds
a pause condition, the conditions and the phase follow one plan later. Written one by one, each of
those is a status PATCH, a watch event and another pass. Here the planner is run again on the status
it just computed, as the next pass would have seen it after the write, until a plan lists writes to
other objects (a ReplicaSet, a Service, a routing object, an AnalysisRun: their effect must be
observed before the next decision), or the status stops changing (a wait: pods, a pause, a deadline).
The last plan's writes and its status, which carries every earlier move, then go out as one pass:
its actions in their crash-safe order, then one status write, then the Events of every move.

A crash between those writes leaves the objects moved for a later step while the recorded status is
still an earlier one; the planner decides from what it observes, so the next pass moves the objects
back to what the recorded status asks for (never past it) and walks forward again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from rollouts.strategy import bluegreen, canary
from rollouts.strategy.plan import EventSpec, Observed, PassReading, Plan

# More in-memory moves than any pass needs (a few per step); a planner whose status never settles
# is written after this many and looked at again, as it was before passes made several moves.
MAX_MOVES = 64


def plan_pass(observed: Observed) -> Plan:
    """The plan of one reconcile pass: every status-only move up to the first plan that needs the
    cluster, with the Events of all of them (each recorded once)."""
    strategy: Callable[[Observed], Plan] = (
        bluegreen.plan if bluegreen.is_blue_green(observed.rollout) else canary.plan
    )
    observed = dataclasses.replace(observed, reading=PassReading())  # the spec is parsed once per pass
    plan = strategy(observed)
    events: list[EventSpec] = list(plan.events)
    for _ in range(MAX_MOVES - 1):
        if not moves_on(plan, observed.rollout):
            break
        assert plan.status is not None  # moves_on says so
        observed = dataclasses.replace(observed, rollout=with_status(observed.rollout, plan.status))
        plan = strategy(observed)
        events.extend(e for e in plan.events if e not in events)
    plan.events = events
    return plan


def moves_on(plan: Plan, rollout: Mapping[str, Any]) -> bool:
    """Can the next move be planned in memory? Only after a plan that writes nothing but a changed status:
    the next pass would see exactly that status and the same objects."""
    return not plan.actions and plan.status is not None and plan.status != (rollout.get("status") or {})


def with_status(rollout: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The Rollout as the next pass would read it once ``status`` is written."""
    return {**rollout, "status": dict(status)}
