"""The Istio router against recorded VirtualService / DestinationRule objects: what it writes, what
it reads back, and what it refuses."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.traffic.istio import API_VERSION, IstioRouter
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import HeaderRoute, MirrorRoute, ObjectRef, WeightDestination
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import apply_merge_patches as applied
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"
VS_REF = ObjectRef(API_VERSION, "VirtualService", "virtualservices", NS, "web")
DR_REF = ObjectRef(API_VERSION, "DestinationRule", "destinationrules", NS, "web")

HOST_LEVEL = yaml.safe_load(
    """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: web, namespace: shop, resourceVersion: "7"}
spec:
  hosts: [web.example.com]
  http:
  - name: primary
    route:
    - destination: {host: web-stable, port: {number: 80}}
      weight: 100
    - destination: {host: web-canary.shop.svc.cluster.local, port: {number: 80}}
      weight: 0
  - name: other
    route:
    - destination: {host: elsewhere}
  tls:
  - match: [{port: 443, sniHosts: [web.example.com]}]
    route:
    - destination: {host: web-stable}
      weight: 100
    - destination: {host: web-canary}
      weight: 0
  tcp:
  - match: [{port: 9000}]
    route:
    - destination: {host: web-stable}
      weight: 100
    - destination: {host: web-canary}
      weight: 0
"""
)

SUBSET_VS = yaml.safe_load(
    """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: web, namespace: shop, resourceVersion: "3"}
spec:
  hosts: [web]
  http:
  - name: primary
    route:
    - destination: {host: web, subset: stable}
      weight: 100
    - destination: {host: web, subset: canary}
      weight: 0
"""
)

SUBSET_DR = yaml.safe_load(
    """
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: web, namespace: shop, resourceVersion: "4"}
spec:
  host: web
  subsets:
  - name: stable
    labels: {app: web, rollouts-pod-template-hash: aaa}
  - name: canary
    labels: {app: web, rollouts-pod-template-hash: aaa}
