"""Analysis in the rollout strategies, as pure functions: the canary's ``analysis`` step and background
analysis, and blue/green's pre- and post-promotion analysis (:class:`PromotionAnalysis`, Argo's
``reconcilePrePromotionAnalysisRun`` / ``reconcilePostPromotionAnalysisRun`` on the same machinery).

Follows Argo Rollouts' ``rollout/analysis.go`` (``reconcileAnalysisRuns``,
``reconcileStepBasedAnalysisRun``, ``reconcileBackgroundAnalysisRun``, ``cancelAnalysisRuns``,
``newAnalysisRunFromRollout``) and ``utils/analysis/filter.go`` (history limits):

- a step run ``<rollout>-<podHash>-<revision>-<stepIndex>`` is created when the current step is an
  ``analysis`` step; the step completes when the run is Successful;
- a background run ``<rollout>-<podHash>-<revision>`` runs from ``strategy.canary.analysis.startingStep``
  (default: the first step) until the rollout is fully promoted or aborted;
- Failed or Error aborts the rollout (the run's message in the abort condition), Inconclusive pauses
  it with the ``InconclusiveAnalysisRun`` reason (``controllerPause``) until promoted or aborted;
- runs the Rollout no longer lists (older revisions, a previous step, after an abort, a full promotion
  or a new template) are terminated (``spec.terminate: true``) and, once complete, kept up to
  ``spec.analysis.successfulRunHistoryLimit`` / ``unsuccessfulRunHistoryLimit`` (default 5 each).

Everything here reads plain dicts and returns plain dicts; the planners (:mod:`rollouts.strategy.canary`,
:mod:`rollouts.strategy.bluegreen`) fold the result into their plan.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.spec import UNRESOLVED_ARGS_ANNOTATION, ArgError, SpecError, build_analysis_run, resolve_rollout_args
from rollouts.model.conditions import INCONCLUSIVE_ANALYSIS_PAUSE
from rollouts.model.revisions import REVISION
from rollouts.model.spec import HASH_LABEL, INSTANCE_ID_LABEL, RolloutSpec
from rollouts.model.timestamps import parse_time
from rollouts.strategy.replicasets import owner_reference

ROLLOUT_TYPE_LABEL = "rollout-type"
STEP_INDEX_LABEL = "step-index"
STEP_TYPE = "Step"
BACKGROUND_TYPE = "Background"
PAUSE_INCONCLUSIVE = INCONCLUSIVE_ANALYSIS_PAUSE
PAUSE_CANARY_STEP = "CanaryPauseStep"
STEP_STATUS = "currentStepAnalysisRunStatus"
BACKGROUND_STATUS = "currentBackgroundAnalysisRunStatus"
PRE_PROMOTION = "prePromotionAnalysis"
POST_PROMOTION = "postPromotionAnalysis"
PRE_STATUS = "prePromotionAnalysisRunStatus"
POST_STATUS = "postPromotionAnalysisRunStatus"
PRE_TYPE = "PrePromotion"
POST_TYPE = "PostPromotion"
PRE_FAILED_MESSAGE = "Pre-promotion analysis phase error/failed"
POST_FAILED_MESSAGE = "Post-promotion analysis phase error/failed"
DEFAULT_SUCCESSFUL_HISTORY_LIMIT = 5
DEFAULT_UNSUCCESSFUL_HISTORY_LIMIT = 5
COMPLETED_PHASES = ("Successful", "Failed", "Error", "Inconclusive")
UNSUCCESSFUL_PHASES = ("Failed", "Error", "Inconclusive")
TERMINATE_PATCH: Mapping[str, Any] = {"spec": {"terminate": True}}
STEP_FAILED_MESSAGE = "Step-based analysis phase error/failed"
BACKGROUND_FAILED_MESSAGE = "Background analysis phase error/failed"


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class RunView:
    """What the rollout controller reads of an AnalysisRun."""

    name: str
    uid: str
    phase: str
    message: str
    labels: Mapping[str, str]
    created: float
    terminate: bool
    deleting: bool
    spec: Mapping[str, Any]

    @staticmethod
    def parse(obj: Mapping[str, Any]) -> RunView:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        return RunView(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            phase=str(status.get("phase") or ""),
            message=str(status.get("message") or ""),
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            created=parse_time(meta.get("creationTimestamp")) or 0.0,
            terminate=bool(spec.get("terminate", False)),
            deleting=bool(meta.get("deletionTimestamp")),
            spec=spec,
        )

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED_PHASES


@dataclass(frozen=True)
class AnalysisRef:
    """One place a Rollout asks for analysis: an ``analysis`` step, or the background analysis."""

    path: str  # the field path of its templates, for InvalidSpec messages
    raw: Mapping[str, Any]  # the RolloutAnalysis: templates, args, dryRun, measurementRetention, analysisRunMetadata

    @property
    def templates(self) -> list[Mapping[str, Any]]:
        return [t for t in self.raw.get("templates") or [] if isinstance(t, Mapping)]


def background_analysis(ro: RolloutSpec) -> AnalysisRef | None:
    raw = ro.canary.raw.get("analysis") if ro.canary is not None else None
    if not isinstance(raw, Mapping):
        return None
    return AnalysisRef("spec.strategy.canary.analysis.templates", raw)


def step_analysis(ro: RolloutSpec, index: int) -> AnalysisRef | None:
    if ro.canary is None or not 0 <= index < len(ro.canary.steps):
        return None
    raw = ro.canary.steps[index].raw.get("analysis")
    if not isinstance(raw, Mapping):
        return None
    return AnalysisRef(f"spec.strategy.canary.steps[{index}].analysis.templates", raw)


def promotion_analysis(ro: RolloutSpec, key: str) -> AnalysisRef | None:
    """Blue/green ``prePromotionAnalysis`` or ``postPromotionAnalysis``."""
    raw = ro.blue_green.raw.get(key) if ro.blue_green is not None else None
    if not isinstance(raw, Mapping):
        return None
    return AnalysisRef(f"spec.strategy.blueGreen.{key}.templates", raw)


def all_analyses(ro: RolloutSpec) -> list[AnalysisRef]:
    refs = [step_analysis(ro, i) for i in range(len(ro.canary.steps) if ro.canary else 0)]
    refs.append(background_analysis(ro))
    refs.extend(promotion_analysis(ro, key) for key in ("prePromotionAnalysis", "postPromotionAnalysis"))
    return [r for r in refs if r is not None]


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Templates:
    """The AnalysisTemplates of the Rollout's namespace and the ClusterAnalysisTemplates, by name."""

    namespaced: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cluster: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, name: str, cluster_scope: bool) -> Mapping[str, Any] | None:
        return (self.cluster if cluster_scope else self.namespaced).get(name)


