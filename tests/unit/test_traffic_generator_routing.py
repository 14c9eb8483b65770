"""The traffic generator in-process behind a canary Ingress pair: the weight decides the split, the
Services behind the Ingress get no direct traffic, and requests routed to a Service without ready
pods reach no pod."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rollouts.sandbox.store import Store
from rollouts.sandbox.traffic import TrafficGenerator
from rollouts.sandbox.workloads import Workloads

PREFIX = "nginx.ingress.kubernetes.io"


def ingress(name: str, service: str, **annotations: str) -> dict[str, Any]:
    backend = {"service": {"name": service, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


async def cluster(canary_pods: int) -> tuple[Store, Workloads]:
    store = Store()
    workloads = Workloads(store, default_ready_after=0.0)
    workloads.start(asyncio.get_running_loop())
    reg = store.registry
    services, rsets, ingresses = (
        reg.by_key("/services"),
        reg.by_key("apps/replicasets"),
        reg.by_key("networking.k8s.io/ingresses"),
    )
    assert services is not None and rsets is not None and ingresses is not None
    for version, replicas in (("stable", 2), ("canary", canary_pods)):
        labels = {"app": "web", "rollouts-pod-template-hash": version}
        store.create(
            services,
            "default",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"web-{version}"},
                "spec": {"selector": labels, "ports": [{"port": 80}]},
            },
        )
        store.create(
            rsets,
            "default",
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": f"web-{version}"},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "web", "image": "x"}]},
                    },
                },
            },
        )
    store.create(ingresses, "default", ingress("web", "web-stable"))
    store.create(
        ingresses,
        "default",
        ingress("web-canary", "web-canary", **{f"{PREFIX}/canary": "true", f"{PREFIX}/canary-weight": "20"}),
    )
    endpoints = reg.by_key("/endpoints")
    assert endpoints is not None
    for _ in range(200):
        await asyncio.sleep(0.01)
        found = [store.find(endpoints, "default", f"web-{v}") for v in ("stable", "canary")]
        counts = [sum(len(s.get("addresses", [])) for s in (e or {}).get("subsets") or []) for e in found]
        if counts == [2, canary_pods]:
            return store, workloads
    raise AssertionError("endpoints never became ready")


def run(canary_pods: int) -> tuple[int, TrafficGenerator]:
    async def scenario() -> tuple[int, TrafficGenerator]:
        store, workloads = await cluster(canary_pods)
        generator = TrafficGenerator(store, rps=1000, seed=5)
        sent = sum(generator.tick(0.1) for _ in range(30))
        workloads.stop()
        return sent, generator

    return asyncio.run(scenario())


def test_the_canary_weight_decides_the_split() -> None:
    sent, generator = run(canary_pods=2)
    metrics = generator.metrics
    assert sent == 3000  # one entry (the Ingress pair); the two Services get nothing directly
    assert metrics.requests() == 3000
    assert metrics.requests(service="web-stable") == 3000  # labelled with the stable Ingress's backend
    assert metrics.requests(rollouts_pod_template_hash="canary") / 3000 == pytest.approx(0.2, abs=0.03)


def test_requests_for_a_service_without_ready_pods_reach_no_pod() -> None:
    sent, generator = run(canary_pods=0)
    assert sent == 3000
    answered = generator.metrics.requests()
    assert answered / 3000 == pytest.approx(0.8, abs=0.03)
    assert generator.metrics.requests(rollouts_pod_template_hash="canary") == 0
