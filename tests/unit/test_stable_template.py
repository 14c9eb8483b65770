"""An experiment step with `specRef: stable` copies the stable ReplicaSet's pod template, which the cache
does not keep: the pass reads that ReplicaSet whole while such a Rollout is being updated, and only then."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

from rollouts.controller.client import REPLICASETS, Cache, Client, cached_fields
from rollouts.controller.stabletemplate import WholeStableReplicaSets, copies_stable_template, with_whole
from rollouts.model.spec import HASH_LABEL

STEPS: list[dict[str, Any]] = [
    {"experiment": {"templates": [{"name": "baseline", "specRef": "stable"}, {"name": "canary"}]}},
    {"pause": {}},
]


def rollout(steps: list[dict[str, Any]], index: int | None, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed}
    if index is not None:
        status["currentStepIndex"] = index
    meta = {"name": "web", "namespace": "ns", "uid": "ro", "generation": generation}
    return {"metadata": meta, "spec": {"strategy": {"canary": {"steps": steps}}}, "status": status}


def test_read_whole_only_while_an_update_may_reach_the_step() -> None:
    assert copies_stable_template(rollout(STEPS, 0))  # at the experiment step
    assert copies_stable_template(rollout(STEPS, 1))  # a retry may come back to it; the update is under way
    assert copies_stable_template(rollout(STEPS, 2, generation=3))  # a new spec: one pass may walk to it
    assert not copies_stable_template(rollout(STEPS, 2))  # converged
    canary_only = [{"experiment": {"templates": [{"name": "canary", "specRef": "canary"}]}}]
    assert not copies_stable_template(rollout(canary_only, 0))
    assert not copies_stable_template(rollout([{"pause": {}}], 0))


def test_the_whole_replicaset_replaces_its_cached_copy() -> None:
    whole = {
        "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-1", "resourceVersion": "5"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
    }
    cache = Cache()
    cache.put(REPLICASETS, whole)
    cached = cache.get(REPLICASETS, "ns", "web-abc")
    assert cached is not None and "spec" not in cached["spec"]["template"]  # the cache drops the pod spec
    other = cached_fields(REPLICASETS, {"metadata": {"name": "web-old", "namespace": "ns", "uid": "rs-0"}})
    assert with_whole([other, cached], whole) == [other, whole]
    assert with_whole([other, cached], None) == [other, cached]


class CountingClient:
    """Answers GETs from a dict of whole ReplicaSets and counts them."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.gets = 0

    async def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        return copy.deepcopy(self.objects[name])


def stable_rs(version: str) -> dict[str, Any]:
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": "ro", "controller": True}
    meta = {"name": "web-abc", "namespace": "ns", "uid": "rs-1", "resourceVersion": version,
            "labels": {HASH_LABEL: "abc"}, "ownerReferences": [owner]}
    return {"metadata": meta, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c"}]}}}}


def test_the_whole_stable_replicaset_is_read_once_per_version() -> None:
    cache, client, kept = Cache(), CountingClient({"web-abc": stable_rs("5")}), WholeStableReplicaSets()
    cache.put(REPLICASETS, stable_rs("5"))
    updating = rollout(STEPS, 0)
    updating["status"]["stableRS"] = "abc"

    async def passes(n: int, ro: dict[str, Any]) -> list[dict[str, Any] | None]:
        return [await kept.get(cast(Client, client), cache, ro) for _ in range(n)]

    got = asyncio.run(passes(3, updating))
    assert client.gets == 1 and all(g is not None and g["spec"]["template"]["spec"]["containers"] for g in got)
    # A new version in the cache (the stable ReplicaSet scaled, relabelled...): read again, once.
    client.objects["web-abc"] = stable_rs("6")
    cache.put(REPLICASETS, stable_rs("6"))
    asyncio.run(passes(2, updating))
    assert client.gets == 2
    # Converged: nothing read, nothing kept.
    converged = rollout(STEPS, 2)
    converged["status"]["stableRS"] = "abc"
    assert asyncio.run(passes(1, converged)) == [None] and client.gets == 2 and len(kept) == 0
