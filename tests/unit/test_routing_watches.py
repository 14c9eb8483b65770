"""Routing objects read from the cache only while their kind's watch is complete: the kinds come from the
router registry, a listing fills (and prunes) the cache, a kind that stops being served is read with a GET
again, and every object a listing brings or takes away requeues the Rollouts that name it."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import Cache, Kind
from rollouts.controller.routingwatch import RoutingWatches
from rollouts.traffic.registry import ROUTERS, routed_kinds, router_class
from rollouts.traffic.router import ObjectRef

VS = ObjectRef("networking.istio.io/v1beta1", "VirtualService", "virtualservices", "ns", "web")


def vs(name: str, uid: str, rv: str = "1", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": rv}}


def watches() -> tuple[RoutingWatches, Cache, list[str]]:
    cache = Cache()
    changed: list[str] = []

    def record(kind: Kind, obj: dict[str, Any]) -> None:
        changed.append(f"{kind.plural}/{obj['metadata']['name']}")

    return RoutingWatches(cache, routed_kinds(), record), cache, changed


def test_every_routers_kinds_are_watched() -> None:
    plurals = {k.plural for k in routed_kinds()}
    assert {"ingresses", "virtualservices", "destinationrules", "trafficsplits", "httproutes"} <= plurals
    for key in ROUTERS:  # a router that names a kind in objects() declares it in KINDS
        assert getattr(router_class(key), "KINDS", ()), key


def test_objects_are_read_from_the_cache_once_listed_and_by_get_once_unserved() -> None:
    routing, cache, changed = watches()
    assert not routing.cached(VS)
    routing.listed("virtualservices", None, [vs("web", "u1")])
    assert routing.cached(VS)
    assert changed == ["virtualservices/web"]
    routing.unserved("virtualservices", None)
    assert not routing.cached(VS)
    assert list(cache.all(routing.kinds["virtualservices"])) == []  # none exist while the kind is not served


def test_a_namespaced_listing_covers_its_namespace_and_prunes_only_there() -> None:
    routing, cache, changed = watches()
    kind = routing.kinds["virtualservices"]
    routing.listed("virtualservices", "ns", [vs("web", "u1"), vs("gone", "u2")])
    routing.listed("virtualservices", "other", [vs("elsewhere", "u3", namespace="other")])
    changed.clear()
    routing.listed("virtualservices", "ns", [vs("web", "u1", rv="2")])  # a new listing (after a 410): one went
    assert routing.cached(VS)
    assert not routing.cached(ObjectRef(VS.api_version, VS.kind, VS.plural, "third", "web"))
    assert sorted(o["metadata"]["name"] for o in cache.all(kind)) == ["elsewhere", "web"]
    assert sorted(changed) == ["virtualservices/gone", "virtualservices/web"]
