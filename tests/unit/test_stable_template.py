"""An experiment step with `specRef: stable` copies the stable ReplicaSet's pod template, which the cache
does not keep: the pass reads that ReplicaSet whole while such a Rollout is being updated, and only then."""

from __future__ import annotations

from typing import Any

from rollouts.controller.client import REPLICASETS, Cache, cached_fields
from rollouts.controller.stabletemplate import copies_stable_template, with_whole

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
