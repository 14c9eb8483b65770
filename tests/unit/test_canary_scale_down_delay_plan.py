"""scaleDownDelaySeconds / scaleDownDelayRevisionLimit for the canary without a traffic router: the
previous stable ReplicaSet keeps its pods after the promotion until its deadline, in the pure planner."""

from __future__ import annotations

from typing import Any

from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.spec import HASH_LABEL
from rollouts.model.timestamps import format_time
from rollouts.strategy.plan import CreateReplicaSet, PatchReplicaSet
from tests.fixtures.world import World, rollout

STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 80}]


def deployed(**kw: Any) -> World:
    world = World(rollout(**kw))
    for name in (kw.get("canaryService"), kw.get("stableService")):
        if name:
            world.services[name] = {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}}}
    world.settle()
    assert world.status["phase"] == "Healthy"
    world.events.clear()
    return world


def rs_of(world: World, image: str) -> dict[str, Any]:
    return next(r for r in world.rss.values() if r["spec"]["template"]["spec"]["containers"][0]["image"] == image)


def deadline_of(world: World, image: str) -> str | None:
    annotations: dict[str, str] = rs_of(world, image)["metadata"].get("annotations") or {}
    return annotations.get(SCALE_DOWN_DEADLINE)


def release(world: World, image: str) -> None:
    """Set the image and take the canary through its steps to the promotion."""
    world.set_image(image)
    world.settle()
    if world.status.get("pauseConditions"):
        world.promote()
        world.settle()
    assert world.status["stableRS"] == world.status["currentPodHash"], world.status


def test_previous_stable_keeps_its_pods_until_the_deadline() -> None:
    world = deployed(steps=STEPS, scaleDownDelaySeconds=10, canaryService="web-canary", stableService="web-stable")
    world.set_image("nginx:2")
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    world.promote()
    world.settle()
    # setWeight 80 leaves 1 stable pod; the stable keeps it while the canary goes to full size, and after
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 5}
    status = world.status
    assert status["stableRS"] == status["currentPodHash"]
    assert status["phase"] == "Healthy" and "message" not in status
    assert deadline_of(world, "nginx:1") == format_time(world.now + 10)
    assert deadline_of(world, "nginx:2") is None
    for svc in ("web-canary", "web-stable"):  # no traffic through the Services any more
        assert world.services[svc]["spec"]["selector"][HASH_LABEL] == status["currentPodHash"]
    assert world.condition("Completed")["status"] == "True"  # type: ignore[index]
    plan = world.plan()
    assert plan.requeue_after is not None and 9 <= plan.requeue_after <= 10
    assert not plan.actions

    world.now += 9
    world.settle()
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 5}
    assert world.status["phase"] == "Healthy"
    assert world.condition("Progressing")["reason"] != "ProgressDeadlineExceeded"  # type: ignore[index]

    world.now += 1
    plan = world.step()
    assert [a.patch for a in plan.actions if isinstance(a, PatchReplicaSet)] == [
        {"spec": {"replicas": 0}, "metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}}}
    ]
    world.settle()
    assert world.by_image() == {"nginx:2": 5}
    assert deadline_of(world, "nginx:1") is None
    assert world.status["phase"] == "Healthy"
    assert world.condition("Healthy")["status"] == "True"  # type: ignore[index]


def test_without_steps_the_whole_stable_is_kept() -> None:
    world = deployed(replicas=4, scaleDownDelaySeconds=30, maxSurge=1, maxUnavailable=0)
    release(world, "nginx:2")
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 4}
    assert world.status["phase"] == "Healthy"
    assert deadline_of(world, "nginx:1") == format_time(world.now + 30)


def test_unset_or_zero_delay_scales_down_at_once() -> None:
    for kw in ({}, {"scaleDownDelaySeconds": 0}):
        world = deployed(steps=STEPS, **kw)
        release(world, "nginx:2")
        assert world.by_image() == {"nginx:2": 5}
        assert deadline_of(world, "nginx:1") is None


