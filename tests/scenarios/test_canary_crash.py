"""Crash safety: kill the controller (SIGKILL) at every step of a canary and start a new one. The
rollout must end exactly as it does without crashes: no extra ReplicaSet, no Service pointed at a
version it should not see, the same final status."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, progress, settled
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, rollout_manifest, service_manifest

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web",
            replicas=4,
            steps=STEPS,
            image=image,
            maxSurge=1,
            maxUnavailable=0,
            canaryService="web-canary",
            stableService="web-stable",
        ),
    ]


def normalized(cluster: Cluster, ns: str) -> dict[str, Any]:
    """What must not depend on crashes: status without timestamps, ReplicaSets, Service selectors."""
    status = cluster.status(ns, "web")
    conditions = sorted((c["type"], c["status"], c["reason"], c["message"]) for c in status.get("conditions") or [])
    keep = {k: v for k, v in status.items() if k not in ("conditions", "abortedAt", "pauseConditions")}
    rss = sorted(
        (r["metadata"]["name"], r["spec"]["replicas"], r["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"])
        for r in cluster.replicasets(ns, "web")
    )
    selectors = {s: cluster.service(ns, s)["spec"]["selector"] for s in ("web-canary", "web-stable")}
    return {"status": keep, "conditions": conditions, "replicasets": rss, "selectors": selectors}


def state(cluster: Cluster, ns: str) -> tuple[Any, ...]:
    status = cluster.status(ns, "web")
    return (*progress(cluster, ns), bool(status.get("pauseConditions")))


def check_invariants(cluster: Cluster, ns: str, first_hash: str) -> None:
    rss = cluster.replicasets(ns, "web")
    assert len(rss) <= 2, [r["metadata"]["name"] for r in rss]
    status = cluster.status(ns, "web")
    stable_selector = cluster.service(ns, "web-stable")["spec"]["selector"].get(HASH_LABEL)
    if status.get("stableRS") == first_hash:
        assert stable_selector == first_hash, "stable Service moved to the canary before promotion"
    total = sum(r["spec"]["replicas"] for r in rss)
    assert total <= 5, f"more than replicas + maxSurge pods asked for: {total}"


def run_canary(cluster: Cluster, ns: str, controller: ControllerProcess | None, crash: bool) -> dict[str, Any]:
    cluster.apply(ns, *manifests("nginx:1"))
    first = cluster.wait_phase(ns, "web", "Healthy")["stableRS"]
    cluster.wait(
        "services on the stable hash",
        lambda: cluster.service(ns, "web-stable")["spec"]["selector"].get(HASH_LABEL) == first,
    )
    cluster.apply(ns, *manifests("nginx:2"))
    seen = state(cluster, ns)
    kills = 0
    promoted = False
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, f"rollout did not finish; last state {seen}"
        status = cluster.status(ns, "web")
        check_invariants(cluster, ns, first)
        if (
            status.get("phase") == "Healthy"
            and status.get("stableRS") != first
            and cluster.sizes(ns, "web") == {"nginx:2": 4}
            and cluster.ready_sizes(ns, "web") == {"nginx:2": 4}
        ):
            break
        now = state(cluster, ns)
        if status.get("phase") == "Paused" and status.get("currentStepIndex") == 1 and not promoted:
            if crash and controller is not None:
                controller.kill()
                kills += 1
                cluster.promote(ns, "web")  # promoted while no controller runs
                time.sleep(0.2)
                assert state(cluster, ns)[2] == now[2], "something scaled while the controller was down"
                controller.start()
            else:
                cluster.promote(ns, "web")
            promoted = True
        elif now != seen and crash and controller is not None:
            controller.kill()
            kills += 1
            frozen = tuple(sorted(cluster.sizes(ns, "web").items()))
            time.sleep(0.1)
            assert tuple(sorted(cluster.sizes(ns, "web").items())) == frozen
            controller.start()
        seen = now
        time.sleep(0.02)
    if crash:
        # Changes seen between two polls coalesce on a loaded machine, so fewer kills than changes.
        assert kills >= 4, f"only {kills} crashes: the test did not exercise the steps"
    return settled(lambda: normalized(cluster, ns), 4)


@pytest.fixture(scope="module")
def crash_controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("crash-controller")).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_crash_at_every_step_ends_as_without_crashes(cluster: Cluster, crash_controller: ControllerProcess) -> None:
    reference_ns = cluster.new_namespace("nocrash")
    reference = run_canary(cluster, reference_ns, crash_controller, crash=False)
    crash_ns = cluster.new_namespace("crash")
    crashed = run_canary(cluster, crash_ns, crash_controller, crash=True)
    assert crashed == reference
    assert crash_controller.starts >= 7
    events = cluster.events(crash_ns, "web")
    created = [m for r, m in events if r == "NewReplicaSetCreated"]
    assert len(created) == 2, created
