"""Pure: what `get rollout` shows about a Rollout, computed from the objects the API server returns.

This follows `kubectl argo rollouts` (`pkg/kubectl-argo-rollouts/info`): the actual weight, the images
with their canary/stable/active/preview tags, the judges' last verdicts, and the tree of revisions,
ReplicaSets, Pods and AnalysisRuns with their status icons. The phase, step, set weight and revision
are the controller's own rules (:mod:`rollouts.model`, Argo's ``utils/rollout``), applied to the same
typed view. Objects are plain dicts (what the API returns as JSON); nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollouts.cli.score_info import ScoreInfo, score_info
from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.phase import rollout_phase
from rollouts.model.revisions import revision_of
from rollouts.model.spec import HASH_LABEL, CanarySpec, RolloutSpec, max_traffic_weight
from rollouts.model.steps import current_set_weight, current_step, step_text
from rollouts.model.timestamps import parse_datetime

# Status icons, as Argo draws them.
ICON_WAITING = "◷"
ICON_PROGRESSING = "◌"
ICON_WARNING = "⚠"
ICON_UNKNOWN = "?"
ICON_OK = "✔"
ICON_BAD = "✖"
ICON_PAUSED = "॥"
ICON_NEUTRAL = "•"

TAG_CANARY = "canary"
TAG_STABLE = "stable"
TAG_ACTIVE = "active"
TAG_PREVIEW = "preview"
TAG_PING = "ping"
TAG_PONG = "pong"

SCALE_DOWN_DEADLINE_ANNOTATIONS = (SCALE_DOWN_DEADLINE, "scale-down-deadline")

def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def as_int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(obj.get("metadata"))


def owned_by(obj: Mapping[str, Any], uids: Iterable[str]) -> str | None:
    """The uid among `uids` that owns `obj` (any ownerReference, as Argo's `ownerRef`)."""
    wanted = set(uids)
    for ref in as_list(meta(obj).get("ownerReferences")):
        uid = as_map(ref).get("uid")
        if isinstance(uid, str) and uid in wanted:
            return uid
    return None


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether `obj` has a controller ownerReference to `uid` (`metav1.IsControlledBy`)."""
    return any(
        as_map(ref).get("uid") == uid and as_map(ref).get("controller") is True
        for ref in as_list(meta(obj).get("ownerReferences"))
    )


def pod_template_hash(obj: Mapping[str, Any]) -> str:
    labels = as_map(meta(obj).get("labels"))
    value = labels.get(HASH_LABEL, "")
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------- the Rollout


def spec_of(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(ro.get("spec"))


def status_of(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(ro.get("status"))


def canary_of(ro: Mapping[str, Any]) -> Mapping[str, Any] | None:
    strategy = as_map(spec_of(ro).get("strategy"))
    canary = strategy.get("canary")
    return canary if isinstance(canary, Mapping) else None


def bluegreen_of(ro: Mapping[str, Any]) -> Mapping[str, Any] | None:
    strategy = as_map(spec_of(ro).get("strategy"))
    bluegreen = strategy.get("blueGreen")
    return bluegreen if isinstance(bluegreen, Mapping) else None


def rollout_icon(status: str) -> str:
    return {
        "Progressing": ICON_PROGRESSING,
        "Error": ICON_WARNING,
        "InvalidSpec": ICON_WARNING,
        "Paused": ICON_PAUSED,
        "Healthy": ICON_OK,
        "Degraded": ICON_BAD,
        "Unknown": ICON_UNKNOWN,
        "ScaledDown": ICON_NEUTRAL,
    }.get(status, " ")


# --------------------------------------------------------------------------- children


@dataclass
class PodInfo:
    """One pod of the tree: its status with icon, ready containers and restarts."""

    name: str
    created: dt.datetime | None
    status: str
    icon: str
    ready: str
    restarts: int


@dataclass
class ReplicaSetInfo:
    """One ReplicaSet of the tree: revision, health, replicas, images and the role tags it carries."""

    name: str
    uid: str
    created: dt.datetime | None
    revision: int
    status: str
    icon: str
    replicas: int
    available: int
    images: list[str]
    stable: bool = False
    canary: bool = False
    active: bool = False
    preview: bool = False
    ping: bool = False
    pong: bool = False
    scale_down_deadline: str = ""
    pods: list[PodInfo] = field(default_factory=list)


@dataclass
class JobInfo:
    """A Job started by a job metric of an AnalysisRun."""

    name: str
    created: dt.datetime | None
    status: str
    icon: str


@dataclass
class AnalysisRunInfo:
    """An AnalysisRun (or an experiment step's Experiment) of the tree, with its measurement counts."""

    name: str
    created: dt.datetime | None
    revision: int
    status: str
    icon: str
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    jobs: list[JobInfo] = field(default_factory=list)
    kind: str = "AnalysisRun"  # or "Experiment": an experiment step's, shown beside the runs


@dataclass
class RouterWeightInfo:
    """One traffic router: the weight the controller set, the weight its objects route, and a problem."""

    name: str
    set_weight: str
    actual_weight: str
    message: str = ""


def router_weight_infos(status: Mapping[str, Any]) -> list[RouterWeightInfo]:
    """From `status.canary.trafficRouters`, written by the controller after reading each router's objects."""
    out = []
    for entry in as_list(as_map(status.get("canary")).get("trafficRouters")):
        router = as_map(entry)
        actual = router.get("actualWeight")
        out.append(
            RouterWeightInfo(
                name=str(router.get("name", "")),
                set_weight=str(as_int(router.get("setWeight"))),
                actual_weight=str(as_int(actual)) if actual is not None else "unknown",
                message=str(router.get("message") or ""),
            )
        )
    return out


@dataclass
class RolloutInfo:
    """Everything `get rollout` shows about one Rollout."""

    name: str
    namespace: str
    created: dt.datetime | None
    status: str
    message: str
    icon: str
    strategy: str
    step: str
    set_weight: str
    actual_weight: str
    desired: int
    current: int
    updated: int
    ready: int
    available: int
    replicasets: list[ReplicaSetInfo] = field(default_factory=list)
    analysisruns: list[AnalysisRunInfo] = field(default_factory=list)
    judges: list[RunJudgeInfo] = field(default_factory=list)
    routers: list[RouterWeightInfo] = field(default_factory=list)


def replicaset_health(rs: Mapping[str, Any]) -> str:
    """Argo's `getReplicaSetHealth`: Progressing, ReplicaFailure, ScaledDown or Healthy."""
    spec, status = as_map(rs.get("spec")), as_map(rs.get("status"))
    replicas = spec.get("replicas")
    if as_int(meta(rs).get("generation")) <= as_int(status.get("observedGeneration")):
        failure = next(
            (as_map(c) for c in as_list(status.get("conditions")) if as_map(c).get("type") == "ReplicaFailure"), None
        )
        if failure is not None and failure.get("status") == "True":
            return "ReplicaFailure"
        if replicas is not None and as_int(status.get("availableReplicas")) < as_int(replicas):
            return "Progressing"
    else:
        return "Progressing"
    if replicas is not None and as_int(replicas) == 0:
        return "ScaledDown"
    return "Healthy"


def replicaset_icon(status: str) -> str:
    return {
        "Progressing": ICON_PROGRESSING,
        "Healthy": ICON_OK,
        "ReplicaFailure": ICON_BAD,
        "ScaledDown": ICON_NEUTRAL,
    }.get(status, " ")


def pod_status(pod: Mapping[str, Any]) -> tuple[str, str, int]:
    """(status word, "ready/total", restarts) as `kubectl get pods` and Argo's tree show them."""
    spec, status = as_map(pod.get("spec")), as_map(pod.get("status"))
    total = len(as_list(spec.get("containers")))
    ready_count = 0
    init_reason, restarts = _init_status(spec, status)
    if init_reason is not None:
        reason = init_reason
    else:
        pod_reason = str(status.get("reason") or status.get("phase") or "")
        reason, ready_count, restarts = _containers_status(status, pod_reason)
    if meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, f"{ready_count}/{total}", restarts


def _init_status(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[str | None, int]:
    """(the "Init:..." reason of the first init container that holds the pod, or None when none does;
    the restarts of the init containers up to it)."""
    init_specs = [as_map(c) for c in as_list(spec.get("initContainers"))]
    sidecar = {str(c.get("name")): c.get("restartPolicy") == "Always" for c in init_specs}
    restarts = 0
    for i, container in enumerate(as_map(c) for c in as_list(status.get("initContainerStatuses"))):
        restarts += as_int(container.get("restartCount"))
        blocker = _init_blocker(i, container, len(init_specs), bool(sidecar.get(str(container.get("name")))))
        if blocker is not None:
            return blocker or None, restarts
    return None, restarts


def _init_blocker(index: int, container: Mapping[str, Any], init_count: int, is_sidecar: bool) -> str | None:
    """Why init container `index` holds the pod: an "Init:..." reason; "" for a started sidecar that is
    not ready yet (the scan stops there, the pod is not shown as initializing); None when it is done."""
    state = as_map(container.get("state"))
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if isinstance(terminated, Mapping):
        if as_int(terminated.get("exitCode")) == 0:
            return None
        if terminated.get("reason"):
            return f"Init:{terminated['reason']}"
        signal = as_int(terminated.get("signal"))
        return f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{as_int(terminated.get('exitCode'))}"
    if is_sidecar and container.get("started") is True:
        return None if container.get("ready") is True else ""
    if isinstance(waiting, Mapping) and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
        return f"Init:{waiting['reason']}"
    return f"Init:{index}/{init_count}"


def _containers_status(status: Mapping[str, Any], reason: str) -> tuple[str, int, int]:
    """(reason, ready containers, restarts) from the app containers, starting from the pod's `reason`."""
    restarts = 0
    ready_count = 0
    has_running = False
    for container in reversed([as_map(c) for c in as_list(status.get("containerStatuses"))]):
        restarts += as_int(container.get("restartCount"))
        state = as_map(container.get("state"))
        waiting, terminated = as_map(state.get("waiting")), state.get("terminated")
        if waiting.get("reason"):
            reason = str(waiting["reason"])
        elif isinstance(terminated, Mapping) and terminated.get("reason"):
            reason = str(terminated["reason"])
        elif isinstance(terminated, Mapping):
            signal = as_int(terminated.get("signal"))
            reason = f"Signal:{signal}" if signal else f"ExitCode:{as_int(terminated.get('exitCode'))}"
        elif container.get("ready") is True and isinstance(state.get("running"), Mapping):
            has_running = True
            ready_count += 1
    if reason == "Completed" and has_running:
        reason = "Running"
    return reason, ready_count, restarts


def pod_icon(status: str) -> str:
    if status.startswith("Init:"):
        return ICON_PROGRESSING
    if status.startswith(("Signal:", "ExitCode:")):
        return ICON_BAD
    if status.endswith("Error") or status.startswith("Err"):
        return ICON_WARNING
    return {
        "Pending": ICON_PROGRESSING,
        "Terminating": ICON_PROGRESSING,
        "ContainerCreating": ICON_PROGRESSING,
        "Running": ICON_OK,
        "Completed": ICON_OK,
        "Failed": ICON_BAD,
        "InvalidImageName": ICON_BAD,
        "CrashLoopBackOff": ICON_BAD,
        "ImagePullBackOff": ICON_WARNING,
        "RegistryUnavailable": ICON_WARNING,
        "Unknown": ICON_UNKNOWN,
    }.get(status, " ")


def analysis_icon(phase: str) -> str:
    return {
        "Successful": ICON_OK,
        "Inconclusive": ICON_UNKNOWN,
        "Failed": ICON_BAD,
        "Error": ICON_WARNING,
        "Running": ICON_PROGRESSING,
        "Pending": ICON_WAITING,
    }.get(phase, " ")


def _sort_key_time(created: dt.datetime | None) -> float:
    return created.timestamp() if created is not None else 0.0


def _pod_info(pod: Mapping[str, Any]) -> PodInfo:
    status, ready, restarts = pod_status(pod)
    return PodInfo(
        name=str(meta(pod).get("name", "")),
        created=parse_datetime(meta(pod).get("creationTimestamp")),
        status=status,
        icon=pod_icon(status),
        ready=ready,
        restarts=restarts,
    )


def _images(template: Any) -> list[str]:
    containers = as_list(as_map(as_map(template).get("spec")).get("containers"))
    return [str(as_map(c).get("image", "")) for c in containers]


def replicaset_infos(
    ro: Mapping[str, Any] | None,
    owner_uid: str,
    replicasets: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
) -> list[ReplicaSetInfo]:
    """The ReplicaSets owned by `owner_uid`, newest revision first, each with its pods (oldest first)."""
    infos: list[ReplicaSetInfo] = []
    status = status_of(ro) if ro is not None else {}
    canary = canary_of(ro) if ro is not None else None
    bluegreen = bluegreen_of(ro) if ro is not None else None
    ping_pong = canary is not None and canary.get("pingPong") is not None
    stable_is_ping = as_map(status.get("canary")).get("stablePingPong") == "ping"
    for rs in replicasets:
        if owned_by(rs, [owner_uid]) is None:
            continue
        rs_meta, rs_status = meta(rs), as_map(rs.get("status"))
        health = replicaset_health(rs)
        annotations = as_map(rs_meta.get("annotations"))
        deadline = next((str(annotations[k]) for k in SCALE_DOWN_DEADLINE_ANNOTATIONS if k in annotations), "")
        info = ReplicaSetInfo(
            name=str(rs_meta.get("name", "")),
            uid=str(rs_meta.get("uid", "")),
            created=parse_datetime(rs_meta.get("creationTimestamp")),
            revision=revision_of(rs),
            status=health,
            icon=replicaset_icon(health),
            replicas=as_int(rs_status.get("replicas")),
            available=as_int(rs_status.get("availableReplicas")),
            images=_images(as_map(rs.get("spec")).get("template")),
            scale_down_deadline=deadline,
        )
        rs_hash = pod_template_hash(rs)
        if canary is not None:
            if status.get("stableRS") == rs_hash:
                info.stable = True
                if ping_pong:
                    info.ping, info.pong = stable_is_ping, not stable_is_ping
            elif status.get("currentPodHash") == rs_hash:
                info.canary = True
                if ping_pong:
                    info.ping, info.pong = not stable_is_ping, stable_is_ping
        if bluegreen is not None:
            selectors = as_map(status.get("blueGreen"))
            if status.get("stableRS") == rs_hash:
                info.stable = True
            if selectors.get("activeSelector") == rs_hash:
                info.active = True
            elif selectors.get("previewSelector") == rs_hash:
                info.preview = True
        infos.append(info)
    infos.sort(key=lambda i: (-i.revision, i.name))
    by_uid = {i.uid: i for i in infos}
    for pod in pods:
        uid = owned_by(pod, by_uid)
        if uid is not None:
            by_uid[uid].pods.append(_pod_info(pod))
    for info in infos:
        info.pods.sort(key=lambda p: (_sort_key_time(p.created), p.name))
    return infos


def analysisrun_infos(owner_uid: str, runs: Iterable[Mapping[str, Any]]) -> list[AnalysisRunInfo]:
    infos: list[AnalysisRunInfo] = []
    for run in runs:
        if owned_by(run, [owner_uid]) is None:
            continue
        run_meta, run_status = meta(run), as_map(run.get("status"))
        phase = str(run_status.get("phase") or "")
        info = AnalysisRunInfo(
            name=str(run_meta.get("name", "")),
            created=parse_datetime(run_meta.get("creationTimestamp")),
            revision=revision_of(run),
            status=phase,
            icon=analysis_icon(phase),
            kind="Experiment" if run.get("kind") == "Experiment" else "AnalysisRun",
        )
        for result in (as_map(r) for r in as_list(run_status.get("metricResults"))):
            info.successful += as_int(result.get("successful"))
            info.failed += as_int(result.get("failed"))
            info.inconclusive += as_int(result.get("inconclusive"))
            info.error += as_int(result.get("error"))
            for measurement in (as_map(m) for m in as_list(result.get("measurements"))):
                metadata = as_map(measurement.get("metadata"))
                job_name = metadata.get("job-name")
                if isinstance(job_name, str):
                    job_phase = str(measurement.get("phase") or "")
                    info.jobs.append(
                        JobInfo(
                            name=job_name,
                            created=parse_datetime(measurement.get("startedAt")),
                            status=job_phase,
                            icon=analysis_icon(job_phase),
                        )
                    )
        infos.append(info)
    # Argo: newest revision first, then oldest first, then by name descending.
    infos.sort(key=lambda i: (-i.revision, _sort_key_time(i.created), _Reversed(i.name)))
    return infos


@dataclass(frozen=True)
class _Reversed:
    """A sort key ordering strings in reverse (Argo sorts ReplicaSet names descending)."""

    value: str

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value


def rollout_info(
    ro: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]] = (),
    pods: Sequence[Mapping[str, Any]] = (),
    analysisruns: Sequence[Mapping[str, Any]] = (),
) -> RolloutInfo:
    """Everything `get rollout` shows, from the Rollout and the objects in its namespace."""
    ro_meta, status = meta(ro), status_of(ro)
    view = RolloutSpec.parse(ro)
    uid = str(ro_meta.get("uid", ""))
    phase, message = rollout_phase(ro)
    info = RolloutInfo(
        name=str(ro_meta.get("name", "")),
        namespace=str(ro_meta.get("namespace", "")),
        created=parse_datetime(ro_meta.get("creationTimestamp")),
        status=phase,
        message=message,
        icon=rollout_icon(phase),
        strategy="",
        step="",
        set_weight="",
        actual_weight="",
        desired=view.replicas,
        current=as_int(status.get("replicas")),
        updated=as_int(status.get("updatedReplicas")),
        ready=as_int(status.get("readyReplicas")),
        available=as_int(status.get("availableReplicas")),
        replicasets=replicaset_infos(ro, uid, replicasets, pods),
        analysisruns=analysisrun_infos(uid, analysisruns),
        judges=current_judges(ro, analysisruns),
    )
    if view.canary is not None:
        info.strategy = "Canary"
        _canary_weights(info, view, view.canary, status)
    elif bluegreen_of(ro) is not None:
        info.strategy = "BlueGreen"
    return info


def _canary_weights(info: RolloutInfo, view: RolloutSpec, canary: CanarySpec, status: Mapping[str, Any]) -> None:
    """Step, SetWeight and ActualWeight as Argo's `NewRolloutInfo` fills them, and each router's weights."""
    info.step = step_text(view, status)
    info.set_weight = str(current_set_weight(view, status))
    info.actual_weight = "0"
    step, _index = current_step(view, status)
    if step is None:
        info.actual_weight = str(max_traffic_weight(canary))
    elif info.available > 0:
        if canary.traffic_routing is None:
            for rs in info.replicasets:
                if rs.canary:
                    info.actual_weight = str(rs.available * max_traffic_weight(canary) // info.available)
        else:
            weights = as_map(status.get("canary")).get("weights")
            if isinstance(weights, Mapping):
                info.actual_weight = str(as_int(as_map(weights.get("canary")).get("weight")))
            else:
                info.actual_weight = info.set_weight
    info.routers = router_weight_infos(status)
    actuals = {r.actual_weight for r in info.routers}
    if info.routers and len(actuals) == 1 and step is not None:
        info.actual_weight = actuals.pop()  # what the routing objects route, read back by the controller


@dataclass
class ImageInfo:
    """An image the running ReplicaSets use, with their role tags."""

    image: str
    tags: list[str]


def images(info: RolloutInfo) -> list[ImageInfo]:
    """Images of the ReplicaSets that have pods, with their tags, sorted by image (Argo's `Images`).

    One ReplicaSet's tags keep Argo's order (canary, stable, active, preview, ping, pong); an image
    that several ReplicaSets run gets the sorted union of their tags.
    """
    found: dict[str, ImageInfo] = {}
    for rs in info.replicasets:
        if rs.replicas <= 0:
            continue
        tags = [
            tag
            for tag, on in (
                (TAG_CANARY, rs.canary),
                (TAG_STABLE, rs.stable),
                (TAG_ACTIVE, rs.active),
                (TAG_PREVIEW, rs.preview),
                (TAG_PING, rs.ping),
                (TAG_PONG, rs.pong),
            )
            if on
        ]
        for image in rs.images:
            if image in found:
                found[image].tags = sorted(set(found[image].tags) | set(tags))
            else:
                found[image] = ImageInfo(image, list(tags))
    return [found[image] for image in sorted(found)]


def revisions(info: RolloutInfo) -> list[int]:
    found = {rs.revision for rs in info.replicasets} | {run.revision for run in info.analysisruns}
    return sorted(found, reverse=True)


# --------------------------------------------------------------------------- judges

@dataclass
class RunJudgeInfo:
    """A judge metric of one of the Rollout's current AnalysisRuns, for `get rollout`."""

    run: str
    metric: str
    judge: JudgeInfo


@dataclass
class JudgeInfo:
    """The last verdict of a `judge` metric: why it decided (or why not yet)."""

    decision: str
    reason: str
    quantity: str
    estimate: str
    interval: str
    evidence: str  # e-values, or a p-value and an effect size
    samples: str  # requests or points per version
    score: ScoreInfo | None = None  # a score (provider.judge.metrics): its thresholds and each metric's line


def judge_info(metric_spec: Mapping[str, Any], measurements: list[Mapping[str, Any]]) -> JudgeInfo | None:
    """For a `judge` metric, the newest measurement's verdict (its metadata); None otherwise."""
    judge_spec = as_map(as_map(metric_spec.get("provider")).get("judge"))
    if not judge_spec:
        return None
    for m in reversed(measurements):
        data = {k: str(v) for k, v in as_map(m.get("metadata")).items() if v is not None}
        if data.get("decision"):
            evidence = data.get("evidence", "")
            if not evidence and (data.get("eFail") or data.get("ePass")):  # written before `evidence` existed
                evidence = f"e-value fail {data.get('eFail') or '-'}, pass {data.get('ePass') or '-'}"
            samples = data.get("samples", "")
            if not samples and (data.get("canaryRequests") or data.get("baselineRequests")):
                samples = (f"canary {data.get('canaryRequests') or 0} requests, "
                           f"baseline {data.get('baselineRequests') or 0} requests")
            return JudgeInfo(
                decision=data["decision"],
                reason=data.get("reason", ""),
                quantity=data.get("quantity", ""),
                estimate=data.get("estimate", ""),
                interval=data.get("interval", ""),
                evidence=evidence,
                samples=samples,
                score=score_info(judge_spec, data),
            )
    return None


def current_judges(ro: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[RunJudgeInfo]:
    """The judges' last verdicts in the Rollout's current analysis: the runs its status names (step and
    background analysis); without one (promoted or aborted), the runs of its newest revision."""
    uid = str(meta(ro).get("uid", ""))
    owned = [run for run in runs if owned_by(run, [uid]) is not None]
    canary = as_map(status_of(ro).get("canary"))
    names = {
        str(as_map(canary.get(key)).get("name"))
        for key in ("currentStepAnalysisRunStatus", "currentBackgroundAnalysisRunStatus")
        if as_map(canary.get(key)).get("name")
    }
    chosen = [run for run in owned if str(meta(run).get("name", "")) in names]
    if not chosen and owned:
        newest = max(revision_of(run) for run in owned)
        chosen = [run for run in owned if revision_of(run) == newest]
    chosen.sort(key=lambda run: (_sort_key_time(parse_datetime(meta(run).get("creationTimestamp"))),
                                 str(meta(run).get("name", ""))))
    out: list[RunJudgeInfo] = []
    for run in chosen:
        metric_results = as_list(as_map(run.get("status")).get("metricResults"))
        results = {str(as_map(r).get("name", "")): as_map(r) for r in metric_results}
        for metric in (as_map(m) for m in as_list(as_map(run.get("spec")).get("metrics"))):
            name = str(metric.get("name", ""))
            measurements = [as_map(m) for m in as_list(results.get(name, {}).get("measurements"))]
            judge = judge_info(metric, measurements)
            if judge is not None:
                out.append(RunJudgeInfo(str(meta(run).get("name", "")), name, judge))
    return out
