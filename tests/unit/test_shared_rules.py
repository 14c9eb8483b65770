"""The controller and the plugin apply the same Rollout rules (rollouts.model: phase, step, set weight).

Each test drives the pure planners through a rollout in the in-memory world and, after every
controller pass, reads the Rollout both ways: as the controller recorded it (status.phase,
status.message, status.currentStepIndex) and as the plugin shows it (`get rollout`, `list rollouts`),
the plugin once with the recorded phase and once deriving it itself from a status without one (Argo's
client-side fallback, `CalculateRolloutPhase`). All must agree.
"""

from __future__ import annotations

import copy
from typing import Any

from rollouts.cli import render
from rollouts.cli.info import rollout_info
from tests.fixtures.routed_world import RoutedWorld, routed_rollout, stable_ingress
from tests.fixtures.world import World, rollout
from tests.unit.test_bluegreen_plan import BlueGreenWorld, bg_rollout

STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 80}]

Reading = tuple[str, str, str]  # (phase, message, step)


def controller_reading(world: World) -> Reading:
    """What the controller recorded: its phase, message and step ("index/steps", as Argo prints it)."""
    status = world.status
    steps = ((world.ro["spec"]["strategy"].get("canary") or {}).get("steps")) or []
    index = status.get("currentStepIndex")
    step = f"{index}/{len(steps)}" if index is not None and steps else ""
    return str(status["phase"]), str(status.get("message", "")), step


def plugin_readings(world: World) -> list[Reading]:
    """What the plugin shows, from the Rollout as recorded and from the same status without a phase."""
    recorded = copy.deepcopy(world.ro)
    derived = copy.deepcopy(world.ro)
    derived["status"].pop("phase")
    derived["status"].pop("message", None)
    readings = []
    for ro in (recorded, derived):
        info = rollout_info(ro, list(world.rss.values()))
        readings.append((info.status, info.message, info.step))
        cells = [cell.strip() for cell in render.list_row(ro)]
        readings.append((cells[2], info.message, "" if cells[3] == "-" else cells[3]))
    return readings


def check(world: World, passes: int = 1, seconds: float = 1.0) -> Reading:
    """Run `passes` controller passes `seconds` apart; after each, both paths read the same."""
    reading = ("", "", "")
    for _ in range(passes):
        world.now += seconds
        world.step()
        if "phase" not in world.status:
            continue  # the first pass only creates the ReplicaSet: no status recorded yet
        reading = controller_reading(world)
        if str(world.status.get("observedGeneration")) != str(world.ro["metadata"]["generation"]):
            # a pass that only created the new ReplicaSet: what the controller recorded is about the
            # previous spec, and the plugin says so (Argo's GetRolloutPhase)
            reading = ("Progressing", "waiting for rollout spec update to be observed", reading[2])
        for seen in plugin_readings(world):
            assert seen == reading, (seen, reading, world.status)
    return reading


def settle(world: World, limit: int = 60) -> Reading:
    """Reconcile until nothing changes, checking after every pass."""
    for _ in range(limit):
        before = (copy.deepcopy(world.rss), copy.deepcopy(world.ro.get("status")))
        reading = check(world)
        if before == (world.rss, world.ro.get("status")):
            return reading
    raise AssertionError(f"no steady state: {world.status}")


def promote(world: World) -> None:
    world.patch_status({"pauseConditions": None})


def test_basic_canary_with_a_scale_down_delay() -> None:
    """The case the two phase calculations disagreed on: after the promotion the previous stable keeps
    its pods for scaleDownDelaySeconds, so status.replicas > status.updatedReplicas while the rollout is
    complete. The controller records Healthy; the plugin's fallback said "old replicas are pending
    termination" (Argo's rule for a canary without a router, where Argo has no scale-down delay)."""
    world = World(rollout(steps=STEPS, scaleDownDelaySeconds=10))
    assert settle(world) == ("Healthy", "", "3/3")
    world.set_image("nginx:2")
    assert settle(world) == ("Paused", "CanaryPauseStep", "1/3")
    promote(world)
    assert settle(world) == ("Healthy", "", "3/3")
    status = world.status
    assert status["replicas"] > status["updatedReplicas"]  # the previous stable is still up
    check(world, passes=12)
    assert world.by_image() == {"nginx:2": 5}
    assert controller_reading(world) == ("Healthy", "", "3/3")


