"""Crash safety of blue/green: kill the controller (SIGKILL) at every stage of an update and start a new
one. At every moment the active Service selects ready pods only (a fully available stack), the preview
Service never selects anything but the old or the newest version, and the rollout ends exactly as it
does without crashes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.bluegreen import ACTIVE, PREVIEW, bluegreen_manifest, selected, services
from tests.fixtures.cluster import Cluster, settled
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

REPLICAS = 3


def manifests(image: str) -> list[dict[str, Any]]:
    rollout = bluegreen_manifest(
        replicas=REPLICAS,
        image=image,
        previewReplicaCount=1,
        autoPromotionEnabled=False,
        scaleDownDelaySeconds=2,
    )
    return [*services(), rollout]


def pod_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def check_invariants(cluster: Cluster, ns: str, first_hash: str) -> None:
    active = selected(cluster, ns, ACTIVE)
    assert active, "the active Service lost its pod-template hash"
    pods = cluster.pods(ns, label_selector=f"app=web,{HASH_LABEL}={active}", deleting=True)
    assert len(pods) >= REPLICAS, f"the active Service selects {len(pods)} pods"
    assert all(pod_ready(p) for p in pods), "the active Service selects a pod that is not ready"
    # The preview Service moves before the status names the new hash (writes go before the status), so
    # compare with the ReplicaSets read after it, not with status.currentPodHash.
    preview = selected(cluster, ns, PREVIEW)
    rss = cluster.replicasets(ns, "web")
    assert preview in {first_hash} | {r["metadata"]["labels"][HASH_LABEL] for r in rss}, preview
    assert len(rss) <= 2, [r["metadata"]["name"] for r in rss]


def state(cluster: Cluster, ns: str) -> tuple[Any, ...]:
    status = cluster.status(ns, "web")
    return (
        status.get("phase"),
        tuple(sorted(cluster.sizes(ns, "web").items())),
        tuple(sorted(cluster.ready_sizes(ns, "web").items())),
        bool(status.get("pauseConditions")),
        selected(cluster, ns, ACTIVE),
        selected(cluster, ns, PREVIEW),
    )


def normalized(cluster: Cluster, ns: str) -> dict[str, Any]:
    status = cluster.status(ns, "web")
    # The Paused condition is written by the pass after the pause: a promote that lands before that pass
    # (the test promotes as soon as it sees the pause, crash or not) leaves none. Timing, not state.
    conditions = sorted(
        (c["type"], c["status"], c["reason"], c["message"])
        for c in status.get("conditions") or []
        if c["type"] != "Paused"
    )
    keep = {k: v for k, v in status.items() if k not in ("conditions", "pauseConditions")}
    rss = sorted((r["metadata"]["name"], r["spec"]["replicas"]) for r in cluster.replicasets(ns, "web"))
    return {"status": keep, "conditions": conditions, "replicasets": rss}


def run_update(cluster: Cluster, ns: str, controller: ControllerProcess, crash: bool) -> tuple[dict[str, Any], int]:
    cluster.apply(ns, *manifests("nginx:1"))
    first = cluster.wait_phase(ns, "web", "Healthy", timeout=60)["stableRS"]
    cluster.wait("the active Service on the first version", lambda: selected(cluster, ns, ACTIVE) == first)
    cluster.apply(ns, *manifests("nginx:2"))
    seen = state(cluster, ns)
    kills = 0
    promoted = False
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"the update did not finish; last state {seen}"
        check_invariants(cluster, ns, first)
        status = cluster.status(ns, "web")
        if (
            status.get("phase") == "Healthy"
            and status.get("stableRS") != first
            and cluster.sizes(ns, "web") == {"nginx:2": REPLICAS}
            and cluster.ready_sizes(ns, "web") == {"nginx:2": REPLICAS}
        ):
            break
        now = state(cluster, ns)
        paused = status.get("phase") == "Paused" and bool(status.get("pauseConditions"))
        if paused and not promoted:
            if crash:
                controller.kill()
                kills += 1
                cluster.promote(ns, "web")  # promoted while no controller runs
                controller.start()
            else:
                cluster.promote(ns, "web")
            promoted = True
        elif now != seen and crash:
            controller.kill()
            kills += 1
            check_invariants(cluster, ns, first)
            controller.start()
        seen = now
        time.sleep(0.02)
    return settled(lambda: normalized(cluster, ns), REPLICAS), kills



@pytest.fixture(scope="module")
def crash_controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("bg-crash")).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_crash_at_every_stage_keeps_the_active_service_on_ready_pods(
    cluster: Cluster, crash_controller: ControllerProcess
) -> None:
    reference, _ = run_update(cluster, cluster.new_namespace("bgnocrash"), crash_controller, crash=False)
    crash_ns = cluster.new_namespace("bgcrash")
    crashed, kills = run_update(cluster, crash_ns, crash_controller, crash=True)
    assert kills >= 5, f"only {kills} crashes: the test did not exercise every stage"
    assert crashed == reference
    created = [m for r, m in cluster.events(crash_ns, "web") if r == "NewReplicaSetCreated"]
    assert len(created) == 2, created