def _kind(cluster_scope: bool) -> str:
    return "ClusterAnalysisTemplate" if cluster_scope else "AnalysisTemplate"


def _missing_templates(refs: Sequence[Mapping[str, Any]], path: str, templates: Templates, seen: set[Any]) -> list[str]:
    """Argo's ``getReferencedAnalysisTemplatesFromRef``: the first template that does not exist, nested
    ``spec.templates`` references included (reported under ``spec.templates``, as Argo does)."""
    for ref in refs:
        name = str(ref.get("templateName") or "")
        cluster_scope = bool(ref.get("clusterScope"))
        found = templates.get(name, cluster_scope)
        if found is None:
            return [f"{path}: Invalid value: \"{name}\": {_kind(cluster_scope)} '{name}' not found"]
        key = (cluster_scope, name)
        if key in seen:
            continue
        seen.add(key)
        inner = (found.get("spec") or {}).get("templates") or []
        errors = _missing_templates(inner, "spec.templates", templates, seen)
        if errors:
            return errors
    return []


def _split_templates(
    refs: Sequence[Mapping[str, Any]], templates: Templates
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    namespaced: list[Mapping[str, Any]] = []
    cluster: list[Mapping[str, Any]] = []
    for ref in refs:
        cluster_scope = bool(ref.get("clusterScope"))
        found = templates.get(str(ref.get("templateName") or ""), cluster_scope)
        if found is not None:
            (cluster if cluster_scope else namespaced).append(found)
    return namespaced, cluster


def template_errors(ro: RolloutSpec, rollout: Mapping[str, Any], templates: Templates) -> list[str]:
    """InvalidSpec messages for the Rollout's analysis references: a template that does not exist
    (Argo: ``AnalysisTemplate 'x' not found``), or templates that cannot make a run (metrics, args)."""
    errors: list[str] = []
    for ref in all_analyses(ro):
        missing = _missing_templates(ref.templates, ref.path, templates, set())
        if missing:
            errors.extend(missing)
            continue
        if not ref.templates:
            continue
        try:
            _build(ro, rollout, ref, templates, "validation", {}, "dummy-stable-hash", "dummy-canary-hash", "")
        except (SpecError, ArgError) as exc:
            names = ",".join(str(t.get("templateName") or "") for t in ref.templates)
            errors.append(f'{ref.path}: Invalid value: "{names}": {exc}')
    return errors


# --------------------------------------------------------------------------- building a run


def _build(
    ro: RolloutSpec,
    rollout: Mapping[str, Any],
    ref: AnalysisRef,
    templates: Templates,
    name: str,
    labels: Mapping[str, str],
    stable_hash: str,
    latest_hash: str,
    revision: str,
) -> dict[str, Any]:
    """Argo's ``newAnalysisRunFromRollout``: the run's name, labels (the type labels, then
    ``analysisRunMetadata.labels``, then the Rollout's ``selector.matchLabels`` and controller instance
    id), the revision
    annotation, the controller reference to the Rollout, and args whose ``podTemplateHashValue`` and
    ``fieldRef`` are resolved here (``secretKeyRef`` stays for the analysis controller). A ``fieldRef``
    the Rollout cannot answer for this revision is no InvalidSpec: the run carries the reason in its
    :data:`UNRESOLVED_ARGS_ANNOTATION` and ends in Error (revision 1, which runs no analysis, is Healthy)."""
    run_meta = ref.raw.get("analysisRunMetadata") or {}
    run_labels = dict(labels)
    run_labels.update({str(k): str(v) for k, v in (run_meta.get("labels") or {}).items()})
    run_labels.update({str(k): str(v) for k, v in ((ro.selector or {}).get("matchLabels") or {}).items()})
    instance_id = ((rollout.get("metadata") or {}).get("labels") or {}).get(INSTANCE_ID_LABEL)
    if instance_id:  # the run goes to the controller of its Rollout's shard
        run_labels[INSTANCE_ID_LABEL] = str(instance_id)
    run_annotations = {REVISION: revision}
    run_annotations.update({str(k): str(v) for k, v in (run_meta.get("annotations") or {}).items()})
    unresolved: list[str] = []
    args = resolve_rollout_args(ref.raw.get("args"), rollout, stable_hash, latest_hash, unresolved)
    if unresolved:  # the run is created, and its analysis controller makes it the Error
        run_annotations[UNRESOLVED_ARGS_ANNOTATION] = "; ".join(unresolved)
    namespaced, cluster = _split_templates(ref.templates, templates)
    owner = owner_reference(ro)
    return build_analysis_run(
        namespaced,
        cluster,
        args,
        name,
        ro.namespace,
        run_labels,
        run_annotations,
        [owner],
        dry_run=[d for d in ref.raw.get("dryRun") or [] if isinstance(d, Mapping)],
        measurement_retention=[m for m in ref.raw.get("measurementRetention") or [] if isinstance(m, Mapping)],
        lookup=templates.get,
    )


def _same_spec(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Argo's ``IsSemanticallyEqual`` on run specs (``terminate: false`` is the same as absent)."""

    def norm(spec: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(spec))
        if not out.get("terminate"):
            out.pop("terminate", None)
        return out

    return norm(a) == norm(b)


# --------------------------------------------------------------------------- history limits


def runs_to_delete(
    others: Sequence[RunView],
    rs_hashes: Mapping[str, bool],
    limit_successful: int,
    limit_unsuccessful: int,
) -> list[RunView]:
    """Argo's ``FilterAnalysisRunsToDelete``: newest first, runs of a ReplicaSet that is gone (or being
    deleted, or without a hash label) go; of the rest, the newest ``limit_successful`` Successful and
    ``limit_unsuccessful`` Failed/Error/Inconclusive runs stay. ``rs_hashes``: pod hash -> being deleted."""
    delete: list[RunView] = []
    kept_ok = kept_bad = 0
    for run in sorted(others, key=lambda r: (r.created, r.name), reverse=True):
        pod_hash = run.labels.get(HASH_LABEL)
        if pod_hash is None or pod_hash not in rs_hashes or rs_hashes[pod_hash]:
            delete.append(run)
        elif run.phase == "Successful":
            if kept_ok < limit_successful:
                kept_ok += 1
            else:
                delete.append(run)
        elif run.phase in UNSUCCESSFUL_PHASES:
            if kept_bad < limit_unsuccessful:
                kept_bad += 1
            else:
                delete.append(run)
    return [r for r in delete if not r.deleting]


def history_limits(ro: RolloutSpec) -> tuple[int, int]:
    raw = ro.raw_spec.get("analysis") or {}
    ok, bad = raw.get("successfulRunHistoryLimit"), raw.get("unsuccessfulRunHistoryLimit")
    return (
        int(ok) if ok is not None else DEFAULT_SUCCESSFUL_HISTORY_LIMIT,
        int(bad) if bad is not None else DEFAULT_UNSUCCESSFUL_HISTORY_LIMIT,
    )


# --------------------------------------------------------------------------- the reconcile


@dataclass
class AnalysisOutcome:
    """What the analysis pass decided: writes, pause/abort requests, the runs now current, events."""

    create: list[dict[str, Any]] = field(default_factory=list)
    terminate: list[str] = field(default_factory=list)
    delete: list[RunView] = field(default_factory=list)
    add_pause: bool = False
    abort_message: str | None = None
    step_run: RunView | None = None
    background_run: RunView | None = None
    events: list[tuple[str, str, bool]] = field(default_factory=list)  # (reason, message, warning)

    def statuses(self) -> dict[str, dict[str, str]]:
        """``status.canary.currentStepAnalysisRunStatus`` / ``currentBackgroundAnalysisRunStatus``."""
        return run_statuses(((STEP_STATUS, self.step_run), (BACKGROUND_STATUS, self.background_run)))


def run_statuses(runs: Iterable[tuple[str, RunView | None]]) -> dict[str, dict[str, str]]:
    """The status entry (name, status, message) of each current run, under its status key."""
    out: dict[str, dict[str, str]] = {}
    for key, run in runs:
        if run is None:
            continue
        # A run the analysis controller has not picked up yet has no phase; the CRD's enum has no
        # empty value, so we record Pending (Argo records "").
        entry = {"name": run.name, "status": run.phase or "Pending"}
        if run.message:
            entry["message"] = run.message
        out[key] = entry
    return out


@dataclass
class AnalysisInput:
    ro: RolloutSpec
    rollout: Mapping[str, Any]
    old: Mapping[str, Any]  # the Rollout's status as read
    runs: Sequence[Mapping[str, Any]]  # AnalysisRuns the Rollout controls
    taken_names: frozenset[str]  # names of all AnalysisRuns in the namespace
    templates: Templates
    pod_hash: str
    revision: int
    rs_hashes: Mapping[str, bool]  # pod hash of every ReplicaSet of the Rollout -> being deleted
    aborted: bool
    step_index: int | None
    rollback_within_window: bool = False  # spec.rollbackWindow: no analysis for this version


class _Analysis:
    def __init__(self, inp: AnalysisInput) -> None:
        self.inp = inp
        self.out = AnalysisOutcome()
        runs = [RunView.parse(r) for r in inp.runs]
        self.by_name = {r.name: r for r in runs}
        canary_status = inp.old.get("canary") or {}
        step_name = str((canary_status.get(STEP_STATUS) or {}).get("name") or "")
        bg_name = str((canary_status.get(BACKGROUND_STATUS) or {}).get("name") or "")
        # Argo's FilterCurrentRolloutAnalysisRuns
        self.current_step = self.by_name.get(step_name) if step_name else None
        self.current_bg = self.by_name.get(bg_name) if bg_name else None
        current = {n for n in (step_name, bg_name) if n}
        self.others = [r for r in runs if r.name not in current]
        self.created_names: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def _pause_condition(self, reason: str) -> bool:
        return any(c.get("reason") == reason for c in self.inp.old.get("pauseConditions") or [])

    def cancel(self, run: RunView | None) -> None:
        """Argo's ``cancelAnalysisRuns``: terminate a run that is neither complete nor terminating."""
        if run is None or run.terminate or run.completed or run.name in self.out.terminate:
            return
        self.out.terminate.append(run.name)

    def needs_new(self, current: RunView | None) -> bool:
        """Argo's ``needsNewAnalysisRun``."""
        if current is None:
            return True
        old = self.inp.old
        if old.get("controllerPause") and not self._pause_condition(PAUSE_CANARY_STEP):
            return current.phase == "Inconclusive"
        return old.get("abortedAt") is not None

    def create(self, ref: AnalysisRef, infix: str, labels: dict[str, str]) -> RunView:
        """Build the run; adopt an equal, unfinished run of ours that already has the name (a
        crash between creating it and recording it), else take the next free ``name.N``."""
        inp = self.inp
        parts = [inp.ro.name, inp.pod_hash, str(inp.revision)]
        if infix:
            parts.append(infix)
        base = "-".join(parts)
        stable = str(inp.old.get("stableRS") or "")
        manifest = _build(
            inp.ro, inp.rollout, ref, inp.templates, base, labels, stable, inp.pod_hash, str(inp.revision)
        )
        name, count = base, 1
        while name in inp.taken_names or name in self.created_names:
            existing = self.by_name.get(name)
            if existing is not None and not existing.completed and _same_spec(existing.spec, manifest["spec"]):
                self.others = [r for r in self.others if r.name != name]  # "Rescued from inadvertent termination"
                return existing
            name = f"{base}.{count}"
            count += 1
        manifest["metadata"]["name"] = name
        self.created_names.add(name)
        self.out.create.append(manifest)
        return RunView.parse(manifest)

    def react(self, run: RunView, failed_message: str) -> None:
        if run.phase == "Inconclusive":
            self.out.add_pause = True
        elif run.phase in ("Error", "Failed"):
            message = failed_message
            if run.message:
                message += ": " + run.message
            self.out.abort_message = message

    # ------------------------------------------------------------------ Argo's reconcile functions

    def step_run(self) -> RunView | None:
        """Argo's ``reconcileStepBasedAnalysisRun``."""
        inp = self.inp
        current = self.current_step
        if inp.old.get("pauseConditions") or inp.old.get("abort"):
            return current
        index = inp.step_index
        ref = step_analysis(inp.ro, index) if index is not None else None
        from_previous = ref is not None and current is not None and current.labels.get(STEP_INDEX_LABEL) != str(index)
        if ref is None or not ref.templates or index is None or from_previous:
            self.cancel(current)
            return None
        if self.needs_new(current):
            labels = {HASH_LABEL: inp.pod_hash, ROLLOUT_TYPE_LABEL: STEP_TYPE, STEP_INDEX_LABEL: str(index)}
            return self.create(ref, str(index), labels)
        assert current is not None
        self.react(current, STEP_FAILED_MESSAGE)
        return current

    def background_run(self) -> RunView | None:
        """Argo's ``reconcileBackgroundAnalysisRun``."""
        inp = self.inp
        current = self.current_bg
        ref = background_analysis(inp.ro)
        if ref is None or not ref.templates:
            self.cancel(current)
            return None
        old = inp.old
        stable = str(old.get("stableRS") or "")
        if stable == str(old.get("currentPodHash") or "") or not stable or self._before_starting_step(ref):
            return None
        if self._pause_condition(PAUSE_INCONCLUSIVE):
            return current
        if self.needs_new(current):
            labels = {HASH_LABEL: inp.pod_hash, ROLLOUT_TYPE_LABEL: BACKGROUND_TYPE}
            return self.create(ref, "", labels)
        assert current is not None
        self.react(current, BACKGROUND_FAILED_MESSAGE)
        return current

    def _before_starting_step(self, ref: AnalysisRef) -> bool:
        starting = ref.raw.get("startingStep")
        if starting is None or self.inp.step_index is None:
            return False
        return self.inp.step_index < int(starting)

    def run(self) -> AnalysisOutcome:
        """Argo's ``reconcileAnalysisRuns`` for the canary strategy."""
        inp = self.inp
        old = inp.old
        stable = str(old.get("stableRS") or "")
        fully_promoted = stable == str(old.get("currentPodHash") or "")
        rollback_to_stable = bool(stable) and stable == inp.pod_hash
        skip = inp.aborted or old.get("promoteFull") or rollback_to_stable or inp.rollback_within_window
        if fully_promoted or skip or not stable:
            self.cancel(self.current_step)
            self.cancel(self.current_bg)
            step: RunView | None = None
            background: RunView | None = None
        else:
            step = self.step_run()
            background = self.background_run()
        self.out.step_run, self.out.background_run = step, background
        current = {r.name for r in (step, background) if r is not None}
        others = [r for r in self.others if r.name not in current]
        for run in others:
            self.cancel(run)
        ok, bad = history_limits(inp.ro)
        self.out.delete = runs_to_delete(others, inp.rs_hashes, ok, bad)
        self._status_events(STEP_STATUS, step, STEP_TYPE)
        self._status_events(BACKGROUND_STATUS, background, BACKGROUND_TYPE)
        return self.out

    def _status_events(self, key: str, run: RunView | None, kind: str) -> None:
        """Argo's ``emitAnalysisRunStatusChanges``."""
        if run is None or not run.phase:
            return
        prev = (self.inp.old.get("canary") or {}).get(key)
        if prev is not None and (prev.get("name") != run.name or prev.get("status") == run.phase):
            return
        previous = str(prev.get("status") or "") if prev is not None else "NoPreviousStatus"
        message = f"{kind} Analysis Run '{run.name}' Status New: '{run.phase}' Previous: '{previous}'"
        self.out.events.append((f"AnalysisRun{run.phase}", message, run.phase in ("Failed", "Error")))


def reconcile(inp: AnalysisInput) -> AnalysisOutcome:
    return _Analysis(inp).run()


# --------------------------------------------------------------------------- blue/green promotion analysis


@dataclass(frozen=True)
class PromotionState:
    """What the promotion analyses need to know of this pass."""

    aborted: bool
    pre_skip: bool  # fully promoted, already active, or promote --full
    preview_ready: bool  # the preview stack is at its size and available
    post_skip: bool  # fully promoted, or promote --full
    switched: bool  # the active Service selects the new ReplicaSet


class PromotionAnalysis(_Analysis):
    """Argo's ``reconcilePrePromotionAnalysisRun`` / ``reconcilePostPromotionAnalysisRun`` on the canary
    analysis machinery (run naming, adoption, cancelling, history limits)."""

    def __init__(self, inp: AnalysisInput) -> None:
        super().__init__(inp)
        status = inp.old.get("blueGreen") or {}
        pre_name = str((status.get(PRE_STATUS) or {}).get("name") or "")
        post_name = str((status.get(POST_STATUS) or {}).get("name") or "")
        self.current_pre = self.by_name.get(pre_name) if pre_name else None
        self.current_post = self.by_name.get(post_name) if post_name else None
        current = {n for n in (pre_name, post_name) if n}
        self.others = [r for r in self.by_name.values() if r.name not in current]
        self.pre_run: RunView | None = None
        self.post_run: RunView | None = None

    def needs_new(self, current: RunView | None) -> bool:
        """Argo's ``needsNewAnalysisRun``."""
        if current is None:
            return True
        old = self.inp.old
        if old.get("controllerPause") and not self._pause_condition(PAUSE_INCONCLUSIVE):
            return current.phase == "Inconclusive"
        return old.get("abortedAt") is not None

    def _pre(self, state: PromotionState) -> RunView | None:
        ref = promotion_analysis(self.inp.ro, PRE_PROMOTION)
        current = self.current_pre
        if ref is None or not ref.templates or state.pre_skip:
            self.cancel(current)
            return None
        if self.needs_new(current):
            if not state.preview_ready:
                return None  # measure the preview stack once it is up (again, after a retry), not an empty Service
            labels = {HASH_LABEL: self.inp.pod_hash, ROLLOUT_TYPE_LABEL: PRE_TYPE}
            return self.create(ref, "pre", labels)
        assert current is not None
        self.react(current, PRE_FAILED_MESSAGE)
        return current

    def _post(self, state: PromotionState) -> RunView | None:
        ref = promotion_analysis(self.inp.ro, POST_PROMOTION)
        current = self.current_post
        if ref is None or not ref.templates or state.post_skip or not state.switched:
            self.cancel(current)
            return None
        if self.needs_new(current):
            labels = {HASH_LABEL: self.inp.pod_hash, ROLLOUT_TYPE_LABEL: POST_TYPE}
            return self.create(ref, "post", labels)
        assert current is not None
        self.react(current, POST_FAILED_MESSAGE)
        return current

    def reconcile(self, state: PromotionState) -> AnalysisOutcome:
        if state.aborted:
            # cancelled, but still shown: the status says which run aborted the update
            self.cancel(self.current_pre)
            self.cancel(self.current_post)
            pre, post = self.current_pre, self.current_post
        else:
            pre, post = self._pre(state), self._post(state)
        self.pre_run, self.post_run = pre, post
        current = {r.name for r in (pre, post) if r is not None}
        others = [r for r in self.others if r.name not in current]
        for run in others:
            self.cancel(run)
        ok, bad = history_limits(self.inp.ro)
        self.out.delete = runs_to_delete(others, self.inp.rs_hashes, ok, bad)
        self._promotion_events(PRE_STATUS, pre, PRE_TYPE)
        self._promotion_events(POST_STATUS, post, POST_TYPE)
        return self.out

    def _promotion_events(self, key: str, run: RunView | None, kind: str) -> None:
        """Argo's ``emitAnalysisRunStatusChanges``."""
        if run is None or not run.phase:
            return
        prev = (self.inp.old.get("blueGreen") or {}).get(key)
        if prev is not None and (prev.get("name") != run.name or prev.get("status") == run.phase):
            return
        previous = str(prev.get("status") or "") if prev is not None else "NoPreviousStatus"
        message = f"{kind} Analysis Run '{run.name}' Status New: '{run.phase}' Previous: '{previous}'"
        self.out.events.append((f"AnalysisRun{run.phase}", message, run.phase in ("Failed", "Error")))

    def statuses(self) -> dict[str, dict[str, str]]:
        return run_statuses(((PRE_STATUS, self.pre_run), (POST_STATUS, self.post_run)))
