"""Gateway API traffic routing on the sandbox: the HTTPRoute backendRef weights follow the plan at
every step, the header rule comes and goes with its steps, abort returns the weight to stable before
the canary scales down, a canary at 20% gets about 20% of the simulated requests, and a route
without the canary Service is reported without moving anything. The CRDs come from
examples/crds/gateway-api.yaml."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest

from rollouts.sandbox.traffic import parse_text_metrics
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.tools import REPO
from tests.fixtures.traffic import (
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    routed_manifests,
    status_weights,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
HEADER = "canary-header"
STEPS: list[Step] = [
    {"setWeight": 20},
    {"setHeaderRoute": {"name": HEADER, "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
    {"pause": {}},
    {"setWeight": 60},
    {"setHeaderRoute": {"name": HEADER}},
    {"pause": {}},
]
ROUTING = {"gatewayAPI": {"httpRoute": "web"}, "managedRoutes": [{"name": HEADER}]}


@pytest.fixture(scope="module")
def gateway_crds(cluster: Cluster) -> None:
    install_crds(cluster, "gateway-api.yaml", "httproutes,grpcroutes", "Gateway API CRDs")


def http_route(canary_backend: str = "web-canary") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "annotations": {"sandbox.pyrollouts.io/request-header": "X-Canary: yes"}},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "web-stable", "port": 80, "weight": 100},
                        {"name": canary_backend, "port": 80, "weight": 0},
                    ],
                }
            ],
        },
    }


def rules(namespace: Namespace) -> list[tuple[str, dict[str, int]]]:
    """(rule name, {backend: weight}) of HTTPRoute `web`."""
    obj = namespace.custom_object(GROUP, VERSION, "httproutes", "web")
    if obj is None:
        return []
    return [
        (r.get("name", ""), {b["name"]: int(b.get("weight", 1)) for b in r.get("backendRefs", [])})
        for r in obj["spec"]["rules"]
    ]


def split(canary: int) -> tuple[str, dict[str, int]]:
    return ("", {"web-stable": 100 - canary, "web-canary": canary})


HEADER_RULE = (HEADER, {"web-canary": 1})


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        http_route(),
        *routed_manifests(
            ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
        ),
    ]


def shares(metrics_url: str, ns: str, seconds: float = 3.0) -> dict[str, float]:
    """Each version's share of the requests labelled `service="web-stable"` over `seconds`."""

    def counts() -> dict[str, float]:
        samples = parse_text_metrics(httpx.get(metrics_url, timeout=5).text)
        out: dict[str, float] = {}
        for (name, labels), value in samples.items():
            got = dict(labels)
            if name == "http_requests_total" and got["namespace"] == ns and got["service"] == "web-stable":
                out[got["rollouts_pod_template_hash"]] = out.get(got["rollouts_pod_template_hash"], 0.0) + value
        return out

    before = counts()
    time.sleep(seconds)
    after = counts()
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    total = sum(delta.values())
    assert total > 500
    return {k: v / total for k, v in delta.items()}


def test_weights_header_rule_abort_retry_promote_and_the_traffic_follows(
    cluster: Cluster, controller: ControllerProcess | None, gateway_crds: None, sandbox: SandboxHandle
) -> None:
    namespace = given(cluster, "gwapi")
    rollout = namespace.rollout_of(manifests("nginx:1"))
    stable = rollout.apply().wait_healthy(timeout=60).seen["stableRS"]
    assert rules(namespace) == [split(0)]

    namespace.apply(*manifests("nginx:2"))
    canary = rollout.wait_paused(timeout=60).seen["currentPodHash"]
    assert rules(namespace) == [HEADER_RULE, split(20)]
    obj = namespace.custom_object(GROUP, VERSION, "httproutes", "web")
    assert obj is not None
    assert obj["spec"]["rules"][0]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}],
        }
    ]
    assert status_weights(rollout) == (20, 80, True)
    rollout.wait_sizes({"nginx:1": 4, "nginx:2": 1}, timeout=60)
    if os.environ.get("PYROLLOUTS_E2E") != "1":
        # 10% of the simulated requests carry the header (all to the canary); of the rest 20% go there:
        # 0.1 + 0.9 * 0.2 = 0.28, where a split by pods would give 1/5
        metrics_url = sandbox.threaded.metrics_url
        assert metrics_url is not None
        assert shares(metrics_url, namespace.name).get(canary, 0.0) == pytest.approx(0.28, abs=0.05)

    rollout.abort().wait_for("weight back to stable", lambda: split(0) in rules(namespace), 60)
    rollout.wait_sizes({"nginx:1": 4}, timeout=60)
    rollout.wait_for("the header rule removed", lambda: rules(namespace) == [split(0)], 60)
    assert_weight_back_before_scale_down(rollout, 20)

    rollout.retry().wait_paused(timeout=60)
    rollout.wait_for("weight 20 and the header rule", lambda: rules(namespace) == [HEADER_RULE, split(20)], 60)
    rollout.promote().wait_status("step 5", lambda st: st.get("currentStepIndex") == 5, 60)
    rollout.wait_for("weight 60, header rule gone", lambda: rules(namespace) == [split(60)], 60)
    rollout.promote().wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
    rollout.wait_for("all traffic on the new stable", lambda: rules(namespace) == [split(0)], 60)
    assert rollout.status["stableRS"] == canary != stable
    assert_weight_moves(rollout, [0, 20, 0, 20, 60, 100, 0])


def test_a_route_without_the_canary_service_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess | None, gateway_crds: None
) -> None:
    namespace = given(cluster, "gwapibad")
    objects = routed_manifests(ROUTING, [{"setWeight": 50}, {"pause": {}}], replicas=2)
    rollout = namespace.rollout_of([http_route(canary_backend="web-preview"), *objects]).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert "HTTPRoute" in message and "'web-canary'" in message and "backendRefs" in message
    assert rules(namespace) == [("", {"web-stable": 100, "web-preview": 0})]


def test_the_gateway_api_example_deploys(
    cluster: Cluster, controller: ControllerProcess | None, gateway_crds: None
) -> None:
    namespace = given(cluster, "gwexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "gateway-api.yaml"))
    namespace.rollout_named("gateway-demo").wait_healthy(timeout=60)
    obj = namespace.custom_object(GROUP, VERSION, "httproutes", "gateway-demo")
    assert obj is not None
    assert [b["weight"] for b in obj["spec"]["rules"][0]["backendRefs"]] == [100, 0]
