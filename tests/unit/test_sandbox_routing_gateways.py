"""Where the sandbox sends simulated requests through the gateway kinds of `routing_gateways`."""

from __future__ import annotations

from typing import Any

from rollouts.sandbox.routing import Backend, SimRequest
from rollouts.sandbox.routing_gateways import (
    apisix_entries,
    apisix_expr_holds,
    appmesh_entries,
    appmesh_route_holds,
    mapping_entries,
    mapping_service,
    virtual_router_backends,
)

PLACE = {"hosts": ["web.example.com"], "paths": ["/*"]}


def apisix(name: str, rules: list[dict[str, Any]], namespace: str = "shop") -> dict[str, Any]:
    return {"kind": "ApisixRoute", "metadata": {"name": name, "namespace": namespace}, "spec": {"http": rules}}


def test_apisix_rule_weights_with_apisix_default_of_100() -> None:
    rule = {
        "name": "web",
        "match": PLACE,
        "backends": [{"serviceName": "web-stable"}, {"serviceName": "web-canary", "weight": 25}],
    }
    [entry] = apisix_entries([apisix("web", [rule])])
    assert entry.key == "ApisixRoute shop/web"
    assert entry.service_label == "web-stable"
    assert entry.plain == (Backend("shop", "web-stable", 100.0), Backend("shop", "web-canary", 25.0))
    assert entry.covered == {("shop", "web-stable"), ("shop", "web-canary")}


def test_apisix_header_route_of_higher_priority_takes_matching_requests() -> None:
    base = {"name": "web", "match": PLACE, "backends": [{"serviceName": "web-stable", "weight": 100}]}
    exprs = [{"subject": {"scope": "Header", "name": "X-Canary"}, "op": "Equal", "value": "yes"}]
    header = {
        "name": "web",
        "priority": 1,
        "match": {**PLACE, "exprs": exprs},
        "backends": [{"serviceName": "web-canary", "weight": 100}],
    }
    elsewhere = {**header, "match": {"hosts": ["other.example.com"], "paths": ["/*"], "exprs": exprs}}
    main = apisix("web", [base])
    main["metadata"]["annotations"] = {"sandbox.pyrollouts.io/request-header": "X-Canary: yes"}
    entries = apisix_entries([main, apisix("by-header", [header]), apisix("other", [elsewhere])])
    assert [e.key for e in entries] == ["ApisixRoute shop/web"]  # routes made only of exprs rules are no entries
    [entry] = entries
    assert entry.plain == (Backend("shop", "web-stable", 100.0),)
    assert entry.with_header == (Backend("shop", "web-canary", 100.0),)
    assert entry.header_fraction == 0.1


def test_apisix_exprs() -> None:
    request = SimRequest(path="/api/v1", headers={"x-v": "v1.2"})

    def holds(op: str, value: str = "", scope: str = "Header", name: str = "X-V", **more: Any) -> bool:
        return apisix_expr_holds({"subject": {"scope": scope, "name": name}, "op": op, "value": value, **more}, request)

    assert holds("Equal", "v1.2") and not holds("Equal", "v1")
    assert holds("NotEqual", "v1") and not holds("NotEqual", "v1.2", name="X-Missing")
    assert holds("RegexMatch", r"^v1\..*") and not holds("RegexMatch", "^v2")
    assert holds("RegexNotMatch", "^v2") and not holds("RegexMatch", "(")
    assert holds("In", set=["v1.1", "v1.2"]) and holds("NotIn", set=["v2"])
    assert holds("RegexMatch", "^/api", scope="Path") and not holds("Equal", "a", scope="Query", name="q")
    assert not holds("GreaterThan", "1")


def mapping(name: str, service: str, prefix: str = "/web/", **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Mapping",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"prefix": prefix, "service": service, **spec},
    }


