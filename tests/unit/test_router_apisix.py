"""The APISIX router against recorded ApisixRoutes: the two backend weights it sets (and nothing else),
the weight it reads back (unset weights count 100), header routes as owned ApisixRoutes, and the
problems it names."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.sandbox.patches import merge_patch
from rollouts.traffic.apisix import API_VERSION, ApisixRouter
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import HeaderRoute, ObjectRef
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"

ROUTE = yaml.safe_load(
    """
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata: {name: web-route, namespace: shop, resourceVersion: "7", labels: {app: web}}
spec:
  ingressClassName: apisix
  http:
  - name: other
    match: {paths: ["/other"]}
    backends: [{serviceName: other, servicePort: 80}]
  - name: web
    priority: 3
    match: {hosts: [web.example.com], paths: ["/*"]}
    backends:
    - {serviceName: web-stable, servicePort: 80}
    - {serviceName: web-canary, servicePort: 80}
"""
)
HEADER = HeaderRoute("by-header", ({"headerName": "X-Canary", "headerValue": {"exact": "yes"}},))


def router(managed: tuple[str, ...] = (), **route: Any) -> ApisixRouter:
    config = {"route": {"name": "web-route", "rules": ["web"], **route}}
    routing: dict[str, Any] = {"apisix": config, "managedRoutes": [{"name": n} for n in managed]}
    return ApisixRouter(RouterContext("apisix", config, "web", NS, "web-stable", "web-canary", routing))


def ref(name: str = "web-route") -> ObjectRef:
    return ObjectRef(API_VERSION, "ApisixRoute", "apisixroutes", NS, name)


def weights(route: dict[str, Any], rule: str = "web") -> dict[str, Any]:
    [found] = [r for r in route["spec"]["http"] if r["name"] == rule]
    return {b["serviceName"]: b.get("weight") for b in found["backends"]}


def test_sets_the_two_backend_weights_with_the_resource_version() -> None:
    result = router().reconcile(desired(20), {ref(): ROUTE}, OWNER)
    # unset weights are APISIX's 100 each: half the traffic reaches the canary now
    assert result.actual_canary_weight == 50 and result.problems == ()
    [write] = result.writes
    assert (write.ref, write.op) == (ref(), "merge-patch")
    assert write.body["metadata"] == {"resourceVersion": "7"}
    after = merge_patch(ROUTE, write.body)
    assert weights(after) == {"web-stable": 80, "web-canary": 20}
    assert weights(after, "other") == {"other": None}  # the user's other rule is left as it was
    assert after["spec"]["http"][1]["match"] == ROUTE["spec"]["http"][1]["match"]
    again = router().reconcile(desired(20), {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20


def test_max_traffic_weight_scales_both_weights() -> None:
    [write] = router().reconcile(desired(300, max_weight=1000), {ref(): ROUTE}, OWNER).writes
    after = merge_patch(ROUTE, write.body)
    assert weights(after) == {"web-stable": 700, "web-canary": 300}
    assert router().reconcile(desired(300, max_weight=1000), {ref(): after}, OWNER).actual_canary_weight == 300


def test_rules_default_to_the_route_name() -> None:
    route = copy.deepcopy(ROUTE)
    route["spec"]["http"][1]["name"] = "web-route"
    config = {"route": {"name": "web-route"}}
    r = ApisixRouter(RouterContext("apisix", config, "web", NS, "web-stable", "web-canary", {"apisix": config}))
    [write] = r.reconcile(desired(40), {ref(): route}, OWNER).writes
    assert weights(merge_patch(route, write.body), "web-route") == {"web-stable": 60, "web-canary": 40}


def test_a_header_route_is_an_owned_apisix_route_with_exprs() -> None:
    r = router(managed=("by-header",))
    assert list(r.objects()) == [ref(), ref("by-header")]
    live = {ref(): ROUTE, ref("by-header"): None}
    result = r.reconcile(desired(0, header_routes=(HEADER,), managed_routes=("by-header",)), live, OWNER)
    assert [(w.ref.name, w.op) for w in result.writes] == [("web-route", "merge-patch"), ("by-header", "create")]
    created = result.writes[1].body
    assert created["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert "labels" not in created["metadata"]  # a GitOps tool's tracking label would get it pruned
    assert created["spec"]["ingressClassName"] == "apisix"
    [rule] = created["spec"]["http"]
    assert rule["priority"] == 4
    assert rule["backends"] == [{"serviceName": "web-canary", "servicePort": 80, "weight": 100}]
    assert rule["match"] == {
        "hosts": ["web.example.com"],
        "paths": ["/*"],
        "exprs": [{"subject": {"scope": "Header", "name": "X-Canary"}, "op": "Equal", "value": "yes"}],
    }
    # once the step's route ends, the ApisixRoute goes
    live[ref("by-header")] = created
    gone = r.reconcile(desired(0, managed_routes=("by-header",)), {**live, ref(): ROUTE}, OWNER)
    assert [(w.ref.name, w.op) for w in gone.writes] == [("web-route", "merge-patch"), ("by-header", "delete")]


def test_prefix_and_regex_headers_become_regex_matches() -> None:
    header = HeaderRoute("h", ({"headerName": "X-V", "headerValue": {"prefix": "v1."}},))
    r = router(managed=("h",))
    result = r.reconcile(desired(0, header_routes=(header,)), {ref(): ROUTE, ref("h"): None}, OWNER)
    [rule] = result.writes[-1].body["spec"]["http"]
    subject = {"scope": "Header", "name": "X-V"}
    assert rule["match"]["exprs"] == [{"subject": subject, "op": "RegexMatch", "value": r"^v1\..*"}]


def test_a_header_route_someone_else_owns_is_reported() -> None:
    theirs = {"apiVersion": API_VERSION, "kind": "ApisixRoute", "metadata": {"name": "by-header"}, "spec": {}}
    result = router(managed=("by-header",)).reconcile(
        desired(0, header_routes=(HEADER,)), {ref(): ROUTE, ref("by-header"): theirs}, OWNER
    )
    assert result.writes == ()
    [problem] = result.problems
    assert 'ApisixRoute "by-header" already exists and is not owned by Rollout "web"' in str(problem)


def test_problems_name_the_route_the_rule_and_the_backend() -> None:
    missing = router().reconcile(desired(0), {ref(): None}, OWNER)
    assert str(missing.problems[0]) == (
        'ApisixRoute shop/web-route: spec.strategy.canary.trafficRouting.apisix.route.name: ApisixRoute "web-route" '
        'not found in namespace "shop": create it or fix the name'
    )
    no_rule = router(rules=["nope"]).reconcile(desired(0), {ref(): ROUTE}, OWNER)
    assert 'has no spec.http rule named "nope"' in str(no_rule.problems[0])
    assert "trafficRouting.apisix.route.rules" in str(no_rule.problems[0])
    route = copy.deepcopy(ROUTE)
    route["spec"]["http"][1]["backends"].pop()
    no_backend = router().reconcile(desired(0), {ref(): route}, OWNER)
    assert 'no backend with serviceName "web-canary"' in str(no_backend.problems[0])
    assert no_backend.writes == ()


def test_spec_problems() -> None:
    config: dict[str, Any] = {"route": {}}
    r = ApisixRouter(RouterContext("apisix", config, "web", NS, "", "web-canary", {"apisix": config}))
    fields = [p.field for p in r.spec_problems()]
    assert fields == ["spec.strategy.canary.stableService", "spec.strategy.canary.trafficRouting.apisix.route.name"]
    assert not r.supports_mirror() and r.supports_header_routes()
