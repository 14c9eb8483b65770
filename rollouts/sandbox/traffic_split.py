"""Pure: how the sandbox's simulated clients spread a Service's requests over pods, and how each pod answers.

`split(service, endpoints, pods)` returns `[(pod, weight), ...]` with weights summing to 1. Today the
cluster routes by Service selector only, so every ready endpoint gets the same weight and a version's
share of the requests is its share of the ready pods: exactly what a replica-weighted canary means. A
traffic router (canary Ingress, VirtualService, TrafficSplit, HTTPRoute) plugs in as another function of
the same shape (`Splitter`), handed to `rollouts.sandbox.traffic.TrafficGenerator`.

How a pod answers comes from its annotations (copied from the pod template), see `PodBehaviour`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollouts.sandbox.selectors import matches_labels, selector_from_label_selector

PREFIX = "sandbox.pyrollouts.io/"
ERROR_RATE = PREFIX + "error-rate"
LATENCY_MS = PREFIX + "latency-ms"
LATENCY_JITTER_MS = PREFIX + "latency-jitter-ms"
DEFAULT_LATENCY_MS = 10.0
HASH_LABEL = "rollouts-pod-template-hash"
DEPLOYMENT_HASH_LABEL = "pod-template-hash"

Pod = Mapping[str, Any]
Splitter = Callable[[Mapping[str, Any], Mapping[str, Any] | None, Mapping[str, Pod]], list[tuple[Pod, float]]]


@dataclass(frozen=True)
class PodBehaviour:
    """How one pod answers: the probability of a 5xx, and the latency's mean and spread in seconds."""

    error_rate: float = 0.0
    latency_seconds: float = DEFAULT_LATENCY_MS / 1000
    jitter_seconds: float = 0.0


def _number(value: Any, default: float, low: float, high: float = math.inf) -> float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    if math.isnan(number):
        return default
    return min(max(number, low), high)


def pod_behaviour(pod: Pod) -> PodBehaviour:
    """Read `error-rate` (0..1), `latency-ms` (default 10) and `latency-jitter-ms` (default 0); an
    unreadable value counts as unset, an out-of-range one is clipped."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return PodBehaviour(
        error_rate=_number(annotations.get(ERROR_RATE), 0.0, 0.0, 1.0),
        latency_seconds=_number(annotations.get(LATENCY_MS), DEFAULT_LATENCY_MS, 0.0) / 1000,
        jitter_seconds=_number(annotations.get(LATENCY_JITTER_MS), 0.0, 0.0) / 1000,
    )


def pod_template_hash(pod: Pod) -> str:
    """The version a pod belongs to: `rollouts-pod-template-hash`, else a Deployment's `pod-template-hash`."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(HASH_LABEL) or labels.get(DEPLOYMENT_HASH_LABEL) or "")


def pod_ready(pod: Pod) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def ready_pods(service: Mapping[str, Any], endpoints: Mapping[str, Any] | None, pods: Mapping[str, Pod]) -> list[Pod]:
    """The pods a Service sends requests to: the ready addresses of its Endpoints that point at existing
    pods; without an Endpoints object, the ready pods its selector matches. `pods`: the namespace's
    pods by name. Sorted by name, so the result does not depend on the order of addresses."""
    chosen: dict[str, Pod] = {}
    if endpoints is not None:
        for subset in endpoints.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                pod = pods.get(str(ref.get("name", ""))) if ref.get("kind", "Pod") == "Pod" else None
                if pod is not None and not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    chosen[pod["metadata"]["name"]] = pod
    else:
        selector = (service.get("spec") or {}).get("selector")
        if selector:
            requirements = selector_from_label_selector({"matchLabels": selector})
            for name, pod in pods.items():
                if pod_ready(pod) and matches_labels(requirements, (pod.get("metadata") or {}).get("labels")):
                    chosen[name] = pod
    return [chosen[name] for name in sorted(chosen)]


def split(
    service: Mapping[str, Any], endpoints: Mapping[str, Any] | None, pods: Mapping[str, Pod]
) -> list[tuple[Pod, float]]:
    """Selector routing (kube-proxy): each ready endpoint gets an equal share. Empty when none is ready."""
    members = ready_pods(service, endpoints, pods)
    return [(pod, 1.0 / len(members)) for pod in members]


def version_shares(weights: list[tuple[Pod, float]]) -> dict[str, float]:
    """Sum the weights per pod-template hash: what share of the requests each version gets."""
    shares: dict[str, float] = {}
    for pod, weight in weights:
        key = pod_template_hash(pod)
        shares[key] = shares.get(key, 0.0) + weight
    return shares


__all__ = [
    "DEFAULT_LATENCY_MS",
    "ERROR_RATE",
    "LATENCY_JITTER_MS",
    "LATENCY_MS",
    "PodBehaviour",
    "Splitter",
    "pod_behaviour",
    "pod_ready",
    "pod_template_hash",
    "ready_pods",
    "split",
    "version_shares",
]
