"""Traefik traffic routing on the sandbox: the weighted TraefikService follows the plan at every step, the
simulated requests through it follow its weights (not the pod counts), abort returns the weight to
stable before the canary scales down, retry and promote --full; a TraefikService without the canary
Service is reported and nothing is written. The CRDs come from examples/crds/traefik.yaml."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.router_walk import RouterWalk
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.tools import REPO
from tests.fixtures.traffic import routed_manifests
from tests.fixtures.weighted_routes import (
    canary_share,
    install_traefik_crds,
    traefik_service_manifest,
    traefik_weights,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[Step] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
ROUTING = {"traefik": {"weightedTraefikServiceName": "web"}}


@pytest.fixture(scope="module")
def traefik_crds(cluster: Cluster) -> None:
    install_traefik_crds(cluster)


def manifests(image: str, service: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        service or traefik_service_manifest(),
        *routed_manifests(
            ROUTING, STEPS, image=image, replicas=2, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
        ),
    ]


def split(canary: int) -> dict[str, int]:
    return {"web-stable": 100 - canary, "web-canary": canary}


def wait_split(namespace: Namespace, canary: int) -> None:
    namespace.cluster.wait(f"Traefik canary weight {canary}", lambda: traefik_weights(namespace) == split(canary), 60)


def test_weights_traffic_abort_retry_and_full_promotion(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle, traefik_crds: None
) -> None:
    namespace = given(cluster, "traefik")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    walk = RouterWalk(rollout, "traefik", lambda w: traefik_weights(namespace) == split(w), "nginx:1", "nginx:2", 2)
    walk.wait_weight(0)

    namespace.apply(*manifests("nginx:2"))
    canary = rollout.wait_paused(timeout=60).seen["currentPodHash"]
    assert traefik_weights(namespace) == split(20)
    walk.expect_first_step(20)
    if os.environ.get("PYROLLOUTS_E2E") != "1":  # a real cluster has no simulated traffic
        # one canary pod beside two stable ones: by pods it would get a third; the TraefikService says 20%
        metrics_url = sandbox.threaded.metrics_url
        assert metrics_url is not None
        assert canary_share(metrics_url, namespace.name, "web-stable", canary) == pytest.approx(0.2, abs=0.05)

    walk.abort(20, "from 1 to 0")
    walk.retry(20)
    walk.promote(3)
    assert traefik_weights(namespace) == split(60)
    walk.promote_full([0, 20, 0, 20, 60, 100, 0])


def test_a_traefik_service_without_the_canary_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess | None, traefik_crds: None
) -> None:
    namespace = given(cluster, "traefikbad")
    lacking = traefik_service_manifest()
    lacking["spec"]["weighted"]["services"] = lacking["spec"]["weighted"]["services"][:1]
    rollout = namespace.rollout_of(manifests("nginx:1", lacking)).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert 'TraefikService "web" has no weighted service "web-canary"' in message
    assert "spec.weighted.services" in message
    assert traefik_weights(namespace) == {"web-stable": 100}  # nothing written

    namespace.apply(traefik_service_manifest())  # fixed: picked up on the next look
    wait_split(namespace, 0)


def test_the_traefik_example_deploys(
    cluster: Cluster, controller: ControllerProcess | None, traefik_crds: None
) -> None:
    namespace = given(cluster, "traefikexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "traefik.yaml"))
    namespace.rollout_named("traefik-demo").wait_healthy(timeout=60)
    namespace.cluster.wait(
        "the example's weights",
        lambda: traefik_weights(namespace, "traefik-demo") == {"traefik-demo-stable": 100, "traefik-demo-canary": 0},
        60,
    )
