"""One reconcile pass makes every status-only move in memory (rollouts.strategy.passes): the cluster
sees one status write where single moves needed one per move, the same Events once each, and the
same end state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from rollouts.model.hashing import pod_template_hash
from rollouts.model.spec import RolloutSpec
from rollouts.strategy import base, canary, passes
from rollouts.strategy.plan import CreateReplicaSet, Observed, PatchReplicaSet, Plan
from rollouts.strategy.replicasets import ReplicaSetView
from tests.fixtures.manifests import Step
from tests.fixtures.world import World, rollout

STEPS: list[Step] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}, {"setWeight": 80}]


def paused_world(whole_passes: bool) -> World:
    """A one-replica canary updated and paused at step 1 (its first pause)."""
    world = World(rollout(replicas=1, steps=STEPS), whole_passes=whole_passes)
    world.wait_healthy().set_image("nginx:2").wait_paused(step=1)
    return world


def test_a_promote_reaches_the_next_pause_in_one_plan() -> None:
    world = paused_world(whole_passes=True)
    world.promote()
    plan = world.step()
    assert plan.actions == []  # one replica: 40% of it is the canary pod it already has
    assert world.status["currentStepIndex"] == 3
    assert world.status["phase"] == "Paused"
    assert [e.reason for e in plan.events] == [
        "RolloutStepCompleted", "RolloutResumed", "RolloutStepCompleted", "RolloutPaused"
    ]
    assert plan.status == world.plan().status  # nothing left to move: the next pass writes nothing


def test_a_pass_stops_at_the_first_plan_that_writes_an_object() -> None:
    world = World(rollout(replicas=4, steps=STEPS), whole_passes=True).wait_healthy()
    world.set_image("nginx:2")
    first = world.step()
    assert any(isinstance(a, CreateReplicaSet) for a in first.actions)
    second = world.plan()
    assert [type(a) for a in second.actions] == [PatchReplicaSet]  # the canary scaled, then a wait for its pods
    assert second.status is not None and second.status.get("currentStepIndex") == 0


def walk(whole_passes: bool) -> tuple[World, list[int]]:
    """The whole update, promoted at each pause once it has settled; the status writes of each pass."""
    world = World(rollout(replicas=4, steps=STEPS), whole_passes=whole_passes).wait_healthy()
    world.set_image("nginx:2").events.clear()
    writes: list[int] = []
    for _ in range(80):
        before = world.status
        plan = world.step()
        writes.append(int(plan.status is not None and plan.status != before))
        if plan.actions or writes[-1]:
            continue
        if world.status.get("phase") == "Paused":
            world.promote()
        elif world.status.get("phase") == "Healthy":
            return world, writes
    raise AssertionError(f"no end: {world.status}")


def test_whole_passes_end_where_single_moves_end_with_the_same_events_and_fewer_writes() -> None:
    single, single_writes = walk(whole_passes=False)
    whole, whole_writes = walk(whole_passes=True)
    assert whole.rss == single.rss
    timeless = ("lastUpdateTime", "lastTransitionTime")
    for world in (single, whole):
        for cond in world.status.get("conditions") or []:
            for key in timeless:
                cond.pop(key, None)
    assert whole.status == single.status
    assert sorted(whole.events) == sorted(single.events)
    assert sum(whole_writes) < sum(single_writes)


def test_a_status_that_never_settles_is_written_after_a_bounded_number_of_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moves: list[int] = []

    def restless(observed: Observed) -> Plan:
        count = int((observed.rollout.get("status") or {}).get("count", 0)) + 1
        moves.append(count)
        return Plan(status={"count": count})

    monkeypatch.setattr(canary, "plan", restless)
    obs: dict[str, Any] = rollout(steps=STEPS)
    plan = passes.plan_pass(Observed(rollout=obs, replicasets=[], services={}, now=0.0))
    assert plan.status == {"count": passes.MAX_MOVES}
    assert len(moves) == passes.MAX_MOVES


def test_a_pass_parses_its_spec_and_replicasets_and_hashes_its_template_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The moves of a pass read the same spec and objects (only the status differs): parsed once."""
    world = paused_world(whole_passes=True)
    world.promote()
    parsed: list[str] = []
    parse_spec, parse_rs = RolloutSpec.parse, ReplicaSetView.parse

    def spec(obj: Mapping[str, Any]) -> RolloutSpec:
        parsed.append("spec")
        return parse_spec(obj)

    def replicaset(obj: Mapping[str, Any]) -> ReplicaSetView:
        parsed.append("rs")
        return parse_rs(obj)

    def template_hash(template: Mapping[str, Any], collision: int | None = None) -> str:
        parsed.append("hash")
        return pod_template_hash(template, collision)

    monkeypatch.setattr(RolloutSpec, "parse", staticmethod(spec))
    monkeypatch.setattr(ReplicaSetView, "parse", staticmethod(replicaset))
    monkeypatch.setattr(base, "pod_template_hash", template_hash)
    plan = world.step()
    assert [e.reason for e in plan.events].count("RolloutStepCompleted") == 2  # several moves in the pass
    assert parsed.count("spec") == 1
    assert parsed.count("rs") == len(world.rss)
    assert parsed.count("hash") == 1
