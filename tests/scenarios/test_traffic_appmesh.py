"""AWS App Mesh traffic routing on the sandbox, through manifests and `kubectl rollouts` only: the
controller follows the VirtualService to its VirtualRouter, moves the route's weights step by step,
writes each version's pod-template hash into its VirtualNode, moves the weight back before the canary
scales down on abort, and after promote --full the stable VirtualNode selects the new version and the
canary one its placeholder; the sandbox's simulated requests follow the weights to the VirtualNodes'
pods. The CRDs come from examples/crds/appmesh.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.appmesh import appmesh_manifests, mesh, mesh_weights, node_hash
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import RolloutHandle, given
from tests.fixtures.router_walk import RouterWalk
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import simulated_shares, simulated_traffic

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


@pytest.fixture(scope="module")
def appmesh_crds(cluster: Cluster) -> None:
    install_crds(cluster, "appmesh.yaml", "virtualrouters,virtualnodes", "App Mesh CRDs")


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
    walk = RouterWalk(rollout, "appMesh", lambda w: mesh_weights(namespace) == (w, 100 - w), "nginx:1", "nginx:2", 4,
                      plugin)

    plugin.ok("set", "image", "web", "web=nginx:2", "-n", ns)
    rollout.wait_paused(timeout=60)
    assert mesh_weights(namespace) == (25, 75)
    _, second = hashes(rollout)
    assert (node_hash(namespace, "web-canary"), node_hash(namespace, "web-stable")) == (second, first)
    walk.expect_first_step(25)
    if simulated_traffic():  # a quarter of the VirtualService's requests reach the canary VirtualNode's pods
        assert sandbox.threaded.metrics_url is not None
        shares = simulated_shares(sandbox.threaded.metrics_url, ns, "web")
        assert shares.get(second, 0.0) == pytest.approx(0.25, abs=0.05)

    walk.abort(25, "from 1 to 0")
    walk.retry(25)
    walk.promote(3)
    walk.wait_weight(50)
    walk.promote_full([0, 25, 0, 25, 50, 100, 0])
    cluster.wait(
        "the canary VirtualNode's placeholder",
        lambda: node_hash(namespace, "web-canary") == "canary-hash",
        60,
    )
    assert node_hash(namespace, "web-stable") == second


def test_a_virtual_service_without_a_virtual_router_is_named(
    cluster: Cluster, controller: ControllerProcess | None, appmesh_crds: None
) -> None:
    namespace = given(cluster, "appmeshbad")
    objects = manifests("nginx:1")
    provider = {"virtualNode": {"virtualNodeRef": {"name": "web-stable"}}}
    objects[3] = mesh("VirtualService", "web", {"provider": provider})
    rollout = namespace.rollout_of(objects).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert message == (
        f"VirtualService {namespace.name}/web: spec.provider.virtualRouter.virtualRouterRef: VirtualService \"web\" "
        "is not provided by a VirtualRouter: set spec.provider.virtualRouter.virtualRouterRef (the routes the "
        "controller weighs live there)"
    )
