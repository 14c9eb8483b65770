"""Helpers for the blue/green scenarios: manifests and what the Services select."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cluster import HASH_LABEL, Cluster, rollout_manifest, service_manifest

ACTIVE, PREVIEW = "web-active", "web-preview"
DEADLINE = "rollouts.pyrollouts.io/scale-down-deadline"


def bluegreen_manifest(
    name: str = "web", replicas: int = 2, image: str = "nginx:1", annotations: dict[str, str] | None = None, **bg: Any
) -> dict[str, Any]:
    manifest = rollout_manifest(name, replicas=replicas, image=image, annotations=annotations)
    manifest["spec"]["strategy"] = {"blueGreen": {"activeService": ACTIVE, "previewService": PREVIEW, **bg}}
    return manifest


def services(app: str = "web") -> list[dict[str, Any]]:
    return [service_manifest(ACTIVE, app), service_manifest(PREVIEW, app)]


def selected(cluster: Cluster, ns: str, service: str) -> str:
    """The pod-template hash a Service selects ("" when none)."""
    return str((cluster.service(ns, service)["spec"].get("selector") or {}).get(HASH_LABEL) or "")


def hash_of(cluster: Cluster, ns: str, image: str, name: str = "web") -> str:
    for rs in cluster.replicasets(ns, name):
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return str(rs["metadata"]["labels"][HASH_LABEL])
    raise AssertionError(f"no ReplicaSet of {name} runs {image}")


def replicaset_of(cluster: Cluster, ns: str, image: str, name: str = "web") -> dict[str, Any]:
    for rs in cluster.replicasets(ns, name):
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return rs
    raise AssertionError(f"no ReplicaSet of {name} runs {image}")


def fully_available(cluster: Cluster, ns: str, pod_hash: str, replicas: int, name: str = "web") -> bool:
    """Does the ReplicaSet with this hash have `replicas` pods, all available?"""
    for rs in cluster.replicasets(ns, name):
        if rs["metadata"]["labels"].get(HASH_LABEL) == pod_hash:
            available = (rs.get("status") or {}).get("availableReplicas") or 0
            return bool(rs["spec"]["replicas"] == replicas and available >= replicas)
    return False


def reasons(cluster: Cluster, ns: str, name: str = "web") -> list[str]:
    return [reason for reason, _ in cluster.events(ns, name)]


def paused_before_promotion(cluster: Cluster, ns: str, timeout: float, **bg: Any) -> str:
    """Rollout `web` (nginx:1, autoPromotionEnabled false, `bg`) Healthy, then nginx:2 waiting for its
    promotion (BlueGreenPause): the hash of the nginx:1 (blue) stack."""
    cluster.apply(ns, *services(), bluegreen_manifest(autoPromotionEnabled=False, **bg))
    cluster.wait_phase(ns, "web", "Healthy", timeout=timeout)
    blue = hash_of(cluster, ns, "nginx:1")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=timeout)
    return blue
