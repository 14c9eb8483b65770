"""NGINX traffic routing on the sandbox: the canary Ingress follows the plan exactly, step by step;
promote, promote --full, abort (weight back first), retry; bad input is reported and moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
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

STEPS: list[Step] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
ROUTING = {"nginx": {"stableIngress": "web", "additionalIngressAnnotations": {"canary-by-header": "X-Canary"}}}


def manifests(image: str, **canary: Any) -> list[dict[str, Any]]:
    return [
        ingress_manifest("web", "web-stable"),
        *routed_manifests(ROUTING, STEPS, image=image, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1, **canary),
    ]


def wait_weight(namespace: Namespace, weight: int, timeout: float = 60) -> None:
    namespace.cluster.wait(f"canary weight {weight}", lambda: canary_weight(namespace) == weight, timeout)


def test_weights_follow_the_steps_promote_and_complete(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "nginx")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    wait_weight(namespace, 0)
    canary = ingress(namespace, "web-web-canary")
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
    stable_before = ingress(namespace, "web")

    namespace.apply(*manifests("nginx:2"))
    rollout.wait_paused(timeout=60)
    assert canary_weight(namespace) == 20
    rollout.wait_sizes({"nginx:1": 5, "nginx:2": 1})
    assert status_weights(rollout) == (20, 80, True)
    shown = Plugin.on_cluster(cluster).ok("get", "rollout", "web", "-n", namespace.name)
    assert "  SetWeight:     20\n  ActualWeight:  20\n  nginx:         SetWeight 20, ActualWeight 20\n" in shown

    rollout.promote().wait_status("step 3", lambda st: st.get("currentStepIndex") == 3, 60)
    rollout.wait_paused(timeout=60)
    assert canary_weight(namespace) == 60
    rollout.wait_sizes({"nginx:1": 5, "nginx:2": 3})

    rollout.promote().wait_healthy(timeout=60).wait_sizes({"nginx:2": 5}, timeout=60)
    wait_weight(namespace, 0)
    new_hash = rollout.status["stableRS"]
    assert namespace.service("web-stable")["spec"]["selector"][HASH_LABEL] == new_hash
    # exactly the plan, in order: 20, 60, all of it to the new version, then back through the stable Service
    assert_weight_moves(rollout, [0, 20, 60, 100, 0])
    events = rollout.events()
    reasons = [r for r, _ in events]
    # the old version goes only after all traffic moved to the new stable
    last_weight = max(i for i, (r, m) in enumerate(events) if r == "TrafficWeightUpdated")
    scaled_down = [i for i, (r, m) in enumerate(events) if r == "ScalingReplicaSet" and m.endswith("to 0")]
    assert scaled_down and min(scaled_down) > last_weight, events
    assert "TrafficRoutingError" not in reasons
    assert ingress(namespace, "web") == stable_before  # the stable Ingress is never modified


def test_abort_moves_weight_back_first_then_retry_and_full_promotion(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "nginxabort")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    namespace.apply(*manifests("nginx:2"))
    rollout.wait_paused(timeout=60)
    assert canary_weight(namespace) == 20

    rollout.abort().wait_degraded(timeout=60)
    wait_weight(namespace, 0)
    rollout.wait_sizes({"nginx:1": 5}, timeout=60)
    assert_weight_back_before_scale_down(rollout, 20, "from 1 to 0")

    rollout.retry().wait_paused(timeout=60)
    wait_weight(namespace, 20)
    rollout.wait_sizes({"nginx:1": 5, "nginx:2": 1})

    Plugin.on_cluster(cluster).ok("promote", "web", "--full", "-n", namespace.name)
    rollout.wait_healthy(timeout=60).wait_sizes({"nginx:2": 5}, timeout=60)
    wait_weight(namespace, 0)
    messages = weight_events(rollout)
    assert "Traffic weight updated from 20 to 100" in messages, messages


def test_stable_ingress_without_the_stable_service_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "nginxbad")
    rollout = namespace.rollout_of([ingress_manifest("web", "someone-else"), *routed_manifests(ROUTING, STEPS)])
    message = rollout.apply().wait_event("TrafficRoutingError", timeout=60)
    assert 'Ingress "web" has no rules using Service "web-stable"' in message
    assert "spec.rules" in message
    assert ingress(namespace, "web-web-canary") is None  # nothing written
    routers = rollout.status["canary"]["trafficRouters"]
    assert routers[0]["name"] == "nginx" and "no rules" in routers[0]["message"]

    # fixed: the controller picks the Ingress up on its next look and creates the canary Ingress
    namespace.apply(ingress_manifest("web", "web-stable"))
    rollout.wait_for("the canary Ingress", lambda: canary_weight(namespace) == 0, 60)


def test_header_route_not_in_managed_routes_is_invalid_spec(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "nginxinvalid")
    steps = [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}]}}]
    rollout = namespace.rollout_of([ingress_manifest("web", "web-stable"), *routed_manifests(ROUTING, steps)])
    status = rollout.apply().wait_status("InvalidSpec", lambda st: st.get("phase") == "Degraded", 60).seen
    assert "spec.strategy.canary.steps[0].setHeaderRoute.name" in status["message"]
    assert "managedRoutes" in status["message"]
    assert ingress(namespace, "web-web-canary") is None


def test_the_nginx_example_deploys(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "nginxexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "nginx.yaml"))
    rollout = namespace.rollout_named("nginx-demo").wait_healthy(timeout=60)
    rollout.wait_for(
        "the example's canary Ingress",
        lambda: canary_weight(namespace, "nginx-demo-nginx-demo-canary") == 0,
        60,
    )


def test_header_route_added_and_removed_after_the_weight(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "nginxheader")
    routing = {"nginx": {"stableIngress": "web"}, "managedRoutes": [{"name": "beta"}]}
    steps: list[Step] = [
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
        obj = ingress(namespace, "web-web-canary")
        return dict(obj["metadata"]["annotations"]) if obj else {}

    rollout = namespace.rollout_of(objects("nginx:1")).apply().wait_healthy(timeout=60)
    assert f"{PREFIX}/canary-by-header" not in notes()
    namespace.apply(*objects("nginx:2"))
    rollout.wait_paused(timeout=60)
    assert notes()[f"{PREFIX}/canary-by-header"] == "X-Beta"
    assert notes()[f"{PREFIX}/canary-by-header-value"] == "yes"
    assert notes()[f"{PREFIX}/canary-weight"] == "20"
    rollout.promote().wait_healthy(timeout=60)
    rollout.wait_for("the header route to go", lambda: f"{PREFIX}/canary-by-header" not in notes(), 60)
    assert notes()[f"{PREFIX}/canary-weight"] == "0"
    assert f"{PREFIX}/canary-by-header-value" not in notes()
