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

:class:`CanaryPlanner` is the canary's ``run()`` and hooks on the shared :class:`~rollouts.strategy.base.Planner`;
the work it orders lives in :mod:`~rollouts.strategy.scaling`, :mod:`~rollouts.strategy.traffic`,
:mod:`~rollouts.strategy.pauses`, :mod:`~rollouts.strategy.services` and the other modules of this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model import conditions as cs
from rollouts.model.hashing import step_hash
from rollouts.model.spec import PodMetadata
from rollouts.model.steps import current_step
from rollouts.strategy import analysis as ca
from rollouts.strategy import experiments as ce
from rollouts.strategy import traffic as ct
from rollouts.strategy.base import Planner
from rollouts.strategy.pauses import completed_pause_step, reconcile_pause_step
from rollouts.strategy.pingpong import record_turn, take_turns
from rollouts.strategy.plan import Observed, Plan
from rollouts.strategy.replicasets import ReplicaSetView, new_replicaset_manifest
from rollouts.strategy.restart import restart_pods
from rollouts.strategy.revisions import replicaset_metadata, revision_history, template_or_steps_changed
from rollouts.strategy.rollbackwindow import PROMOTION_REASON, SKIP_STEPS_MESSAGE, rollback_within_window
from rollouts.strategy.scaling import (
    at_desired_counts,
    kept_for_scale_down_delay,
    progress_threshold_met,
    reconcile_replicasets,
)
from rollouts.strategy.services import reconcile_canary_services
from rollouts.strategy.stepplugins import STATUS_KEY as STEP_PLUGINS_STATUS
from rollouts.strategy.stepplugins import reconcile_step_plugins, step_plugin_succeeded
from rollouts.strategy.traffic import reconcile_traffic, routed_weights, traffic_step_reached
from rollouts.strategy.workloadref import progressive_workload_scale_down, workload_scale_down_on_success

# --------------------------------------------------------------------------- the planner


