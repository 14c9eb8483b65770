"""Gateway API traffic routing on the sandbox: the HTTPRoute backendRef weights follow the plan at
every step, the header rule comes and goes with its steps, abort returns the weight to stable before
the canary scales down, a canary at 20% gets about 20% of the simulated requests, and a route
without the canary Service is reported without moving anything. The CRDs come from
examples/crds/gateway-api.yaml."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes.client.exceptions import ApiException

from rollouts.sandbox.traffic import parse_text_metrics
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.kube import json_object
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox_handle
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
STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"setHeaderRoute": {"name": HEADER, "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
    {"pause": {}},
    {"setWeight": 60},
    {"setHeaderRoute": {"name": HEADER}},
    {"pause": {}},
]
ROUTING = {"gatewayAPI": {"httpRoute": "web"}, "managedRoutes": [{"name": HEADER}]}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's sandbox also sends simulated traffic (and serves /metrics)."""
    with traffic_sandbox_handle(tmp_path_factory.mktemp("sandbox"), traffic_rps=400) as handle:
        yield handle


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


def rules(cluster: Cluster, ns: str) -> list[tuple[str, dict[str, int]]]:
    """(rule name, {backend: weight}) of HTTPRoute `web`."""
    try:
        obj = json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "httproutes", "web"))
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
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
    cluster: Cluster, controller: ControllerProcess, gateway_crds: None, sandbox: SandboxHandle
) -> None:
    ns = cluster.new_namespace("gwapi")
    cluster.apply(ns, *manifests("nginx:1"))
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    stable = status["stableRS"]
    assert rules(cluster, ns) == [split(0)]

    cluster.apply(ns, *manifests("nginx:2"))
    status = cluster.wait_phase(ns, "web", "Paused", timeout=60)
    canary = status["currentPodHash"]
    assert rules(cluster, ns) == [HEADER_RULE, split(20)]
    obj = json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "httproutes", "web"))
    assert obj["spec"]["rules"][0]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}],
        }
    ]
    assert status_weights(cluster, ns) == (20, 80, True)
    cluster.wait_sizes(ns, "web", {"nginx:1": 4, "nginx:2": 1}, timeout=60)
    if os.environ.get("PYROLLOUTS_E2E") != "1":
        # 10% of the simulated requests carry the header (all to the canary); of the rest 20% go there:
        # 0.1 + 0.9 * 0.2 = 0.28, where a split by pods would give 1/5
        metrics_url = sandbox.threaded.metrics_url
        assert metrics_url is not None
        assert shares(metrics_url, ns).get(canary, 0.0) == pytest.approx(0.28, abs=0.05)

    cluster.abort(ns, "web")
    cluster.wait("weight back to stable", lambda: split(0) in rules(cluster, ns), 60)
    cluster.wait_sizes(ns, "web", {"nginx:1": 4}, timeout=60)
    cluster.wait("the header rule removed", lambda: rules(cluster, ns) == [split(0)], 60)
    assert_weight_back_before_scale_down(cluster, ns, 20)

    cluster.retry(ns, "web")
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    cluster.wait("weight 20 and the header rule", lambda: rules(cluster, ns) == [HEADER_RULE, split(20)], 60)
    cluster.promote(ns, "web")
    cluster.wait("step 5", lambda: cluster.status(ns, "web").get("currentStepIndex") == 5, 60)
    cluster.wait("weight 60, header rule gone", lambda: rules(cluster, ns) == [split(60)], 60)
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    cluster.wait_sizes(ns, "web", {"nginx:2": 4}, timeout=60)
    cluster.wait("all traffic on the new stable", lambda: rules(cluster, ns) == [split(0)], 60)
    assert cluster.status(ns, "web")["stableRS"] == canary != stable
    assert_weight_moves(cluster, ns, [0, 20, 0, 20, 60, 100, 0])


def test_a_route_without_the_canary_service_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess, gateway_crds: None
) -> None:
    ns = cluster.new_namespace("gwapibad")
    cluster.apply(
        ns,
        http_route(canary_backend="web-preview"),
        *routed_manifests(ROUTING, [{"setWeight": 50}, {"pause": {}}], replicas=2),
    )
    message = cluster.wait(
        "TrafficRoutingError",
        lambda: next((m for r, m in cluster.events(ns, "web") if r == "TrafficRoutingError"), None),
        60,
    )
    assert "HTTPRoute" in message and "'web-canary'" in message and "backendRefs" in message
    assert rules(cluster, ns) == [("", {"web-stable": 100, "web-preview": 0})]


def test_the_gateway_api_example_deploys(cluster: Cluster, controller: ControllerProcess, gateway_crds: None) -> None:
    ns = cluster.new_namespace("gwexample")
    cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "gateway-api.yaml"))
    cluster.wait_phase(ns, "gateway-demo", "Healthy", timeout=60)
    obj = json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "httproutes", "gateway-demo"))
    assert [b["weight"] for b in obj["spec"]["rules"][0]["backendRefs"]] == [100, 0]