def test_basic_canary_without_a_delay() -> None:
    world = World(rollout(steps=STEPS))
    settle(world)
    world.set_image("nginx:2")
    assert settle(world) == ("Paused", "CanaryPauseStep", "1/3")
    promote(world)
    assert settle(world) == ("Healthy", "", "3/3")


def test_canary_without_steps_and_a_delay() -> None:
    world = World(rollout(replicas=4, scaleDownDelaySeconds=30, maxSurge=1, maxUnavailable=0))
    settle(world)
    world.set_image("nginx:2")
    assert settle(world) == ("Healthy", "", "")
    check(world, passes=3, seconds=15)


def test_manual_pause_abort_and_retry() -> None:
    world = World(rollout(steps=STEPS))
    settle(world)
    world.patch_spec({"paused": True})
    assert settle(world)[:2] == ("Paused", "manually paused")
    world.patch_spec({"paused": False})
    world.set_image("nginx:2")
    settle(world)
    world.patch_status({"abort": True})
    phase, message, _ = settle(world)
    assert phase == "Degraded" and message.startswith("RolloutAborted: ")
    world.patch_status({"abort": False})
    settle(world)


def test_a_canary_that_never_becomes_available_times_out() -> None:
    world = World(rollout(steps=STEPS))
    world.ro["spec"]["progressDeadlineSeconds"] = 30
    settle(world)
    world.never_ready.add("nginx:2")
    world.set_image("nginx:2")
    assert check(world, passes=3)[0] == "Progressing"
    phase, message, _ = check(world, passes=10, seconds=10)
    assert phase == "Degraded" and message.startswith("ProgressDeadlineExceeded: ")


def test_invalid_spec() -> None:
    world = World(rollout(steps=[{"setWeight": 20, "pause": {}}]))
    phase, message, _ = check(world)
    assert phase == "Degraded" and message.startswith("InvalidSpec: ")


def test_traffic_routed_canary() -> None:
    world = RoutedWorld(
        routed_rollout({"smi": {"rootService": "web"}}, [{"setWeight": 25}, {"pause": {}}], scaleDownDelaySeconds=5)
    )
    world.add(stable_ingress())
    settle(world)
    world.set_image("nginx:2")
    assert settle(world) == ("Paused", "CanaryPauseStep", "1/2")
    world.patch_status({"pauseConditions": None, "controllerPause": True})
    check(world, passes=20)
    assert controller_reading(world) == ("Healthy", "", "2/2")


def _blue_green(**fields: Any) -> BlueGreenWorld:
    world = BlueGreenWorld(bg_rollout(**fields))
    for name in ("web-active", "web-preview"):
        world.services[name] = {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}}}
    return world


def test_blue_green() -> None:
    world = _blue_green(autoPromotionEnabled=False)
    assert settle(world) == ("Healthy", "", "")
    world.set_image("nginx:2")
    assert settle(world)[:2] == ("Paused", "BlueGreenPause")
    promote(world)
    assert settle(world) == ("Healthy", "", "")
    check(world, passes=4, seconds=10)


def test_every_pass_of_a_long_rollout() -> None:
    """A release with a timed and an indefinite pause, read after every single pass (not only settled)."""
    steps: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 60}, {"pause": {}}]
    world = World(rollout(steps=steps, scaleDownDelaySeconds=3))
    settle(world)
    world.set_image("nginx:2")
    seen = []
    for _ in range(40):
        reading = check(world)
        seen.append(reading)
        if reading[:2] == ("Paused", "CanaryPauseStep") and reading[2] == "3/4":
            promote(world)
    assert ("Paused", "CanaryPauseStep", "1/4") in seen and ("Paused", "CanaryPauseStep", "3/4") in seen
    assert controller_reading(world) == ("Healthy", "", "4/4")
    assert world.by_image() == {"nginx:2": 5}
