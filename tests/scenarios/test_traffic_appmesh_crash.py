"""Crash safety with App Mesh: kill the controller (SIGKILL) at every change of the VirtualRouter, the
VirtualNodes or the ReplicaSets and start a new one. At every look, each VirtualNode that gets weight
selects ready pods; the rollout ends with all traffic on the new pods through the stable VirtualNode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.appmesh import appmesh_manifests, mesh_weights, node_hash
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.crash import CrashDrill, canary_milestones
from tests.fixtures.manifests import HASH_LABEL, Step
from tests.fixtures.rollout import Namespace, RolloutHandle, given

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

STEPS: list[Step] = [
    {"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}
]


@pytest.fixture(scope="module")
def appmesh_crds(cluster: Cluster) -> None:
    install_crds(cluster, "appmesh.yaml", "virtualrouters,virtualnodes", "App Mesh CRDs")


def ready_by_hash(rollout: RolloutHandle) -> dict[str, int]:
    return {
        rs["metadata"]["labels"].get(HASH_LABEL, ""): (rs.get("status") or {}).get("availableReplicas") or 0
        for rs in rollout.replicasets()
    }


def nodes(namespace: Namespace) -> dict[str, str]:
    return {version: node_hash(namespace, f"web-{version}") for version in ("canary", "stable")}


def check_invariants(rollout: RolloutHandle) -> None:
    weights = mesh_weights(rollout.namespace)
    assert weights is not None
    hashes = nodes(rollout.namespace)
    ready = ready_by_hash(rollout)
    for version, weight in zip(("canary", "stable"), weights, strict=True):
        if weight > 0:
            assert ready.get(hashes[version], 0) > 0, f"weight {weight} on VirtualNode web-{version} without ready pods"


def state(rollout: RolloutHandle) -> tuple[Any, ...]:
    namespace = rollout.namespace
    return (*rollout.progress(), tuple(sorted(nodes(namespace).items())), mesh_weights(namespace))


def test_crash_at_every_change_keeps_weight_on_ready_virtual_nodes(
    cluster: Cluster, controller: ControllerProcess, appmesh_crds: None
) -> None:
    namespace = given(cluster, "appmeshcrash")
    rollout = namespace.rollout_of(appmesh_manifests("nginx:1", STEPS, scaleDownDelaySeconds=0))
    first = rollout.apply().wait_healthy(timeout=60).seen["stableRS"]
    rollout.wait_for("VirtualNodes", lambda: nodes(namespace) == {"stable": first, "canary": "canary-hash"}, 60)
    namespace.apply(*appmesh_manifests("nginx:2", STEPS, scaleDownDelaySeconds=0)[4:])  # the mesh stays as written

    def status() -> dict[str, Any]:
        return rollout.status

    def done() -> bool:
        new = status().get("stableRS")
        return (
            status().get("phase") == "Healthy"
            and new != first
            and rollout.sizes() == {"nginx:2": 4}
            and nodes(namespace) == {"stable": new, "canary": "canary-hash"}
            and mesh_weights(namespace) == (0, 100)
        )

    drill = CrashDrill(controller, True, lambda: check_invariants(rollout), lambda: state(rollout))
    drill.run(canary_milestones(rollout, first, len(STEPS)), done, timeout=150)
