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

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.model import conditions as cs
from rollouts.model.hashing import pod_template_hash, step_hash, template_digest
from rollouts.model.labelselector import format_label_selector
from rollouts.model.spec import (
    API_VERSION,
    HASH_LABEL,
    KIND,
    PodMetadata,
    RolloutSpec,
    Step,
    max_traffic_weight,
    validate_rollout,
)
from rollouts.strategy import analysis as ca
from rollouts.strategy import traffic as ct
from rollouts.strategy.plan import (
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeletePod,
    DeleteReplicaSet,
    EventSpec,
    Observed,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutMetadata,
    PatchService,
    Plan,
    PodView,
    ScaleWorkload,
    WriteRoutingObject,
    merge_patch,
)
from rollouts.strategy.replicas import approximate_weighted_counts, basic_canary_counts
from rollouts.strategy.replicasets import (
    EPHEMERAL_METADATA,
    MANAGED_BY,
    REVISION,
    SCALE_DOWN_DEADLINE,
    TEMPLATE_DIGEST,
    ReplicaSetView,
    apply_ephemeral_metadata,
    by_creation,
    format_time,
    max_revision,
    new_replicaset_manifest,
    parse_time,
    total_available,
    total_ready,
    total_replicas,
    total_status_replicas,
)
from rollouts.traffic.registry import build_routers
from rollouts.traffic.router import DesiredTraffic, HeaderRoute, MirrorRoute, Owner

# --------------------------------------------------------------------------- helpers


