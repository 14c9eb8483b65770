"""Pure: a Rollout (and its ReplicaSets) -> the patches each plugin verb sends.

The patches are those `kubectl argo rollouts` sends (`cmd/promote`, `abort`, `retry`, `pause`,
`restart`, `undo`, `set image`), including which go to the `status` subresource, so that a controller
written for Argo's plugin behaves the same with ours.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rollouts.cli import info as i
from rollouts.model.revisions import revision_of
from rollouts.model.spec import HASH_LABEL, RolloutSpec
from rollouts.model.steps import current_step
from rollouts.model.timestamps import format_time

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Spec messages as Argo words them.
BOTH_SKIP_FLAGS = "Cannot use skip-current-step and skip-all-steps flags at the same time"
SKIP_WITH_BLUEGREEN = "Cannot skip steps of a bluegreen rollout. Run without a flags"
SKIP_WITHOUT_STEPS = "Cannot skip steps of a rollout without steps"
FULL_WITH_SKIP = "Cannot use --full with skip-current-step or skip-all-steps: --full already skips every remaining step"


class ActionError(Exception):
    """The verb cannot be applied to this rollout; the message says why."""


@dataclass(frozen=True)
class Patch:
    """One PATCH request: `body` with `content_type`, to the object or its `status` subresource."""

    body: Any
    content_type: str = MERGE
    subresource: Literal["", "status"] = ""


def _status(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return i.status_of(ro)


def _step_count(ro: Mapping[str, Any]) -> int:
    canary = RolloutSpec.parse(ro).canary
    return len(canary.steps) if canary is not None else 0


def _next_step_index(ro: Mapping[str, Any]) -> int | None:
    """Current step index + 1 (capped at the number of steps); None without steps."""
    _step, index = current_step(RolloutSpec.parse(ro), _status(ro))
    if index is None:
        return None
    return index + 1 if index < _step_count(ro) else index


def _inconclusive(ro: Mapping[str, Any]) -> bool:
    canary = _status(ro).get("canary")
    run = canary.get("currentStepAnalysisRunStatus") if isinstance(canary, Mapping) else None
    return (
        i.canary_of(ro) is not None
        and isinstance(run, Mapping)
        and run.get("status") == "Inconclusive"
    )


def promote_patches(
    ro: Mapping[str, Any], full: bool = False, skip_current_step: bool = False, skip_all_steps: bool = False
) -> list[Patch]:
    """Argo's `promote` (getPatches): the status patch first, then the spec patch.

    - plain: unpause a manual pause (spec.paused=false); clear status.pauseConditions if the rollout
      is paused at a step; otherwise (canary, running a step such as analysis) skip to the next step.
      An inconclusive analysis pause (controllerPause) is also cleared and the step skipped.
    - `--full`: status.promoteFull=true while an update is in progress (and unpause a manual pause).
    """
    _check_promote_flags(ro, full, skip_current_step, skip_all_steps)
    status = _status(ro)
    status_patch: dict[str, Any] | None = None
    spec_patch: dict[str, Any] | None = None
    if skip_current_step:
        index = _next_step_index(ro)
        if index is not None:
            status_patch = {"status": {"currentStepIndex": index}}
    elif skip_all_steps:
        status_patch = {"status": {"currentStepIndex": _step_count(ro)}}
    else:
        if i.spec_of(ro).get("paused") is True:
            spec_patch = {"spec": {"paused": False}}
        if full:
            if status.get("currentPodHash") != status.get("stableRS"):
                status_patch = {"status": {"promoteFull": True}}
        else:
            status_patch = _promote_status(ro)
    patches = []
    if status_patch is not None:
        patches.append(Patch(status_patch, subresource="status"))
    if spec_patch is not None:
        patches.append(Patch(spec_patch))
    return patches


def _check_promote_flags(ro: Mapping[str, Any], full: bool, skip_current_step: bool, skip_all_steps: bool) -> None:
    if skip_current_step and skip_all_steps:
        raise ActionError(BOTH_SKIP_FLAGS)
    if full and (skip_current_step or skip_all_steps):
        raise ActionError(FULL_WITH_SKIP)
    if skip_current_step or skip_all_steps:
        if i.bluegreen_of(ro) is not None:
            raise ActionError(SKIP_WITH_BLUEGREEN)
        if i.canary_of(ro) is not None and not _step_count(ro):
            raise ActionError(SKIP_WITHOUT_STEPS)


def _promote_status(ro: Mapping[str, Any]) -> dict[str, Any] | None:
    """The status patch of a plain `promote`: end the pause, or skip the step the canary is running."""
    status = _status(ro)
    pause_conditions = status.get("pauseConditions")
    if _inconclusive(ro) and pause_conditions and status.get("controllerPause") is True:
        index = _next_step_index(ro)
        if index is not None:
            return {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": index}}
        return None
    if pause_conditions:
        return {"status": {"pauseConditions": None}}
    if i.canary_of(ro) is not None:
        index = _next_step_index(ro)
        if index is not None:
            return {"status": {"pauseConditions": None, "currentStepIndex": index}}
    return None


def abort_patches() -> list[Patch]:
    """`abort`: status.abort=true. The controller stamps status.abortedAt when it acts on it, as in Argo."""
    return [Patch({"status": {"abort": True}}, subresource="status")]


def retry_patches() -> list[Patch]:
    """`retry rollout`: status.abort=false."""
    return [Patch({"status": {"abort": False}}, subresource="status")]


def pause_patches() -> list[Patch]:
    """`pause`: spec.paused=true."""
    return [Patch({"spec": {"paused": True}})]


def restart_patches(now: dt.datetime, delay_seconds: float = 0.0) -> list[Patch]:
    """`restart [--in D]`: spec.restartAt = now + D in RFC 3339 UTC, rounded UP to a whole second.

    creationTimestamp has whole seconds, and the controller restarts pods created before restartAt: a
    time rounded down would spare a pod created earlier in the same second."""
    when = now + dt.timedelta(seconds=delay_seconds)
    if when.microsecond:
        when = when.replace(microsecond=0) + dt.timedelta(seconds=1)
    return [Patch({"spec": {"restartAt": format_time(when)}})]


# --------------------------------------------------------------------------- undo


def _without_hash_label(template: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return result


def _derivative(a: Any, b: Any) -> bool:
    """`apiequality.Semantic.DeepDerivative(a, b)`: b equals a where a says anything (unset fields in a
    are ignored)."""
    if a is None or a == {} or a == [] or a == "":
        return True
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping):
            return False
        return all(_derivative(value, b.get(key)) for key, value in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(_derivative(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass(frozen=True)
class UndoPlan:
    """What `undo` does: `patch` (None when there is nothing to do; `message` then says why)."""

    revision: int
    patch: Patch | None
    message: str


def revision_replicaset(
    ro: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]], to_revision: int = 0
) -> Mapping[str, Any]:
    """The ReplicaSet of `to_revision`, or of the previous revision when 0 (Argo's `rolloutRevision`)."""
    uid = str(i.meta(ro).get("uid", ""))
    name = str(i.meta(ro).get("name", ""))
    owned = [rs for rs in replicasets if i.controlled_by(rs, uid)]
    if to_revision > 0:
        for rs in owned:
            if revision_of(rs) == to_revision:
                return rs
        known = sorted({revision_of(rs) for rs in owned})
        listed = ", ".join(str(r) for r in known) if known else "none"
        raise ActionError(
            f"unable to find specified revision {to_revision} in history of rollout {name!r} "
            f"(revisions present: {listed})"
        )
    ranked = sorted(owned, key=revision_of, reverse=True)
    if len(ranked) < 2:
        raise ActionError(f'no revision found for rollout "{name}": there is no previous revision to go back to')
    return ranked[1]


def undo_plan(
    ro: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    to_revision: int = 0,
    current_template: Mapping[str, Any] | None = None,
) -> UndoPlan:
    """`undo [--to-revision N]`: a JSON patch replacing spec.template with that revision's template
    (without the `rollouts-pod-template-hash` label); no patch when the template already matches.

    `current_template` is the referenced workload's template for a `workloadRef` rollout (the patch then
    goes to that workload); by default the Rollout's own spec.template.
    """
    rs = revision_replicaset(ro, replicasets, to_revision)
    revision = revision_of(rs)
    rs_template = _without_hash_label(((rs.get("spec") or {}).get("template")) or {})
    if current_template is None:
        current_template = i.spec_of(ro).get("template") or {}
    if _derivative(_without_hash_label(current_template), rs_template):
        return UndoPlan(revision, None, f"skipped rollback (current template already matches revision {revision})")
    path = "/spec/template"
    if (i.spec_of(ro).get("workloadRef") or {}).get("kind") == "PodTemplate":
        path = "/template"
    patch = Patch([{"op": "replace", "path": path, "value": rs_template}], content_type=JSON_PATCH)
    return UndoPlan(revision, patch, "")


# --------------------------------------------------------------------------- set image

POD_SPEC_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def set_image_patch(obj: Mapping[str, Any], container: str, image: str) -> Patch:
    """`set image NAME container=image` (or `*=image`): a JSON patch that checks each container's name
    (so a concurrent edit of the list fails instead of changing the wrong one) and replaces its image, in
    initContainers, containers and ephemeralContainers of spec.template (Rollout, Deployment)."""
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    ops: list[dict[str, Any]] = []
    for field in POD_SPEC_CONTAINER_LISTS:
        for index, entry in enumerate(pod_spec.get(field) or []):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if container == "*" or name == container:
                base = f"/spec/template/spec/{field}/{index}"
                ops.append({"op": "test", "path": f"{base}/name", "value": name})
                ops.append({"op": "replace" if "image" in entry else "add", "path": f"{base}/image", "value": image})
    if not ops:
        names = [
            str(entry.get("name"))
            for field in POD_SPEC_CONTAINER_LISTS
            for entry in pod_spec.get(field) or []
            if isinstance(entry, Mapping)
        ]
        listed = ", ".join(names) if names else "none"
        raise ActionError(f'unable to find container named "{container}" (containers: {listed})')
    return Patch(ops, content_type=JSON_PATCH)


def parse_image_assignment(text: str) -> tuple[str, str]:
    """"web=nginx:1.26" -> ("web", "nginx:1.26"); ValueError unless there is exactly one '='."""
    parts = text.split("=")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f'expected CONTAINER=IMAGE (or *=IMAGE), got "{text}"')
    return parts[0], parts[1]