def test_ambassador_canary_mapping_takes_its_percent() -> None:
    entries = mapping_entries(
        [
            mapping("web-canary", "http://web-canary.shop:80", weight=30),
            mapping("web", "web-stable:80"),
            mapping("api", "api.other", prefix="/api/"),
        ]
    )
    assert [(e.key, e.service_label) for e in entries] == [
        ("Mapping shop/web", "web-stable"),
        ("Mapping shop/api", "api"),
    ]
    assert entries[0].plain == (Backend("shop", "web-stable", 70.0), Backend("shop", "web-canary", 30.0))
    assert entries[1].plain == (Backend("other", "api", 100.0),)
    assert mapping_service(mapping("x", "svc.ns.svc.cluster.local:8080")) == ("ns", "svc")


def mesh(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def test_appmesh_routes_by_the_virtual_router_to_the_virtual_nodes_pods() -> None:
    def node(name: str, hash_: str, dns: bool = True) -> dict[str, Any]:
        spec: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "web", "rollouts-pod-template-hash": hash_}}}
        if dns:
            spec["serviceDiscovery"] = {"dns": {"hostname": f"{name}.shop.svc.cluster.local"}}
        return mesh("VirtualNode", name, spec)

    def targets(*pairs: tuple[str, int]) -> dict[str, Any]:
        return {"action": {"weightedTargets": [{"virtualNodeRef": {"name": n}, "weight": w} for n, w in pairs]}}

    beta = {"headers": [{"name": "X-Beta", "match": {"exact": "1"}}], "prefix": "/"}
    routes = [
        {"name": "primary", "httpRoute": {"match": {"prefix": "/"}, **targets(("web-canary", 20), ("web-stable", 80))}},
        {"name": "beta", "priority": 1, "httpRoute": {"match": beta, **targets(("web-canary", 100))}},
    ]
    service = mesh("VirtualService", "web", {"awsName": "web.shop.svc.cluster.local"})
    service["spec"]["provider"] = {"virtualRouter": {"virtualRouterRef": {"name": "web-router"}}}
    service["metadata"]["annotations"] = {"sandbox.pyrollouts.io/request-header": "X-Beta: 1"}
    nodes = [node("web-canary", "bbb"), node("web-stable", "aaa"), node("cloudmap", "x", dns=False)]
    [entry] = appmesh_entries([service], [mesh("VirtualRouter", "web-router", {"routes": routes})], nodes)
    assert (entry.key, entry.service_label) == ("AppMesh VirtualService shop/web", "web")
    canary = Backend("shop", "web-canary", 20.0, {"app": "web", "rollouts-pod-template-hash": "bbb"})
    stable = Backend("shop", "web-stable", 80.0, {"app": "web", "rollouts-pod-template-hash": "aaa"})
    assert entry.plain == (canary, stable)
    assert entry.with_header == (Backend("shop", "web-canary", 100.0, dict(canary.labels)),)
    assert ("shop", "web") in entry.covered
    lost = virtual_router_backends(
        mesh("VirtualRouter", "r", {"routes": [{"name": "p", "tcpRoute": targets(("cloudmap", 1))}]}),
        {("shop", "cloudmap"): nodes[2]},
        SimRequest(),
    )
    assert lost == [Backend("shop", "cloudmap", 1.0, missing_subset=True)]


def test_appmesh_header_matches() -> None:
    request = SimRequest(path="/api", headers={"x-v": "v1.2"})

    def holds(match: dict[str, Any], invert: bool = False, path: str = "/") -> bool:
        header = {"name": "X-V", "match": match, "invert": invert}
        return appmesh_route_holds({"httpRoute": {"match": {"prefix": path, "headers": [header]}}}, request)

    assert holds({"exact": "v1.2"}) and holds({"prefix": "v1"}) and holds({"suffix": ".2"})
    assert holds({"regex": r"v1\.\d"}) and not holds({"regex": "("}) and not holds({"range": {"start": 1}})
    assert holds({"exact": "v2"}, invert=True) and not holds({"exact": "v1.2"}, path="/other")
    assert appmesh_route_holds({"grpcRoute": {}}, request) and not appmesh_route_holds({"name": "x"}, request)
