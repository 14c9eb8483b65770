"""AWS App Mesh traffic routing on the sandbox, through manifests and `kubectl rollouts` only: the
controller follows the VirtualService to its VirtualRouter, moves the route's weights step by step,
writes each version's pod-template hash into its VirtualNode, moves the weight back before the canary
scales down on abort, and after promote --full the stable VirtualNode selects the new version and the
canary one its placeholder; the sandbox's simulated requests follow the weights to the VirtualNodes'
pods. The CRDs come from examples/crds/appmesh.yaml."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.appmesh import appmesh_manifests, mesh, mesh_weights, node_hash
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import (
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    simulated_shares,
    simulated_traffic,
    status_weights,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


@pytest.fixture(scope="module")
def appmesh_crds(cluster: Cluster) -> None:
    install_crds(cluster, "appmesh.yaml", "virtualrouters,virtualnodes", "App Mesh CRDs")


def wait_weights(namespace: Namespace, canary: int) -> None:
    want = (canary, 100 - canary)
    namespace.cluster.wait(f"VirtualRouter canary weight {canary}", lambda: mesh_weights(namespace) == want, 60)


def manifests(image: str) -> list[dict[str, Any]]:
    return appmesh_manifests(image, STEPS, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1)


def hashes(rollout: RolloutHandle) -> tuple[str, str]:
    status = rollout.status
    return str(status.get("stableRS")), str(status.get("currentPodHash"))


def test_weights_and_virtual_nodes_follow_the_steps_abort_retry_and_promote(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle, appmesh_crds: None
) -> None:
    plugin = Plugin.on_cluster(cluster)
    namespace = given(cluster, "appmesh")
    ns = namespace.name
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    first, _ = hashes(rollout)
    cluster.wait("the VirtualNodes' hashes", lambda: node_hash(namespace, "web-stable") == first, 60)
    assert node_hash(namespace, "web-canary") == "canary-hash"
    assert mesh_weights(namespace) == (0, 100)

    plugin.ok("set", "image", "web", "web=nginx:2", "-n", ns)
    rollout.wait_paused(timeout=60)
    assert mesh_weights(namespace) == (25, 75)
    _, second = hashes(rollout)
    assert (node_hash(namespace, "web-canary"), node_hash(namespace, "web-stable")) == (second, first)
    rollout.wait_sizes({"nginx:1": 4, "nginx:2": 1})
    assert status_weights(rollout) == (25, 75, True)
    if simulated_traffic():  # a quarter of the VirtualService's requests reach the canary VirtualNode's pods
        assert sandbox.threaded.metrics_url is not None
        shares = simulated_shares(sandbox.threaded.metrics_url, ns, "web")
        assert shares.get(second, 0.0) == pytest.approx(0.25, abs=0.05)
    shown = plugin.ok("get", "rollout", "web", "-n", ns)
    assert re.search(r"appMesh:\s+SetWeight 25, ActualWeight 25\b", shown), shown

    plugin.ok("abort", "web", "-n", ns)
    wait_weights(namespace, 0)
    rollout.wait_sizes({"nginx:1": 4}, timeout=60)
    assert_weight_back_before_scale_down(rollout, 25, "from 1 to 0")

    plugin.ok("retry", "rollout", "web", "-n", ns)
    rollout.wait_paused(timeout=60)
    wait_weights(namespace, 25)
    plugin.ok("promote", "web", "-n", ns)
    rollout.wait_status("step 3", lambda st: st.get("currentStepIndex") == 3, 60)
    wait_weights(namespace, 50)
    plugin.ok("promote", "web", "--full", "-n", ns)
    rollout.wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
    wait_weights(namespace, 0)
    cluster.wait(
        "the canary VirtualNode's placeholder",
        lambda: node_hash(namespace, "web-canary") == "canary-hash",
        60,
    )
    assert node_hash(namespace, "web-stable") == second
    assert_weight_moves(rollout, [0, 25, 0, 25, 50, 100, 0])


def test_a_virtual_service_without_a_virtual_router_is_named(
    cluster: Cluster, controller: ControllerProcess | None, appmesh_crds: None
) -> None:
    namespace = given(cluster, "appmeshbad")
    objects = manifests("nginx:1")
    provider = {"virtualNode": {"virtualNodeRef": {"name": "web-stable"}}}
    objects[3] = mesh("VirtualService", "web", {"provider": provider})
    rollout = namespace.rollout_of(objects).apply()
    message = rollout.wait_for(
        "TrafficRoutingError",
        lambda: next((m for r, m in rollout.events() if r == "TrafficRoutingError"), None),
        60,
    )
    assert message == (
        f"VirtualService {namespace.name}/web: spec.provider.virtualRouter.virtualRouterRef: VirtualService \"web\" "
        "is not provided by a VirtualRouter: set spec.provider.virtualRouter.virtualRouterRef (the routes the "
        "controller weighs live there)"
    )
