"""Helpers for the traffic-routing scenarios: the objects around a routed Rollout, and reading back
the weights its routers wrote. Nothing here imports the controller."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.fixtures.cluster import Cluster, rollout_manifest, service_manifest

PREFIX = "nginx.ingress.kubernetes.io"
READY_FAST = {"sandbox.pyrollouts.io/ready-after": "0.3s"}


def ingress_manifest(name: str, backend: str, host: str = "web.example.com") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [host], "secretName": "web-tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def routed_manifests(
    routing: dict[str, Any], steps: list[dict[str, Any]], image: str = "nginx:1", replicas: int = 5, **canary: Any
) -> list[dict[str, Any]]:
    return [
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web",
            replicas=replicas,
            steps=steps,
            image=image,
            annotations=READY_FAST,
            canaryService="web-canary",
            stableService="web-stable",
            trafficRouting=routing,
            **canary,
        ),
    ]


def ingress(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "ingress", name, "-n", ns, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def canary_weight(cluster: Cluster, ns: str, name: str = "web-web-canary") -> int | None:
    obj = ingress(cluster, ns, name)
    if obj is None:
        return None
    return int(obj["metadata"]["annotations"][f"{PREFIX}/canary-weight"])


def events(cluster: Cluster, ns: str, name: str = "web") -> list[tuple[str, str]]:
    """The Rollout's Events in the order they were written: by time, then by resourceVersion as a number
    (several land in the same second, and "99" sorts after "100" as text)."""
    items = cluster.plain(cluster.core.list_namespaced_event(ns).items)
    ours = ("Rollout", name)
    items = [e for e in items if (e["involvedObject"].get("kind"), e["involvedObject"].get("name")) == ours]

    def order(event: dict[str, Any]) -> tuple[str, int]:
        version = str(event["metadata"].get("resourceVersion", ""))
        return (event.get("lastTimestamp") or "", int(version) if version.isdigit() else 0)

    return [(e["reason"], e["message"]) for e in sorted(items, key=order)]


def weight_events(cluster: Cluster, ns: str) -> list[str]:
    return [m for r, m in events(cluster, ns) if r == "TrafficWeightUpdated"]


def status_weights(cluster: Cluster, ns: str) -> tuple[int, int, bool]:
    weights = (cluster.status(ns, "web").get("canary") or {}).get("weights") or {}
    return (
        int((weights.get("canary") or {}).get("weight", -1)),
        int((weights.get("stable") or {}).get("weight", -1)),
        bool(weights.get("verified")),
    )


def assert_weight_back_before_scale_down(cluster: Cluster, ns: str, weight: int, scale_down: str = "to 0") -> None:
    """An abort's order: the weight went from `weight` back to 0 before a ReplicaSet was scaled down
    (a ScalingReplicaSet message containing `scale_down`)."""
    ordered = events(cluster, ns)
    back = [i for i, (r, m) in enumerate(ordered) if r == "TrafficWeightUpdated" and m.endswith(f"from {weight} to 0")]
    down = [i for i, (r, m) in enumerate(ordered) if r == "ScalingReplicaSet" and scale_down in m]
    assert back and down and back[0] < down[0], ordered


def assert_weight_moves(cluster: Cluster, ns: str, weights: list[int], timeout: float = 60) -> None:
    """The TrafficWeightUpdated Events are exactly the moves through `weights`, in order (Events trail
    the writes: wait for as many, then compare)."""
    wanted = [f"Traffic weight updated from {a} to {b}" for a, b in itertools.pairwise(weights)]
    cluster.wait("the weight events", lambda: len(weight_events(cluster, ns)) >= len(wanted), timeout)
    assert weight_events(cluster, ns) == wanted
