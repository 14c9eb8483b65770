"""Typed, read-only views of a Rollout's spec, with Argo Rollouts' defaults and the values derived from
them (maxSurge, maxUnavailable, scale-down delays, maxTrafficWeight).

Everything here is pure: dicts in, frozen dataclasses out. The semantic checks that become an
``InvalidSpec`` condition are in :mod:`rollouts.model.validation`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollouts.model.durations import DurationError, int_or_duration_seconds

GROUP = "pyrollouts.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Rollout"
PLURAL = "rollouts"

#: Pod label carrying the pod-template hash (the same key as Argo Rollouts).
HASH_LABEL = "rollouts-pod-template-hash"
# Sharding (`pyrollouts controller --instance-id ID`): a controller handles only the Rollouts and
# AnalysisRuns carrying its id; a Rollout's runs carry its label (Argo's controller-instance-id).
INSTANCE_ID_LABEL = "pyrollouts.io/controller-instance-id"

DEFAULT_REPLICAS = 1
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_MAX_SURGE: int | str = "25%"
DEFAULT_MAX_UNAVAILABLE: int | str = "25%"
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS = 30
MAX_TRAFFIC_WEIGHT = 100
# status.canary.stablePingPong: which of canary.pingPong's Services is the stable one now
PING, PONG = "ping", "pong"

def scaled_int_or_percent(value: int | str, total: int, round_up: bool) -> int:
    """Kubernetes' ``GetScaledValueFromIntOrPercent``: ``2`` -> 2, ``"25%"`` of ``total``."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        percent = int(text[:-1])
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


@dataclass(frozen=True)
class CanaryScale:
    replicas: int | None = None
    weight: int | None = None
    match_traffic_weight: bool = False


@dataclass(frozen=True)
class Step:
    """One canary step. ``actions`` lists every action key present (a valid step has exactly one)."""

    index: int
    raw: Mapping[str, Any]
    actions: tuple[str, ...]
    set_weight: int | None = None
    pause: bool = False
    pause_seconds: int | None = None  # None with pause=True: until promoted
    pause_raw: Any = None
    canary_scale: CanaryScale | None = None

    def describe(self) -> str:
        """Argo's ``CanaryStepString`` (used in the RolloutStepCompleted event)."""
        if self.set_weight is not None:
            return f"setWeight: {self.set_weight}"
        if self.pause:
            if self.pause_raw is None:
                return "pause"
            return f"pause: {self.pause_raw}"  # Go prints an IntOrString as written
        if self.canary_scale is not None:
            cs = self.canary_scale
            if cs.weight is not None:
                return f"setCanaryScale{{weight: {cs.weight}}}"
            if cs.match_traffic_weight:
                return "setCanaryScale{matchTrafficWeight: true}"
            if cs.replicas is not None:
                return f"setCanaryScale{{replicas: {cs.replicas}}}"
        if self.actions:
            return self.actions[0]
        return "invalid"


STEP_ACTIONS = (
    "setWeight",
    "pause",
    "setCanaryScale",
    "analysis",
    "experiment",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
)


def _parse_step(index: int, raw: Mapping[str, Any]) -> Step:
    actions = tuple(key for key in STEP_ACTIONS if raw.get(key) is not None)
    set_weight = raw.get("setWeight")
    pause_obj = raw.get("pause")
    pause_seconds: int | None = None
    pause_raw: Any = None
    if isinstance(pause_obj, Mapping) and pause_obj.get("duration") is not None:
        pause_raw = pause_obj.get("duration")
        try:
            pause_seconds = int_or_duration_seconds(pause_raw)
        except DurationError:
            pause_seconds = -1
    scale: CanaryScale | None = None
    scale_obj = raw.get("setCanaryScale")
    if isinstance(scale_obj, Mapping):
        scale = CanaryScale(
            replicas=optional_int(scale_obj.get("replicas")),
            weight=optional_int(scale_obj.get("weight")),
            match_traffic_weight=bool(scale_obj.get("matchTrafficWeight", False)),
        )
    return Step(
        index=index,
        raw=raw,
        actions=actions,
        set_weight=int(set_weight) if isinstance(set_weight, int) and not isinstance(set_weight, bool) else None,
        pause=pause_obj is not None,
        pause_seconds=pause_seconds,
        pause_raw=pause_raw,
        canary_scale=scale,
    )


