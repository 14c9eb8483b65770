"""The new ReplicaSet and the revisions, shared by the strategies: creating it, keeping its revision
annotation (and the Rollout's) up to date, the ephemeral pod metadata on a ReplicaSet's template, and
deleting old ReplicaSets beyond ``revisionHistoryLimit``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.revisions import REVISION
from rollouts.model.spec import PodMetadata
from rollouts.strategy.plan import (
    CreateReplicaSet,
    DeleteReplicaSet,
    PatchReplicaSet,
    PatchRolloutMetadata,
    Plan,
    merge_patch,
)
from rollouts.strategy.replicasets import (
    EPHEMERAL_METADATA,
    ReplicaSetView,
    apply_ephemeral_metadata,
    by_creation,
    max_revision,
)

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def create_new_rs(planner: Planner, live: list[ReplicaSetView]) -> Plan:
    """Create the new ReplicaSet at the next revision; the pass ends here and looks again."""
    ro = planner.ro
    revision = max_revision(live) + 1
    stable_hash = planner.old.get("stableRS") or ""
    stable_exists = any(rs.pod_hash == stable_hash for rs in live) and stable_hash != planner.pod_hash
    manifest = planner.new_rs_manifest(revision, stable_exists)
    name = manifest["metadata"]["name"]
    planner.plan.actions.append(CreateReplicaSet(manifest))
    planner.event(cs.NEW_RS_REASON, cs.NEW_RS_DETAILED_MESSAGE.format(name, revision))
    if ro.annotations.get(REVISION) != str(revision):
        planner.plan.actions.append(PatchRolloutMetadata({REVISION: str(revision)}))
        planner.event(cs.ROLLOUT_UPDATED_REASON, cs.ROLLOUT_UPDATED_MESSAGE.format(revision))
    new = cs.status_copy(planner.old)
    cs.replace_condition(
        new, cs.new_condition(cs.PROGRESSING, "True", cs.NEW_RS_REASON, cs.NEW_RS_MESSAGE.format(name), planner.stamp)
    )
    planner.plan.status = new
    planner.plan.requeue(0)
    return planner.plan


def sync_revision(planner: Planner, live: list[ReplicaSetView]) -> None:
    """Keep the new ReplicaSet's revision above the old ones (and minReadySeconds in step), and the
    Rollout's revision annotation equal to it."""
    assert planner.new_rs is not None
    rs = planner.new_rs
    older = [r for r in live if r.name != rs.name]
    wanted = max(max_revision(older) + 1, rs.revision)
    patch: dict[str, Any] = {}
    if rs.revision < wanted or rs.revision == 0:
        patch.setdefault("metadata", {}).setdefault("annotations", {})[REVISION] = str(wanted)
    if rs.min_ready_seconds != planner.ro.min_ready_seconds:
        patch["spec"] = {"minReadySeconds": planner.ro.min_ready_seconds}
    if patch:
        planner.plan.actions.append(PatchReplicaSet(rs.name, patch, "revision"))
        planner.new_rs = ReplicaSetView(**{**rs.__dict__, "revision": wanted})
    if planner.ro.annotations.get(REVISION) != str(wanted):
        planner.plan.actions.append(PatchRolloutMetadata({REVISION: str(wanted)}))
        planner.event(cs.ROLLOUT_UPDATED_REASON, cs.ROLLOUT_UPDATED_MESSAGE.format(wanted))


def template_or_steps_changed(planner: Planner) -> bool:
    """Has the pod template or the canary's steps changed since the last status?"""
    old_pod = planner.old.get("currentPodHash") or ""
    old_steps = planner.old.get("currentStepHash") or ""
    return bool(old_pod and old_pod != planner.pod_hash) or bool(old_steps and old_steps != planner.step_hash)


def replicaset_metadata(
    planner: Planner, rs: ReplicaSetView, existing: PodMetadata | None, desired: PodMetadata | None
) -> None:
    """Patch `rs`'s pod template from its `existing` ephemeral metadata to `desired` (if they differ)."""
    meta = apply_ephemeral_metadata(rs.template_metadata, existing, desired)
    annotation = json.dumps(desired.as_dict(), sort_keys=True) if desired and desired.as_dict() else None
    if meta == dict(rs.template_metadata) and annotation == rs.annotations.get(EPHEMERAL_METADATA):
        return
    patch: dict[str, Any] = {"metadata": {"annotations": {EPHEMERAL_METADATA: annotation}}}
    template_patch = merge_patch(rs.template_metadata, meta)
    if template_patch:
        patch["spec"] = {"template": {"metadata": template_patch}}
    planner.plan.actions.append(PatchReplicaSet(rs.name, patch, "ephemeral metadata"))


def revision_history(planner: Planner) -> None:
    """Delete the oldest scaled-down ReplicaSets beyond ``revisionHistoryLimit``."""
    cleanable = by_creation(planner.history_candidates())
    excess = len(cleanable) - planner.ro.revision_history_limit
    for rs in cleanable[: max(excess, 0)]:
        if rs.status_replicas != 0 or rs.replicas != 0 or rs.generation > rs.observed_generation:
            continue
        planner.plan.actions.append(DeleteReplicaSet(rs.name, rs.uid))