def test_revision_limit_scales_older_kept_replicasets_down() -> None:
    world = deployed(replicas=2, scaleDownDelaySeconds=60, scaleDownDelayRevisionLimit=1)
    release(world, "nginx:2")
    assert world.by_image() == {"nginx:1": 2, "nginx:2": 2}
    world.now += 5
    release(world, "nginx:3")
    # only the newest old ReplicaSet (nginx:2) is kept; nginx:1 goes although its deadline has not passed
    assert world.by_image() == {"nginx:2": 2, "nginx:3": 2}
    assert deadline_of(world, "nginx:2") == format_time(world.now + 60)
    assert deadline_of(world, "nginx:1") is None


def test_without_revision_limit_every_old_replicaset_waits_for_its_own_deadline() -> None:
    world = deployed(replicas=2, scaleDownDelaySeconds=60)
    release(world, "nginx:2")
    world.now += 30
    release(world, "nginx:3")
    assert world.by_image() == {"nginx:1": 2, "nginx:2": 2, "nginx:3": 2}
    world.now += 31
    world.settle()
    assert world.by_image() == {"nginx:2": 2, "nginx:3": 2}
    world.now += 30
    world.settle()
    assert world.by_image() == {"nginx:3": 2}


def test_rollback_within_the_window_reuses_the_old_replicaset() -> None:
    world = deployed(replicas=3, scaleDownDelaySeconds=60)
    release(world, "nginx:2")
    old = rs_of(world, "nginx:1")["metadata"]["name"]
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    world.now += 10
    world.events.clear()
    world.set_image("nginx:1")  # undo
    plan = world.step()
    assert not [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.settle()
    # the old ReplicaSet is the stable again without a new pod; nginx:2 now waits for its own deadline
    status = world.status
    assert status["stableRS"] == status["currentPodHash"] == old.rsplit("-", 1)[1]
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    assert deadline_of(world, "nginx:1") is None
    assert deadline_of(world, "nginx:2") == format_time(world.now + 60)
    assert not [r for r, _ in world.events if r == "NewReplicaSetCreated"]


def test_rollback_with_steps_within_the_window_reuses_the_pods() -> None:
    world = deployed(steps=STEPS, scaleDownDelaySeconds=60)
    release(world, "nginx:2")
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 5}
    world.events.clear()
    world.set_image("nginx:1")
    world.settle()
    # the kept ReplicaSet is the canary again: its pod serves the first step, its deadline is gone
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 4}
    assert world.status["currentStepIndex"] == 1 and world.status["phase"] == "Paused"
    assert deadline_of(world, "nginx:1") is None
    assert not [r for r, _ in world.events if r == "NewReplicaSetCreated"]


def test_new_update_and_abort_within_the_window() -> None:
    world = deployed(steps=STEPS, scaleDownDelaySeconds=60)
    release(world, "nginx:2")
    deadline = deadline_of(world, "nginx:1")
    world.set_image("nginx:3")
    world.settle()
    # the kept ReplicaSet neither blocks nor joins the next canary's arithmetic
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 4, "nginx:3": 1}
    assert world.status["currentStepIndex"] == 1
    world.abort()
    world.settle()
    assert world.by_image() == {"nginx:1": 1, "nginx:2": 5}
    assert world.status["phase"] == "Degraded"
    assert deadline_of(world, "nginx:1") == deadline
    world.now += 61
    world.settle()
    assert world.by_image() == {"nginx:2": 5}


def test_intermediate_replicaset_of_an_unfinished_update_goes_at_once() -> None:
    world = deployed(steps=STEPS, scaleDownDelaySeconds=60)
    world.set_image("nginx:2")
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    world.set_image("nginx:3")
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:3": 1}
    assert deadline_of(world, "nginx:2") is None


def test_promote_full_keeps_the_stable_pods_too() -> None:
    world = deployed(steps=STEPS, scaleDownDelaySeconds=5)
    world.set_image("nginx:2")
    world.settle()
    world.promote_full()
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 5}
    assert world.status["phase"] == "Healthy"
    assert deadline_of(world, "nginx:1") == format_time(world.now + 5)
    world.now += 5
    world.settle()
    assert world.by_image() == {"nginx:2": 5}
