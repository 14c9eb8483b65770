"""Crash safety of a pass that makes several moves: kill the controller between the writes of one pass
(its ReplicaSet writes made, its one status write held by the sandbox and dropped with the controller)
and start a new one. The objects are then ahead of the recorded status; the Rollout must still walk its
steps with the right replica counts and Services and end as it would without the crash."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.holds import Holds
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import RolloutHandle, given
from tests.fixtures.sandbox import SandboxHandle

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}]


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web", replicas=4, steps=STEPS, image=image, maxSurge=1, maxUnavailable=0,
            canaryService="web-canary", stableService="web-stable",
        ),
    ]


@pytest.fixture(scope="module")
def own_controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("multimove-controller"))
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
def holds(sandbox: SandboxHandle) -> Iterator[Holds]:
    """The sandbox's holds, released whatever the test's end (a held request would keep a handler)."""
    held = Holds(sandbox)
    try:
        yield held
    finally:
        held.release()


def kill_between_writes(rollout: RolloutHandle, controller: ControllerProcess, holds: Holds) -> dict[str, int]:
    """Wait for the controller's status write (held), kill the controller, drop the write; the sizes the
    pass had written by then."""
    holds.wait_held()
    sizes = rollout.sizes()
    controller.kill()
    holds.wait_client_gone()
    holds.release()
    return sizes


def check_invariants(rollout: RolloutHandle, first_hash: str) -> None:
    status = rollout.status
    if status.get("stableRS") == first_hash:
        assert rollout.namespace.selected("web-stable") == first_hash, "stable Service moved before promotion"
    assert sum(rollout.sizes().values()) <= 5, f"more than replicas + maxSurge pods: {rollout.sizes()}"


def test_a_crash_between_the_writes_of_one_pass_still_converges(
    cluster: Cluster, holds: Holds, own_controller: ControllerProcess
) -> None:
    namespace = given(cluster, "multimove")
    rollout = namespace.rollout_of(manifests("nginx:1"))
    first = rollout.apply().wait_healthy().seen["stableRS"]

    # The update's pass: the ReplicaSet created, the Rollout annotated, the canary scaled; then the status.
    holds.hold("patch", "rollouts/status", namespace.name, "web")
    namespace.apply(*manifests("nginx:2"))
    written = kill_between_writes(rollout, own_controller, holds)
    assert written.get("nginx:2", 0) == 1, f"the canary was not scaled in the pass: {written}"
    assert rollout.status.get("currentPodHash") == first, "the held status write landed"
    check_invariants(rollout, first)
    own_controller.start()
    rollout.wait_paused(step=1, timeout=30)
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})
    check_invariants(rollout, first)

    # A promote's pass: the pause done and the next step's scaling in one pass, its status held.
    before = rollout.sizes()
    holds.hold("patch", "rollouts/status", namespace.name, "web")
    rollout.promote()
    written = kill_between_writes(rollout, own_controller, holds)
    assert written != before, "the next step's scaling was not written in the promote's pass"
    assert rollout.status.get("currentStepIndex") == 1, "the held status write landed"
    check_invariants(rollout, first)
    own_controller.start()
    rollout.wait_status("paused at step 3", lambda s: (s.get("phase"), s.get("currentStepIndex")) == ("Paused", 3), 30)
    rollout.wait_sizes({"nginx:1": 1, "nginx:2": 3})
    check_invariants(rollout, first)

    rollout.promote().wait_healthy(timeout=30)
    rollout.wait_sizes({"nginx:2": 4}, timeout=30)
    second = rollout.status["stableRS"]
    assert second != first
    assert rollout.namespace.selected("web-stable") == second
    assert rollout.namespace.service("web-canary")["spec"]["selector"][HASH_LABEL] == second
    created = [m for r, m in rollout.events() if r == "NewReplicaSetCreated"]
    assert len(created) == 2, created  # nginx:1's, nginx:2's: the crash made no extra ReplicaSet
