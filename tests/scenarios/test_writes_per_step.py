"""Writes per canary step, counted by the sandbox per client (`/sandbox/request-counts`): one reconcile
pass computes the whole move up to the next wait, so a plain canary costs at most one Rollout status
write per step on average, and each move's Events are recorded once (issue 17). Counts, not timings."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.holds import CONTROLLER_AGENT
from tests.fixtures.manifests import Step, rollout_manifest
from tests.fixtures.rollout import RolloutHandle, given
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import deadline_after

pytestmark = [pytest.mark.kubectl, runs_own_controllers]

STEPS: list[Step] = [
    {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}},
    {"setWeight": 60}, {"pause": {}}, {"setWeight": 80}, {"pause": {}},
]
QUIET_SECONDS = 1.0


@pytest.fixture(scope="module")
def own_controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """A controller of this module's own: the counts are of its requests alone."""
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("counted-controller"))
    try:
        yield proc.start()
    finally:
        proc.stop()


def controller_writes(sandbox: SandboxHandle) -> Counter[tuple[str, str]]:
    """The controller's writes so far, by (verb, resource)."""
    rows = httpx.get(f"{sandbox.url}/sandbox/request-counts", timeout=10).json()
    return Counter(
        {
            (r["verb"], r["resource"]): r["count"]
            for r in rows
            if r["client"].startswith(CONTROLLER_AGENT) and r["verb"] in ("create", "patch", "update", "delete")
        }
    )


def quiet_writes(sandbox: SandboxHandle, timeout: float = 30.0) -> Counter[tuple[str, str]]:
    """The controller's writes once they have held still for QUIET_SECONDS (its last writes trail the
    status a wait saw)."""
    deadline = deadline_after(timeout)
    last, since = controller_writes(sandbox), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS:
        assert time.monotonic() < deadline, f"the controller kept writing: {last}"
        time.sleep(0.1)
        now = controller_writes(sandbox)
        if now != last:
            last, since = now, time.monotonic()
    return last


def walk_to_pause(rollout: RolloutHandle, step: int) -> None:
    rollout.wait_status(
        f"paused at step {step}", lambda s: (s.get("phase"), s.get("currentStepIndex")) == ("Paused", step)
    )


def test_a_plain_canary_writes_its_status_at_most_once_per_step(
    cluster: Cluster, sandbox: SandboxHandle, own_controller: ControllerProcess
) -> None:
    namespace = given(cluster, "counted")
    rollout = namespace.rollout(rollout_manifest("web", replicas=1, steps=STEPS, image="nginx:1"))
    rollout.apply().wait_healthy(timeout=30)
    before, events_before = quiet_writes(sandbox), len(rollout.events())

    rollout.set_image("nginx:2")
    walk_to_pause(rollout, 1)
    for pause in (3, 5, 7):
        rollout.promote()
        walk_to_pause(rollout, pause)
    rollout.promote().wait_status("promoted", lambda s: s.get("phase") == "Healthy" and s.get("currentStepIndex") == 8)
    rollout.wait_sizes({"nginx:2": 1}, timeout=30)
    walked = quiet_writes(sandbox) - before

    status_writes = walked[("patch", "rollouts/status")]
    assert status_writes <= len(STEPS), f"{status_writes} status writes for {len(STEPS)} steps: {dict(walked)}"
    replicaset_writes = walked[("create", "replicasets")] + walked[("patch", "replicasets")]
    # the new ReplicaSet created, scaled up, and the old one scaled down
    assert replicaset_writes <= 3, dict(walked)

    reasons = Counter(rollout.reasons())
    steps_done = [m for r, m in rollout.events() if r == "RolloutStepCompleted"]
    assert len(steps_done) == len(set(steps_done)) == len(STEPS), steps_done  # one Event per step completed
    assert reasons["RolloutPaused"] == 4 and reasons["RolloutResumed"] == 4, reasons
    assert walked[("create", "events")] == len(rollout.events()) - events_before, dict(walked)