class CanaryPlanner(Planner):
    kept: dict[str, float]  # old ReplicaSets kept for scaleDownDelaySeconds: name -> scale-down deadline
    delay: int | None  # scaleDownDelaySeconds in force (None: scale down at once)
    active_others: list[ReplicaSetView]  # the old ReplicaSets not kept

    def __init__(self, obs: Observed) -> None:
        super().__init__(obs)
        self.analysis: ca.AnalysisOutcome | None = None  # set once the analysis pass ran
        self.traffic: ct.TrafficState | None = None  # set once the traffic-routing pass ran
        self.experiment: ce.ExperimentState | None = None  # the current experiment step's
        self.experiment_looked = False
        self.routes_kept = True  # header/mirror routes stay (until the weight has left a promoted canary)
        take_turns(self)  # pingPong: this turn's stable and canary Services
        self.step_plugins: list[dict[str, Any]] | None = None  # status.canary.stepPluginStatuses, once called

    # ------------------------------------------------------------------ entry point

    def run(self) -> Plan:
        done = self.start()
        if done is not None:
            return done
        ro, new_rs = self.ro, self.new_rs
        assert ro.canary is not None and new_rs is not None
        self.others = [
            rs
            for rs in self.all_rss
            if rs.name != new_rs.name and (self.stable_rs is None or rs.name != self.stable_rs.name)
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
            return self.persist(self.base_status())
        self._ephemeral_metadata()
        revision_history(self)
        reconcile_canary_services(self)
        reconcile_traffic(self)
        self._reconcile_analysis()
        self.step_plugins = reconcile_step_plugins(self)
        self.experiment = ce.reconcile_experiment(self)
        self.experiment_looked = True
        if self.add_pause:
            # "Detected pause due to inconclusive AnalysisRun": no scaling in this pass
            return self._sync_status()
        scaled = reconcile_replicasets(self)
        if not scaled:
            reconcile_pause_step(self)
        if ro.workload_ref is not None:
            progressive_workload_scale_down(self)
        return self._sync_status()

    # ------------------------------------------------------------------ hooks

    def strategy_services(self) -> tuple[str, Sequence[tuple[str, str]]] | None:
        canary = self.ro.canary
        if canary is None:
            return None
        if canary.ping_pong:
            return "spec.strategy.canary", (
                ("pingPong.pingService", canary.ping_service),
                ("pingPong.pongService", canary.pong_service),
            )
        return "spec.strategy.canary", (
            ("canaryService", canary.canary_service),
            ("stableService", canary.stable_service),
        )

    def new_rs_manifest(self, revision: int, stable_exists: bool) -> dict[str, Any]:
        """The new ReplicaSet, with the canary or stable pod metadata."""
        ro = self.ro
        assert ro.canary is not None
        ephemeral = ro.canary.canary_metadata if stable_exists else ro.canary.stable_metadata
        return new_replicaset_manifest(
            ro, self.template, self.selector, self.pod_hash, revision, self.digest, ephemeral
        )

    def delaying_abort_scale_down(self) -> bool:
        return (
            self.aborted()
            and self.stable_rs is not None
            and self.new_rs is not None
            and self.stable_rs.name != self.new_rs.name
            and self.ro.abort_scale_down_delay() is not None
        )

    # ------------------------------------------------------------------ reset, metadata, analysis

    def _reset_for_new_version(self) -> Plan:
        assert self.ro.canary is not None
        new = self.base_status()
        self.clear_pause = True
        self.remove_abort = True
        self.restarted_at = self.ro.restart_at
        new["promoteFull"] = False
        new.pop("canary", None)
        record_turn(self, new, promoted=False)  # whose turn it is outlives the version's canary status
        steps = len(self.ro.canary.steps)
        new["currentStepIndex"] = 0 if steps else None
        if steps and (self.old.get("stableRS") or "") == self.pod_hash:
            self.event(cs.SKIP_STEPS_REASON, "Rollback to stable ReplicaSets")
            new["currentStepIndex"] = steps
        elif steps and rollback_within_window(self):
            self.event(cs.SKIP_STEPS_REASON, SKIP_STEPS_MESSAGE)
            new["currentStepIndex"] = steps
        return self.persist(new)

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

    def _reconcile_analysis(self) -> None:
        """Argo's ``reconcileAnalysisRuns`` (see :mod:`rollouts.strategy.analysis`)."""
        assert self.new_rs is not None
        _, index = current_step(self.ro, self.old)
        outcome = ca.reconcile(self.analysis_input(index))
        self.analysis = outcome
        self.apply_analysis_outcome(outcome)
        if outcome.abort_message is not None:
            self.add_abort = True
            self.abort_message = outcome.abort_message

    # ------------------------------------------------------------------ status

    def base_status(self) -> dict[str, Any]:
        """Argo's ``calculateBaseStatus`` plus the canary's analysis runs."""
        new = super().base_status()
        if self.analysis is not None:
            # Argo's SetCurrentAnalysisRuns: the runs this pass found current, and no others
            canary = new.setdefault("canary", {})
            canary.pop(ca.STEP_STATUS, None)
            canary.pop(ca.BACKGROUND_STATUS, None)
            canary.update(self.analysis.statuses())
        record_turn(self, new, promoted=False)
        if self.step_plugins is not None:
            section = new.setdefault("canary", {})
            section.pop(STEP_PLUGINS_STATUS, None)
            if self.step_plugins:
                section[STEP_PLUGINS_STATUS] = self.step_plugins
        if self.experiment_looked:  # else the pass ended before the experiment step was looked at: keep it
            old_canary = new.get("canary")
            if isinstance(old_canary, dict):
                old_canary.pop("currentExperiment", None)
            if self.experiment is not None:
                new.setdefault("canary", {})["currentExperiment"] = self.experiment.name
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
        if rollback_within_window(self):
            return PROMOTION_REASON
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

    def _completed_current_step(self) -> bool:
        if self.ro.paused:
            return False
        step, index = current_step(self.ro, self.old)
        if step is None or index is None:
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
        if "plugin" in step.actions:
            return step_plugin_succeeded(self.step_plugins or [], index)
        if "experiment" in step.actions:
            return self.experiment is not None and self.experiment.phase == "Successful"
        return False

    def _sync_status(self) -> Plan:
        """Argo's ``syncRolloutStatusCanary``."""
        ro = self.ro
        assert ro.canary is not None
        new = self.base_status()
        steps = len(ro.canary.steps)
        step, index = current_step(ro, self.old)
        if self.old.get("promoteFull") or rollback_within_window(self):
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
                record_turn(self, new, promoted=bool(self.old.get("stableRS")))
                self.event(
                    cs.ROLLOUT_COMPLETED_REASON,
                    cs.ROLLOUT_COMPLETED_MESSAGE.format(self.revision(), self.pod_hash, reason),
                )
            workload_scale_down_on_success(self)
            return self.persist(new)
        if self.aborted():
            if steps > 0:
                new["currentStepIndex"] = steps if new.get("stableRS") == self.pod_hash else 0
            return self.persist(new)
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
        return self.persist(new)

    def weights(self, new: dict[str, Any]) -> None:
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


def plan(observed: Observed) -> Plan:
    """The next moves for one Rollout (canary strategy)."""
    return CanaryPlanner(observed).run()


def referenced_services(rollout: Mapping[str, Any]) -> list[str]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    ping_pong: Mapping[str, Any] = canary["pingPong"] if isinstance(canary.get("pingPong"), Mapping) else {}
    named = [canary.get(k) for k in ("canaryService", "stableService")]
    named += [ping_pong.get(k) for k in ("pingService", "pongService")]
    return [str(name) for name in named if name]
