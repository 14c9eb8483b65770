"""What the planners read and what they return: the observed state of one Rollout, the actions a plan
lists (a closed union, so the reconciler's dispatch over them is checked to be exhaustive), the Events
and the plan itself.

Pure data; :mod:`rollouts.controller.reconciler` builds the :class:`Observed` and carries out the :class:`Plan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.spec import RolloutSpec
from rollouts.model.timestamps import format_time, parse_time
from rollouts.strategy.replicasets import ReplicaSetView
from rollouts.traffic.router import ObjectRef, ObjectWrite

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PodView:
    name: str
    owner_uid: str
    created: float
    ready: bool
    deleting: bool

    @staticmethod
    def parse(obj: Mapping[str, Any]) -> PodView:
        meta = obj.get("metadata") or {}
        owner: Mapping[str, Any] = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), {})
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        )
        return PodView(
            name=str(meta.get("name", "")),
            owner_uid=str(owner.get("uid", "")),
            created=parse_time(meta.get("creationTimestamp")) or 0.0,
            ready=ready,
            deleting=bool(meta.get("deletionTimestamp")),
        )


@dataclass
class PassReading:
    """What every move of one pass reads alike, kept by its first planner for the next ones
    (rollouts.strategy.passes runs the planner again on the same spec and objects; only the status
    differs). Each is None until a planner has computed it."""

    spec: RolloutSpec | None = None  # the parsed spec (metadata and spec: no status)
    spec_errors: list[str] | None = None  # validate_rollout's answer: spec, template, Services present
    replicasets: list[ReplicaSetView] | None = None  # every one of ``Observed.replicasets``, parsed
    pod_hashes: dict[int | None, str] = field(default_factory=dict)  # the template's hash by collisionCount
    digest: str | None = None  # the template's digest


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile of one Rollout looks at (from watch caches)."""

    rollout: Mapping[str, Any]
    replicasets: Sequence[Mapping[str, Any]]  # those the Rollout controls
    services: Mapping[str, Mapping[str, Any]]  # name -> Service, for the names the Rollout references
    now: float
    workload: Mapping[str, Any] | None = None  # the Deployment of spec.workloadRef, if it exists
    pods: Sequence[Mapping[str, Any]] | None = None  # pods of the Rollout's ReplicaSets
    analysis_runs: Sequence[Mapping[str, Any]] = ()  # AnalysisRuns the Rollout controls
    analysis_run_names: frozenset[str] | None = None  # names of all AnalysisRuns in the namespace
    analysis_templates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # namespace's, by name
    cluster_analysis_templates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    experiments: Sequence[Mapping[str, Any]] = ()  # Experiments the Rollout controls (its experiment steps')
    # trafficRouting objects the routers name (absent ones as None); None: not read
    routing: Mapping[ObjectRef, Mapping[str, Any] | None] | None = None
    # shared by the moves of one pass (plan_pass); None: a single move parses what it reads
    reading: PassReading | None = None


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class CreateReplicaSet:
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class PatchReplicaSet:
    name: str
    patch: Mapping[str, Any]  # JSON merge patch
    why: str = ""


def scale_down_deadline_patch(rs_name: str, deadline: float | None, why: str) -> PatchReplicaSet:
    """Set the ReplicaSet's scale-down deadline to ``deadline`` (POSIX seconds), or clear it (None)."""
    stamp = None if deadline is None else format_time(deadline)
    return PatchReplicaSet(rs_name, {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: stamp}}}, why)


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str
    uid: str


@dataclass(frozen=True)
class PatchService:
    name: str
    patch: Mapping[str, Any]


@dataclass(frozen=True)
class DeletePod:
    name: str


@dataclass(frozen=True)
class PatchPod:
    name: str
    patch: Mapping[str, Any]  # JSON merge patch (ephemeral labels and annotations)


@dataclass(frozen=True)
class ScaleWorkload:
    kind: str
    name: str
    replicas: int


@dataclass(frozen=True)
class PatchRolloutMetadata:
    annotations: Mapping[str, str | None]


@dataclass(frozen=True)
class CreateAnalysisRun:
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class PatchAnalysisRun:
    name: str
    patch: Mapping[str, Any]  # JSON merge patch; ``{"spec": {"terminate": true}}`` to terminate


@dataclass(frozen=True)
class DeleteAnalysisRun:
    name: str
    uid: str


@dataclass(frozen=True)
class CreateExperiment:
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class PatchExperiment:
    name: str
    patch: Mapping[str, Any]  # JSON merge patch; ``{"spec": {"terminate": true}}`` to terminate


@dataclass(frozen=True)
class WriteRoutingObject:
    """A write a traffic router asked for (create / patch / delete of an Ingress, TrafficSplit, ...)."""

    write: ObjectWrite


Action: TypeAlias = (
    CreateReplicaSet
    | PatchReplicaSet
    | DeleteReplicaSet
    | PatchService
    | DeletePod
    | PatchPod
    | ScaleWorkload
    | PatchRolloutMetadata
    | CreateAnalysisRun
    | PatchAnalysisRun
    | DeleteAnalysisRun
    | CreateExperiment
    | PatchExperiment
    | WriteRoutingObject
)


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the whole new status; None: leave it
    events: list[EventSpec] = field(default_factory=list)
    requeue_after: float | None = None

    def requeue(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = seconds


# --------------------------------------------------------------------------- merge patches


def _merge_patch(old: Any, new: Any) -> Any:
    """An RFC 7386 merge patch turning ``old`` into ``new`` (None: no difference)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        patch: dict[str, Any] = {}
        for key in old:
            if key not in new:
                patch[key] = None
        for key, value in new.items():
            if key not in old:
                patch[key] = value
            else:
                sub = _merge_patch(old[key], value)
                if sub is not None:
                    patch[key] = sub
        return patch or None
    if old == new:
        return None
    return new


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch = _merge_patch(old, new)
    return dict(patch) if patch else {}
