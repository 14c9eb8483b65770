"""The defaults the registries of built-in kinds set on create (Service cluster IPs included)."""

from __future__ import annotations

from typing import Any

from rollouts.sandbox import crds
from rollouts.sandbox.resources import ResourceType


class BuiltinDefaults:
    """Defaulting of built-in kinds on create; it also allocates Service cluster IPs, one after another."""

    def __init__(self) -> None:
        self._cluster_ip = 0

    def apply(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.key == "/services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec.get("clusterIP") in (None, ""):
                self._cluster_ip += 1
                spec["clusterIP"] = f"10.96.{self._cluster_ip // 250}.{self._cluster_ip % 250 + 1}"
                spec["clusterIPs"] = [spec["clusterIP"]]
        elif rtype.key == "/namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif rtype.key == "/pods" and "status" not in obj:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif rtype.key == crds.CRDS and "status" not in obj:
            obj["status"] = crds.initial_status(obj)
        elif rtype.key in ("apps/deployments", "apps/replicasets"):
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        elif rtype.key == "/secrets" and not obj.get("type"):
            obj["type"] = "Opaque"
