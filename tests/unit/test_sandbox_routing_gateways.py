"""Where the sandbox sends simulated requests through the gateway kinds of `routing_gateways`."""

from __future__ import annotations

from typing import Any

from rollouts.sandbox.routing import Backend, SimRequest
from rollouts.sandbox.routing_gateways import apisix_entries, apisix_expr_holds, mapping_entries, mapping_service

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
