"""Crash safety with a traffic router: kill the controller (SIGKILL) at every change of a routed canary
(NGINX or ALB, dynamicStableScale) and start a new one. At every look the weight sits on ready pods; the
rollout ends exactly as the same update does without crashes (run beside it, under a controller of its own)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, settled
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.crash import CrashDrill, canary_milestones, with_and_without_crashes
from tests.fixtures.manifests import HASH_LABEL, Step
from tests.fixtures.rollout import Namespace, RolloutHandle
from tests.fixtures.traffic import canary_weight, ingress_manifest, routed_manifests
from tests.fixtures.weighted_routes import alb_ingress_manifest, alb_weights

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

STEPS: list[Step] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]


def alb_canary_weight(namespace: Namespace) -> int | None:
    weights = alb_weights(namespace)
    return None if weights is None else weights["web-canary"]


@dataclass(frozen=True)
class Router:
    """One router under test: its trafficRouting entry, the object it routes through, its canary weight."""

    name: str
    routing: dict[str, Any]
    front: Callable[[], dict[str, Any]]
    weight: Callable[[Namespace], int | None]


ROUTERS = [
    Router("nginx", {"nginx": {"stableIngress": "web"}}, lambda: ingress_manifest("web", "web-stable"), canary_weight),
    Router("alb", {"alb": {"ingress": "web", "servicePort": 80}}, alb_ingress_manifest, alb_canary_weight),
]


def manifests(router: Router, image: str) -> list[dict[str, Any]]:
    return [
        router.front(),
        *routed_manifests(
            router.routing,
            STEPS,
            image=image,
            replicas=4,
            dynamicStableScale=True,
            scaleDownDelaySeconds=0,
            abortScaleDownDelaySeconds=0,
        ),
    ]


def ready_pods_behind(rollout: RolloutHandle, service: str) -> int:
    wanted = rollout.namespace.service(service)["spec"]["selector"].get(HASH_LABEL)
    return sum(
        (rs.get("status") or {}).get("availableReplicas") or 0
        for rs in rollout.replicasets()
        if rs["metadata"]["labels"].get(HASH_LABEL) == wanted
    )


def check_invariants(router: Router, rollout: RolloutHandle) -> None:
    weight = router.weight(rollout.namespace)
    if weight is None:
        return
    if weight > 0:
        assert ready_pods_behind(rollout, "web-canary") > 0, f"weight {weight} on a canary without ready pods"
    if weight < 100:
        assert ready_pods_behind(rollout, "web-stable") > 0, f"weight {100 - weight} on no ready stable pods"
    assert len(rollout.replicasets()) <= 2


def state(router: Router, rollout: RolloutHandle) -> tuple[Any, ...]:
    return (*rollout.progress(), router.weight(rollout.namespace))


def normalized(router: Router, rollout: RolloutHandle) -> dict[str, Any]:
    status = rollout.status
    keep = {k: v for k, v in status.items() if k not in ("conditions", "abortedAt", "pauseConditions")}
    rss = sorted((r["metadata"]["name"], r["spec"]["replicas"]) for r in rollout.replicasets())
    return {"status": keep, "replicasets": rss, "weight": router.weight(rollout.namespace)}


def run_canary(router: Router, namespace: Namespace, controller: ControllerProcess, crash: bool) -> dict[str, Any]:
    rollout = namespace.rollout_of(manifests(router, "nginx:1"))
    first = rollout.apply().wait_healthy(timeout=60).seen["stableRS"]
    rollout.wait_for("the first weight", lambda: router.weight(namespace) == 0, 60)
    namespace.apply(*manifests(router, "nginx:2"))

    def status() -> dict[str, Any]:
        return rollout.status

    def done() -> bool:
        return (
            status().get("phase") == "Healthy"
            and status().get("stableRS") != first
            and rollout.sizes() == {"nginx:2": 4}
            and router.weight(namespace) == 0
        )

    drill = CrashDrill(controller, crash, lambda: check_invariants(router, rollout), lambda: state(router, rollout))
    drill.run(
        canary_milestones(rollout, first, len(STEPS), manual_pause=1),
        done,
        timeout=150,
    )
    # the last status writes trail the scale-down: wait until the status counts only the new pods, and holds still
    rollout.wait_status(
        "the status to count 4 replicas",
        lambda st: all(st.get(k) == 4 for k in ("replicas", "availableReplicas", "readyReplicas")),
        60,
    )
    return settled(lambda: normalized(router, rollout), 4)


@pytest.mark.parametrize("router", ROUTERS, ids=[r.name for r in ROUTERS])
def test_crash_at_every_change_keeps_traffic_on_ready_pods(cluster: Cluster, tmp_path: Path, router: Router) -> None:
    compared = with_and_without_crashes(cluster, tmp_path, router.name, functools.partial(run_canary, router))
    reference, crashed = compared.reference, compared.crashed
    for result in (reference, crashed):
        result["status"].pop("observedGeneration", None)
    assert crashed == reference
