"""Helpers for the Istio scenarios: the CRDs, the objects, and reading back what the controller wrote.
Nothing here imports the controller."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.fixtures.cluster import HASH_LABEL, Cluster, install_crds
from tests.fixtures.sandbox import json_object

GROUP, VERSION = "networking.istio.io", "v1beta1"


def install_istio_crds(cluster: Cluster) -> None:
    install_crds(cluster, "istio.yaml", "virtualservices,destinationrules", "Istio CRDs")


def custom(cluster: Cluster, ns: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        obj = json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def http_routes(cluster: Cluster, ns: str) -> list[tuple[str, dict[str, int]]]:
    """(name, {destination host or subset: weight}) of each http route of VirtualService `web`."""
    vs = custom(cluster, ns, "virtualservices", "web") or {}
    out = []
    for route in vs.get("spec", {}).get("http", []):
        weights = {
            d["destination"].get("subset") or d["destination"]["host"]: int(d.get("weight", 0)) for d in route["route"]
        }
        out.append((route.get("name", ""), weights))
    return out


def virtual_service(*routes: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": list(routes)},
    }


SUBSET_VS = virtual_service(
    {
        "name": "primary",
        "route": [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
            {"destination": {"host": "web", "subset": "canary"}, "weight": 0},
        ],
    }
)
DESTINATION_RULE = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "DestinationRule",
    "metadata": {"name": "web"},
    "spec": {
        "host": "web",
        "subsets": [{"name": "stable", "labels": {"app": "web"}}, {"name": "canary", "labels": {"app": "web"}}],
    },
}
SUBSET_ROUTING = {
    "istio": {
        "virtualService": {"name": "web"},
        "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"},
    }
}


def subset_hashes(cluster: Cluster, ns: str) -> dict[str, str]:
    dr = custom(cluster, ns, "destinationrules", "web") or {}
    return {s["name"]: s.get("labels", {}).get(HASH_LABEL, "") for s in dr.get("spec", {}).get("subsets", [])}