def current_step(ro: RolloutSpec, status: Mapping[str, Any]) -> tuple[Step | None, int | None]:
    """Argo's ``GetCurrentCanaryStep``: (step, index); step is None past the last step."""
    steps = ro.canary.steps if ro.canary else ()
    if not steps:
        return None, None
    index = int(status.get("currentStepIndex") or 0)
    if index >= len(steps):
        return None, index
    return steps[index], index


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
        template, selector, workload_error = self._resolve_template()
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
            return self._create_new_rs(live)
        self.new_rs: ReplicaSetView | None = new_rs
        self._sync_revision(live)
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
        self.kept = self._kept_for_scale_down_delay()
        self.active_others = [rs for rs in self.others if rs.name not in self.kept]

        if self._template_or_steps_changed():
            return self._reset_for_new_version()

        if cs.rollout_completed(self.old) and self.aborted():
            self.remove_abort = True  # "Removing abort condition from fully promoted rollout"

        if self._restart_pods():
            return self._persist(self._base_status())
        self._ephemeral_metadata()
        self._revision_history()
        self._services()
        self._traffic_routing()
        self._reconcile_analysis()
        if self.add_pause:
            # "Detected pause due to inconclusive AnalysisRun": no scaling in this pass
            return self._sync_status()
        scaled = self._reconcile_replicasets()
        if not scaled:
            self._reconcile_pause()
        if ro.workload_ref is not None:
            self._progressive_workload_scale_down()
        return self._sync_status()

    # ------------------------------------------------------------------ validation and template

    def _resolve_template(self) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, str | None]:
        ro = self.ro
        if ro.workload_ref is None:
            return ro.template, ro.selector, None
        ref = ro.workload_ref
        if ref.kind != "Deployment" or not ref.api_version.startswith("apps/"):
            return None, ro.selector, f"workloadRef kind {ref.kind!r} is not supported: use apps/v1 Deployment"
        if not ref.name:
            return None, ro.selector, "workloadRef.name is required"
        deploy = self.obs.workload
        if deploy is None:
            return (
                None,
                ro.selector,
                f'Deployment "{ref.name}" not found in namespace "{ro.namespace}": '
                "create it or fix spec.workloadRef.name",
            )
        dspec = deploy.get("spec") or {}
        template = dspec.get("template")
        selector = ro.selector or dspec.get("selector")
        return template if isinstance(template, Mapping) else None, selector, None

    def _service_ownership_errors(self, names: Sequence[str]) -> list[str]:
        assert self.ro.canary is not None or not names
        return self._services_managed_elsewhere(
            "spec.strategy.canary",
            (
                ("canaryService", self.ro.canary.canary_service if self.ro.canary else ""),
                ("stableService", self.ro.canary.stable_service if self.ro.canary else ""),
            ),
        )

    def _services_managed_elsewhere(self, path: str, fields: Sequence[tuple[str, str]]) -> list[str]:
        """An error for each named Service (field under `path`, name) another Rollout manages."""
        errors = []
        for key, name in fields:
            svc = self.obs.services.get(name) if name else None
            if svc is None:
                continue
            owner = ((svc.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY)
            if owner and owner != self.ro.name:
                errors.append(
                    f'{path}.{key}: Invalid value: "{name}": Service "{name}" is managed by another '
                    f'Rollout ("{owner}"); give each Rollout its own Service'
                )
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

    def _create_new_rs(self, live: list[ReplicaSetView]) -> Plan:
        ro = self.ro
        revision = max_revision(live) + 1
        stable_hash = self.old.get("stableRS") or ""
        stable_exists = any(rs.pod_hash == stable_hash for rs in live) and stable_hash != self.pod_hash
        manifest = self._new_rs_manifest(revision, stable_exists)
        name = manifest["metadata"]["name"]
        self.plan.actions.append(CreateReplicaSet(manifest))
        self.event(cs.NEW_RS_REASON, cs.NEW_RS_DETAILED_MESSAGE.format(name, revision))
        if ro.annotations.get(REVISION) != str(revision):
            self.plan.actions.append(PatchRolloutMetadata({REVISION: str(revision)}))
            self.event(cs.ROLLOUT_UPDATED_REASON, cs.ROLLOUT_UPDATED_MESSAGE.format(revision))
        new = cs.status_copy(self.old)
        cs.replace_condition(
            new, cs.new_condition(cs.PROGRESSING, "True", cs.NEW_RS_REASON, cs.NEW_RS_MESSAGE.format(name), self.stamp)
        )
        self.plan.status = new
        self.plan.requeue(0)
        return self.plan

    def _sync_revision(self, live: list[ReplicaSetView]) -> None:
        assert self.new_rs is not None
        rs = self.new_rs
        older = [r for r in live if r.name != rs.name]
        wanted = max(max_revision(older) + 1, rs.revision)
        patch: dict[str, Any] = {}
        if rs.revision < wanted or rs.revision == 0:
            patch.setdefault("metadata", {}).setdefault("annotations", {})[REVISION] = str(wanted)
        if rs.min_ready_seconds != self.ro.min_ready_seconds:
            patch["spec"] = {"minReadySeconds": self.ro.min_ready_seconds}
        if patch:
            self.plan.actions.append(PatchReplicaSet(rs.name, patch, "revision"))
            self.new_rs = ReplicaSetView(**{**rs.__dict__, "revision": wanted})
        if self.ro.annotations.get(REVISION) != str(wanted):
            self.plan.actions.append(PatchRolloutMetadata({REVISION: str(wanted)}))
            self.event(cs.ROLLOUT_UPDATED_REASON, cs.ROLLOUT_UPDATED_MESSAGE.format(wanted))

    def _template_or_steps_changed(self) -> bool:
        old_pod = self.old.get("currentPodHash") or ""
        old_steps = self.old.get("currentStepHash") or ""
        return bool(old_pod and old_pod != self.pod_hash) or bool(old_steps and old_steps != self.step_hash)

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

    # ------------------------------------------------------------------ restart

    def _restart_pods(self) -> bool:
        """Delete pods older than spec.restartAt, as many at a time as maxUnavailable allows.
        True when pods were deleted in this pass."""
        ro = self.ro
        restart_at = parse_time(ro.restart_at)
        if restart_at is None or ro.restart_at == self.old.get("restartedAt"):
            return False
        if self.now < restart_at:
            self.plan.requeue(restart_at - self.now)
            return False
        if self.obs.pods is None:
            return False
        uids = {rs.uid for rs in self.all_rss}
        pods = [PodView.parse(p) for p in self.obs.pods]
        pods = [p for p in pods if p.owner_uid in uids]
        total = total_replicas(self.all_rss)
        available = sum(1 for p in pods if p.ready and not p.deleting)
        concurrent = max(ro.max_unavailable(), 1)
        can_restart = available - (max(ro.replicas, total) - concurrent)
        needs = 0
        restarted = 0
        for pod in sorted(pods, key=lambda p: (p.created, p.name)):
            if pod.created >= restart_at:
                continue
            needs += 1
            if can_restart <= 0 or pod.deleting:
                continue
            self.plan.actions.append(DeletePod(pod.name))
            can_restart -= 1
            restarted += 1
        if needs - restarted != 0:
            self.plan.requeue(1.0)
        else:
            self.restarted_at = ro.restart_at
        return restarted > 0

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
            self._replicaset_metadata(rs, rs.ephemeral_metadata(), desired)

    def _replicaset_metadata(
        self, rs: ReplicaSetView, existing: PodMetadata | None, desired: PodMetadata | None
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
        self.plan.actions.append(PatchReplicaSet(rs.name, patch, "ephemeral metadata"))

    # ------------------------------------------------------------------ history

    def _revision_history(self) -> None:
        cleanable = by_creation(self._history_candidates())
        excess = len(cleanable) - self.ro.revision_history_limit
        for rs in cleanable[: max(excess, 0)]:
            if rs.status_replicas != 0 or rs.replicas != 0 or rs.generation > rs.observed_generation:
                continue
            self.plan.actions.append(DeleteReplicaSet(rs.name, rs.uid))

    def _history_candidates(self) -> list[ReplicaSetView]:
        """The old ReplicaSets revisionHistoryLimit may delete (a strategy hook: blue/green keeps its roles)."""
        return list(self.others)

    # ------------------------------------------------------------------ services

    def _services(self) -> None:
        canary = self.ro.canary
        assert canary is not None
        self._ensure_service(canary.stable_service, self.stable_rs)
        if self.aborted():
            self._ensure_service(canary.canary_service, self.stable_rs)
        else:
            self._ensure_service(canary.canary_service, self.new_rs)

    def _ensure_service(self, name: str, rs: ReplicaSetView | None) -> None:
        if not name or rs is None:
            return
        svc = self.obs.services.get(name)
        if svc is None:
            return
        selector = (svc.get("spec") or {}).get("selector") or {}
        current = selector.get(HASH_LABEL)
        if current == rs.pod_hash:
            return
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        fully_available = rs.replicas != 0 and rs.available != 0 and rs.replicas <= rs.available
        if MANAGED_BY not in annotations and not fully_available:
            return
        if rs.available == 0:
            return
        self.plan.actions.append(
            PatchService(
                name,
                {
                    "metadata": {"annotations": {MANAGED_BY: self.ro.name}},
                    "spec": {"selector": {HASH_LABEL: rs.pod_hash}},
                },
            )
        )
        self.event(
            cs.SWITCH_SERVICE_REASON,
            f"Switched selector for service '{name}' from '{current or ''}' to '{rs.pod_hash}'",
        )

    # ------------------------------------------------------------------ replica counts

    def _canary_scale(self) -> tuple[int | None, int | None]:
        """(replicas, weight) of the setCanaryScale step in force, Argo's ``UseSetCanaryScale``
        (extended to the canary without a traffic router)."""
        if self.aborted():
            return None, None
        step, index = current_step(self.ro, self.old)
        if step is None or index is None:
            return None, None
        assert self.ro.canary is not None
        for i in range(index, -1, -1):
            scale = self.ro.canary.steps[i].canary_scale
            if scale is None:
                continue
            if scale.match_traffic_weight:
                return None, None
            if scale.replicas is not None:
                return scale.replicas, None
            if scale.weight is not None:
                return None, scale.weight
            return None, None
        return None, None

    def _set_weight(self) -> int:
        """Argo's ``GetCurrentSetWeight``."""
        if self.aborted():
            return 0
        step, index = current_step(self.ro, self.old)
        if step is None or index is None:
            return 100
        assert self.ro.canary is not None
        for i in range(index, -1, -1):
            weight = self.ro.canary.steps[i].set_weight
            if weight is not None:
                return weight
        return 0

    def desired_counts(self) -> tuple[int, int]:
        """The (new, stable) replica counts the current step asks for, before surge limits."""
        ro = self.ro
        old = self.old
        stable_hash = old.get("stableRS") or ""
        if old.get("promoteFull") or not stable_hash or old.get("currentPodHash") == stable_hash:
            return ro.replicas, 0
        replicas, weight = self._canary_scale()
        if replicas is not None:
            new = min(replicas, ro.replicas)
            stable = ro.replicas - new
        else:
            if weight is None:
                weight = self._set_weight()
            new, stable = approximate_weighted_counts(ro.replicas, weight, 100, ro.max_surge())
        minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas) if ro.canary else 0
        if minimum:
            new = max(new, minimum) if new else 0
            stable = max(stable, minimum) if stable else 0
        return new, stable

    def counts(self) -> tuple[int, int]:
        if self.traffic is not None:
            return self._routed_counts()
        if self._holding_stable():
            assert self.stable_rs is not None
            new_count, _ = basic_canary_counts(
                self.ro.replicas,
                self.ro.replicas,
                0,
                self.ro.max_surge(),
                self.ro.max_unavailable(),
                self.new_rs,
                None,
                self.active_others,
            )
            return new_count, self.stable_rs.replicas
        desired_new, desired_stable = self.desired_counts()
        return basic_canary_counts(
            self.ro.replicas,
            desired_new,
            desired_stable,
            self.ro.max_surge(),
            self.ro.max_unavailable(),
            self.new_rs,
            self.stable_rs,
            self.active_others,
        )

    # ------------------------------------------------------------------ scaleDownDelaySeconds (basic canary)

    def _holding_stable(self) -> bool:
        """With a scale-down delay, the stable ReplicaSet keeps its pods while the canary goes to full
        size (all steps done, or a full promotion): as with a traffic router, the ReplicaSet that is
        about to become the previous stable is not drained before the switch, so it can be kept for
        the delay afterwards. Its pods are outside maxSurge, as Argo's traffic-routed stable is."""
        if self.delay is None or self.aborted() or self.new_rs is None or self.stable_rs is None:
            return False
        if self.stable_rs.name == self.new_rs.name:
            return False
        step, _ = current_step(self.ro, self.old)
        return bool(self.old.get("promoteFull")) or step is None

    def _kept_for_scale_down_delay(self) -> dict[str, float]:
        """Argo's ``scaleDownDelayHelper`` (rollout/replicaset.go) for the old ReplicaSets, newest
        revision first: once the rollout is fully promoted, an old ReplicaSet with pods and no
        deadline gets one (now + delay); one with a deadline keeps its pods until it passes. At
        most ``scaleDownDelayRevisionLimit`` of them are kept; the rest (and an intermediate
        ReplicaSet of an unfinished update, which has no deadline) are scaled down at once.
        Returns name -> deadline of those to keep now."""
        if self.delay is None:
            return {}
        limit = self.ro.scale_down_delay_revision_limit()
        promoted = cs.rollout_completed(self.old)
        kept: dict[str, float] = {}
        annotated = 0
        for rs in sorted(self.others, key=lambda r: (r.revision, r.created, r.name), reverse=True):
            if rs.replicas <= 0:
                continue
            if not rs.annotations.get(SCALE_DOWN_DEADLINE):
                if promoted and (limit is None or annotated < limit):
                    annotated += 1
                    # the annotation has whole seconds: keep the deadline we will write
                    kept[rs.name] = parse_time(format_time(self.now + self.delay)) or self.now + self.delay
                continue
            annotated += 1
            if limit is not None and annotated > limit:
                continue  # "At ScaleDownDelayRevisionLimit and scaling down the rest"
            deadline = rs.scale_down_deadline()
            if deadline is not None and deadline > self.now:
                kept[rs.name] = deadline
        return kept

    def _keep_delayed(self) -> None:
        """Write the deadline on the old ReplicaSets that have none yet, and look again at the first deadline."""
        for rs in self.others:
            deadline = self.kept.get(rs.name)
            if deadline is None:
                continue
            if not rs.annotations.get(SCALE_DOWN_DEADLINE):
                self.plan.actions.append(
                    PatchReplicaSet(
                        rs.name,
                        {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: format_time(deadline)}}},
                        "scale-down delay",
                    )
                )
            self.plan.requeue(deadline - self.now)

    def _delaying_abort_scale_down(self) -> bool:
        return (
            self.aborted()
            and self.stable_rs is not None
            and self.new_rs is not None
            and self.stable_rs.name != self.new_rs.name
            and self.ro.abort_scale_down_delay() is not None
        )

    def _scale(self, rs: ReplicaSetView, replicas: int) -> bool:
        if rs.replicas == replicas:
            return False
        direction = "up" if replicas > rs.replicas else "down"
        patch: dict[str, Any] = {"spec": {"replicas": replicas}}
        if replicas == 0 and SCALE_DOWN_DEADLINE in rs.annotations and not self._delaying_abort_scale_down():
            patch["metadata"] = {"annotations": {SCALE_DOWN_DEADLINE: None}}
        self.plan.actions.append(PatchReplicaSet(rs.name, patch, f"scale {direction}"))
        self.event(
            cs.SCALING_REPLICASET_REASON,
            cs.SCALING_REPLICASET_MESSAGE.format(direction, rs.name, rs.revision, rs.replicas, replicas),
        )
        return True

    def _reconcile_replicasets(self) -> bool:
        """Argo's ``reconcileCanaryReplicaSets``: one scaling move per pass (stable, then new, then old).
        True when something was scaled. Nothing moves while the rollout is paused by the user or by an
        inconclusive analysis (Argo's ``haltProgress``)."""
        if self.ro.paused or self._pause_condition(ca.PAUSE_INCONCLUSIVE) is not None:
            return False
        new_rs, stable_rs = self.new_rs, self.stable_rs
        assert new_rs is not None
        self._keep_delayed()
        delaying = self._delaying_abort_scale_down()
        clear = [] if delaying else [new_rs]
        if stable_rs is not None and stable_rs.name != new_rs.name:
            clear.append(stable_rs)
        for rs in clear:
            if SCALE_DOWN_DEADLINE not in rs.annotations:
                continue
            self.plan.actions.append(
                PatchReplicaSet(rs.name, {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}}}, "clear deadline")
            )
        new_count, stable_count = self.counts()
        if delaying:
            stable_count = self.ro.replicas
        if stable_rs is not None and stable_rs.name != new_rs.name and self._scale(stable_rs, stable_count):
            return True
        if delaying:
            delay = self.ro.abort_scale_down_delay()
            assert delay is not None and stable_rs is not None
            deadline = new_rs.scale_down_deadline()
            if deadline is None:
                if stable_rs.available >= self.ro.replicas and self._traffic_off_canary():
                    self.plan.actions.append(
                        PatchReplicaSet(
                            new_rs.name,
                            {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: format_time(self.now + delay)}}},
                            "abort scale-down delay",
                        )
                    )
                    self.plan.requeue(delay)
                return False
            if deadline > self.now:
                self.plan.requeue(deadline - self.now)
                return False
            new_count = 0
        new_count = max(new_count, self._canary_carry())
        if self._scale(new_rs, new_count):
            return True
        return self._scale_down_others()

    def _scale_down_others(self) -> bool:
        """Argo's ``scaleDownOldReplicaSetsForCanary`` (basic canary): unhealthy replicas first, then
        the newest old ReplicaSets, never below minAvailable."""
        others = [rs for rs in self.others if rs.replicas > 0 and not self._routed_service_selects(rs)]
        if not others or not self._traffic_left_old():
            return False
        scaled = False
        remaining: list[ReplicaSetView] = []
        for rs in by_creation(others):
            if rs.replicas != rs.available:
                scaled |= self._scale(rs, rs.available)
                rs = ReplicaSetView(**{**rs.__dict__, "replicas": rs.available})
            remaining.append(rs)
        available = total_available(self.all_rss)
        min_available = self.ro.replicas - self.ro.max_unavailable()
        max_scale_down = available - min_available
        if max_scale_down <= 0:
            return scaled
        for rs in sorted(remaining, key=lambda r: r.revision, reverse=True):
            if max_scale_down <= 0:
                break
            if rs.replicas == 0 or rs.name in self.kept:
                continue
            target = rs.replicas - max_scale_down if rs.replicas > max_scale_down else 0
            if self._scale(rs, target):
                scaled = True
            max_scale_down -= rs.replicas - target
        return scaled

    def at_desired_counts(self) -> bool:
        """Argo's ``AtDesiredReplicaCountsForCanary`` (basic canary)."""
        new_count, stable_count = self.counts()
        new_rs = self.new_rs
        if new_rs is None or not self._progress_threshold_met(new_rs, new_count):
            return False
        stable = self.stable_rs
        if stable is None:
            return False
        if stable.name != new_rs.name and (stable.replicas != stable_count or stable.status_replicas != stable_count):
            return False
        return total_available(self.active_others) == 0

    def _progress_threshold_met(self, rs: ReplicaSetView, desired: int) -> bool:
        assert self.ro.canary is not None
        threshold = self.ro.canary.raw.get("replicaProgressThreshold")
        if isinstance(threshold, Mapping) and int(threshold.get("value", -1)) >= 0:
            value = int(threshold["value"])
            if threshold.get("type") == "Percent":
                return desired == 0 or rs.available * 100 / desired >= value - 1e-10
            return rs.available >= value
        return rs.replicas == desired and rs.available == desired

    # ------------------------------------------------------------------ traffic routing

    def _traffic_routing(self) -> None:
        """Ask every router for the writes that bring its objects to the split this pass may set.

        The weight moves towards the canary only once the canary ReplicaSet has the ready pods the
        step asks for, and back towards the stable only once the stable ReplicaSet has the pods for
        its share and the stable Service selects it; otherwise each router keeps what it routes now.
        Replica counts follow the weight the objects *route* (``_routed_counts``), so pods are never
        taken away from traffic. When any router reports a problem, no router writes anything."""
        ro = self.ro
        canary = ro.canary
        if canary is None or canary.traffic_routing is None:
            return
        routers, _ = build_routers(
            canary.traffic_routing, ro.name, ro.namespace, canary.stable_service, canary.canary_service
        )
        max_weight = max_traffic_weight(canary)
        desired_weight = self._traffic_desired_weight(max_weight)
        state = ct.TrafficState(desired_weight, max_weight)
        self.traffic = state
        live = self.obs.routing or {}
        owner = Owner(API_VERSION, KIND, ro.name, ro.uid)
        last = self._last_set_weight()
        wanted = self._desired_traffic(desired_weight, max_weight)
        probes = [router.reconcile(wanted, live, owner) for router in routers]
        # after the promotion the header/mirror routes go only once no router sends the canary anything
        self._routes_kept = not self._promoted() or any(p.actual_canary_weight != 0 for p in probes)
        for router, probe in zip(routers, probes, strict=True):
            current = probe.actual_canary_weight if probe.actual_canary_weight is not None else last
            weight = self._gate_weight(desired_weight, current, max_weight)
            result = router.reconcile(self._desired_traffic(weight, max_weight), live, owner)
            state.outcomes.append(
                ct.RouterOutcome(router.name, weight, result.actual_canary_weight, result.writes, result.problems)
            )
        problems = state.problems
        if problems:
            message = ct.problem_messages(problems)
            if message != self._old_routing_message():
                self.event(ct.TRAFFIC_ROUTING_ERROR_REASON, message, warning=True)
            for outcome in state.outcomes:
                outcome.writes = ()  # nothing moves: each router keeps what it routes
                outcome.set_weight = outcome.actual_weight if outcome.actual_weight is not None else last
            self.plan.requeue(10.0)
            return
        moved: list[tuple[int, int]] = []
        for outcome in state.outcomes:
            for write in outcome.writes:
                self.plan.actions.append(WriteRoutingObject(write))
            if outcome.writes and outcome.actual_weight != outcome.set_weight:
                moved.append((outcome.actual_weight if outcome.actual_weight is not None else last, outcome.set_weight))
        if moved:
            self.event(ct.TRAFFIC_WEIGHT_UPDATED_REASON, ct.TRAFFIC_WEIGHT_UPDATED_MESSAGE.format(*moved[0]))
        if state.writes:
            self.plan.requeue(0)  # read the objects back, then move on

    def _desired_traffic(self, weight: int, max_weight: int) -> DesiredTraffic:
        canary = self.ro.canary
        assert canary is not None and self.new_rs is not None
        headers, mirrors = self._traffic_routes()
        stable_hash = self.stable_rs.pod_hash if self.stable_rs is not None else ""
        return DesiredTraffic(
            canary_weight=weight,
            max_weight=max_weight,
            stable_service=canary.stable_service,
            canary_service=canary.canary_service,
            stable_hash=stable_hash,
            canary_hash=self.new_rs.pod_hash,
            canary_available=self.new_rs.replicas > 0 and self.new_rs.available >= self.new_rs.replicas,
            header_routes=headers,
            mirror_routes=mirrors,
            managed_routes=tuple(
                str(r.get("name")) for r in (canary.traffic_routing or {}).get("managedRoutes") or []
            ),
        )

    def _promoted(self) -> bool:
        return self.new_rs is None or self.stable_rs is None or self.stable_rs.name == self.new_rs.name

    def _traffic_desired_weight(self, max_weight: int) -> int:
        """Argo's ``GetCurrentSetWeight`` in units of maxTrafficWeight: 0 once promoted or aborted, all of
        it after the last step or on a full promotion."""
        if self._promoted() or self.aborted():
            return 0
        if self.old.get("promoteFull"):
            return max_weight
        step, index = current_step(self.ro, self.old)
        if step is None or index is None:
            return max_weight
        assert self.ro.canary is not None
        for i in range(index, -1, -1):
            weight = self.ro.canary.steps[i].set_weight
            if weight is not None:
                return min(weight, max_weight)
        return 0

    def _traffic_routes(self) -> tuple[tuple[HeaderRoute, ...], tuple[MirrorRoute, ...]]:
        """Header and mirror routes in force: none after an abort; after the promotion they stay until
        every router sends no weight to the canary any more (weight first, then the routes)."""
        canary = self.ro.canary
        assert canary is not None
        if self.aborted() or not canary.steps or not self._routes_kept:
            return (), ()
        _, index = current_step(self.ro, self.old)
        if index is None or index >= len(canary.steps):
            index = len(canary.steps) - 1
        return ct.active_routes(canary, index)

    def _last_set_weight(self) -> int:
        """The canary weight the last status recorded (for routers whose objects say nothing)."""
        weights = (self.old.get("canary") or {}).get("weights") or {}
        value = (weights.get("canary") or {}).get("weight")
        return int(value) if isinstance(value, int) else 0

    def _old_routing_message(self) -> str:
        routers = (self.old.get("canary") or {}).get(ct.ROUTERS_STATUS) or []
        return "; ".join(str(r.get("message")) for r in routers if isinstance(r, Mapping) and r.get("message"))

    def _canary_desired_count(self, weight: int) -> int:
        """The canary pods a step asks for: setCanaryScale if one is in force, else the weight's share."""
        ro = self.ro
        assert ro.canary is not None and self.traffic is not None
        replicas, scale_weight = self._canary_scale()
        if replicas is not None:
            count = min(replicas, ro.replicas)
        elif scale_weight is not None:
            count = ct.weight_to_replicas(scale_weight, ro.replicas, 100)
        else:
            count = ct.weight_to_replicas(weight, ro.replicas, self.traffic.max_weight)
        minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas)
        return max(count, minimum) if count else 0

    def _gate_weight(self, target: int, current: int, max_weight: int) -> int:
        """``target`` when the side that gains traffic has its ready pods, else ``current`` (hold)."""
        if target == current:
            return target
        if target > current:
            new_rs = self.new_rs
            assert new_rs is not None
            need = max(1, self._canary_desired_count(target))
            step, _ = current_step(self.ro, self.old)
            if self.old.get("promoteFull") or step is None:
                need = self.ro.replicas  # all of it goes to the canary: all of its pods first
            return target if new_rs.available >= need else current
        stable = self.stable_rs
        if stable is None:
            return target
        need = ct.weight_to_replicas(max_weight - target, self.ro.replicas, max_weight)
        if stable.available >= need and self._stable_service_selects(stable.pod_hash):
            return target
        return current

    def _stable_service_selects(self, pod_hash: str) -> bool:
        """Does the stable Service select ``pod_hash`` (now, or after this pass's Service patches)? True
        without a stable Service (Istio subset-level routing: the router moves the subsets itself)."""
        canary = self.ro.canary
        assert canary is not None
        if not canary.stable_service:
            return True
        return self._service_selector_hash(canary.stable_service) == pod_hash

    def _service_selector_hash(self, name: str) -> str | None:
        """The pod hash Service ``name`` selects after this pass's Service patches (None: none)."""
        selected = ((self.obs.services.get(name) or {}).get("spec") or {}).get("selector") or {}
        current = selected.get(HASH_LABEL)
        for action in self.plan.actions:
            if isinstance(action, PatchService) and action.name == name:
                current = ((action.patch.get("spec") or {}).get("selector") or {}).get(HASH_LABEL, current)
        return str(current) if current is not None else None

    def _routed_counts(self) -> tuple[int, int]:
        """(new, stable) replica counts with a traffic router: Argo's
        ``CalculateReplicaCountsForTrafficRoutedCanary``, plus: the canary keeps the pods for the most
        traffic a router still sends it, and with dynamicStableScale the stable keeps the pods for the
        most traffic it has or will have, so neither shrinks before the weight has left it."""
        ro = self.ro
        state = self.traffic
        assert state is not None and ro.canary is not None
        if self._promoted():
            return ro.replicas, 0
        step, _ = current_step(ro, self.old)
        if self.aborted():
            desired_new = 0
        elif self.old.get("promoteFull") or step is None:
            desired_new = ro.replicas
        else:
            desired_new = self._canary_desired_count(state.desired_weight)
        new = max(desired_new, self._canary_carry())
        stable = ro.replicas
        if ro.canary.dynamic_stable_scale:
            least = min(state.desired_weight, state.canary_least())
            stable = ct.weight_to_replicas(state.max_weight - least, ro.replicas, state.max_weight)
            minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas)
            stable = max(stable, minimum) if stable else 0
        return new, stable

    def _canary_carry(self) -> int:
        """Pods the canary needs for the traffic routers may still send it (0 without a router)."""
        state = self.traffic
        if state is None:
            return 0
        weight = state.canary_carry(self._last_set_weight())
        return ct.weight_to_replicas(weight, self.ro.replicas, state.max_weight)

    def _routed_service_selects(self, rs: ReplicaSetView) -> bool:
        """With a router: does the canary or stable Service (after this pass's patches) still select ``rs``?
        A router may send traffic there, so its pods stay (always false without a router)."""
        canary = self.ro.canary
        if self.traffic is None or canary is None:
            return False
        return any(
            self._service_selector_hash(name) == rs.pod_hash for name in (canary.canary_service, canary.stable_service)
        )

    def _traffic_off_canary(self) -> bool:
        """No router sends the canary anything (always true without a router)."""
        state = self.traffic
        return state is None or state.canary_carry(self._last_set_weight()) == 0

    def _traffic_left_old(self) -> bool:
        """Old ReplicaSets may go only once the routers route as planned with nothing left to write
        and the stable Service selects the stable ReplicaSet (always true without a router)."""
        state = self.traffic
        if state is None:
            return True
        if state.problems or state.writes or not state.verified():
            return False
        return self.stable_rs is None or self._stable_service_selects(self.stable_rs.pod_hash)

    def _traffic_step_reached(self) -> bool:
        """A setWeight / setHeaderRoute / setMirrorRoute step is done once every router routes the step's
        weight with nothing left to write (always true without a router)."""
        state = self.traffic
        return state is None or state.reached(state.desired_weight)

    def _routed_weights(self, new: dict[str, Any]) -> None:
        """``status.canary.weights`` from the routers: the weight set, and whether the objects route it."""
        canary = self.ro.canary
        state = self.traffic
        assert canary is not None
        if state is None:
            return  # this pass did not reach the routers: keep what the last one recorded
        section = new.setdefault("canary", {})
        new_hash = self.new_rs.pod_hash if self.new_rs is not None else ""
        stable_hash = self.stable_rs.pod_hash if self.stable_rs is not None else new.get("stableRS") or ""
        weight = state.set_weight()
        section["weights"] = {
            "canary": {"weight": weight, "podTemplateHash": new_hash, "serviceName": canary.canary_service},
            "stable": {
                "weight": state.max_weight - weight,
                "podTemplateHash": stable_hash,
                "serviceName": canary.stable_service,
            },
            "verified": state.verified(),
        }
        section[ct.ROUTERS_STATUS] = [o.status() for o in state.outcomes]

    # ------------------------------------------------------------------ pause steps

    def _pause_condition(self, reason: str) -> dict[str, Any] | None:
        for cond in self.old.get("pauseConditions") or []:
            if cond.get("reason") == reason:
                return dict(cond)
        return None

    def _reconcile_pause(self) -> None:
        ro = self.ro
        if ro.paused or self.old.get("promoteFull"):
            return
        step, _ = current_step(ro, self.old)
        if step is None or not step.pause:
            return
        cond = self._pause_condition(cs.PAUSE_CANARY_STEP)
        if cond is None:
            if not self.old.get("controllerPause"):
                self.add_pause.append(cs.PAUSE_CANARY_STEP)
                if step.pause_seconds is not None:
                    self.plan.requeue(step.pause_seconds)
            return
        if step.pause_seconds is not None:
            started = parse_time(cond.get("startTime")) or self.now
            self.plan.requeue(started + step.pause_seconds - self.now)

    def _completed_pause_step(self, step: Step) -> bool:
        cond = self._pause_condition(cs.PAUSE_CANARY_STEP)
        if self.old.get("controllerPause") and cond is None:
            return True
        if step.pause_seconds is not None and cond is not None:
            started = parse_time(cond.get("startTime")) or self.now
            return self.now >= started + step.pause_seconds
        return False

    def _completed_current_step(self) -> bool:
        if self.ro.paused:
            return False
        step, _ = current_step(self.ro, self.old)
        if step is None:
            return False
        if step.pause:
            return self._completed_pause_step(step)
        if step.canary_scale is not None or step.set_weight is not None:
            return self.at_desired_counts() and self._traffic_step_reached()
        if "setHeaderRoute" in step.actions or "setMirrorRoute" in step.actions:
            return self._traffic_step_reached()
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

    # ------------------------------------------------------------------ workloadRef

    def _progressive_workload_scale_down(self) -> None:
        ref = self.ro.workload_ref
        deploy = self.obs.workload
        if ref is None or deploy is None or self.new_rs is None or self.revision() != 1:
            return
        current = int((deploy.get("spec") or {}).get("replicas", 1) or 0)
        target: int | None = None
        if ref.scale_down == "progressively":
            if self.old.get("phase") == cs.HEALTHY_PHASE:
                target = 0
            elif int(self.old.get("readyReplicas") or 0) > 0:
                target = max(self.ro.replicas - int(self.old.get("readyReplicas") or 0), 0)
        if target is not None and target != current:
            self.plan.actions.append(ScaleWorkload(ref.kind, ref.name, target))

    def _workload_scale_down_on_success(self) -> None:
        ref = self.ro.workload_ref
        deploy = self.obs.workload
        if ref is None or deploy is None or ref.scale_down != "onsuccess" or self.revision() != 1:
            return
        if self.old.get("phase") != cs.HEALTHY_PHASE:
            return
        if int((deploy.get("spec") or {}).get("replicas", 1) or 0) != 0:
            self.plan.actions.append(ScaleWorkload(ref.kind, ref.name, 0))

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
        return self._progress_threshold_met(rs, self.ro.replicas)

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
            self._workload_scale_down_on_success()
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

    def _indefinite_step(self) -> bool:
        step, _ = current_step(self.ro, self.old)
        if step is not None and (step.pause or "analysis" in step.actions or "experiment" in step.actions):
            return True
        paused = cs.get_condition(self.old, cs.PAUSED)
        return paused is not None and paused.get("status") == "True"

    def _waiting_for_scale_down(self) -> bool:
        return any(SCALE_DOWN_DEADLINE in rs.annotations for rs in self.others)

    def _timed_out(self, status: Mapping[str, Any]) -> bool:
        cond = cs.get_condition(status, cs.PROGRESSING)
        if cond is None or cond.get("reason") in (cs.ROLLOUT_ABORTED_REASON, cs.ROLLOUT_PAUSED_REASON):
            return False
        if cond.get("reason") == cs.TIMED_OUT_REASON:
            return True
        since = parse_time(cond.get("lastUpdateTime"))
        return since is not None and since + self.ro.progress_deadline_seconds < self.now

    def _timeout_message(self) -> str:
        if self.new_rs is not None:
            return cs.REPLICASET_TIMED_OUT_MESSAGE.format(self.new_rs.name)
        return cs.ROLLOUT_TIMED_OUT_MESSAGE.format(self.ro.name)

    def _paused_conditions(self, new: dict[str, Any]) -> None:
        """Argo's ``checkPausedConditions`` (folded into the same status write)."""
        if str(self.old.get("observedGeneration", "")) != str(self.ro.generation):
            return
        prog = cs.get_condition(self.old, cs.PROGRESSING)
        prog_paused = prog is not None and prog.get("reason") == cs.ROLLOUT_PAUSED_REASON
        is_paused = bool(self.old.get("pauseConditions")) or self.ro.paused
        abort_cond = prog is not None and prog.get("reason") == cs.ROLLOUT_ABORTED_REASON
        if is_paused != prog_paused and not abort_cond and not cs.rollout_completed(self.old):
            if is_paused:
                cs.set_condition(
                    new,
                    cs.new_condition(
                        cs.PROGRESSING, "Unknown", cs.ROLLOUT_PAUSED_REASON, cs.ROLLOUT_PAUSED_MESSAGE, self.stamp
                    ),
                )
            else:
                cs.set_condition(
                    new,
                    cs.new_condition(
                        cs.PROGRESSING, "Unknown", cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE, self.stamp
                    ),
                )
        if not self.old.get("abort") and abort_cond:
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PROGRESSING, "Unknown", cs.ROLLOUT_RETRY_REASON, cs.ROLLOUT_RETRY_MESSAGE, self.stamp
                ),
            )
        paused = cs.get_condition(self.old, cs.PAUSED)
        paused_true = paused is not None and paused.get("status") == "True"
        if is_paused != paused_true and not abort_cond:
            if paused_true and not is_paused and not self.old.get("abort"):
                self.event(cs.ROLLOUT_RESUMED_REASON, cs.ROLLOUT_RESUMED_MESSAGE)
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.PAUSED,
                    "True" if is_paused else "False",
                    cs.ROLLOUT_PAUSED_REASON,
                    cs.ROLLOUT_PAUSED_MESSAGE,
                    self.stamp,
                ),
            )

    def _pause_status(self, new: dict[str, Any]) -> None:
        """Argo's ``CalculatePauseStatus``."""
        new.pop("pauseConditions", None)
        new.pop("controllerPause", None)
        if self.add_abort or (not self.remove_abort and self.old.get("abort")):
            new["abort"] = True
            new["abortedAt"] = self.old.get("abortedAt") or self.stamp
            return
        new["abort"] = False
        new.pop("abortedAt", None)
        if self.clear_pause:
            return
        controller_pause = bool(self.old.get("controllerPause"))
        conditions = [
            dict(c) for c in self.old.get("pauseConditions") or [] if c.get("reason") not in self.remove_pause
        ]
        existing = {c.get("reason") for c in self.old.get("pauseConditions") or []}
        for reason in self.add_pause:
            if reason not in existing:
                conditions.append({"reason": reason, "startTime": self.stamp})
                controller_pause = True
        if not conditions:
            return
        new["controllerPause"] = controller_pause
        new["pauseConditions"] = conditions

    def _progress_deadline_abort(self, new: dict[str, Any]) -> None:
        ro = self.ro
        if not ro.progress_deadline_abort or self.aborted() or cs.rollout_completed(new):
            return
        if cs.rollout_progressing(ro, self.old, new):
            return
        if self._indefinite_step() or self._waiting_for_scale_down():
            return
        if not self._timed_out(self.old):
            return
        self.add_abort = True
        self.abort_message = self._timeout_message()
        self.event(cs.ROLLOUT_ABORTED_REASON, self.abort_message, warning=True)

    def _rollout_conditions(self, new: dict[str, Any]) -> None:
        """Argo's ``calculateRolloutConditions``."""
        ro = self.ro
        is_paused = bool(new.get("pauseConditions")) or ro.paused
        aborted = self.aborted()
        became_unhealthy = False
        healthy = cs.rollout_healthy(ro, self.old, new)
        if not is_paused and healthy:
            cs.set_condition(
                new,
                cs.new_condition(cs.HEALTHY, "True", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_HEALTHY_MESSAGE, self.stamp),
            )
        elif cs.get_condition(self.old, cs.HEALTHY) is not None:
            became_unhealthy = cs.set_condition(
                new,
                cs.new_condition(
                    cs.HEALTHY, "False", cs.ROLLOUT_HEALTHY_REASON, cs.ROLLOUT_NOT_HEALTHY_MESSAGE, self.stamp
                ),
            )
        if aborted:
            message = cs.ROLLOUT_ABORTED_MESSAGE.format(self.revision())
            if self.abort_message:
                message = f"{message}: {self.abort_message}"
            if cs.set_condition(
                new, cs.new_condition(cs.PROGRESSING, "False", cs.ROLLOUT_ABORTED_REASON, message, self.stamp)
            ):
                self.event(cs.ROLLOUT_ABORTED_REASON, message, warning=True)
        else:
            rs_name = self.new_rs.name if self.new_rs is not None else ""
            if healthy:
                cs.set_condition(
                    new,
                    cs.new_condition(
                        cs.PROGRESSING,
                        "True",
                        cs.NEW_RS_AVAILABLE_REASON,
                        cs.REPLICASET_COMPLETED_MESSAGE.format(rs_name),
                        self.stamp,
                    ),
                )
            elif cs.rollout_progressing(ro, self.old, new) or became_unhealthy:
                message = (
                    cs.REPLICASET_PROGRESSING_MESSAGE.format(rs_name)
                    if rs_name
                    else cs.ROLLOUT_PROGRESSING_MESSAGE.format(ro.name)
                )
                reason = cs.REPLICASET_UPDATED_REASON
                if new.get("stableRS") == new.get("currentPodHash") and became_unhealthy:
                    reason, message = cs.REPLICASET_NOT_AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE
                cs.replace_condition(new, cs.new_condition(cs.PROGRESSING, "True", reason, message, self.stamp))
            elif not self._indefinite_step() and not self._waiting_for_scale_down() and self._timed_out(new):
                cs.set_condition(
                    new,
                    cs.new_condition(cs.PROGRESSING, "False", cs.TIMED_OUT_REASON, self._timeout_message(), self.stamp),
                )
        if total_available(self.all_rss) >= ro.replicas:
            cs.set_condition(
                new, cs.new_condition(cs.AVAILABLE, "True", cs.AVAILABLE_REASON, cs.AVAILABLE_MESSAGE, self.stamp)
            )
        else:
            cs.set_condition(
                new, cs.new_condition(cs.AVAILABLE, "False", cs.AVAILABLE_REASON, cs.NOT_AVAILABLE_MESSAGE, self.stamp)
            )
        if cs.rollout_completed(new):
            cs.set_condition(
                new,
                cs.new_condition(
                    cs.COMPLETED, "True", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, self.stamp
                ),
            )
        elif cs.set_condition(
            new,
            cs.new_condition(
                cs.COMPLETED, "False", cs.ROLLOUT_COMPLETED_REASON, cs.ROLLOUT_COMPLETED_REASON, self.stamp
            ),
        ):
            self.event(
                cs.ROLLOUT_NOT_COMPLETED_REASON,
                cs.ROLLOUT_NOT_COMPLETED_MESSAGE.format(self.revision(), new.get("currentPodHash", "")),
            )

    def _weights(self, new: dict[str, Any]) -> None:
        """``status.canary.weights``: without a traffic router, each side's share of the available pods."""
        canary = self.ro.canary
        assert canary is not None
        if self.ro.uses_traffic_routing():
            self._routed_weights(new)
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
        self._paused_conditions(new)
        new["observedGeneration"] = str(ro.generation)
        self._progress_deadline_abort(new)
        self._pause_status(new)
        self._rollout_conditions(new)
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
        self._requeue_for_deadline(new)
        self.plan.status = new
        return self.plan

    def _requeue_for_deadline(self, new: Mapping[str, Any]) -> None:
        """Argo's ``requeueStuckRollout``: look again when the progress deadline would pass."""
        cond = cs.get_condition(new, cs.PROGRESSING)
        if cond is None or cond.get("status") != "True":
            return
        if self.ro.paused or new.get("pauseConditions") or new.get("abort") or self._indefinite_step():
            return
        if cs.rollout_healthy(self.ro, self.old, new):
            return
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        self.plan.requeue(since + self.ro.progress_deadline_seconds - self.now + 1)


def plan(observed: Observed) -> Plan:
    """The next moves for one Rollout (canary strategy)."""
    return _Planner(observed).run()


def referenced_services(rollout: Mapping[str, Any]) -> list[str]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    return [str(canary[k]) for k in ("canaryService", "stableService") if canary.get(k)]
