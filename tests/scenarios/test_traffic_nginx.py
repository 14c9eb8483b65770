"""NGINX traffic routing on the sandbox: the canary Ingress follows the plan exactly, step by step;
promote, promote --full, abort (weight back first), retry; bad input is reported and moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL
from tests.fixtures.plugin import Plugin
from tests.fixtures.tools import REPO
from tests.fixtures.traffic import (
    PREFIX,
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    canary_weight,
    ingress,
    ingress_manifest,
    routed_manifests,
    status_weights,
    weight_events,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
ROUTING = {"nginx": {"stableIngress": "web", "additionalIngressAnnotations": {"canary-by-header": "X-Canary"}}}


def manifests(image: str, **canary: Any) -> list[dict[str, Any]]:
    return [
        ingress_manifest("web", "web-stable"),
        *routed_manifests(ROUTING, STEPS, image=image, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1, **canary),
    ]


def wait_weight(cluster: Cluster, ns: str, weight: int, timeout: float = 60) -> None:
    cluster.wait(f"canary weight {weight}", lambda: canary_weight(cluster, ns) == weight, timeout)


def test_weights_follow_the_steps_promote_and_complete(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("nginx")
    cluster.apply(ns, *manifests("nginx:1"))
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    wait_weight(cluster, ns, 0)
    canary = ingress(cluster, ns, "web-web-canary")
    assert canary is not None
    owner = canary["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Rollout", "web", True)
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert canary["spec"]["tls"] == [{"hosts": ["web.example.com"], "secretName": "web-tls"}]
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "web-canary"
    notes = canary["metadata"]["annotations"]
    assert notes[f"{PREFIX}/canary"] == "true"
    assert notes[f"{PREFIX}/canary-by-header"] == "X-Canary"
    assert notes["kubernetes.io/ingress.class"] == "nginx"
    stable_before = ingress(cluster, ns, "web")

    cluster.apply(ns, *manifests("nginx:2"))
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    assert canary_weight(cluster, ns) == 20
    cluster.wait_sizes(ns, "web", {"nginx:1": 5, "nginx:2": 1})
    assert status_weights(cluster, ns) == (20, 80, True)
    shown = Plugin(cluster).ok("get", "rollout", "web", "-n", ns)
    assert "  SetWeight:     20\n  ActualWeight:  20\n  nginx:         SetWeight 20, ActualWeight 20\n" in shown

    cluster.promote(ns, "web")
    cluster.wait("step 3", lambda: cluster.status(ns, "web").get("currentStepIndex") == 3, 60)
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    assert canary_weight(cluster, ns) == 60
    cluster.wait_sizes(ns, "web", {"nginx:1": 5, "nginx:2": 3})

    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    cluster.wait_sizes(ns, "web", {"nginx:2": 5}, timeout=60)
    wait_weight(cluster, ns, 0)
    new_hash = cluster.status(ns, "web")["stableRS"]
    assert cluster.service(ns, "web-stable")["spec"]["selector"][HASH_LABEL] == new_hash
    # exactly the plan, in order: 20, 60, all of it to the new version, then back through the stable Service
    assert_weight_moves(cluster, ns, [0, 20, 60, 100, 0])
    events = cluster.events(ns, "web")
    reasons = [r for r, _ in events]
    # the old version goes only after all traffic moved to the new stable
    last_weight = max(i for i, (r, m) in enumerate(events) if r == "TrafficWeightUpdated")
    scaled_down = [i for i, (r, m) in enumerate(events) if r == "ScalingReplicaSet" and m.endswith("to 0")]
    assert scaled_down and min(scaled_down) > last_weight, events
    assert "TrafficRoutingError" not in reasons
    assert ingress(cluster, ns, "web") == stable_before  # the stable Ingress is never modified


def test_abort_moves_weight_back_first_then_retry_and_full_promotion(
    cluster: Cluster, controller: ControllerProcess
) -> None:
    ns = cluster.new_namespace("nginxabort")
    cluster.apply(ns, *manifests("nginx:1"))
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    cluster.apply(ns, *manifests("nginx:2"))
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    assert canary_weight(cluster, ns) == 20

    cluster.abort(ns, "web")
    cluster.wait_phase(ns, "web", "Degraded", timeout=60)
    wait_weight(cluster, ns, 0)
    cluster.wait_sizes(ns, "web", {"nginx:1": 5}, timeout=60)
    assert_weight_back_before_scale_down(cluster, ns, 20, "from 1 to 0")

    cluster.retry(ns, "web")
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    wait_weight(cluster, ns, 20)
    cluster.wait_sizes(ns, "web", {"nginx:1": 5, "nginx:2": 1})

    Plugin(cluster).ok("promote", "web", "--full", "-n", ns)
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    cluster.wait_sizes(ns, "web", {"nginx:2": 5}, timeout=60)
    wait_weight(cluster, ns, 0)
    messages = weight_events(cluster, ns)
    assert "Traffic weight updated from 20 to 100" in messages, messages


def test_stable_ingress_without_the_stable_service_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess
) -> None:
    ns = cluster.new_namespace("nginxbad")
    cluster.apply(ns, ingress_manifest("web", "someone-else"), *routed_manifests(ROUTING, STEPS))
    cluster.wait(
        "TrafficRoutingError",
        lambda: [m for r, m in cluster.events(ns, "web") if r == "TrafficRoutingError"],
        60,
    )
    message = next(m for r, m in cluster.events(ns, "web") if r == "TrafficRoutingError")
    assert 'Ingress "web" has no rules using Service "web-stable"' in message
    assert "spec.rules" in message
    assert ingress(cluster, ns, "web-web-canary") is None  # nothing written
    routers = cluster.status(ns, "web")["canary"]["trafficRouters"]
    assert routers[0]["name"] == "nginx" and "no rules" in routers[0]["message"]

    # fixed: the controller picks the Ingress up on its next look and creates the canary Ingress
    cluster.apply(ns, ingress_manifest("web", "web-stable"))
    cluster.wait("the canary Ingress", lambda: canary_weight(cluster, ns) == 0, 60)


def test_header_route_not_in_managed_routes_is_invalid_spec(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("nginxinvalid")
    steps = [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}]}}]
    cluster.apply(ns, ingress_manifest("web", "web-stable"), *routed_manifests(ROUTING, steps))
    status = cluster.wait(
        "InvalidSpec",
        lambda: (st := cluster.status(ns, "web")).get("phase") == "Degraded" and st,
        60,
    )
    assert "spec.strategy.canary.steps[0].setHeaderRoute.name" in status["message"]
    assert "managedRoutes" in status["message"]
    assert ingress(cluster, ns, "web-web-canary") is None


def test_the_nginx_example_deploys(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("nginxexample")
    cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "nginx.yaml"))
    cluster.wait_phase(ns, "nginx-demo", "Healthy", timeout=60)
    cluster.wait(
        "the example's canary Ingress",
        lambda: canary_weight(cluster, ns, "nginx-demo-nginx-demo-canary") == 0,
        60,
    )


def test_header_route_added_and_removed_after_the_weight(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("nginxheader")
    routing = {"nginx": {"stableIngress": "web"}, "managedRoutes": [{"name": "beta"}]}
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}]}},
        {"pause": {}},
    ]

    def objects(image: str) -> list[dict[str, Any]]:
        return [
            ingress_manifest("web", "web-stable"),
            *routed_manifests(routing, steps, image=image, scaleDownDelaySeconds=1),
        ]

    def notes() -> dict[str, str]:
        obj = ingress(cluster, ns, "web-web-canary")
        return dict(obj["metadata"]["annotations"]) if obj else {}

    cluster.apply(ns, *objects("nginx:1"))
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    assert f"{PREFIX}/canary-by-header" not in notes()
    cluster.apply(ns, *objects("nginx:2"))
    cluster.wait_phase(ns, "web", "Paused", timeout=60)
    assert notes()[f"{PREFIX}/canary-by-header"] == "X-Beta"
    assert notes()[f"{PREFIX}/canary-by-header-value"] == "yes"
    assert notes()[f"{PREFIX}/canary-weight"] == "20"
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy", timeout=60)
    cluster.wait("the header route to go", lambda: f"{PREFIX}/canary-by-header" not in notes(), 60)
    assert notes()[f"{PREFIX}/canary-weight"] == "0"
    assert f"{PREFIX}/canary-by-header-value" not in notes()
