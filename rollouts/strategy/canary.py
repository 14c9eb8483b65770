"""The canary strategy as a pure function: what is observed -> what to do next.

``plan(observed)`` reads a Rollout, its ReplicaSets, the Services it names, its workload reference
and (when a restart is pending) its pods, and returns a :class:`Plan`: the writes to make, in a
crash-safe order, the Rollout's new status, the Kubernetes Events to record and when to look again.
It never talks to the API; :mod:`rollouts.controller.reconciler` carries the plan out.

The logic follows Argo Rollouts' canary reconciler (``rollout/canary.go``, ``rollout/sync.go``,
``utils/replicaset/canary.go``) so that replica counts, step progress, phases, conditions and event
reasons match, with a few documented extensions for the canary without a traffic router
(``setCanaryScale``, ``minPodsPerReplicaSet``, ``abortScaleDownDelaySeconds`` and ``scaleDownDelaySeconds``
act on replica counts).
Like Argo, each pass makes at most one scaling move and then looks again, so every decision is made
from fresh observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model import conditions as cs
from rollouts.model.hashing import pod_template_hash, step_hash, template_digest
from rollouts.model.labelselector import format_label_selector
from rollouts.model.spec import (
    PodMetadata,
    RolloutSpec,
    validate_rollout,
)
from rollouts.strategy import analysis as ca
from rollouts.strategy import traffic as ct
from rollouts.strategy.pauses import completed_pause_step, pause_status, paused_conditions, reconcile_pause_step
from rollouts.strategy.plan import (
    CreateAnalysisRun,
    DeleteAnalysisRun,
    EventSpec,
    Observed,
    PatchAnalysisRun,
    Plan,
)
from rollouts.strategy.replicasets import (
    TEMPLATE_DIGEST,
    ReplicaSetView,
    format_time,
    new_replicaset_manifest,
    total_available,
    total_ready,
    total_status_replicas,
)
from rollouts.strategy.restart import restart_pods
from rollouts.strategy.revisions import (
    create_new_rs,
    replicaset_metadata,
    revision_history,
    sync_revision,
    template_or_steps_changed,
)
from rollouts.strategy.scaling import (
    at_desired_counts,
    kept_for_scale_down_delay,
    progress_threshold_met,
    reconcile_replicasets,
)
from rollouts.strategy.services import reconcile_canary_services, services_managed_elsewhere
from rollouts.strategy.status import progress_deadline_abort, requeue_for_deadline, rollout_conditions
from rollouts.strategy.steps import current_step
from rollouts.strategy.traffic import reconcile_traffic, routed_weights, traffic_step_reached
from rollouts.strategy.workloadref import (
    progressive_workload_scale_down,
    resolve_template,
    workload_scale_down_on_success,
)

# --------------------------------------------------------------------------- the planner


class _Planner:
    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.ro = RolloutSpec.parse(obs.rollout)
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
        self.analysis: ca.AnalysisOutcome | None = None  # set once the analysis pass ran
        self.templates = ca.Templates(obs.analysis_templates, obs.cluster_analysis_templates)
        self.traffic: ct.TrafficState | None = None  # set once the traffic-routing pass ran
        self._routes_kept = True  # header/mirror routes stay (until the weight has left a promoted canary)

    # ------------------------------------------------------------------ small helpers

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.plan.events.append(EventSpec("Warning" if warning else "Normal", reason, message))

    def aborted(self) -> bool:
        if self.remove_abort:
            return False
        return self.add_abort or bool(self.old.get("abort"))

    def revision(self) -> int:
        return self.new_rs.revision if self.new_rs is not None else 0

    # ------------------------------------------------------------------ entry point

    def run(self) -> Plan:
        ro = self.ro
        template, selector, workload_error = resolve_template(self)
        names = [n for n in (ro.canary.canary_service, ro.canary.stable_service) if n] if ro.canary else []
        services_present = {n: True for n in names if n in self.obs.services}
        errors = validate_rollout(ro, template, services_present, workload_error)
        errors.extend(self._service_ownership_errors(names))
        if ro.canary is not None and not errors:
            errors.extend(ca.template_errors(ro, self.obs.rollout, self.templates))
        if errors:
            return self._invalid(errors)
        assert template is not None and selector is not None and ro.canary is not None
        self.template, self.selector = template, selector

        collision = self.old.get("collisionCount")
        self.pod_hash = pod_template_hash(template, int(collision) if collision is not None else None)
        self.digest = template_digest(template)
        live = [ReplicaSetView.parse(r) for r in self.obs.replicasets]
        live = [rs for rs in live if not rs.deleting]
        self.all_rss = live
        new_rs = next((rs for rs in live if rs.pod_hash == self.pod_hash), None)
        if new_rs is not None and new_rs.annotations.get(TEMPLATE_DIGEST, self.digest) != self.digest:
            return self._collision()
        if new_rs is None:
            return create_new_rs(self, live)
        self.new_rs: ReplicaSetView | None = new_rs
        sync_revision(self, live)
        stable_hash = self.old.get("stableRS") or ""
        self.stable_rs: ReplicaSetView | None = next(
            (rs for rs in live if stable_hash and rs.pod_hash == stable_hash), None
        )
        self.others = [
            rs for rs in live if rs.name != new_rs.name and (self.stable_rs is None or rs.name != self.stable_rs.name)
        ]
        self.step_hash = step_hash(ro.canary.step_hash_source())
        # scaleDownDelaySeconds for the canary without a traffic router (the traffic-routed delay comes
        # with the routers): old ReplicaSets kept running, name -> scale-down deadline
        self.delay = ro.scale_down_delay()
        self.kept = kept_for_scale_down_delay(self)
        self.active_others = [rs for rs in self.others if rs.name not in self.kept]

        if template_or_steps_changed(self):
            return self._reset_for_new_version()

        if cs.rollout_completed(self.old) and self.aborted():
            self.remove_abort = True  # "Removing abort condition from fully promoted rollout"

        if restart_pods(self):
            return self._persist(self._base_status())
        self._ephemeral_metadata()
        revision_history(self)
        reconcile_canary_services(self)
        reconcile_traffic(self)
        self._reconcile_analysis()
        if self.add_pause:
            # "Detected pause due to inconclusive AnalysisRun": no scaling in this pass
            return self._sync_status()
        scaled = reconcile_replicasets(self)
        if not scaled:
            reconcile_pause_step(self)
        if ro.workload_ref is not None:
            progressive_workload_scale_down(self)
        return self._sync_status()

    # ------------------------------------------------------------------ validation and template

    def _service_ownership_errors(self, names: Sequence[str]) -> list[str]:
        assert self.ro.canary is not None or not names
        return services_managed_elsewhere(self,
            "spec.strategy.canary",
            (
                ("canaryService", self.ro.canary.canary_service if self.ro.canary else ""),
                ("stableService", self.ro.canary.stable_service if self.ro.canary else ""),
            ),
        )

    def _invalid(self, errors: list[str]) -> Plan:
        new = cs.status_copy(self.old)
        message = f'The Rollout "{self.ro.name}" is invalid: ' + "; ".join(errors)
        prev = cs.get_condition(self.old, cs.INVALID_SPEC)
        if prev is None or prev.get("message") != message:
            cs.replace_condition(
                new, cs.new_condition(cs.INVALID_SPEC, "True", cs.INVALID_SPEC_REASON, message, self.stamp)
            )
            self.event(cs.INVALID_SPEC_REASON, message, warning=True)
        new["observedGeneration"] = str(self.ro.generation)
        new["phase"], new["message"] = cs.calculate_phase(self.ro, new)
        self.plan.status = new
        return self.plan

    def _collision(self) -> Plan:
        new = cs.status_copy(self.old)
        new["collisionCount"] = int(self.old.get("collisionCount") or 0) + 1
        self.plan.status = new
        self.plan.requeue(0)
        return self.plan

    # ------------------------------------------------------------------ ReplicaSet creation and revisions

    def _new_rs_manifest(self, revision: int, stable_exists: bool) -> dict[str, Any]:
        """The new ReplicaSet (a strategy hook: blue/green sets other pod metadata and anti-affinity)."""
        ro = self.ro
        assert ro.canary is not None
        ephemeral = ro.canary.canary_metadata if stable_exists else ro.canary.stable_metadata
        return new_replicaset_manifest(
            ro, self.template, self.selector, self.pod_hash, revision, self.digest, ephemeral
        )

    def _reset_for_new_version(self) -> Plan:
        assert self.ro.canary is not None
        new = self._base_status()
        self.clear_pause = True
        self.remove_abort = True
        self.restarted_at = self.ro.restart_at
        new["promoteFull"] = False
        new.pop("canary", None)
        steps = len(self.ro.canary.steps)
        new["currentStepIndex"] = 0 if steps else None
        if steps and (self.old.get("stableRS") or "") == self.pod_hash:
            self.event(cs.SKIP_STEPS_REASON, "Rollback to stable ReplicaSets")
            new["currentStepIndex"] = steps
        return self._persist(new)

    # ------------------------------------------------------------------ ephemeral metadata

    def _ephemeral_metadata(self) -> None:
        canary = self.ro.canary
        assert canary is not None and self.new_rs is not None
        stable_differs = self.stable_rs is not None and self.stable_rs.name != self.new_rs.name
        wanted: list[tuple[ReplicaSetView, PodMetadata | None]] = [
            (self.new_rs, canary.canary_metadata if stable_differs else canary.stable_metadata)
        ]
        if stable_differs and self.stable_rs is not None:
            wanted.append((self.stable_rs, canary.stable_metadata))
        for rs, desired in wanted:
            replicaset_metadata(self, rs, rs.ephemeral_metadata(), desired)

    # ------------------------------------------------------------------ history

    def _history_candidates(self) -> list[ReplicaSetView]:
        """The old ReplicaSets revisionHistoryLimit may delete (a strategy hook: blue/green keeps its roles)."""
        return list(self.others)

    # ------------------------------------------------------------------ scaleDownDelaySeconds (basic canary)

    def _delaying_abort_scale_down(self) -> bool:
        return (
            self.aborted()
            and self.stable_rs is not None
            and self.new_rs is not None
            and self.stable_rs.name != self.new_rs.name
            and self.ro.abort_scale_down_delay() is not None
        )

    # ------------------------------------------------------------------ pause steps

    def _pause_condition(self, reason: str) -> dict[str, Any] | None:
        for cond in self.old.get("pauseConditions") or []:
            if cond.get("reason") == reason:
                return dict(cond)
        return None

    def _completed_current_step(self) -> bool:
        if self.ro.paused:
            return False
        step, _ = current_step(self.ro, self.old)
        if step is None:
            return False
        if step.pause:
            return completed_pause_step(self, step)
        if step.canary_scale is not None or step.set_weight is not None:
            return at_desired_counts(self) and traffic_step_reached(self)
        if "setHeaderRoute" in step.actions or "setMirrorRoute" in step.actions:
            return traffic_step_reached(self)
        if "analysis" in step.actions:
            run = self.analysis.step_run if self.analysis is not None else None
            return run is not None and run.phase == "Successful"
        return False  # experiment / plugin steps: not handled by this controller yet

    # ------------------------------------------------------------------ analysis

    def _reconcile_analysis(self) -> None:
        """Argo's ``reconcileAnalysisRuns`` (see :mod:`rollouts.strategy.analysis`)."""
        assert self.new_rs is not None
        _, index = current_step(self.ro, self.old)
        outcome = ca.reconcile(self._analysis_input(index))
        self.analysis = outcome
        self._apply_analysis_outcome(outcome)
        if outcome.abort_message is not None:
            self.add_abort = True
            self.abort_message = outcome.abort_message

    def _analysis_input(self, step_index: int | None) -> ca.AnalysisInput:
        obs = self.obs
        rs_hashes: dict[str, bool] = {}
        for raw in obs.replicasets:
            rs = ReplicaSetView.parse(raw)
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
        )

    def _apply_analysis_outcome(self, outcome: ca.AnalysisOutcome) -> None:
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

    def _base_status(self) -> dict[str, Any]:
        """Argo's ``calculateBaseStatus`` plus the canary-specific counts."""
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
        if self.analysis is not None:
            # Argo's SetCurrentAnalysisRuns: the runs this pass found current, and no others
            canary = new.setdefault("canary", {})
            canary.pop(ca.STEP_STATUS, None)
            canary.pop(ca.BACKGROUND_STATUS, None)
            canary.update(self.analysis.statuses())
        return new

    def _should_full_promote(self) -> str:
        if self.stable_rs is None:
            return "Initial deploy"
        if self.aborted():
            return ""
        new_rs = self.new_rs
        if new_rs is None:
            return ""
        if new_rs.available < self.ro.replicas and not self._threshold_for_promotion(new_rs):
            return ""
        if self.old.get("promoteFull"):
            return "Full promotion requested"
        steps = len(self.ro.canary.steps) if self.ro.canary else 0
        _, index = current_step(self.ro, self.old)
        if steps == 0 or (index is not None and index == steps):
            return f"Completed all {steps} canary steps"
        return ""

    def _threshold_for_promotion(self, rs: ReplicaSetView) -> bool:
        assert self.ro.canary is not None
        threshold = self.ro.canary.raw.get("replicaProgressThreshold")
        if not isinstance(threshold, Mapping) or int(threshold.get("value", -1)) < 0:
            return False
        return progress_threshold_met(self, rs, self.ro.replicas)

    def _sync_status(self) -> Plan:
        """Argo's ``syncRolloutStatusCanary``."""
        ro = self.ro
        assert ro.canary is not None
        new = self._base_status()
        steps = len(ro.canary.steps)
        step, index = current_step(ro, self.old)
        if self.old.get("promoteFull"):
            self.clear_pause = True
            self.remove_abort = True
            if steps > 0:
                index = steps
        reason = self._should_full_promote()
        if reason:
            self.clear_pause = True
            self.remove_abort = True
            new["promoteFull"] = False
            new["currentStepIndex"] = steps if steps > 0 else None
            if (self.old.get("stableRS") or "") != self.pod_hash:
                new["stableRS"] = self.pod_hash
                self.event(
                    cs.ROLLOUT_COMPLETED_REASON,
                    cs.ROLLOUT_COMPLETED_MESSAGE.format(self.revision(), self.pod_hash, reason),
                )
            workload_scale_down_on_success(self)
            return self._persist(new)
        if self.aborted():
            if steps > 0:
                new["currentStepIndex"] = steps if new.get("stableRS") == self.pod_hash else 0
            return self._persist(new)
        if step is not None and index is not None and self._completed_current_step():
            index += 1
            new.get("canary", {}).pop("currentStepAnalysisRunStatus", None)
            self.event(
                cs.ROLLOUT_STEP_COMPLETED_REASON,
                cs.ROLLOUT_STEP_COMPLETED_MESSAGE.format(index, steps, step.describe()),
            )
            self.remove_pause.append(cs.PAUSE_CANARY_STEP)
            self.plan.requeue(0)  # the next step can start right away, from the status we are writing
        new["currentStepIndex"] = index
        return self._persist(new)

    # ------------------------------------------------------------------ persisting

    def _weights(self, new: dict[str, Any]) -> None:
        """``status.canary.weights``: without a traffic router, each side's share of the available pods."""
        canary = self.ro.canary
        assert canary is not None
        if self.ro.uses_traffic_routing():
            routed_weights(self, new)
            return
        new_rs, stable_rs = self.new_rs, self.stable_rs
        stable_hash = new.get("stableRS") or ""
        if new_rs is None or not stable_hash:
            new.get("canary", {}).pop("weights", None)
            return
        if stable_rs is None or stable_hash == new_rs.pod_hash:
            canary_weight, canary_hash = 0, stable_hash
        else:
            total = new_rs.available + stable_rs.available
            canary_weight = round(100 * new_rs.available / total) if total else 0
            canary_hash = new_rs.pod_hash
        weights: dict[str, Any] = {
            "canary": {"weight": canary_weight, "podTemplateHash": canary_hash},
            "stable": {"weight": 100 - canary_weight, "podTemplateHash": stable_hash},
        }
        if canary.canary_service:
            weights["canary"]["serviceName"] = canary.canary_service
        if canary.stable_service:
            weights["stable"]["serviceName"] = canary.stable_service
        new.setdefault("canary", {})["weights"] = weights

    def _persist(self, new: dict[str, Any]) -> Plan:
        """Argo's ``persistRolloutStatus``: everything derived from the new status, then the write."""
        ro = self.ro
        if self.restarted_at:
            new["restartedAt"] = self.restarted_at
        else:
            new.pop("restartedAt", None)
        if new.get("currentStepIndex") is None:
            new.pop("currentStepIndex", None)
        paused_conditions(self, new)
        new["observedGeneration"] = str(ro.generation)
        progress_deadline_abort(self, new)
        pause_status(self, new)
        rollout_conditions(self, new)
        self._weights(new)
        if not new.get("canary"):
            new.pop("canary", None)
        new["phase"], new["message"] = cs.calculate_phase(ro, new)
        if not new["message"]:
            del new["message"]
        if not self.old.get("pauseConditions") and new.get("pauseConditions"):
            reason = new["pauseConditions"][0].get("reason", "")
            self.event(cs.ROLLOUT_PAUSED_REASON, f"{cs.ROLLOUT_PAUSED_MESSAGE} ({reason})")
        # RolloutResumed is recorded when the Paused condition turns False (_paused_conditions), which
        # covers a timed pause ending, a promote clearing the pause, and spec.paused turning false.
        requeue_for_deadline(self, new)
        self.plan.status = new
        return self.plan

def plan(observed: Observed) -> Plan:
    """The next moves for one Rollout (canary strategy)."""
    return _Planner(observed).run()


def referenced_services(rollout: Mapping[str, Any]) -> list[str]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    return [str(canary[k]) for k in ("canaryService", "stableService") if canary.get(k)]
