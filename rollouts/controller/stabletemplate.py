"""The stable ReplicaSet read whole for an experiment step that copies it (`specRef: stable`).

The cache keeps ReplicaSets without their pod spec (rollouts.controller.client.cached_fields): the
planners read only their metadata, counts and template labels. An experiment step whose templates copy
the stable ReplicaSet's pod template is the one exception, so while a Rollout with such a step is being
updated (its steps not all done, or a spec change not yet observed: one pass may walk to the step) each
of its passes needs that one ReplicaSet whole. It is read with a GET once per resourceVersion: while the
cache's lean copy has the version of the whole one kept, passes reuse it. A Rollout without such a step,
or a converged one, reads none and keeps none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.controller.client import REPLICASETS, ApiError, Cache, Client
from rollouts.model.spec import HASH_LABEL


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _copies_stable(step: Any) -> bool:
    templates = _mapping(_mapping(step).get("experiment")).get("templates")
    return isinstance(templates, list) and any(_mapping(t).get("specRef") == "stable" for t in templates)


def copies_stable_template(rollout: Mapping[str, Any]) -> bool:
    """Has the Rollout a canary step whose experiment copies the stable ReplicaSet (`specRef: stable`), and
    may this pass reach it (an update under way, or a spec change not observed yet)?"""
    status, spec = _mapping(rollout.get("status")), _mapping(rollout.get("spec"))
    steps = _mapping(_mapping(spec.get("strategy")).get("canary")).get("steps")
    if not isinstance(steps, list) or not any(_copies_stable(step) for step in steps):
        return False
    index = status.get("currentStepIndex")
    generation = str(_mapping(rollout.get("metadata")).get("generation") or "")
    unobserved = generation != str(status.get("observedGeneration") or "")
    return unobserved or not isinstance(index, int) or index < len(steps)


class WholeStableReplicaSets:
    """The whole stable ReplicaSet of each Rollout that needs one, read once per resourceVersion."""

    def __init__(self) -> None:
        self._kept: dict[str, dict[str, Any]] = {}  # Rollout uid -> its stable ReplicaSet, whole

    def __len__(self) -> int:
        return len(self._kept)

    def forget(self, rollout_uid: str) -> None:
        self._kept.pop(rollout_uid, None)

    async def get(self, client: Client, cache: Cache, rollout: Mapping[str, Any]) -> dict[str, Any] | None:
        """The Rollout's stable ReplicaSet as the API server has it (None when not needed, or there is none)."""
        meta = _mapping(rollout.get("metadata"))
        rollout_uid = str(meta.get("uid") or "")
        lean = _stable_in_cache(cache, rollout) if copies_stable_template(rollout) else None
        if lean is None:
            self.forget(rollout_uid)
            return None
        lean_meta = _mapping(lean.get("metadata"))
        kept = self._kept.get(rollout_uid)
        if kept is not None and _same_version(_mapping(kept.get("metadata")), lean_meta):
            return kept
        try:
            whole = await client.get(REPLICASETS, str(lean_meta.get("namespace") or ""), str(lean_meta.get("name")))
        except ApiError as exc:
            if exc.not_found:
                self.forget(rollout_uid)
                return None
            raise
        self._kept[rollout_uid] = whole
        return whole


def _same_version(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(a.get("uid")) and a.get("uid") == b.get("uid") and a.get("resourceVersion") == b.get("resourceVersion")


def _stable_in_cache(cache: Cache, rollout: Mapping[str, Any]) -> Mapping[str, Any] | None:
    stable = _mapping(rollout.get("status")).get("stableRS")
    if not stable:
        return None
    for rs in cache.owned_by(REPLICASETS, str(_mapping(rollout.get("metadata")).get("uid") or "")):
        if _mapping(_mapping(rs.get("metadata")).get("labels")).get(HASH_LABEL) == stable:
            return rs
    return None


def with_whole(
    replicasets: Sequence[Mapping[str, Any]], whole: dict[str, Any] | None
) -> list[Mapping[str, Any]]:
    """`replicasets` with the cached copy of `whole` (same uid) replaced by it."""
    uid = _mapping(_mapping(whole).get("metadata")).get("uid") if whole is not None else None
    if whole is None or not uid:
        return list(replicasets)
    return [whole if _mapping(rs.get("metadata")).get("uid") == uid else rs for rs in replicasets]
