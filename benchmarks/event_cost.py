"""What one watch event costs the controller, at 100 and at 10,000 cached Rollouts (issue 17; by hand):

    .venv/bin/python -m benchmarks.event_cost

Times the handler kopf calls for each event (`on_<resource>`: update the cache, queue the owning Rollout) for
a pod, a ReplicaSet, a Service and a routing object (Ingress, VirtualService) of one Rollout among N, each
Rollout with a ReplicaSet and a pod cached, and kopf's index step for a ReplicaSet event before and after
the first listing (the index handler runs only while listing). Microseconds per event, best of 5 rounds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from kopf._cogs.structs import bodies, ephemera, references
from kopf._core.engines import indexing

from rollouts.controller.client import PODS, REPLICASETS, ROLLOUTS, SERVICES
from rollouts.controller.kubeconfig import Connection
from rollouts.controller.operator import Controller

LOG = logging.getLogger("benchmarks.event_cost")
NS = "many"
ROUNDS, CALLS = 5, 2_000


def rollout(i: int) -> dict[str, Any]:
    routing = {"nginx": {"stableIngress": f"ingress-{i}"}, "istio": {"virtualService": {"name": f"vs-{i}"}}}
    canary = {"canaryService": f"canary-{i}", "stableService": f"stable-{i}", "trafficRouting": routing}
    meta = {"name": f"ro-{i}", "namespace": NS, "uid": f"ro-uid-{i}", "resourceVersion": "1"}
    return {"metadata": meta, "spec": {"strategy": {"canary": canary}}}


def owned(name: str, uid: str, owner_uid: str, rv: int = 1) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "uid": uid, "resourceVersion": str(rv),
            "ownerReferences": [{"uid": owner_uid, "controller": True}]}  # fmt: skip
    return {"metadata": meta, "spec": {}, "status": {}}


def named(name: str, rv: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "uid": f"{name}-uid", "resourceVersion": str(rv)}}


def controller_with(count: int) -> Controller:
    controller = Controller(Connection(server="https://127.0.0.1:1"))
    for i in range(count):
        controller.cache.put(ROLLOUTS, rollout(i))
        controller.cache.put(REPLICASETS, owned(f"rs-{i}", f"rs-uid-{i}", f"ro-uid-{i}"))
        controller.cache.put(PODS, owned(f"pod-{i}", f"pod-uid-{i}", f"rs-uid-{i}"))
        controller.cache.put(SERVICES, named(f"stable-{i}"))
    controller.enqueue = lambda namespace, name: None  # type: ignore[method-assign]  # the queue is not timed
    return controller


def best_of(call: Callable[[int], Awaitable[None]]) -> float:
    """Microseconds per call, best of ROUNDS rounds of CALLS calls (each call a newer resourceVersion)."""

    async def rounds() -> float:
        best = float("inf")
        for r in range(ROUNDS):
            started = time.perf_counter()
            for i in range(CALLS):
                await call(10 + r * CALLS + i)
            best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
        return best

    return asyncio.run(rounds())


def handler(controller: Controller, resource: str) -> Callable[..., Awaitable[None]]:
    found = [h.fn for h in controller.registry._watching.get_all_handlers() if h.id == f"watch-{resource}"]
    return found[0]  # type: ignore[return-value]


def event_costs(count: int) -> dict[str, float]:
    controller = controller_with(count)
    target = count // 2
    objects: dict[str, Callable[[int], dict[str, Any]]] = {  # by resource (Kind.resource)
        "pods": lambda rv: owned(f"pod-{target}", f"pod-uid-{target}", f"rs-uid-{target}", rv),
        "replicasets.apps": lambda rv: owned(f"rs-{target}", f"rs-uid-{target}", f"ro-uid-{target}", rv),
        "services": lambda rv: named(f"stable-{target}", rv),
        "ingresses.networking.k8s.io": lambda rv: named(f"ingress-{target}", rv),
        "virtualservices.networking.istio.io": lambda rv: named(f"vs-{target}", rv),
    }
    costs = {}
    for resource, make in objects.items():
        on_event = handler(controller, resource)

        async def call(rv: int, on_event: Callable[..., Awaitable[None]] = on_event,
                       make: Callable[[int], dict[str, Any]] = make) -> None:
            await on_event(event={"type": "MODIFIED", "object": make(rv)})  # fmt: skip

        costs[resource.partition(".")[0]] = best_of(call)
    return costs


def index_cost(count: int, listing: bool) -> float:
    """kopf's index step (`index_resource`) for a ReplicaSet event, while listing or after."""
    controller = controller_with(count)
    if not listing:
        controller.synced.set()
    resource = references.Resource("apps", "v1", "replicasets", namespaced=True)
    indexers = indexing.OperatorIndexers()
    indexers.ensure(controller.registry._indexing.get_all_handlers())
    settings = controller.settings()

    async def call(rv: int) -> None:
        raw = cast(bodies.RawBody, owned(f"rs-{count // 2}", f"rs-uid-{count // 2}", f"ro-uid-{count // 2}", rv))
        body = bodies.Body(raw)
        await indexing.index_resource(
            indexers=indexers, registry=controller.registry, settings=settings, resource=resource,
            raw_event={"type": "MODIFIED", "object": raw}, memory=indexing.IndexingMemory(),
            logger=LOG, memo=cast(ephemera.AnyMemo, Memo()), body=body,
        )  # fmt: skip

    return best_of(call)


class Memo(dict[str, Any]):
    """kopf's per-object memo (any mapping)."""


def main() -> None:
    for count in (100, 10_000):
        costs = event_costs(count)
        line = ", ".join(f"{plural} {us:.1f} us" for plural, us in costs.items())
        print(f"{count:>6} Rollouts cached: per event {line}")
        print(f"{count:>6} Rollouts cached: kopf's index step for a ReplicaSet event: while listing "
              f"{index_cost(count, True):.1f} us, after {index_cost(count, False):.1f} us")  # fmt: skip


if __name__ == "__main__":
    main()