def optional_int(value: Any) -> int | None:
    """An integer field that may be unset (None for missing, boolean or unreadable values)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PodMetadata:
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(raw: Any) -> PodMetadata | None:
        if not isinstance(raw, Mapping):
            return None
        return PodMetadata(
            labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
        )

    def as_dict(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class CanarySpec:
    steps: tuple[Step, ...]
    max_surge: int | str
    max_unavailable: int | str
    max_surge_set: bool
    canary_service: str
    stable_service: str
    traffic_routing: Mapping[str, Any] | None
    scale_down_delay_seconds: int | None
    scale_down_delay_revision_limit: int | None
    abort_scale_down_delay_seconds: int | None
    canary_metadata: PodMetadata | None
    stable_metadata: PodMetadata | None
    min_pods_per_replica_set: int | None
    dynamic_stable_scale: bool
    raw: Mapping[str, Any]
    ping_service: str = ""  # canary.pingPong: the two Services that take turns as stable and canary
    pong_service: str = ""

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> CanarySpec:
        steps = tuple(_parse_step(i, s if isinstance(s, Mapping) else {}) for i, s in enumerate(raw.get("steps") or []))
        ping_pong: Mapping[str, Any] = raw["pingPong"] if isinstance(raw.get("pingPong"), Mapping) else {}
        return CanarySpec(
            ping_service=str(ping_pong.get("pingService") or ""),
            pong_service=str(ping_pong.get("pongService") or ""),
            steps=steps,
            max_surge=raw["maxSurge"] if raw.get("maxSurge") is not None else DEFAULT_MAX_SURGE,
            max_unavailable=(
                raw["maxUnavailable"] if raw.get("maxUnavailable") is not None else DEFAULT_MAX_UNAVAILABLE
            ),
            max_surge_set=raw.get("maxSurge") is not None,
            canary_service=str(raw.get("canaryService") or ""),
            stable_service=str(raw.get("stableService") or ""),
            traffic_routing=raw.get("trafficRouting") if isinstance(raw.get("trafficRouting"), Mapping) else None,
            scale_down_delay_seconds=optional_int(raw.get("scaleDownDelaySeconds")),
            scale_down_delay_revision_limit=optional_int(raw.get("scaleDownDelayRevisionLimit")),
            abort_scale_down_delay_seconds=optional_int(raw.get("abortScaleDownDelaySeconds")),
            canary_metadata=PodMetadata.parse(raw.get("canaryMetadata")),
            stable_metadata=PodMetadata.parse(raw.get("stableMetadata")),
            min_pods_per_replica_set=optional_int(raw.get("minPodsPerReplicaSet")),
            dynamic_stable_scale=bool(raw.get("dynamicStableScale", False)),
            raw=raw,
        )

    @property
    def ping_pong(self) -> bool:
        return "pingPong" in self.raw and self.raw.get("pingPong") is not None

    def with_stable_ping_pong(self, stable: str) -> CanarySpec:
        """With ``pingPong``: this spec with ``stableService`` / ``canaryService`` set to the Services whose
        turn it is (Argo's ``GetStableAndCanaryServices``): ``stable`` is ``status.canary.stablePingPong``,
        ``ping`` (the default) or ``pong``."""
        if not self.ping_pong:
            return self
        if stable == PONG:
            return dataclasses.replace(self, stable_service=self.pong_service, canary_service=self.ping_service)
        return dataclasses.replace(self, stable_service=self.ping_service, canary_service=self.pong_service)

    def step_hash_source(self) -> str:
        """The JSON of ``steps`` that the step hash is computed from."""
        return json.dumps(self.raw.get("steps") or [], sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class BlueGreenSpec:
    """``strategy.blueGreen`` with Argo's defaults."""

    active_service: str
    preview_service: str
    preview_replica_count: int | None
    auto_promotion_enabled: bool
    auto_promotion_seconds: int
    max_unavailable: int | str
    scale_down_delay_seconds: int | None
    scale_down_delay_revision_limit: int | None
    abort_scale_down_delay_seconds: int | None
    active_metadata: PodMetadata | None
    preview_metadata: PodMetadata | None
    anti_affinity: Mapping[str, Any] | None
    pre_promotion_analysis: Mapping[str, Any] | None
    post_promotion_analysis: Mapping[str, Any] | None
    raw: Mapping[str, Any]

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> BlueGreenSpec:
        def mapping(key: str) -> Mapping[str, Any] | None:
            value = raw.get(key)
            return value if isinstance(value, Mapping) else None

        auto = raw.get("autoPromotionEnabled")
        return BlueGreenSpec(
            active_service=str(raw.get("activeService") or ""),
            preview_service=str(raw.get("previewService") or ""),
            preview_replica_count=optional_int(raw.get("previewReplicaCount")),
            auto_promotion_enabled=True if auto is None else bool(auto),
            auto_promotion_seconds=optional_int(raw.get("autoPromotionSeconds")) or 0,
            max_unavailable=(
                raw["maxUnavailable"] if raw.get("maxUnavailable") is not None else DEFAULT_MAX_UNAVAILABLE
            ),
            scale_down_delay_seconds=optional_int(raw.get("scaleDownDelaySeconds")),
            scale_down_delay_revision_limit=optional_int(raw.get("scaleDownDelayRevisionLimit")),
            abort_scale_down_delay_seconds=optional_int(raw.get("abortScaleDownDelaySeconds")),
            active_metadata=PodMetadata.parse(raw.get("activeMetadata")),
            preview_metadata=PodMetadata.parse(raw.get("previewMetadata")),
            anti_affinity=mapping("antiAffinity"),
            pre_promotion_analysis=mapping("prePromotionAnalysis"),
            post_promotion_analysis=mapping("postPromotionAnalysis"),
            raw=raw,
        )

    def needs_controller_pause(self) -> bool:
        """Argo's ``needsBlueGreenControllerPause``: the controller pauses before the switch when
        auto-promotion is off, or on with ``autoPromotionSeconds``."""
        return not self.auto_promotion_enabled or self.auto_promotion_seconds > 0

    def scale_down_delay(self) -> int:
        """Seconds the previous active ReplicaSet keeps its pods after the switch (default 30; 0: none)."""
        value = self.scale_down_delay_seconds
        return DEFAULT_SCALE_DOWN_DELAY_SECONDS if value is None else max(value, 0)

    def abort_scale_down_delay(self) -> int | None:
        """Seconds an aborted new ReplicaSet keeps its pods (default 30); None: keep them (``0``)."""
        value = self.abort_scale_down_delay_seconds
        if value is None:
            return DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS
        return value if value > 0 else None


@dataclass(frozen=True)
class WorkloadRef:
    api_version: str
    kind: str
    name: str
    scale_down: str  # never | onsuccess | progressively


@dataclass(frozen=True)
class RolloutSpec:
    """The fields of a Rollout the controller reads, with Argo's defaults applied."""

    name: str
    namespace: str
    uid: str
    generation: int
    annotations: Mapping[str, str]
    replicas: int
    selector: Mapping[str, Any] | None
    template: Mapping[str, Any] | None
    workload_ref: WorkloadRef | None
    min_ready_seconds: int
    revision_history_limit: int
    paused: bool
    progress_deadline_seconds: int
    progress_deadline_abort: bool
    restart_at: str | None
    canary: CanarySpec | None
    has_blue_green: bool
    raw_spec: Mapping[str, Any]
    blue_green: BlueGreenSpec | None = None

    @staticmethod
    def parse(obj: Mapping[str, Any]) -> RolloutSpec:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        strategy = spec.get("strategy") or {}
        ref = spec.get("workloadRef")
        workload_ref = None
        if isinstance(ref, Mapping):
            workload_ref = WorkloadRef(
                api_version=str(ref.get("apiVersion") or "apps/v1"),
                kind=str(ref.get("kind") or "Deployment"),
                name=str(ref.get("name") or ""),
                scale_down=str(ref.get("scaleDown") or "never"),
            )
        canary_raw = strategy.get("canary")
        blue_green_raw = strategy.get("blueGreen")
        replicas = spec.get("replicas")
        rhl = spec.get("revisionHistoryLimit")
        pds = spec.get("progressDeadlineSeconds")
        return RolloutSpec(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation") or 0),
            annotations=dict(meta.get("annotations") or {}),
            replicas=int(replicas) if replicas is not None else DEFAULT_REPLICAS,
            selector=spec.get("selector") if isinstance(spec.get("selector"), Mapping) else None,
            template=spec.get("template") if isinstance(spec.get("template"), Mapping) else None,
            workload_ref=workload_ref,
            min_ready_seconds=int(spec.get("minReadySeconds") or 0),
            revision_history_limit=int(rhl) if rhl is not None else DEFAULT_REVISION_HISTORY_LIMIT,
            paused=bool(spec.get("paused", False)),
            progress_deadline_seconds=int(pds) if pds is not None else DEFAULT_PROGRESS_DEADLINE_SECONDS,
            progress_deadline_abort=bool(spec.get("progressDeadlineAbort", False)),
            restart_at=str(spec["restartAt"]) if spec.get("restartAt") else None,
            canary=CanarySpec.parse(canary_raw) if isinstance(canary_raw, Mapping) else None,
            has_blue_green=strategy.get("blueGreen") is not None,
            raw_spec=spec,
            blue_green=BlueGreenSpec.parse(blue_green_raw) if isinstance(blue_green_raw, Mapping) else None,
        )

    # ------------------------------------------------------------------ derived values

    def max_surge(self) -> int:
        """Argo's ``MaxSurge``: resolved against spec.replicas, rounding up."""
        surge, _ = self._fenceposts()
        return surge

    def max_unavailable(self) -> int:
        """Argo's ``MaxUnavailable``: rounding down, never above spec.replicas."""
        if self.replicas == 0:
            return 0
        _, unavailable = self._fenceposts()
        return min(unavailable, self.replicas)

    def _fenceposts(self) -> tuple[int, int]:
        if self.canary is None and self.blue_green is not None:
            # blue/green moves whole stacks; maxUnavailable only limits restarts (Argo: maxSurge 100%)
            unavailable = scaled_int_or_percent(self.blue_green.max_unavailable, self.replicas, False)
            return self.replicas, unavailable
        assert self.canary is not None
        surge = scaled_int_or_percent(self.canary.max_surge, self.replicas, True)
        unavailable = scaled_int_or_percent(self.canary.max_unavailable, self.replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def uses_traffic_routing(self) -> bool:
        return self.canary is not None and self.canary.traffic_routing is not None

    def scale_down_delay(self) -> int | None:
        """Seconds to keep the previous stable ReplicaSet's pods once a new version is promoted, or None
        to scale them down right away.

        With a traffic router this is Argo's ``GetScaleDownDelaySecondsOrDefault`` (default 30 s).
        Argo rejects ``scaleDownDelaySeconds`` without a traffic router; we honour an explicit value
        above zero there: the stable ReplicaSet keeps its pods while the canary goes to full size,
        and after the promotion (Services switched to the new hash) until the deadline, so that
        connections drain and a rollback within the window finds its pods still running. Unset
        or 0 keeps Argo's basic-canary behaviour (scale down at once)."""
        assert self.canary is not None
        value = self.canary.scale_down_delay_seconds
        if self.uses_traffic_routing():
            if value is None:
                return DEFAULT_SCALE_DOWN_DELAY_SECONDS
            return value if value > 0 else None
        return value if value is not None and value > 0 else None

    def scale_down_delay_revision_limit(self) -> int | None:
        """Argo's ``GetScaleDownRevisionLimit``: how many old ReplicaSets may be kept within their
        delay (None: no limit); older ones are scaled down at once."""
        assert self.canary is not None
        return self.canary.scale_down_delay_revision_limit

    def abort_scale_down_delay(self) -> int | None:
        """Seconds to keep an aborted canary's pods, or None to scale it down right away.

        Argo ignores ``abortScaleDownDelaySeconds`` without a traffic router (the canary's pods are
        the traffic split, so they go as the stable comes back). We honour an explicit value there
        too: the stable ReplicaSet returns to full size first and the canary keeps its pods until
        the delay ends, which is what a user who sets the field asks for."""
        assert self.canary is not None
        value = self.canary.abort_scale_down_delay_seconds
        if self.uses_traffic_routing():
            if value is None:
                return DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS
            return value if value > 0 else None
        return value if value is not None and value > 0 else None


def max_traffic_weight(canary: CanarySpec) -> int:
    """``trafficRouting.maxTrafficWeight`` (default 100): the total the step weights are out of."""
    value = (canary.traffic_routing or {}).get("maxTrafficWeight")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return MAX_TRAFFIC_WEIGHT
