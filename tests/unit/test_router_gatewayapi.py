"""The Gateway API router against recorded HTTPRoute / GRPCRoute objects."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.traffic.gatewayapi import API_VERSION, GatewayAPIRouter
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import HeaderRoute, MirrorRoute, ObjectRef
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import apply_merge_patches as applied
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"
HTTP_REF = ObjectRef(API_VERSION, "HTTPRoute", "httproutes", NS, "web")
GRPC_REF = ObjectRef(API_VERSION, "GRPCRoute", "grpcroutes", NS, "web-grpc")

HTTP_ROUTE = yaml.safe_load(
    """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop, resourceVersion: "12"}
spec:
  parentRefs: [{name: public}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
    - path: {type: PathPrefix, value: /v2}
      headers: [{type: Exact, name: X-Tenant, value: a}]
    backendRefs:
    - {name: web-stable, port: 80, weight: 100}
    - {name: web-canary, port: 80, weight: 0}
  - matches:
    - path: {type: PathPrefix, value: /static}
    backendRefs:
    - {name: assets, port: 80}
"""
)

GRPC_ROUTE = yaml.safe_load(
    """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: web-grpc, namespace: shop, resourceVersion: "5"}
spec:
  rules:
  - backendRefs:
    - {name: web-stable, port: 9090}
    - {name: web-canary, port: 9090}
