"""The planner both strategies build on: the state of one reconcile pass, its first steps, the status
write, and the hooks a strategy overrides.

A pass is ``Strategy(observed).run()``. ``run`` starts with :meth:`Planner.start` (validate the spec,
resolve the pod template, find or create the new ReplicaSet, count a hash collision, look up the
stable ReplicaSet, bring the new one's revision up to date), then decides what is the strategy's own,
and ends with :meth:`Planner.persist` (pause and abort bookkeeping, conditions, the progress deadline,
the phase). The sections of that work live in their own modules as functions that take the planner:
:mod:`~rollouts.strategy.revisions`, :mod:`~rollouts.strategy.services`, :mod:`~rollouts.strategy.pauses`,
:mod:`~rollouts.strategy.status`, :mod:`~rollouts.strategy.scaling`, ...
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model import conditions as cs
from rollouts.model.hashing import pod_template_hash, template_digest
from rollouts.model.kstatus import set_kstatus_conditions
from rollouts.model.labelselector import format_label_selector
from rollouts.model.phase import calculate_phase
from rollouts.model.spec import RolloutSpec
from rollouts.model.timestamps import format_time
from rollouts.model.validation import validate_rollout
from rollouts.strategy import analysis as ca
from rollouts.strategy.pauses import pause_status, paused_conditions
from rollouts.strategy.plan import CreateAnalysisRun, DeleteAnalysisRun, EventSpec, Observed, PatchAnalysisRun, Plan
from rollouts.strategy.replicasets import (
    TEMPLATE_DIGEST,
    ReplicaSetView,
    total_available,
    total_ready,
    total_status_replicas,
)
from rollouts.strategy.revisions import create_new_rs, sync_revision
from rollouts.strategy.rollbackwindow import rollback_within_window
from rollouts.strategy.services import services_managed_elsewhere
from rollouts.strategy.status import progress_deadline_abort, requeue_for_deadline, rollout_conditions
from rollouts.strategy.workloadref import resolve_template


class Planner(ABC):
    """One reconcile pass of one Rollout."""

    # set by start() once the spec is valid
    template: Mapping[str, Any]
    selector: Mapping[str, Any]
    pod_hash: str
    digest: str
    all_rss: list[ReplicaSetView]  # the Rollout's ReplicaSets that are not being deleted
    stable_rs: ReplicaSetView | None
    new_rs: ReplicaSetView | None  # set once the new ReplicaSet exists
    # set by the strategy's run()
    others: list[ReplicaSetView]  # the old ReplicaSets (which ones is the strategy's choice)

    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.ro = self._spec()
        self.old: dict[str, Any] = cs.status_copy(obs.rollout.get("status"))
        self.now = obs.now
        self.stamp = format_time(obs.now)
        self.plan = Plan()
        # pause context (Argo's pauseContext)
        self.add_pause: list[str] = []
        self.remove_pause: list[str] = []
        self.clear_pause = False
        self.add_abort = False
        self.remove_abort = False
        self.abort_message = ""
        self.restarted_at: str | None = self.old.get("restartedAt")
        self.templates = ca.Templates(obs.analysis_templates, obs.cluster_analysis_templates)
        self.step_hash = ""  # status.currentStepHash (the canary's steps; none for blue/green)

    # ------------------------------------------------------------------ what every move of a pass reads alike

    def _spec(self) -> RolloutSpec:
        reading = self.obs.reading
        if reading is None:
            return RolloutSpec.parse(self.obs.rollout)
        if reading.spec is None:
            reading.spec = RolloutSpec.parse(self.obs.rollout)
        return reading.spec

    def replicaset_views(self) -> list[ReplicaSetView]:
        """Every ReplicaSet the Rollout controls (those being deleted too), parsed."""
        reading = self.obs.reading
        if reading is not None and reading.replicasets is not None:
            return reading.replicasets
        views = [ReplicaSetView.parse(r) for r in self.obs.replicasets]
        if reading is not None:
            reading.replicasets = views
        return views

    def _spec_errors(self, template: Mapping[str, Any] | None, workload_error: str | None) -> list[str]:
        """validate_rollout's errors; its inputs (spec, template, Services present) are the same for every
        move of a pass (``self.ro`` may carry a workloadRef's selector: computed from the same spec)."""
        reading = self.obs.reading
        if reading is not None and reading.spec_errors is not None:
            return list(reading.spec_errors)
        strategy = self.strategy_services()
        names = [name for _, name in (strategy[1] if strategy is not None else ()) if name]
        services_present = {n: True for n in names if n in self.obs.services}
        errors = validate_rollout(self.ro, template, services_present, workload_error)
        if reading is not None:
            reading.spec_errors = list(errors)
        return errors

    def _template_hashes(self, template: Mapping[str, Any], collision: int | None) -> tuple[str, str]:
        """The pod template's hash (with ``collision``) and digest; the template is the same for every move."""
        reading = self.obs.reading
        if reading is None:
            return pod_template_hash(template, collision), template_digest(template)
        if collision not in reading.pod_hashes:
            reading.pod_hashes[collision] = pod_template_hash(template, collision)
        if reading.digest is None:
            reading.digest = template_digest(template)
        return reading.pod_hashes[collision], reading.digest

    # ------------------------------------------------------------------ small helpers

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.plan.events.append(EventSpec("Warning" if warning else "Normal", reason, message))

    def aborted(self) -> bool:
        if self.remove_abort:
            return False
        return self.add_abort or bool(self.old.get("abort"))

    def revision(self) -> int:
        return self.new_rs.revision if self.new_rs is not None else 0

    def pause_condition(self, reason: str) -> dict[str, Any] | None:
        for cond in self.old.get("pauseConditions") or []:
            if cond.get("reason") == reason:
                return dict(cond)
        return None

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def run(self) -> Plan:
        """The pass: :meth:`start`, then the strategy's own moves, then :meth:`persist`."""

    @abstractmethod
    def strategy_services(self) -> tuple[str, Sequence[tuple[str, str]]] | None:
        """The strategy's spec path and its (field, Service name) pairs; None when the Rollout has no
        spec for this strategy (validation reports that)."""

    def prepare(self) -> None:  # noqa: B027 - optional: nothing to read by default
        """The strategy's own reading of the observed state, once the spec is valid and before the new
        ReplicaSet is looked up or created (blue/green reads its Services here)."""

    @abstractmethod
    def new_rs_manifest(self, revision: int, stable_exists: bool) -> dict[str, Any]:
        """The new ReplicaSet (its ephemeral pod metadata, blue/green's anti-affinity)."""

    def history_candidates(self) -> list[ReplicaSetView]:
        """The old ReplicaSets revisionHistoryLimit may delete (blue/green keeps its roles)."""
        return list(self.others)

    def delaying_abort_scale_down(self) -> bool:
        """Does an aborted new ReplicaSet keep its pods for a while (the canary's
        ``abortScaleDownDelaySeconds``; then scaling to zero keeps its scale-down deadline)?"""
        return False

    @abstractmethod
    def weights(self, new: dict[str, Any]) -> None:
        """``status.canary.weights`` (blue/green has none)."""

    # ------------------------------------------------------------------ the first steps of every pass

    def start(self) -> Plan | None:
        """Validate the spec, resolve the pod template, find the stable ReplicaSet and the new one (create
        it, or count a hash collision), and bring the new one's revision up to date. Returns the plan
        when the pass ends here, else None: ``new_rs`` is set and the strategy goes on."""
        template, selector, workload_error = resolve_template(self)
        if self.ro.selector is None and selector is not None:  # a workloadRef without spec.selector (Argo)
            self.ro = dataclasses.replace(self.ro, selector=selector)
        errors = self.validation_errors(template, workload_error)
        if errors:
            return self._invalid(errors)
        assert template is not None and selector is not None
        self.template, self.selector = template, selector
        self.prepare()

        collision = self.old.get("collisionCount")
        self.pod_hash, self.digest = self._template_hashes(template, int(collision) if collision is not None else None)
        live = [rs for rs in self.replicaset_views() if not rs.deleting]
        self.all_rss = live
        stable_hash = self.old.get("stableRS") or ""
        self.stable_rs = next((rs for rs in live if stable_hash and rs.pod_hash == stable_hash), None)
        new_rs = next((rs for rs in live if rs.pod_hash == self.pod_hash), None)
        if new_rs is not None and new_rs.annotations.get(TEMPLATE_DIGEST, self.digest) != self.digest:
            return self._collision()
        if new_rs is None:
            return create_new_rs(self, live)
        self.new_rs = new_rs
        sync_revision(self, live)
        return None

    def validation_errors(self, template: Mapping[str, Any] | None, workload_error: str | None) -> list[str]:
        """The spec's errors (InvalidSpec), including Services another Rollout manages and missing
        analysis templates."""
        strategy = self.strategy_services()
        path, fields = strategy if strategy is not None else ("", ())
        errors = self._spec_errors(template, workload_error)
        errors.extend(services_managed_elsewhere(self, path, fields))
        if strategy is not None and not errors:
            errors.extend(ca.template_errors(self.ro, self.obs.rollout, self.templates))
        return errors

    def _invalid(self, errors: list[str]) -> Plan:
        new = cs.status_copy(self.old)
        message = f'The Rollout "{self.ro.name}" is invalid: ' + "; ".join(errors)
        prev = cs.get_condition(self.old, cs.INVALID_SPEC)
        if prev is None or prev.get("message") != message:
            cs.replace_condition(
                new, cs.new_condition(cs.INVALID_SPEC, "True", cs.INVALID_SPEC_REASON, message, self.stamp)
            )
            self.event(cs.INVALID_SPEC_REASON, message, warning=True)
        new["observedGeneration"] = self.ro.generation
        new["phase"], new["message"] = calculate_phase(self.ro, new)
        set_kstatus_conditions(new, self.stamp)
        self.plan.status = new
        return self.plan

    def _collision(self) -> Plan:
        new = cs.status_copy(self.old)
        new["collisionCount"] = int(self.old.get("collisionCount") or 0) + 1
        self.plan.status = new
        self.plan.requeue(0)
        return self.plan

    # ------------------------------------------------------------------ analysis

    def analysis_input(self, step_index: int | None) -> ca.AnalysisInput:
        obs = self.obs
        rs_hashes: dict[str, bool] = {}
        for rs in self.replicaset_views():
            if rs.pod_hash:
                rs_hashes[rs.pod_hash] = rs.deleting
        names = obs.analysis_run_names
        if names is None:
            names = frozenset(str((r.get("metadata") or {}).get("name", "")) for r in obs.analysis_runs)
        return ca.AnalysisInput(
            ro=self.ro,
            rollout=obs.rollout,
            old=self.old,
            runs=obs.analysis_runs,
            taken_names=names,
            templates=self.templates,
            pod_hash=self.pod_hash,
            revision=self.revision(),
            rs_hashes=rs_hashes,
            aborted=self.aborted(),
            step_index=step_index,
            rollback_within_window=rollback_within_window(self),
        )

    def apply_analysis_outcome(self, outcome: ca.AnalysisOutcome) -> None:
        """The run writes, Events and inconclusive pause of an analysis pass (the abort is the caller's)."""
        for manifest in outcome.create:
            self.plan.actions.append(CreateAnalysisRun(manifest))
        for name in outcome.terminate:
            self.plan.actions.append(PatchAnalysisRun(name, ca.TERMINATE_PATCH))
        for run in outcome.delete:
            self.plan.actions.append(DeleteAnalysisRun(run.name, run.uid))
        for reason, message, warning in outcome.events:
            self.event(reason, message, warning=warning)
        if outcome.add_pause:
            self.add_pause.append(ca.PAUSE_INCONCLUSIVE)

    # ------------------------------------------------------------------ status

    def base_status(self) -> dict[str, Any]:
        """Argo's ``calculateBaseStatus`` (a hook: each strategy adds its own part)."""
        old = self.old
        new: dict[str, Any] = {}
        for key in (
            "stableRS",
            "collisionCount",
            "pauseConditions",
            "controllerPause",
            "abort",
            "abortedAt",
            "currentStepIndex",
            "conditions",
            "canary",
            "controller",
        ):
            if old.get(key) is not None:
                new[key] = cs.status_copy({"v": old[key]})["v"]
        new.pop("pauseConditions", None)
        new.pop("controllerPause", None)
        new.pop("abort", None)
        new.pop("abortedAt", None)
        if cs.get_condition(new, cs.INVALID_SPEC) is not None:
            cs.remove_condition(new, cs.INVALID_SPEC)
        new["currentPodHash"] = self.pod_hash
        new["currentStepHash"] = self.step_hash
        new["replicas"] = total_status_replicas(self.all_rss)
        new["updatedReplicas"] = self.new_rs.status_replicas if self.new_rs is not None else 0
        new["readyReplicas"] = total_ready(self.all_rss)
        new["availableReplicas"] = total_available(self.all_rss)
        new["HPAReplicas"] = total_status_replicas(self.all_rss)
        new["selector"] = format_label_selector(self.selector)
        new["promoteFull"] = bool(self.pod_hash != (old.get("stableRS") or "") and old.get("promoteFull"))
        return new

    def persist(self, new: dict[str, Any]) -> Plan:
        """Argo's ``persistRolloutStatus``: everything derived from the new status, then the write."""
        ro = self.ro
        if self.restarted_at:
            new["restartedAt"] = self.restarted_at
        else:
            new.pop("restartedAt", None)
        if new.get("currentStepIndex") is None:
            new.pop("currentStepIndex", None)
        paused_conditions(self, new)
        # An integer, as kstatus (Flux) reads it; Argo writes the same number as a string, which the
        # CRD (int-or-string) and every reader here accept.
        new["observedGeneration"] = ro.generation
        progress_deadline_abort(self, new)
        pause_status(self, new)
        rollout_conditions(self, new)
        self.weights(new)
        if not new.get("canary"):
            new.pop("canary", None)
        new["phase"], new["message"] = calculate_phase(ro, new, self.obs.analysis_runs)
        if not new["message"]:
            del new["message"]
        set_kstatus_conditions(new, self.stamp)
        if not self.old.get("pauseConditions") and new.get("pauseConditions"):
            reason = new["pauseConditions"][0].get("reason", "")
            self.event(cs.ROLLOUT_PAUSED_REASON, f"{cs.ROLLOUT_PAUSED_MESSAGE} ({reason})")
        # RolloutResumed is recorded when the Paused condition turns False (paused_conditions), which
        # covers a timed pause ending, a promote clearing the pause, and spec.paused turning false.
        requeue_for_deadline(self, new)
        self.plan.status = new
        return self.plan
