"""The stable ReplicaSet read whole for an experiment step that copies it (`specRef: stable`).

The cache keeps ReplicaSets without their pod spec (rollouts.controller.client.cached_fields): the
planners read only their metadata, counts and template labels. An experiment step whose templates copy
the stable ReplicaSet's pod template is the one exception, so while a Rollout with such a step is being
updated (its steps not all done, or a spec change not yet observed: one pass may walk to the step) each
of its passes reads that one ReplicaSet with a GET; a Rollout without such a step, or a converged one,
reads none.
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


async def whole_stable_replicaset(client: Client, cache: Cache, rollout: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Rollout's stable ReplicaSet as the API server has it (None when not needed, or there is none)."""
    if not copies_stable_template(rollout):
        return None
    stable = _mapping(rollout.get("status")).get("stableRS")
    meta = _mapping(rollout.get("metadata"))
    for rs in cache.owned_by(REPLICASETS, str(meta.get("uid") or "")):
        rs_meta = _mapping(rs.get("metadata"))
        if stable and _mapping(rs_meta.get("labels")).get(HASH_LABEL) == stable:
            try:
                return await client.get(REPLICASETS, str(rs_meta.get("namespace") or ""), str(rs_meta.get("name")))
            except ApiError as exc:
                if exc.not_found:
                    return None
                raise
    return None


def with_whole(
    replicasets: Sequence[Mapping[str, Any]], whole: dict[str, Any] | None
) -> list[Mapping[str, Any]]:
    """`replicasets` with the cached copy of `whole` (same uid) replaced by it."""
    uid = _mapping(_mapping(whole).get("metadata")).get("uid") if whole is not None else None
    if whole is None or not uid:
        return list(replicasets)
    return [whole if _mapping(rs.get("metadata")).get("uid") == uid else rs for rs in replicasets]