"""
)


def gateway(
    entry: dict[str, Any], namespace: str = NS, stable: str = "web-stable", canary: str = "web-canary"
) -> GatewayAPIRouter:
    return GatewayAPIRouter(RouterContext("gatewayAPI", entry, "web", namespace, stable, canary, {"gatewayAPI": entry}))


def test_http_route_weights_and_read_back() -> None:
    router = gateway({"httpRoute": "web"}, NS)
    assert router.objects() == [HTTP_REF] and router.spec_problems() == []
    assert not router.supports_mirror() and router.supports_header_routes()
    live = {HTTP_REF: copy.deepcopy(HTTP_ROUTE)}
    result = router.reconcile(desired(30), live, OWNER)
    assert result.problems == () and result.actual_canary_weight == 0
    after = applied(result, live)[HTTP_REF]
    assert after["spec"]["rules"][0]["backendRefs"] == [
        {"name": "web-stable", "port": 80, "weight": 70},
        {"name": "web-canary", "port": 80, "weight": 30},
    ]
    assert after["spec"]["rules"][1] == HTTP_ROUTE["spec"]["rules"][1]
    assert after["spec"]["parentRefs"] == [{"name": "public"}]
    again = router.reconcile(desired(30), {HTTP_REF: after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 30


def test_max_traffic_weight_is_relative_and_unset_weights_count_one() -> None:
    router = gateway({"grpcRoute": "web-grpc"}, NS)
    live = {GRPC_REF: copy.deepcopy(GRPC_ROUTE)}
    result = router.reconcile(desired(250, max_weight=1000), live, OWNER)
    assert result.actual_canary_weight == 500  # 1:1 before the write
    after = applied(result, live)[GRPC_REF]
    assert [b["weight"] for b in after["spec"]["rules"][0]["backendRefs"]] == [750, 250]


def test_several_routes_in_another_namespace_and_header_routes_only_where_asked() -> None:
    router = gateway(
        {
            "namespace": "edge",
            "httpRoutes": [{"name": "web", "useHeaderRoutes": True}, {"name": "web-internal"}],
            "grpcRoute": "web-grpc",
        },
        NS,
    )
    refs = [ObjectRef(API_VERSION, r.kind, r.plural, "edge", r.name) for r in (HTTP_REF, HTTP_REF, GRPC_REF)]
    refs[1] = ObjectRef(API_VERSION, "HTTPRoute", "httproutes", "edge", "web-internal")
    assert router.objects() == refs
    live: dict[ObjectRef, Any] = {}
    for ref, source in zip(refs, (HTTP_ROUTE, HTTP_ROUTE, GRPC_ROUTE), strict=True):
        obj = copy.deepcopy(source)
        obj["metadata"].update(name=ref.name, namespace="edge")
        for rule in obj["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                backend["namespace"] = NS  # across namespaces, via a ReferenceGrant
        live[ref] = obj
    header = HeaderRoute("by-header", ({"headerName": "X-Canary", "headerValue": {"exact": "yes"}},))
    result = router.reconcile(desired(10, header_routes=(header,), managed_routes=("by-header",)), live, OWNER)
    assert result.problems == () and [w.ref for w in result.writes] == refs
    after = applied(result, live)
    assert [r.get("name") for r in after[refs[0]]["spec"]["rules"]] == ["by-header", None, None]
    assert [r.get("name") for r in after[refs[1]]["spec"]["rules"]] == [None, None]  # useHeaderRoutes unset
    assert [r.get("name") for r in after[refs[2]]["spec"]["rules"]] == ["by-header", None]
    assert after[refs[2]]["spec"]["rules"][0]["matches"] == [
        {"headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}]}
    ]


def test_header_route_combines_with_each_original_match_and_is_removed_when_unset() -> None:
    router = gateway({"httpRoute": "web"}, NS)
    header = HeaderRoute(
        "by-header",
        (
            {"headerName": "X-Canary", "headerValue": {"prefix": "yes."}},
            {"headerName": "X-User", "headerValue": {"regex": "qa-.*"}},
        ),
    )
    want = desired(10, header_routes=(header,), managed_routes=("by-header",))
    live = {HTTP_REF: copy.deepcopy(HTTP_ROUTE)}
    result = router.reconcile(want, live, OWNER)
    after = applied(result, live)[HTTP_REF]
    added = after["spec"]["rules"][0]
    wanted_headers = [
        {"type": "RegularExpression", "name": "X-Canary", "value": "^yes\\..*"},
        {"type": "RegularExpression", "name": "X-User", "value": "qa-.*"},
    ]
    assert added == {
        "name": "by-header",
        "matches": [
            {"path": {"type": "PathPrefix", "value": "/api"}, "headers": wanted_headers},
            {
                "path": {"type": "PathPrefix", "value": "/v2"},
                "headers": [{"type": "Exact", "name": "X-Tenant", "value": "a"}, *wanted_headers],
            },
        ],
        "backendRefs": [{"name": "web-canary", "port": 80}],
    }
    assert after["spec"]["rules"][1]["backendRefs"][1]["weight"] == 10
    assert router.reconcile(want, {HTTP_REF: after}, OWNER).writes == ()
    cleared = router.reconcile(desired(0, managed_routes=("by-header",)), {HTTP_REF: after}, OWNER)
    final = applied(cleared, {HTTP_REF: after})[HTTP_REF]
    assert len(final["spec"]["rules"]) == 2 and "name" not in final["spec"]["rules"][0]
    assert final["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0


def test_header_routes_for_several_split_rules_get_numbered_names() -> None:
    route = copy.deepcopy(HTTP_ROUTE)
    route["spec"]["rules"][1]["backendRefs"] = copy.deepcopy(route["spec"]["rules"][0]["backendRefs"])
    header = HeaderRoute("h", ({"headerName": "X", "headerValue": {"exact": "1"}},))
    router = gateway({"httpRoute": "web"}, NS)
    want = desired(50, header_routes=(header,), managed_routes=("h",))
    after = applied(router.reconcile(want, {HTTP_REF: route}, OWNER), {HTTP_REF: route})[HTTP_REF]
    assert [r.get("name") for r in after["spec"]["rules"]] == ["h-0", "h-1", None, None]
    assert router.reconcile(want, {HTTP_REF: after}, OWNER).writes == ()


def test_bad_input_is_named_and_moves_no_weight() -> None:
    router = gateway({"httpRoute": "web"}, NS)
    absent = router.reconcile(desired(10), {HTTP_REF: None}, OWNER)
    assert absent.writes == () and str(absent.problems[0]).startswith(
        "HTTPRoute shop/web: spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: the HTTPRoute does not exist"
    )
    wrong = router.reconcile(desired(10, canary_service="web-preview"), {HTTP_REF: copy.deepcopy(HTTP_ROUTE)}, OWNER)
    (problem,) = wrong.problems
    assert problem.field == "spec.rules[].backendRefs" and "'web-preview'" in problem.message and wrong.writes == ()
    mirror = router.reconcile(
        desired(10, mirror_routes=(MirrorRoute("m", (), 50),), managed_routes=("m",)),
        {HTTP_REF: copy.deepcopy(HTTP_ROUTE)},
        OWNER,
    )
    assert mirror.writes == () and "cannot mirror" in str(mirror.problems[0])
    unmanaged = router.reconcile(
        desired(10, header_routes=(HeaderRoute("h", ()),)), {HTTP_REF: copy.deepcopy(HTTP_ROUTE)}, OWNER
    )
    assert unmanaged.writes == () and "not listed in managedRoutes" in str(unmanaged.problems[0])
    assert gateway({}, NS).spec_problems()[0].field == "spec.strategy.canary.trafficRouting.gatewayAPI"
    both = gateway({"httpRoute": "a", "httpRoutes": [{"name": "b"}]}, NS)
    assert "not both" in both.spec_problems()[0].message


def test_lint_rejects_mirror_steps_and_missing_services() -> None:
    from rollouts import schema
    from rollouts.cli import lint

    def rollout(canary: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "pyrollouts.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "w", "image": "x"}]},
                },
                "strategy": {"canary": canary},
            },
        }

    mirror = rollout(
        {
            "canaryService": "web-canary",
            "stableService": "web-stable",
            "trafficRouting": {"gatewayAPI": {"httpRoute": "web"}, "managedRoutes": [{"name": "m"}]},
            "steps": [{"setMirrorRoute": {"name": "m", "match": [{"path": {"prefix": "/"}}], "percentage": 10}}],
        }
    )
    no_services = rollout({"trafficRouting": {"gatewayAPI": {"httpRoute": "web"}}, "steps": [{"setWeight": 10}]})
    _, findings = lint.lint_documents([mirror, no_services], schema.load_crds())
    texts = [str(f) for f in findings]
    assert any("traffic router gatewayAPI cannot do setMirrorRoute" in t for t in texts), texts
    assert any("spec.strategy.canary.canaryService" in t for t in texts), texts
