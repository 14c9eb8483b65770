"""The blue/green strategy as a pure function: what is observed -> what to do next.

``plan(observed)`` has the same shape as :func:`rollouts.strategy.canary.plan` and builds on the shared
:class:`~rollouts.strategy.base.Planner` for everything the strategies share (validation, ReplicaSet
creation and revisions, collisions, restartAt, pause and abort bookkeeping, conditions, the progress
deadline, the status write); this module only decides what is blue/green's own, after Argo
Rollouts' ``rollout/bluegreen.go``, ``rollout/service.go`` and the blue/green parts of
``rollout/analysis.go``:

- the preview Service selects the new ReplicaSet as soon as it exists; the active Service moves to it
  only once it is fully available and the promotion is allowed (auto-promotion, ``autoPromotionSeconds``,
  a manual promote, a successful ``prePromotionAnalysis``), and on abort back to the stable
  ReplicaSet once that one is fully available again -- never to a ReplicaSet that is not ready;
- ``previewReplicaCount`` sizes the new ReplicaSet until the promotion is allowed, then it is scaled
  to full before the switch (``status.blueGreen.scaleUpPreviewCheckPoint`` remembers the approval);
- the ReplicaSet the active Service left keeps its pods until its ``scale-down-deadline``
  (``scaleDownDelaySeconds``, at most ``scaleDownDelayRevisionLimit`` of them); an aborted new
  ReplicaSet keeps its pods for ``abortScaleDownDelaySeconds`` (0: until the next update);
- ``postPromotionAnalysis`` runs after the switch; the new ReplicaSet becomes stable when it succeeds,
  and a failure aborts, which moves the active Service back.

Every write is ordered so that stopping between any two leaves the active Service on ready pods.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model import conditions as cs
from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.labelselector import format_label_selector
from rollouts.model.spec import HASH_LABEL, BlueGreenSpec, PodMetadata
from rollouts.model.timestamps import parse_time
from rollouts.strategy import analysis as ca
from rollouts.strategy.analysis import POST_STATUS, PRE_STATUS, PromotionAnalysis, PromotionState
from rollouts.strategy.base import Planner
from rollouts.strategy.plan import (
    Observed,
    PatchPod,
    Plan,
    PodView,
    merge_patch,
    scale_down_deadline_patch,
)
from rollouts.strategy.replicasets import (
    ReplicaSetView,
    apply_ephemeral_metadata,
    new_replicaset_manifest,
    with_anti_affinity,
)
from rollouts.strategy.restart import restart_pods
from rollouts.strategy.revisions import replicaset_metadata, revision_history, template_or_steps_changed
from rollouts.strategy.rollbackwindow import rollback_within_window
from rollouts.strategy.scaling import scale
from rollouts.strategy.services import service_hash, switch_service

CHECKPOINT = "scaleUpPreviewCheckPoint"
COMPLETED_MESSAGE = "Completed blue-green update"


# --------------------------------------------------------------------------- the planner


class BlueGreenPlanner(Planner):
    bg: BlueGreenSpec
    active_svc: Mapping[str, Any] | None
    preview_svc: Mapping[str, Any] | None
    active_hash: str  # the hash the active Service selects (updated when this pass switches it)
    preview_hash: str
    observed_active_hash: str  # the hash the active Service selected when the pass began
    checkpoint: bool

    def __init__(self, obs: Observed) -> None:
        super().__init__(obs)
        self.promotion: PromotionAnalysis | None = None

    # ------------------------------------------------------------------ entry point

    def run(self) -> Plan:
        done = self.start()
        if done is not None:
            return done
        new_rs = self.new_rs
        assert new_rs is not None
        self.others = [rs for rs in self.all_rss if rs.name != new_rs.name]
        self.checkpoint = bool((self.old.get("blueGreen") or {}).get(CHECKPOINT)) and not self._new_is_active()

        if template_or_steps_changed(self):
            self._preview_service()
            return self._reset_for_new_version()
        if cs.rollout_completed(self.old) and self.aborted():
            self.remove_abort = True  # "Removing abort condition from fully promoted rollout"
        if restart_pods(self):
            return self.persist(self.base_status())
        revision_history(self)
        self._preview_service()
        self._reconcile_analysis()
        if cs.PAUSE_BLUE_GREEN not in self.add_pause and self.add_pause:
            # "Detected pause due to inconclusive AnalysisRun": nothing moves in this pass
            self._ephemeral_metadata()
            return self._sync_status()
        self._reconcile_pause()
        self._scale_current()
        self._active_service()
        self._scale_down_old()
        self._ephemeral_metadata()
        return self._sync_status()

    # ------------------------------------------------------------------ hooks

    def strategy_services(self) -> tuple[str, Sequence[tuple[str, str]]] | None:
        bg = self.ro.blue_green
        if bg is None:
            return None
        return "spec.strategy.blueGreen", (("activeService", bg.active_service), ("previewService", bg.preview_service))

    def prepare(self) -> None:
        """Read the active and preview Services before the new ReplicaSet is created (its pod metadata
        depends on whether the active Service selects anything yet)."""
        bg = self.ro.blue_green
        assert bg is not None
        self.bg = bg
        self.active_svc = self.obs.services.get(bg.active_service)
        self.preview_svc = self.obs.services.get(bg.preview_service) if bg.preview_service else None
        self.active_hash = service_hash(self.active_svc)
        self.preview_hash = service_hash(self.preview_svc)
        self.observed_active_hash = self.active_hash

    def new_rs_manifest(self, revision: int, stable_exists: bool) -> dict[str, Any]:
        bg = self.bg
        # the first version takes the active role at once; later ones start as the preview
        ephemeral = bg.preview_metadata if self.active_hash or stable_exists else bg.active_metadata
        manifest = new_replicaset_manifest(
            self.ro, self.template, self.selector, self.pod_hash, revision, self.digest, ephemeral
        )
        previous = str(self.old.get("stableRS") or "")
        if bg.anti_affinity is not None and stable_exists and previous:
            manifest = with_anti_affinity(manifest, bg.anti_affinity, previous)
        return manifest

    # ------------------------------------------------------------------ small predicates

    def _new_is_active(self) -> bool:
        return bool(self.active_hash) and self.active_hash == self.pod_hash

    def _halted(self) -> bool:
        """Argo's ``haltProgress``: a manual pause or an inconclusive analysis stops the Services."""
        return self.ro.paused or self.pause_condition(ca.PAUSE_INCONCLUSIVE) is not None

    def _active_rs(self) -> ReplicaSetView | None:
        return next((rs for rs in self.all_rss if self.active_hash and rs.pod_hash == self.active_hash), None)

    def _desired_new(self) -> int:
        """Argo's ``NewRSNewReplicas`` for blue/green."""
        ro, bg = self.ro, self.bg
        active = self._active_rs()
        if bg.preview_replica_count is None or active is None or self._new_is_active():
            return ro.replicas
        if self.checkpoint or self.old.get("promoteFull"):
            return ro.replicas
        return min(bg.preview_replica_count, ro.replicas)

    def _ready_for_pause(self) -> bool:
        """Argo's ``ReadyForPause``: the new ReplicaSet is at its (preview) size and available."""
        assert self.new_rs is not None
        desired = self._desired_new()
        return self.new_rs.replicas == desired and self.new_rs.available >= desired

    def _fully_available(self, rs: ReplicaSetView | None) -> bool:
        """Saturated: at the Rollout's size with every pod available (the only kind of ReplicaSet
        the active Service may select)."""
        if rs is None:
            return False
        return rs.replicas == self.ro.replicas and rs.available >= self.ro.replicas

    def _first_version(self) -> bool:
        return self.stable_rs is None or self.stable_rs.pod_hash == self.pod_hash

    def _fast_tracked(self) -> bool:
        """Argo's ``isBlueGreenFastTracked``: no pause and no pre-promotion analysis. An active Service
        without a hash counts only for the first version (Argo: always; a re-applied Service manifest
        mid-update would then skip the checks)."""
        no_hash = not self.observed_active_hash and self._first_version()
        return bool(self.old.get("promoteFull")) or no_hash or self._new_is_active()

    def _completed_pre_promotion(self) -> bool:
        if self.bg.pre_promotion_analysis is None or self._skip_pre_promotion():
            return True
        run = self.promotion.pre_run if self.promotion is not None else None
        return run is not None and run.phase == "Successful"

    def _skip_pre_promotion(self) -> bool:
        stable = self.old.get("stableRS") or ""
        return stable == self.pod_hash or self._new_is_active() or bool(self.old.get("promoteFull"))

    def _completed_pause(self) -> bool:
        """Argo's ``CompletedBlueGreenPause``: no pause needed, its time is up, or the user promoted
        (the pause condition is gone, ``controllerPause`` is still set)."""
        if not self.bg.needs_controller_pause():
            return True
        cond = self.pause_condition(cs.PAUSE_BLUE_GREEN)
        if cond is None:
            return bool(self.old.get("controllerPause")) and not self.old.get("pauseConditions")
        seconds = self.bg.auto_promotion_seconds
        if seconds > 0:
            started = parse_time(cond.get("startTime")) or self.now
            return self.now >= started + seconds
        return False

    # ------------------------------------------------------------------ services

    def _preview_service(self) -> None:
        """Argo's ``reconcilePreviewService``: the preview Service follows the newest ReplicaSet."""
        if self.preview_svc is None or self._halted() or self.preview_hash == self.pod_hash:
            return
        switch_service(self, self.bg.preview_service, self.preview_svc, self.pod_hash)
        self.preview_hash = self.pod_hash

    def _active_service(self) -> None:
        """Argo's ``reconcileActiveService``, with one more rule: the active Service only ever moves to a
        fully available ReplicaSet (on abort too)."""
        svc = self.active_svc
        if svc is None:
            return
        if self.aborted():
            target = self.stable_rs
            if target is None or target.pod_hash == self.active_hash or not self._fully_available(target):
                return
            switch_service(self, self.bg.active_service, svc, target.pod_hash)
            self.active_hash = target.pod_hash
            return
        stable = self.stable_rs
        if not self.active_hash and not self._first_version() and stable is not None:
            # the Service lost its hash (a re-applied manifest) during an update: back to the stable stack
            if self._fully_available(stable):
                switch_service(self, self.bg.active_service, svc, stable.pod_hash)
                self.active_hash = stable.pod_hash
            return
        if self._halted() or self._new_is_active():
            return
        if not self._ready_for_pause() or not self._fully_available(self.new_rs):
            return
        if self._fast_tracked() or self.checkpoint or (self._completed_pause() and self._completed_pre_promotion()):
            switch_service(self, self.bg.active_service, svc, self.pod_hash)
            self.active_hash = self.pod_hash

    # ------------------------------------------------------------------ pause

    def _reconcile_pause(self) -> None:
        """Argo's ``reconcileBlueGreenPause``."""
        if self.aborted() or not self._ready_for_pause() or self._halted():
            return
        present = self.pause_condition(cs.PAUSE_BLUE_GREEN) is not None
        if self._fast_tracked() or self.checkpoint or not self.bg.needs_controller_pause():
            if present:
                self.remove_pause.append(cs.PAUSE_BLUE_GREEN)
            return
        if not self._completed_pre_promotion():
            return
        seconds = self.bg.auto_promotion_seconds
        if present:
            if self._completed_pause():
                self.remove_pause.append(cs.PAUSE_BLUE_GREEN)
            elif seconds > 0:
                cond = self.pause_condition(cs.PAUSE_BLUE_GREEN) or {}
                started = parse_time(cond.get("startTime")) or self.now
                self.plan.requeue(started + seconds - self.now)
        elif not self.old.get("controllerPause"):
            self.add_pause.append(cs.PAUSE_BLUE_GREEN)
            if seconds > 0:
                self.plan.requeue(seconds)

    # ------------------------------------------------------------------ replica counts

    def _clear_deadline(self, rs: ReplicaSetView) -> None:
        if SCALE_DOWN_DEADLINE in rs.annotations:
            self.plan.actions.append(scale_down_deadline_patch(rs.name, None, "clear deadline"))

    def _scale_current(self) -> None:
        """Argo's ``reconcileBlueGreenReplicaSets``: the ReplicaSet behind the active Service at full size,
        on abort the stable one too (the Service goes back to it), then the new one."""
        ro, new_rs = self.ro, self.new_rs
        assert new_rs is not None
        active = self._active_rs()
        if active is not None and active.name != new_rs.name:
            self._clear_deadline(active)
            scale(self, active, ro.replicas)
        stable = self.stable_rs
        if self.aborted() and stable is not None and stable.name != new_rs.name and stable is not active:
            self._clear_deadline(stable)
            scale(self, stable, ro.replicas)
        self._scale_new()

    def _scale_new(self) -> None:
        new_rs = self.new_rs
        assert new_rs is not None
        desired = self._desired_new()
        if self.aborted():
            if self._new_is_active():
                return  # it serves until the stable ReplicaSet is back
            delay = self.bg.abort_scale_down_delay()
            if delay is not None:
                deadline = new_rs.scale_down_deadline()
                if deadline is None:
                    stable = self.stable_rs
                    if stable is not None and stable.available >= self.ro.replicas:
                        self.plan.actions.append(
                            scale_down_deadline_patch(new_rs.name, self.now + delay, "abort scale-down delay")
                        )
                        self.plan.requeue(delay)
                    return
                if deadline > self.now:
                    self.plan.requeue(deadline - self.now)
                    return
                desired = 0
        else:
            self._clear_deadline(new_rs)
        scale(self, new_rs, desired)

    def _scale_down_old(self) -> None:
        """Argo's ``scaleDownOldReplicaSetsForBlueGreen``: the ReplicaSet the active Service left gets a
        scale-down deadline and keeps its pods until then (newest first, at most
        ``scaleDownDelayRevisionLimit``); every other old ReplicaSet is scaled down at once. The
        ReplicaSet the active Service selects, and on abort the stable one, are never touched."""
        if self.pause_condition(ca.PAUSE_INCONCLUSIVE) is not None:
            return
        bg = self.bg
        delay = bg.scale_down_delay()
        limit = bg.scale_down_delay_revision_limit
        was_active = {(self.old.get("blueGreen") or {}).get("activeSelector") or "", self.observed_active_hash}
        annotated = 0
        for rs in sorted(self.others, key=lambda r: (r.revision, r.created, r.name), reverse=True):
            if rs.pod_hash == self.active_hash or rs.replicas == 0:
                continue
            if self.aborted() and self.stable_rs is not None and rs.name == self.stable_rs.name:
                continue
            deadline = rs.scale_down_deadline() if SCALE_DOWN_DEADLINE in rs.annotations else None
            if deadline is None:
                if rs.pod_hash in was_active and delay > 0 and (limit is None or annotated < limit):
                    annotated += 1
                    self.plan.actions.append(scale_down_deadline_patch(rs.name, self.now + delay, "scale-down delay"))
                    self.plan.requeue(delay)
                    continue
            else:
                annotated += 1
                within_limit = limit is None or annotated <= limit
                if within_limit and deadline > self.now:
                    self.plan.requeue(deadline - self.now)
                    continue
            scale(self, rs, 0)

    def history_candidates(self) -> list[ReplicaSetView]:
        keep = {self.old.get("stableRS") or "", self.active_hash, self.preview_hash}
        return [rs for rs in self.others if rs.pod_hash not in keep]

    # ------------------------------------------------------------------ ephemeral metadata

    def _ephemeral_metadata(self) -> None:
        """``activeMetadata`` on the ReplicaSet the active Service selects, ``previewMetadata`` on the new
        one while it is not active; a ReplicaSet that lost its role loses the metadata."""
        bg = self.bg
        for rs in self.all_rss:
            desired: PodMetadata | None
            if self.active_hash and rs.pod_hash == self.active_hash:
                desired = bg.active_metadata
            elif rs.pod_hash == self.pod_hash:
                desired = bg.preview_metadata if self.active_hash else bg.active_metadata
            else:
                desired = None
            existing = rs.ephemeral_metadata()
            if desired is None and existing is None:
                continue
            self._pod_metadata(rs, existing, desired)
            replicaset_metadata(self, rs, existing, desired)

    def _pod_metadata(self, rs: ReplicaSetView, existing: PodMetadata | None, desired: PodMetadata | None) -> None:
        """Argo's ``SyncReplicaSetEphemeralPodMetadata``: the running pods take the role's metadata too
        (before the ReplicaSet records it, so a crash in between is repaired by the next pass)."""
        for pod in self.obs.pods or ():
            if PodView.parse(pod).owner_uid != rs.uid:
                continue
            meta = pod.get("metadata") or {}
            current = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
            wanted = apply_ephemeral_metadata(current, existing, desired)
            patch = merge_patch(current, wanted)
            if patch:
                self.plan.actions.append(PatchPod(str(meta.get("name", "")), {"metadata": patch}))

    # ------------------------------------------------------------------ analysis

    def _reconcile_analysis(self) -> None:
        inp = self.analysis_input(None)
        stable = self.old.get("stableRS") or ""
        state = PromotionState(
            aborted=self.aborted(),
            pre_skip=self._skip_pre_promotion(),
            preview_ready=self._ready_for_pause(),
            post_skip=stable == self.pod_hash or bool(self.old.get("promoteFull")),
            switched=self._new_is_active(),
        )
        self.promotion = PromotionAnalysis(inp)
        outcome = self.promotion.reconcile(state)
        self.apply_analysis_outcome(outcome)
        if outcome.abort_message is not None and not self.aborted():
            self.add_abort = True
            self.abort_message = outcome.abort_message

    # ------------------------------------------------------------------ status

    def weights(self, new: dict[str, Any]) -> None:
        new.pop("canary", None)

    def base_status(self) -> dict[str, Any]:
        new = super().base_status()
        for key in ("canary", "currentStepHash", "currentStepIndex"):
            new.pop(key, None)
        selectors: dict[str, Any] = {}
        if self.active_hash:
            selectors["activeSelector"] = self.active_hash
        if self.preview_hash:
            selectors["previewSelector"] = self.preview_hash
        if self.promotion is not None:
            selectors.update(self.promotion.statuses())
        if self.checkpoint:
            selectors[CHECKPOINT] = True  # kept through passes that stop early (restart); recomputed by _sync_status
        new["blueGreen"] = selectors
        active = self._active_rs()
        if active is not None:
            # Argo counts the active stack: what users are served by
            new["availableReplicas"] = active.available
            new["readyReplicas"] = active.ready
            new["HPAReplicas"] = active.status_replicas
            selector = copy.deepcopy(dict(self.selector))
            selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: active.pod_hash}
            new["selector"] = format_label_selector(selector)
        return new

    def _reset_for_new_version(self) -> Plan:
        """A new pod template: start over (pause, abort and analysis forgotten). Going back to a version
        that is still within its scale-down delay, or within ``rollbackWindow``, is promoted at once, as
        with ``promote --full``."""
        new = self.base_status()
        self.clear_pause = True
        self.remove_abort = True
        self.restarted_at = self.ro.restart_at
        for key in (PRE_STATUS, POST_STATUS, CHECKPOINT):
            new["blueGreen"].pop(key, None)
        assert self.new_rs is not None
        within_delay = SCALE_DOWN_DEADLINE in self.new_rs.annotations and self._fully_available(self.new_rs)
        # spec.rollbackWindow: a recent stable version skips the pause and the analysis the same way
        new["promoteFull"] = (within_delay or rollback_within_window(self)) and not self._new_is_active()
        if not new["blueGreen"]:
            new.pop("blueGreen")
        return self.persist(new)

    def _should_full_promote(self) -> str:
        """Argo's ``shouldFullPromote`` for blue/green."""
        if self.stable_rs is None:
            return "Initial deploy"
        if self.aborted() or self.active_hash != self.pod_hash:
            return ""
        if self.bg.post_promotion_analysis is not None and not self.old.get("promoteFull"):
            run = self.promotion.post_run if self.promotion is not None else None
            if run is None or run.phase != "Successful":
                return ""
        return COMPLETED_MESSAGE

    def _sync_status(self) -> Plan:
        """Argo's ``syncRolloutStatusBlueGreen``."""
        new = self.base_status()
        if self.old.get("promoteFull"):
            self.clear_pause = True
            self.remove_abort = True
        reason = self._should_full_promote()
        selectors = new["blueGreen"]
        selectors.pop(CHECKPOINT, None)
        if reason:
            self.clear_pause = True
            self.remove_abort = True
            new["promoteFull"] = False
            if (self.old.get("stableRS") or "") != self.pod_hash:
                new["stableRS"] = self.pod_hash
                self.event(
                    cs.ROLLOUT_COMPLETED_REASON,
                    cs.ROLLOUT_COMPLETED_MESSAGE.format(self.revision(), self.pod_hash, reason),
                )
        elif self._promotion_approved():
            selectors[CHECKPOINT] = True
        if not selectors:
            new.pop("blueGreen")
        return self.persist(new)

    def _promotion_approved(self) -> bool:
        """``scaleUpPreviewCheckPoint``: set once the preview stack passed its pre-promotion analysis and
        its pause (so the approval survives the scale-up to full size), until the switch."""
        if self.aborted() or self._new_is_active() or self._active_rs() is None:
            return False
        if self.checkpoint:
            return True
        return self._completed_pre_promotion() and self._completed_pause() and self._ready_for_pause()


def plan(observed: Observed) -> Plan:
    """The next moves for one Rollout (blue/green strategy)."""
    return BlueGreenPlanner(observed).run()


def referenced_services(rollout: Mapping[str, Any]) -> list[str]:
    bg = ((rollout.get("spec") or {}).get("strategy") or {}).get("blueGreen") or {}
    return [str(bg[k]) for k in ("activeService", "previewService") if isinstance(bg, Mapping) and bg.get(k)]


def uses_pod_metadata(rollout: Mapping[str, Any]) -> bool:
    """Does a blue/green Rollout put role metadata on its pods (so the reconciler must read them)?"""
    bg = ((rollout.get("spec") or {}).get("strategy") or {}).get("blueGreen") or {}
    return isinstance(bg, Mapping) and bool(bg.get("activeMetadata") or bg.get("previewMetadata"))


def is_blue_green(rollout: Mapping[str, Any]) -> bool:
    """A blue/green Rollout (with both strategies set, the canary planner reports the InvalidSpec)."""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    return strategy.get("blueGreen") is not None and strategy.get("canary") is None
