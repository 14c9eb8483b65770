"""Crash safety with Istio subset-level routing: kill the controller (SIGKILL) at every change of the
VirtualService, the DestinationRule or the ReplicaSets and start a new one. At every look, each
subset that gets weight selects ready pods; the rollout ends with all traffic on the new pods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.crash import CrashDrill, canary_milestones
from tests.fixtures.istio import (
    DESTINATION_RULE,
    SUBSET_ROUTING,
    SUBSET_VS,
    http_routes,
    install_istio_crds,
    subset_hashes,
)
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import RolloutHandle, given
from tests.fixtures.traffic import READY_FAST

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

# Two weight steps, each crashed at (tests/fixtures/crash.py: milestones, whatever the load).
STEPS: list[Step] = [
    {"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}
]


@pytest.fixture(scope="module")
def istio_crds(cluster: Cluster) -> None:
    install_istio_crds(cluster)


def manifests(image: str) -> list[dict[str, Any]]:
    rollout = rollout_manifest(
        "web",
        replicas=4,
        steps=STEPS,
        image=image,
        annotations=READY_FAST,
        trafficRouting=SUBSET_ROUTING,
        stableService="web-stable",
        canaryService="web-canary",
        scaleDownDelaySeconds=0,
    )
    services = [service_manifest(n, "web") for n in ("web", "web-stable", "web-canary")]
    return [*services, SUBSET_VS, DESTINATION_RULE, rollout]


def ready_by_hash(rollout: RolloutHandle) -> dict[str, int]:
    return {
        rs["metadata"]["labels"].get(HASH_LABEL, ""): (rs.get("status") or {}).get("availableReplicas") or 0
        for rs in rollout.replicasets()
    }


def check_invariants(rollout: RolloutHandle) -> None:
    hashes = subset_hashes(rollout.namespace)
    routes = http_routes(rollout.namespace)
    ready = ready_by_hash(rollout)
    for _, weights in routes:
        for subset, weight in weights.items():
            if weight > 0 and hashes.get(subset):
                assert ready.get(hashes[subset], 0) > 0, f"weight {weight} on subset {subset} without ready pods"


def state(rollout: RolloutHandle) -> tuple[Any, ...]:
    namespace = rollout.namespace
    return (*rollout.progress(), tuple(sorted(subset_hashes(namespace).items())), repr(http_routes(namespace)))


def test_crash_at_every_change_keeps_weight_on_ready_subsets(
    cluster: Cluster, controller: ControllerProcess, istio_crds: None
) -> None:
    namespace = given(cluster, "istiocrash")
    rollout = namespace.rollout_of(manifests("nginx:1"))
    first = rollout.apply().wait_healthy(timeout=60).seen["stableRS"]
    rollout.wait_for("subsets", lambda: subset_hashes(namespace) == {"stable": first, "canary": first}, 60)
    namespace.apply(*manifests("nginx:2"))

    def status() -> dict[str, Any]:
        return rollout.status

    def done() -> bool:
        new = status().get("stableRS")
        return (
            status().get("phase") == "Healthy"
            and new != first
            and rollout.sizes() == {"nginx:2": 4}
            and subset_hashes(namespace) == {"stable": new, "canary": new}
            and http_routes(namespace) == [("primary", {"stable": 100, "canary": 0})]
        )

    drill = CrashDrill(controller, True, lambda: check_invariants(rollout), lambda: state(rollout))
    drill.run(
        canary_milestones(rollout, first, len(STEPS)),
        done,
        timeout=150,
    )
