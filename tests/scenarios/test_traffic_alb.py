"""ALB traffic routing on the sandbox: the Ingress's weighted action annotation follows the plan at every
step, a header route adds its action, condition and path and removes them with its step, the simulated
requests through the Ingress follow the weights and the header condition (not the pod counts), abort
returns the weight to stable before the canary scales down, retry and promote --full; an Ingress that
does not route to the action is reported and nothing is written."""

from __future__ import annotations

import json
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
from tests.fixtures.weighted_routes import alb_ingress_manifest, alb_weights, canary_share

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

BETA = {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}]}
STEPS: list[Step] = [
    {"setWeight": 20},
    {"setHeaderRoute": BETA},
    {"pause": {}},
    {"setWeight": 60},
    {"setHeaderRoute": {"name": "beta"}},
    {"pause": {}},
]
ROUTING = {
    "alb": {"ingress": "web", "servicePort": 80, "stickinessConfig": {"enabled": True, "durationSeconds": 60}},
    "managedRoutes": [{"name": "beta"}],
}
BETA_ACTION = "alb.ingress.kubernetes.io/actions.beta"
SIMULATED_HEADER = {  # a fifth of the simulated requests carry the header
    "sandbox.pyrollouts.io/request-header": "X-Beta: yes",
    "sandbox.pyrollouts.io/request-header-fraction": "0.2",
}


def simulated_ingress() -> dict[str, Any]:
    ingress = alb_ingress_manifest()
    ingress["metadata"]["annotations"].update(SIMULATED_HEADER)
    return ingress


def manifests(image: str, ingress: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        ingress or simulated_ingress(),
        *routed_manifests(
            ROUTING, STEPS, image=image, replicas=2, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
        ),
    ]


def split(canary: int) -> dict[str, int]:
    return {"web-canary": canary, "web-stable": 100 - canary}


def wait_split(namespace: Namespace, canary: int) -> None:
    namespace.cluster.wait(f"ALB canary weight {canary}", lambda: alb_weights(namespace) == split(canary), 60)


def backends(namespace: Namespace) -> list[str]:
    """The backend Services (actions) of the Ingress's paths, in order."""
    ingress = json.loads(namespace.kubectl("get", "ingress", "web", "-o", "json").stdout)
    return [p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]


def test_weights_traffic_abort_retry_and_full_promotion(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle
) -> None:
    namespace = given(cluster, "alb")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    walk = RouterWalk(rollout, "alb", lambda w: alb_weights(namespace) == split(w), "nginx:1", "nginx:2", 2)
    walk.wait_weight(0)

    namespace.apply(*manifests("nginx:2"))
    canary = rollout.wait_paused(timeout=60).seen["currentPodHash"]
    assert alb_weights(namespace) == split(20)
    assert backends(namespace) == ["beta", "web-stable"]
    assert alb_weights(namespace, key=BETA_ACTION) == {"web-canary": 100}
    walk.expect_first_step(20)
    if os.environ.get("PYROLLOUTS_E2E") != "1":  # a real cluster has no simulated traffic
        # one canary pod beside two stable ones: by pods it would get a third; the action says 20% of the
        # requests without the header, the header route all of the fifth that carry it: 0.8 * 0.2 + 0.2
        metrics_url = sandbox.threaded.metrics_url
        assert metrics_url is not None
        assert canary_share(metrics_url, namespace.name, "web-stable", canary) == pytest.approx(0.36, abs=0.05)

    walk.abort(20, "from 1 to 0")
    rollout.wait_for("the header route removed", lambda: backends(namespace) == ["web-stable"], 60)

    walk.retry(20)
    assert backends(namespace) == ["beta", "web-stable"]
    walk.promote(5)
    assert alb_weights(namespace) == split(60)
    assert backends(namespace) == ["web-stable"] and alb_weights(namespace, key=BETA_ACTION) is None

    walk.promote_full([0, 20, 0, 20, 60, 100, 0])
    ingress = namespace.kubectl("get", "ingress", "web", "-o", "jsonpath={.metadata.annotations}").stdout
    assert '"rollouts.pyrollouts.io/managed-alb-actions":"web:alb.ingress.kubernetes.io/actions.web-stable"' in ingress
    assert '\\"TargetGroupStickinessConfig\\":{\\"Enabled\\":true,\\"DurationSeconds\\":60}' in ingress


def test_an_ingress_not_routing_to_the_action_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "albbad")
    rollout = namespace.rollout_of(manifests("nginx:1", alb_ingress_manifest(port="http"))).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert 'Ingress "web" routes to Service "web-stable" directly' in message and "use-annotation" in message
    assert alb_weights(namespace) is None  # nothing written

    namespace.apply(alb_ingress_manifest())  # fixed: picked up on the next look
    wait_split(namespace, 0)


def test_the_alb_example_deploys(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "albexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "alb.yaml"))
    namespace.rollout_named("alb-demo").wait_healthy(timeout=60)
    key = "alb.ingress.kubernetes.io/actions.alb-demo-root"
    namespace.cluster.wait(
        "the example's action",
        lambda: alb_weights(namespace, "alb-demo", key) == {"alb-demo-canary": 0, "alb-demo-stable": 100},
        60,
    )