"""
)


def istio(
    entry: dict[str, Any], namespace: str = NS, stable: str = "web-stable", canary: str = "web-canary"
) -> IstioRouter:
    return IstioRouter(RouterContext("istio", entry, "web", namespace, stable, canary, {"istio": entry}))


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(d["destination"].get("subset") or d["destination"]["host"], d.get("weight")) for d in route["route"]]


def test_host_level_http_route_weights_written_and_other_routes_untouched() -> None:
    router = istio({"virtualService": {"name": "web", "routes": ["primary"]}}, NS)
    assert router.objects() == [VS_REF]
    assert router.spec_problems() == []
    live = {VS_REF: copy.deepcopy(HOST_LEVEL)}
    result = router.reconcile(desired(20), live, OWNER)
    assert result.problems == ()
    assert result.actual_canary_weight == 0
    (write,) = result.writes
    assert set(write.body["spec"]) == {"http"}
    after = applied(result, live)[VS_REF]
    assert weights(after["spec"]["http"][0]) == [("web-stable", 80), ("web-canary.shop.svc.cluster.local", 20)]
    assert after["spec"]["http"][1] == HOST_LEVEL["spec"]["http"][1]
    assert after["spec"]["tls"] == HOST_LEVEL["spec"]["tls"]
    # read back: in place, nothing more to write
    again = router.reconcile(desired(20), {VS_REF: after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20


def test_tls_and_tcp_routes_by_port_and_sni() -> None:
    entry = {
        "virtualService": {
            "name": "web",
            "routes": ["primary"],
            "tlsRoutes": [{"port": 443, "sniHosts": ["web.example.com"]}],
            "tcpRoutes": [{"port": 9000}],
        }
    }
    live = {VS_REF: copy.deepcopy(HOST_LEVEL)}
    result = istio(entry, NS).reconcile(desired(35), live, OWNER)
    assert result.problems == ()
    after = applied(result, live)[VS_REF]["spec"]
    assert weights(after["tls"][0]) == [("web-stable", 65), ("web-canary", 35)]
    assert weights(after["tcp"][0]) == [("web-stable", 65), ("web-canary", 35)]


def test_single_http_route_needs_no_name_and_max_weight_scales_to_percent() -> None:
    vs = copy.deepcopy(HOST_LEVEL)
    del vs["spec"]["http"][1], vs["spec"]["http"][0]["name"]
    live = {VS_REF: vs}
    router = istio({"virtualService": {"name": "web"}}, NS)
    result = router.reconcile(desired(50, max_weight=200), live, OWNER)
    after = applied(result, live)[VS_REF]
    assert weights(after["spec"]["http"][0])[1] == ("web-canary.shop.svc.cluster.local", 25)
    assert router.reconcile(desired(50, max_weight=200), {VS_REF: after}, OWNER).actual_canary_weight == 50


def test_several_virtual_services_one_in_another_namespace() -> None:
    other = ObjectRef(API_VERSION, "VirtualService", "virtualservices", "edge", "gw")
    router = istio(
        {"virtualServices": [{"name": "web", "routes": ["primary"]}, {"name": "gw.edge", "routes": ["primary"]}]}, NS
    )
    assert router.objects() == [VS_REF, other]
    gw = copy.deepcopy(HOST_LEVEL)
    gw["metadata"].update(name="gw", namespace="edge", resourceVersion="9")
    for dest in gw["spec"]["http"][0]["route"]:
        dest["destination"]["host"] = dest["destination"]["host"].split(".")[0] + ".shop.svc.cluster.local"
    live = {VS_REF: copy.deepcopy(HOST_LEVEL), other: gw}
    result = router.reconcile(desired(10), live, OWNER)
    assert result.problems == () and [w.ref for w in result.writes] == [VS_REF, other]
    after = applied(result, live)
    assert weights(after[other]["spec"]["http"][0])[1] == ("web-canary.shop.svc.cluster.local", 10)
    # one VirtualService lagging behind: that is the weight read back
    half = {VS_REF: after[VS_REF], other: gw}
    assert router.reconcile(desired(10), half, OWNER).actual_canary_weight == 0
    assert router.reconcile(desired(10), after, OWNER).actual_canary_weight == 10
    # a host in the wrong namespace is not the Service
    gw["spec"]["http"][0]["route"][1]["destination"]["host"] = "web-canary.edge.svc.cluster.local"
    wrong = router.reconcile(desired(10), {VS_REF: HOST_LEVEL, other: gw}, OWNER)
    assert [(p.ref, p.field) for p in wrong.problems] == [(other, "spec.http[0].route")] and wrong.writes == ()


def test_subset_level_moves_the_canary_subset_only_once_available() -> None:
    entry = {
        "virtualService": {"name": "web", "routes": ["primary"]},
        "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"},
    }
    router = istio(entry, NS)
    assert router.objects() == [VS_REF, DR_REF]
    live = {VS_REF: copy.deepcopy(SUBSET_VS), DR_REF: copy.deepcopy(SUBSET_DR)}
    waiting = router.reconcile(desired(20, stable_service="", canary_service="", canary_available=False), live, OWNER)
    assert waiting.problems == ()
    assert [w.ref for w in waiting.writes] == [VS_REF]  # the canary subset still points at aaa
    assert waiting.actual_canary_weight == 0 and waiting.notes["canarySubsetReady"] is False

    ready = router.reconcile(desired(20, stable_service="", canary_service=""), live, OWNER)
    assert [w.ref for w in ready.writes] == [DR_REF, VS_REF]  # subsets first, then weights
    after = applied(ready, live)
    subsets = {s["name"]: s["labels"] for s in after[DR_REF]["spec"]["subsets"]}
    assert subsets == {
        "stable": {"app": "web", "rollouts-pod-template-hash": "aaa"},
        "canary": {"app": "web", "rollouts-pod-template-hash": "bbb"},
    }
    assert weights(after[VS_REF]["spec"]["http"][0]) == [("stable", 80), ("canary", 20)]
    settled = router.reconcile(desired(20, stable_service="", canary_service=""), after, OWNER)
    assert settled.writes == () and settled.actual_canary_weight == 20


def test_header_and_mirror_routes_placed_first_in_managed_routes_order_then_removed() -> None:
    router = istio({"virtualService": {"name": "web", "routes": ["primary"]}}, NS)
    header = HeaderRoute("by-header", ({"headerName": "X-Canary", "headerValue": {"exact": "yes"}},))
    mirror = MirrorRoute(
        "mirror-get",
        ({"method": {"exact": "GET"}, "path": {"prefix": "/api"}, "headers": {"A": {"regex": "b.*"}}},),
        40,
    )
    want = desired(10, header_routes=(header,), mirror_routes=(mirror,), managed_routes=("mirror-get", "by-header"))
    live = {VS_REF: copy.deepcopy(HOST_LEVEL)}
    result = router.reconcile(want, live, OWNER)
    assert result.problems == ()
    http = applied(result, live)[VS_REF]["spec"]["http"]
    assert [r.get("name") for r in http] == ["mirror-get", "by-header", "primary", "other"]
    assert http[0] == {
        "name": "mirror-get",
        "match": [{"method": {"exact": "GET"}, "uri": {"prefix": "/api"}, "headers": {"A": {"regex": "b.*"}}}],
        "route": http[2]["route"],
        "mirror": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}},
        "mirrorPercentage": {"value": 40.0},
    }
    assert http[1] == {
        "name": "by-header",
        "match": [{"headers": {"X-Canary": {"exact": "yes"}}}],
        "route": [
            {"destination": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 100}
        ],
    }
    # idempotent with the managed routes in place
    assert router.reconcile(want, {VS_REF: applied(result, live)[VS_REF]}, OWNER).writes == ()
    # unset: the managed routes go, the rest stays
    cleared = router.reconcile(desired(10, managed_routes=("mirror-get", "by-header")), applied(result, live), OWNER)
    http = applied(cleared, applied(result, live))[VS_REF]["spec"]["http"]
    assert [r.get("name") for r in http] == ["primary", "other"]


def test_header_route_uses_the_canary_subset_with_a_destination_rule() -> None:
    entry = {
        "virtualService": {"name": "web"},
        "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"},
    }
    header = HeaderRoute("h", ({"headerName": "X-Canary", "headerValue": {"prefix": "y"}},))
    live = {VS_REF: copy.deepcopy(SUBSET_VS), DR_REF: copy.deepcopy(SUBSET_DR)}
    result = istio(entry, NS).reconcile(desired(0, header_routes=(header,), managed_routes=("h",)), live, OWNER)
    http = applied(result, live)[VS_REF]["spec"]["http"]
    assert http[0]["route"] == [{"destination": {"host": "web", "subset": "canary"}, "weight": 100}]


def test_bad_input_is_named_and_moves_no_weight() -> None:
    router = istio({"virtualService": {"name": "web", "routes": ["primary", "missing"]}}, NS)
    result = router.reconcile(desired(20), {VS_REF: copy.deepcopy(HOST_LEVEL)}, OWNER)
    assert result.writes == ()
    assert [(p.ref, p.field) for p in result.problems] == [
        (VS_REF, "spec.strategy.canary.trafficRouting.istio.virtualService.routes")
    ]
    assert "'missing'" in str(result.problems[0]) and "VirtualService shop/web" in str(result.problems[0])

    absent = router.reconcile(desired(20), {VS_REF: None}, OWNER)
    assert absent.writes == () and "does not exist" in str(absent.problems[0])

    primary_only = istio({"virtualService": {"name": "web", "routes": ["primary"]}}, NS)
    wrong_hosts = primary_only.reconcile(
        desired(20, canary_service="web-preview"), {VS_REF: copy.deepcopy(HOST_LEVEL)}, OWNER
    )
    (problem,) = wrong_hosts.problems
    assert problem.field == "spec.http[0].route" and "'web-preview' (canary)" in problem.message

    ambiguous = istio({"virtualService": {"name": "web"}}, NS).reconcile(desired(20), {VS_REF: HOST_LEVEL}, OWNER)
    assert "spec.http has 2 routes" in str(ambiguous.problems[0])

    no_tcp = istio({"virtualService": {"name": "web", "tcpRoutes": [{"port": 1}]}}, NS)
    assert "no tcp route in spec.tcp matches port 1" in str(
        no_tcp.reconcile(desired(5), {VS_REF: HOST_LEVEL}, OWNER).problems[0]
    )

    unmanaged = router.reconcile(
        desired(20, header_routes=(HeaderRoute("h", ()),)),
        {VS_REF: copy.deepcopy(HOST_LEVEL) | {"spec": {"http": HOST_LEVEL["spec"]["http"][:1]}}},
        OWNER,
    )
    assert any("not listed in managedRoutes" in str(p) for p in unmanaged.problems) and unmanaged.writes == ()


def test_destination_rule_problems() -> None:
    entry = {
        "virtualService": {"name": "web"},
        "destinationRule": {"name": "web", "canarySubsetName": "preview", "stableSubsetName": "stable"},
    }
    router = istio(entry, NS)
    result = router.reconcile(desired(20), {VS_REF: copy.deepcopy(SUBSET_VS), DR_REF: copy.deepcopy(SUBSET_DR)}, OWNER)
    assert result.writes == ()
    assert any(p.ref == DR_REF and p.field == "spec.subsets" and "'preview'" in p.message for p in result.problems)
    gone = router.reconcile(desired(20), {VS_REF: copy.deepcopy(SUBSET_VS), DR_REF: None}, OWNER)
    assert any(p.ref == DR_REF and "does not exist" in p.message for p in gone.problems)


def test_spec_problems() -> None:
    assert istio({}, NS).spec_problems()[0].field == "spec.strategy.canary.trafficRouting.istio"
    both = istio({"virtualService": {"name": "a"}, "virtualServices": [{"name": "b"}]}, NS)
    assert "not both" in both.spec_problems()[0].message
    same = istio(
        {
            "virtualService": {"name": "a"},
            "destinationRule": {"name": "d", "canarySubsetName": "x", "stableSubsetName": "x"},
        },
        NS,
    )
    assert [p.field for p in same.spec_problems()] == [
        "spec.strategy.canary.trafficRouting.istio.destinationRule.canarySubsetName"
    ]
    assert istio({"virtualService": {"name": "a"}}, NS).supports_mirror()


def test_services_are_required_for_host_level_routing_only() -> None:
    host_level = istio({"virtualService": {"name": "web"}}, stable="", canary="")
    assert [p.field for p in host_level.spec_problems()] == [
        "spec.strategy.canary.canaryService",
        "spec.strategy.canary.stableService",
    ]
    subset = {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"}
    assert (
        istio({"virtualService": {"name": "web"}, "destinationRule": subset}, stable="", canary="").spec_problems()
        == []
    )


def test_registered_under_its_trafficrouting_key() -> None:
    from rollouts.traffic.registry import build_routers

    routers, problems = build_routers(
        {"istio": {"virtualService": {"name": "web"}}, "gatewayAPI": {"httpRoute": "web"}}, "web", NS, "s", "c"
    )
    assert problems == [] and sorted(r.name for r in routers) == ["gatewayAPI", "istio"]


def test_weights_come_down_before_the_canary_subset_moves() -> None:
    entry = {
        "virtualService": {"name": "web"},
        "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"},
    }
    vs = copy.deepcopy(SUBSET_VS)
    vs["spec"]["http"][0]["route"][0]["weight"], vs["spec"]["http"][0]["route"][1]["weight"] = 0, 100
    live = {VS_REF: vs, DR_REF: copy.deepcopy(SUBSET_DR)}
    # a new canary (bbb) while the canary subset (on aaa) still has all the weight
    result = istio(entry, stable="", canary="").reconcile(
        desired(20, stable_service="", canary_service=""), live, OWNER
    )
    assert [w.ref for w in result.writes] == [VS_REF, DR_REF]
    after = applied(result, live)
    assert weights(after[VS_REF]["spec"]["http"][0]) == [("stable", 80), ("canary", 20)]
    assert subset_hashes(after[DR_REF]) == {"stable": "aaa", "canary": "bbb"}


def subset_hashes(dr: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["labels"]["rollouts-pod-template-hash"] for s in dr["spec"]["subsets"]}


def test_experiment_services_get_destinations_of_their_own_and_lose_them_when_retired() -> None:
    router = istio({"virtualService": {"name": "web", "routes": ["primary"]}}, NS)
    live = {VS_REF: copy.deepcopy(HOST_LEVEL)}
    running = desired(
        20, additional=(WeightDestination("exp-baseline", "ccc", 10), WeightDestination("exp-canary", "ddd", 10))
    )
    after = applied(router.reconcile(running, live, OWNER), live)[VS_REF]
    assert weights(after["spec"]["http"][0]) == [
        ("web-stable", 60),
        ("web-canary.shop.svc.cluster.local", 20),
        ("exp-baseline", 10),
        ("exp-canary", 10),
    ]
    assert after["spec"]["http"][1] == HOST_LEVEL["spec"]["http"][1]  # an unnamed route is not split
    again = router.reconcile(running, {VS_REF: after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20
    ended = desired(20, retired_services=frozenset({"exp-baseline", "exp-canary"}))
    back = applied(router.reconcile(ended, {VS_REF: after}, OWNER), {VS_REF: after})[VS_REF]
    assert weights(back["spec"]["http"][0]) == [("web-stable", 80), ("web-canary.shop.svc.cluster.local", 20)]


def test_subset_level_routes_give_experiment_services_a_host_destination() -> None:
    router = istio(
        {
            "virtualService": {"name": "web"},
            "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"},
        },
        NS,
    )
    live = {VS_REF: copy.deepcopy(SUBSET_VS), DR_REF: copy.deepcopy(SUBSET_DR)}
    running = desired(0, additional=(WeightDestination("exp-canary", "ddd", 25),))
    after = applied(router.reconcile(running, live, OWNER), live)[VS_REF]
    assert weights(after["spec"]["http"][0]) == [("stable", 75), ("canary", 0), ("exp-canary", 25)]


def test_additional_subsets_keep_their_weight_out_of_the_stables() -> None:
    router = istio(
        {
            "virtualService": {"name": "web"},
            "destinationRule": {
                "name": "web",
                "canarySubsetName": "canary",
                "stableSubsetName": "stable",
                "additionalSubsetNames": ["experiment"],
            },
        },
        NS,
    )
    vs = copy.deepcopy(SUBSET_VS)
    vs["spec"]["http"][0]["route"] = [
        {"destination": {"host": "web", "subset": "stable"}, "weight": 80},
        {"destination": {"host": "web", "subset": "canary"}, "weight": 0},
        {"destination": {"host": "experimental-host", "subset": "experiment"}, "weight": 20},
    ]
    live = {VS_REF: vs, DR_REF: copy.deepcopy(SUBSET_DR)}
    after = applied(router.reconcile(desired(30), live, OWNER), live)[VS_REF]
    assert weights(after["spec"]["http"][0]) == [("stable", 50), ("canary", 30), ("experiment", 20)]
