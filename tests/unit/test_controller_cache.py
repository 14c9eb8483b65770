"""The controller's watch cache: newer resourceVersions win, deleted objects stay deleted against late
answers, and the tombstones that guarantee it are dropped after a while (bounded memory)."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import PODS, REPLICASETS, Cache, kind_of
from rollouts.strategy.replicasets import ReplicaSetView

CONFIGMAPS = kind_of("v1", "configmaps", "ConfigMap")


def obj(name: str, rv: int, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": str(rv), "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = Cache()
    assert cache.put(CONFIGMAPS, obj("a", 5))
    assert not cache.put(CONFIGMAPS, obj("a", 4))
    assert cache.get(CONFIGMAPS, "ns", "a") == obj("a", 5)


def test_a_late_answer_does_not_bring_back_a_deleted_object_and_tombstones_expire() -> None:
    clock = Clock()
    cache = Cache(tombstone_seconds=60, clock=clock)
    cache.put(CONFIGMAPS, obj("a", 5, owner="rollout-1"))
    cache.remove(CONFIGMAPS, obj("a", 6))
    assert not cache.put(CONFIGMAPS, obj("a", 5, owner="rollout-1"))  # our write's answer, arriving late
    assert cache.get(CONFIGMAPS, "ns", "a") is None
    assert cache.owned_by(CONFIGMAPS, "rollout-1") == []
    assert cache.put(CONFIGMAPS, obj("a", 7))  # created again later
    assert cache.tombstones == 1

    for i in range(100):  # deletions a second apart: only the last minute's tombstones are kept
        clock.now += 1
        cache.remove(CONFIGMAPS, obj(f"gone-{i}", 10 + i))
    assert cache.tombstones == 61
    clock.now += 61
    cache.remove(CONFIGMAPS, obj("last", 500))
    assert cache.tombstones == 1


def test_deleting_the_same_name_again_refreshes_its_tombstone() -> None:
    clock = Clock()
    cache = Cache(tombstone_seconds=60, clock=clock)
    cache.remove(CONFIGMAPS, obj("a", 5))  # t=1000
    clock.now += 50
    cache.remove(CONFIGMAPS, obj("b", 6))  # t=1050
    clock.now += 5
    cache.remove(CONFIGMAPS, obj("a", 7))  # t=1055: "a" is now younger than "b"
    clock.now += 56
    cache.remove(CONFIGMAPS, obj("c", 8))  # t=1111: "b" (61 s) expires, "a" (56 s) stays
    assert cache.tombstones == 2
    assert not cache.put(CONFIGMAPS, obj("a", 7))
    assert cache.put(CONFIGMAPS, obj("b", 6))


def test_pods_keep_only_what_the_controller_reads_and_no_object_keeps_managed_fields() -> None:
    cache = Cache()
    managed = [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:data": {}}}]
    meta = {"name": "cm", "namespace": "ns", "resourceVersion": "3", "managedFields": managed}
    cm: dict[str, Any] = {"metadata": meta, "data": {"a": "1"}}
    cache.put(CONFIGMAPS, cm)
    assert cache.get(CONFIGMAPS, "ns", "cm") == {"metadata": {"name": "cm", "namespace": "ns", "resourceVersion": "3"},
                                                 "data": {"a": "1"}}  # fmt: skip
    assert cm["metadata"]["managedFields"] == managed  # the caller's object is left alone
    pod = obj("web-abc", 4, owner="rs-uid")
    pod["metadata"] |= {"labels": {"app": "web"}, "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": managed,
                        "generateName": "web-", "finalizers": ["x"]}  # fmt: skip
    pod["spec"] = {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "BIG", "value": "x" * 10_000}]}]}
    ready = [{"type": "Ready", "status": "True"}]
    pod["status"] = {"phase": "Running", "conditions": ready, "containerStatuses": [{"name": "web"}], "podIP": "10.1.1"}
    cache.put(PODS, pod)
    kept = cache.get(PODS, "ns", "web-abc")
    assert kept is not None
    assert set(kept) == {"metadata", "status"}
    assert set(kept["metadata"]) == {"name", "namespace", "uid", "resourceVersion", "ownerReferences", "labels",
                                     "creationTimestamp"}  # fmt: skip
    assert kept["status"] == {"phase": "Running", "conditions": ready}
    assert cache.owned_by(PODS, "rs-uid") == [kept]


def test_replicasets_keep_what_the_controller_reads_and_not_their_pod_spec() -> None:
    cache = Cache()
    rs = obj("web-abc", 5, owner="ro-uid")
    labels = {"rollouts-pod-template-hash": "abc"}
    rs["metadata"] |= {"labels": labels, "annotations": {"rollout.argoproj.io/revision": "2"}, "generation": 3,
                       "creationTimestamp": "2024-01-01T00:00:00Z"}  # fmt: skip
    big = [{"name": "BIG", "value": "x" * 10_000}]
    template = {"metadata": {"labels": {"app": "web", "role": "canary"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1", "env": big}]}}  # fmt: skip
    selector = {"matchLabels": {"app": "web"}}
    rs["spec"] = {"replicas": 3, "minReadySeconds": 5, "selector": selector, "template": template}
    rs["status"] = {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1, "observedGeneration": 3,
                    "fullyLabeledReplicas": 3, "conditions": [{"type": "ReplicaFailure"}]}  # fmt: skip
    cache.put(REPLICASETS, rs)
    kept = cache.get(REPLICASETS, "ns", "web-abc")
    assert kept is not None
    assert kept["spec"] == {"replicas": 3, "minReadySeconds": 5, "template": {"metadata": template["metadata"]}}
    assert kept["status"] == {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1, "observedGeneration": 3}
    assert ReplicaSetView.parse(kept) == ReplicaSetView.parse(rs)  # everything the strategies read is there
    assert cache.owned_by(REPLICASETS, "ro-uid") == [kept]
