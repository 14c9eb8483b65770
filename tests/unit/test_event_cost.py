"""Issue 17: the cost of a watch event does not grow with the number of Rollouts. Each handler finds
the Rollout an event concerns through the cache's indexes (uid, owner, what a Rollout refers to): with
100 and with 10,000 Rollouts cached it enqueues exactly the right one and never scans the cache."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.controller.client import REPLICASETS, ROLLOUTS, Cache
from rollouts.controller.kubeconfig import Connection
from rollouts.controller.operator import Controller

NS = "many"


def rollout(i: int) -> dict[str, Any]:
    canary = {"canaryService": f"canary-{i}", "stableService": f"stable-{i}",
              "trafficRouting": {"nginx": {"stableIngress": f"ingress-{i}"},
                                 "istio": {"virtualService": {"name": f"vs-{i}", "routes": ["primary"]}}}}  # fmt: skip
    spec = {"workloadRef": {"name": f"deploy-{i}"}, "restartAt": "2024-01-01T00:00:00Z", "strategy": {"canary": canary}}
    meta = {"name": f"ro-{i}", "namespace": NS, "uid": f"ro-uid-{i}", "resourceVersion": "1"}
    return {"metadata": meta, "spec": spec}


def owned(kind: str, name: str, uid: str, owner_uid: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "uid": uid, "resourceVersion": "1",
            "ownerReferences": [{"uid": owner_uid, "controller": True}]}  # fmt: skip
    return {"kind": kind, "metadata": meta}


def named(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "resourceVersion": "1"}}


@pytest.mark.parametrize("count", [100, 10_000])
def test_each_event_finds_its_rollout_without_a_scan(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    controller = Controller(Connection(server="https://127.0.0.1:1"))
    cache = controller.cache
    for i in range(count):
        cache.put(ROLLOUTS, rollout(i))
        cache.put(REPLICASETS, owned("ReplicaSet", f"rs-{i}", f"rs-uid-{i}", f"ro-uid-{i}"))
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(controller, "enqueue", lambda ns, name: queued.append((ns, name)))

    def no_scan(*_: Any, **__: Any) -> Any:
        raise AssertionError("an event handler scanned the cache")

    monkeypatch.setattr(Cache, "all", no_scan)
    target = count // 2
    events = [
        (controller._on_replicaset, owned("ReplicaSet", f"rs-{target}", f"rs-uid-{target}", f"ro-uid-{target}")),
        (controller._on_pod, owned("Pod", f"pod-{target}", "pod-uid", f"rs-uid-{target}")),
        (controller._on_analysisrun, owned("AnalysisRun", "run", "run-uid", f"ro-uid-{target}")),
        (controller._on_service, named(f"canary-{target}")),
        (controller._on_service, named(f"stable-{target}")),
        (controller._on_deployment, named(f"deploy-{target}")),
        # the routing kinds, as their watch events reach them (their kinds come from the router registry)
        (controller._notifiers["ingresses.networking.k8s.io"], named(f"ingress-{target}")),
        (controller._notifiers["virtualservices.networking.istio.io"], named(f"vs-{target}")),
    ]
    for handler, obj in events:
        queued.clear()
        handler(obj)
        assert queued == [(NS, f"ro-{target}")], (getattr(handler, "__name__", handler), queued)
    controller._on_service(named("nobody-uses-this"))
    # App Mesh's VirtualService of the same name is another kind: the Istio-routed Rollout is not queued
    controller._notifiers["virtualservices.appmesh.k8s.aws"](named(f"vs-{target}"))
    assert queued == [(NS, f"ro-{target}")]


def test_kopfs_index_handlers_run_only_during_the_first_listing() -> None:
    """After the first listing each event runs one handler of ours (`on_<resource>`), not two: the index
    handlers that fill the cache before any event handler is allowed are filtered out by `when`."""
    controller = Controller(Connection(server="https://127.0.0.1:1"))
    index_handlers = controller.registry._indexing.get_all_handlers()
    assert index_handlers and all(h.when == controller._listing for h in index_handlers)
    assert controller._listing()
    controller.synced.set()  # what the first event handler does
    assert not controller._listing()


def test_after_the_first_listing_the_controller_takes_events_past_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before every first listing is done kopf runs the handlers (its ordering fills the caches first);
    after, kopfwatch hands each event to `dispatch`: the cache follows it and the owning Rollout is queued."""
    controller = Controller(Connection(server="https://127.0.0.1:1"))
    assert not controller.takes(REPLICASETS.resource)
    controller.synced.set()  # what the first event handler does
    assert controller.takes(REPLICASETS.resource) and controller.takes("ingresses.networking.k8s.io")
    assert not controller.takes("configmaps")
    controller.cache.put(ROLLOUTS, rollout(1))
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(controller, "enqueue", lambda ns, name: queued.append((ns, name)))
    rs = owned("ReplicaSet", "rs-1", "rs-uid-1", "ro-uid-1")
    controller.dispatch(REPLICASETS.resource, {"type": "ADDED", "object": rs})
    assert controller.cache.get(REPLICASETS, NS, "rs-1") is not None and queued == [(NS, "ro-1")]
    controller.dispatch(REPLICASETS.resource, {"type": "DELETED", "object": rs})
    assert controller.cache.get(REPLICASETS, NS, "rs-1") is None and queued == [(NS, "ro-1")] * 2
