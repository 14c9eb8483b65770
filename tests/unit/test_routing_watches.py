"""Routing objects read from the cache only while their kind's watch is complete: the kinds come from the
router registry, a listing fills (and prunes) the cache, a kind that stops being served is read with a GET
again, and every object a listing brings or takes away requeues the Rollouts that name it."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import Cache, Kind
from rollouts.controller.routingwatch import RoutingWatches, ref_kind
from rollouts.traffic.registry import ROUTERS, build_routers, followed_refs, routed_kinds
from rollouts.traffic.router import ObjectRef, RoutedKind

VS = ObjectRef("networking.istio.io/v1beta1", "VirtualService", "virtualservices", "ns", "web")
ISTIO_VS = "virtualservices.networking.istio.io"


def vs(name: str, uid: str, rv: str = "1", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": rv}}


def watches() -> tuple[RoutingWatches, Cache, list[str]]:
    cache = Cache()
    changed: list[str] = []

    def record(kind: Kind, obj: dict[str, Any]) -> None:
        changed.append(f"{kind.plural}/{obj['metadata']['name']}")

    return RoutingWatches(cache, routed_kinds(), record), cache, changed


ALL_ROUTERS: dict[str, Any] = {
    "nginx": {"stableIngress": "web"},
    "smi": {"trafficSplitName": "split"},
    "istio": {"virtualService": {"name": "vs"}, "destinationRule": {"name": "dr", "canarySubsetName": "c",
                                                                  "stableSubsetName": "s"}},
    "gatewayAPI": {"httpRoute": "http", "grpcRoute": "grpc"},
    "alb": {"ingress": "web", "servicePort": 80},
    "traefik": {"weightedTraefikServiceName": "weighted"},
    "apisix": {"route": {"name": "route"}},
    "ambassador": {"mappings": ["mapping"]},
    "appMesh": {"virtualService": {"name": "mesh-vs"},
                "virtualNodeGroup": {"canaryVirtualNodeRef": {"name": "c"}, "stableVirtualNodeRef": {"name": "s"}}},
}  # fmt: skip
MESH_VS = ObjectRef("appmesh.k8s.aws/v1beta2", "VirtualService", "virtualservices", "ns", "mesh-vs")


def resource(ref: ObjectRef | RoutedKind) -> str:
    return ref_kind(ref).resource


def test_every_routers_kinds_are_watched() -> None:
    assert set(ALL_ROUTERS) == set(ROUTERS)  # a router added to the registry is added here
    routers, problems = build_routers(ALL_ROUTERS, "ro", "ns", "stable", "canary")
    assert not problems and len(routers) == len(ROUTERS)
    mesh_vs = {"spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": "mesh-router"}}}}}
    for router in routers:  # every object a router reads, and every one it follows, is of a kind it declares
        refs = list(router.objects())
        refs += followed_refs([router], {MESH_VS: mesh_vs} if MESH_VS in refs else {})
        declared = {resource(k) for k in router.KINDS}
        assert refs and {resource(ref) for ref in refs} <= declared, router.name
    assert {resource(k) for k in routed_kinds()} == {
        "ingresses.networking.k8s.io",
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "trafficsplits.split.smi-spec.io",
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
        "traefikservices.traefik.io",
        "apisixroutes.apisix.apache.org",
        "mappings.getambassador.io",
        "virtualservices.appmesh.k8s.aws",
        "virtualrouters.appmesh.k8s.aws",
        "virtualnodes.appmesh.k8s.aws",
    }


def test_objects_are_read_from_the_cache_once_listed_and_by_get_once_unserved() -> None:
    routing, cache, changed = watches()
    assert not routing.cached(VS)
    routing.listed(ISTIO_VS, None, [vs("web", "u1")])
    assert routing.cached(VS)
    assert changed == ["virtualservices/web"]
    routing.unserved(ISTIO_VS, None)
    assert not routing.cached(VS)
    assert list(cache.all(routing.kinds[ISTIO_VS])) == []  # none exist while the kind is not served


def test_a_namespaced_listing_covers_its_namespace_and_prunes_only_there() -> None:
    routing, cache, changed = watches()
    kind = routing.kinds[ISTIO_VS]
    routing.listed(ISTIO_VS, "ns", [vs("web", "u1"), vs("gone", "u2")])
    routing.listed(ISTIO_VS, "other", [vs("elsewhere", "u3", namespace="other")])
    changed.clear()
    routing.listed(ISTIO_VS, "ns", [vs("web", "u1", rv="2")])  # a new listing (after a 410): one went
    assert routing.cached(VS)
    assert not routing.cached(ObjectRef(VS.api_version, VS.kind, VS.plural, "third", "web"))
    assert sorted(o["metadata"]["name"] for o in cache.all(kind)) == ["elsewhere", "web"]
    assert sorted(changed) == ["virtualservices/gone", "virtualservices/web"]


def test_istio_and_app_mesh_virtualservices_are_two_kinds() -> None:
    """Same plural, two API groups: each has its own watch state and its own cache entries."""
    routing, cache, _ = watches()
    mesh = "virtualservices.appmesh.k8s.aws"
    routing.listed(ISTIO_VS, None, [vs("web", "istio-uid")])
    assert routing.cached(VS) and not routing.cached(MESH_VS)
    routing.listed(mesh, None, [vs("web", "mesh-uid")])
    assert routing.cached(MESH_VS)
    assert cache.get(ref_kind(VS), "ns", "web")["metadata"]["uid"] == "istio-uid"  # type: ignore[index]
    assert cache.get(ref_kind(MESH_VS), "ns", "web")["metadata"]["uid"] == "mesh-uid"  # type: ignore[index]
    routing.unserved(mesh, None)  # App Mesh's CRD removed: Istio's objects stay cached
    assert routing.cached(VS) and not routing.cached(MESH_VS)
    assert [o["metadata"]["uid"] for o in cache.all(ref_kind(VS))] == ["istio-uid"]
    assert list(cache.all(ref_kind(MESH_VS))) == []
