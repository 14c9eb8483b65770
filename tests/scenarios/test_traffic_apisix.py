"""Apache APISIX traffic routing on the sandbox, through manifests and `kubectl rollouts` only: the
controller moves the backend weights of the ApisixRoute's rule step by step, a setHeaderRoute step
becomes an owned ApisixRoute that goes again on abort and after the promotion, abort moves the weight
back before the canary scales down, retry, promote --full; the sandbox's simulated requests follow the
weights and the header route. The CRD comes from examples/crds/apisix.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.router_walk import RouterWalk
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import routed_manifests, simulated_shares, simulated_traffic

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


HEADER = {"name": "by-header", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}
STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setHeaderRoute": HEADER}, {"setWeight": 50}, {"pause": {}}]
ROUTING = {"managedRoutes": [{"name": "by-header"}], "apisix": {"route": {"name": "web-route", "rules": ["web"]}}}
ROUTE = {
    "apiVersion": "apisix.apache.org/v2",
    "kind": "ApisixRoute",
    "metadata": {"name": "web-route", "annotations": {"sandbox.pyrollouts.io/request-header": "X-Canary: yes"}},
    "spec": {
        "http": [
            {
                "name": "web",
                "match": {"hosts": ["web.example.com"], "paths": ["/*"]},
                "backends": [
                    {"serviceName": "web-stable", "servicePort": 80},
                    {"serviceName": "web-canary", "servicePort": 80},
                ],
            }
        ]
    },
}


@pytest.fixture(scope="module")
def apisix_crd(cluster: Cluster) -> None:
    install_crds(cluster, "apisix.yaml", "apisixroutes", "ApisixRoute CRD")


def route(namespace: Namespace, name: str = "web-route") -> dict[str, Any] | None:
    return namespace.custom_object("apisix.apache.org", "v2", "apisixroutes", name)


def weights(namespace: Namespace) -> dict[str, Any] | None:
    obj = route(namespace)
    if obj is None:
        return None
    return {b["serviceName"]: b.get("weight") for b in obj["spec"]["http"][0]["backends"]}


def manifests(image: str) -> list[dict[str, Any]]:
    objects = routed_manifests(
        ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
    )
    return [ROUTE, *objects]


def test_weights_and_header_route_follow_the_steps_abort_retry_and_promote(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle, apisix_crd: None
) -> None:
    plugin = Plugin.on_cluster(cluster)
    namespace = given(cluster, "apisix")
    ns = namespace.name
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    walk = RouterWalk(rollout, "apisix", lambda w: weights(namespace) == {"web-stable": 100 - w, "web-canary": w},
                      "nginx:1", "nginx:2", 4, plugin)
    walk.wait_weight(0)

    plugin.ok("set", "image", "web", "web=nginx:2", "-n", ns)
    rollout.wait_paused(timeout=60)
    assert weights(namespace) == {"web-stable": 75, "web-canary": 25}
    walk.expect_first_step(25)

    walk.promote(4)
    walk.wait_weight(50)
    header = route(namespace, "by-header")
    assert header is not None and header["metadata"]["ownerReferences"][0]["name"] == "web"
    [rule] = header["spec"]["http"]
    assert rule["backends"] == [{"serviceName": "web-canary", "servicePort": 80, "weight": 100}]
    subject = {"scope": "Header", "name": "X-Canary"}
    assert rule["match"]["exprs"] == [{"subject": subject, "op": "Equal", "value": "yes"}]
    if simulated_traffic():
        # a tenth of the simulated requests carry the header (all to the canary), half of the rest too
        assert sandbox.threaded.metrics_url is not None
        new = rollout.status["currentPodHash"]
        shares = simulated_shares(sandbox.threaded.metrics_url, ns, "web-stable")
        assert shares.get(new, 0.0) == pytest.approx(0.1 + 0.9 * 0.5, abs=0.05)

    walk.abort(50, "from 2 to 0")
    cluster.wait("the header route gone", lambda: route(namespace, "by-header") is None, 60)

    walk.retry(25)
    # the route's unset weights are APISIX's 100 each: half the traffic, set to 0 on the first pass
    walk.promote_full([50, 0, 25, 50, 0, 25, 100, 0])
    assert route(namespace, "by-header") is None


def test_a_missing_rule_is_named(cluster: Cluster, controller: ControllerProcess | None, apisix_crd: None) -> None:
    namespace = given(cluster, "apisixbad")
    objects = manifests("nginx:1")
    objects[-1]["spec"]["strategy"]["canary"]["trafficRouting"]["apisix"]["route"]["rules"] = ["nope"]
    rollout = namespace.rollout_of(objects).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert message == (
        f"ApisixRoute {namespace.name}/web-route: spec.strategy.canary.trafficRouting.apisix.route.rules: "
        'ApisixRoute "web-route" has no spec.http rule named "nope": name the rule in route.rules, or rename the rule'
    )
    assert weights(namespace) == {"web-stable": None, "web-canary": None}
