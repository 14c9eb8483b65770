"""The Traefik router against recorded TraefikService objects: the weights it writes (only the canary's and
the stable's), the weight it reads back, maxTrafficWeight, and the problems it reports."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.traffic.registry import RouterContext, build_routers
from rollouts.traffic.router import ObjectRef
from rollouts.traffic.traefik import API_VERSION, TraefikRouter
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import apply_merge_patches
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"

SERVICE = yaml.safe_load(
    """
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: web, namespace: shop, resourceVersion: "3"}
spec:
  weighted:
    sticky: {cookie: {name: lb}}
    services:
    - {name: web-stable, port: 80, weight: 100}
    - {name: web-canary, port: 80, weight: 0}
    - {name: web-mirror, kind: TraefikService, weight: 5}
"""
)


def router(**config: Any) -> TraefikRouter:
    config = {"weightedTraefikServiceName": "web", **config}
    routing = {"traefik": config}
    return TraefikRouter(RouterContext("traefik", config, "web", NS, "web-stable", "web-canary", routing))


def ref() -> ObjectRef:
    return ObjectRef(API_VERSION, "TraefikService", "traefikservices", NS, "web")


def weights(obj: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(s["name"], s.get("weight")) for s in obj["spec"]["weighted"]["services"]]


def test_moves_only_the_two_weights_and_reads_them_back() -> None:
    r = router()
    assert list(r.objects()) == [ref()]
    live = {ref(): copy.deepcopy(SERVICE)}
    result = r.reconcile(desired(30), live, OWNER)
    assert result.actual_canary_weight == 0 and not result.problems
    after = apply_merge_patches(result, live)[ref()]
    assert weights(after) == [("web-stable", 70), ("web-canary", 30), ("web-mirror", 5)]
    assert after["spec"]["weighted"]["sticky"] == {"cookie": {"name": "lb"}}
    again = r.reconcile(desired(30), {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 30


def test_max_traffic_weight_and_unset_weights() -> None:
    live = copy.deepcopy(SERVICE)
    for service in live["spec"]["weighted"]["services"]:
        service.pop("weight")
    assert router().reconcile(desired(0, max_weight=10), {ref(): live}, OWNER).actual_canary_weight == 5
    after = apply_merge_patches(router().reconcile(desired(2, max_weight=10), {ref(): live}, OWNER), {ref(): live})
    assert weights(after[ref()])[:2] == [("web-stable", 8), ("web-canary", 2)]


def test_problems_name_the_object_field_and_fix() -> None:
    missing = router().reconcile(desired(10), {ref(): None}, OWNER)
    assert 'TraefikService "web" not found in namespace "shop"' in str(missing.problems[0])
    lacking = copy.deepcopy(SERVICE)
    lacking["spec"]["weighted"]["services"] = lacking["spec"]["weighted"]["services"][:1]
    result = router().reconcile(desired(10), {ref(): lacking}, OWNER)
    assert result.writes == () and result.problems[0].field == "spec.weighted.services"
    assert 'no weighted service "web-canary"' in result.problems[0].message
    [problem] = router(weightedTraefikServiceName="").spec_problems()
    assert problem.field == "spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName"


def test_registered_under_traefik_without_header_or_mirror_routes() -> None:
    routers, problems = build_routers({"traefik": {"weightedTraefikServiceName": "web"}}, "web", NS, "s", "c")
    assert not problems and [r.name for r in routers] == ["traefik"]
    assert not routers[0].supports_header_routes() and not routers[0].supports_mirror()
