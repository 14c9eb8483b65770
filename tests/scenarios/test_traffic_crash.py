"""Crash safety with a traffic router: kill the controller (SIGKILL) at every change of a routed canary
(NGINX, dynamicStableScale) and start a new one. At every look the weight sits on ready pods; the rollout
ends exactly as it does without crashes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, progress
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL
from tests.fixtures.traffic import canary_weight, ingress_manifest, routed_manifests

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]
ROUTING = {"nginx": {"stableIngress": "web"}}


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        ingress_manifest("web", "web-stable"),
        *routed_manifests(
            ROUTING,
            STEPS,
            image=image,
            replicas=4,
            dynamicStableScale=True,
            scaleDownDelaySeconds=0,
            abortScaleDownDelaySeconds=0,
        ),
    ]


def ready_pods_behind(cluster: Cluster, ns: str, service: str) -> int:
    wanted = cluster.service(ns, service)["spec"]["selector"].get(HASH_LABEL)
    return sum(
        (rs.get("status") or {}).get("availableReplicas") or 0
        for rs in cluster.replicasets(ns, "web")
        if rs["metadata"]["labels"].get(HASH_LABEL) == wanted
    )


def check_invariants(cluster: Cluster, ns: str) -> None:
    weight = canary_weight(cluster, ns)
    if weight is None:
        return
    if weight > 0:
        assert ready_pods_behind(cluster, ns, "web-canary") > 0, f"weight {weight} on a canary without ready pods"
    if weight < 100:
        assert ready_pods_behind(cluster, ns, "web-stable") > 0, f"weight {100 - weight} on no ready stable pods"
    assert len(cluster.replicasets(ns, "web")) <= 2


def state(cluster: Cluster, ns: str) -> tuple[Any, ...]:
    return (*progress(cluster, ns), canary_weight(cluster, ns))


def normalized(cluster: Cluster, ns: str) -> dict[str, Any]:
    status = cluster.status(ns, "web")
    keep = {k: v for k, v in status.items() if k not in ("conditions", "abortedAt", "pauseConditions")}
    rss = sorted((r["metadata"]["name"], r["spec"]["replicas"]) for r in cluster.replicasets(ns, "web"))
    return {"status": keep, "replicasets": rss, "weight": canary_weight(cluster, ns)}


def run_canary(cluster: Cluster, ns: str, controller: ControllerProcess, crash: bool) -> tuple[dict[str, Any], int]:
    cluster.apply(ns, *manifests("nginx:1"))
    first = cluster.wait_phase(ns, "web", "Healthy", timeout=60)["stableRS"]
    cluster.wait("the canary Ingress", lambda: canary_weight(cluster, ns) == 0, 60)
    cluster.apply(ns, *manifests("nginx:2"))
    seen = state(cluster, ns)
    kills = 0
    promoted = False
    deadline = time.monotonic() + 150
    while True:
        assert time.monotonic() < deadline, f"rollout did not finish; last state {seen}"
        check_invariants(cluster, ns)
        status = cluster.status(ns, "web")
        if (
            status.get("phase") == "Healthy"
            and status.get("stableRS") != first
            and cluster.sizes(ns, "web") == {"nginx:2": 4}
            and canary_weight(cluster, ns) == 0
        ):
            break
        now = state(cluster, ns)
        if status.get("phase") == "Paused" and status.get("currentStepIndex") == 1 and not promoted:
            cluster.promote(ns, "web")
            promoted = True
        elif now != seen and crash:
            controller.kill()
            kills += 1
            check_invariants(cluster, ns)
            controller.start()
        seen = now
        time.sleep(0.02)
    # the last status writes trail the scale-down: wait until the status counts only the new pods
    cluster.wait(
        "the status to count 4 replicas",
        lambda: all(cluster.status(ns, "web").get(k) == 4 for k in ("replicas", "availableReplicas", "readyReplicas")),
        60,
    )
    time.sleep(1.0)
    return normalized(cluster, ns), kills


@pytest.fixture(scope="module")
def crash_controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("traffic-crash")).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_crash_at_every_change_keeps_traffic_on_ready_pods(
    cluster: Cluster, crash_controller: ControllerProcess
) -> None:
    reference, _ = run_canary(cluster, cluster.new_namespace("tnocrash"), crash_controller, crash=False)
    crashed, kills = run_canary(cluster, cluster.new_namespace("tcrash"), crash_controller, crash=True)
    # Changes seen between two polls coalesce on a loaded machine, so fewer kills than changes.
    assert kills >= 4, f"only {kills} crashes: the test did not exercise the steps"
    for result in (reference, crashed):
        result["status"].pop("observedGeneration", None)
    assert crashed == reference
