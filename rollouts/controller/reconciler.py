"""One Rollout: observe (from the caches) -> plan (pure) -> act (API writes), idempotently.

The plan is one pass of :func:`rollouts.strategy.passes.plan_pass`: the planner's status-only moves
made in memory up to the first plan that needs the cluster. Writes go out in the order the planner
lists them, then the status (one write for all the pass's moves), then the Events. The planner
orders them so that stopping between any two is safe: Services move to a ReplicaSet only once it
has available pods, and back to the stable one before anything is scaled down; each pass makes at
most one scaling move; all progress lives in ``Rollout.status``, written last with the Rollout's
resourceVersion, so a stale controller can never overwrite a user's promote or abort.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from rollouts.controller.client import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    DEPLOYMENTS,
    EVENTS,
    EXPERIMENTS,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    ApiError,
    Cache,
    Client,
    controller_uid,
    event_body,
)
from rollouts.controller.routingwatch import ref_kind
from rollouts.controller.stabletemplate import WholeStableReplicaSets, with_whole
from rollouts.model.conditions import (
    DEGRADED_PHASE,
    FAILED_RS_CREATE_MESSAGE,
    FAILED_RS_CREATE_REASON,
    PROGRESSING,
)
from rollouts.model.timestamps import format_time
from rollouts.strategy import bluegreen, canary
from rollouts.strategy.passes import plan_pass
from rollouts.strategy.plan import (
    Action,
    CreateAnalysisRun,
    CreateExperiment,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeletePod,
    DeleteReplicaSet,
    EventSpec,
    Observed,
    PatchAnalysisRun,
    PatchExperiment,
    PatchPod,
    PatchReplicaSet,
    PatchRolloutMetadata,
    PatchService,
    Plan,
    ScaleWorkload,
    WriteRoutingObject,
    merge_patch,
)
from rollouts.strategy.traffic import TRAFFIC_ROUTING_ERROR_REASON
from rollouts.traffic.registry import build_routers, followed_refs
from rollouts.traffic.router import ObjectRef, Router

log = logging.getLogger("pyrollouts.reconciler")


def uses_analysis(rollout: dict[str, Any]) -> bool:
    """Does the Rollout ask for analysis (a canary step, in the background, or blue/green promotion)?"""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    canary = strategy.get("canary") or {}
    steps = canary.get("steps") or []
    blue_green = strategy.get("blueGreen") or {}
    if blue_green.get("prePromotionAnalysis") or blue_green.get("postPromotionAnalysis"):
        return True
    return bool(canary.get("analysis")) or any(isinstance(s, dict) and s.get("analysis") for s in steps)


COMPONENT = "rollouts-controller"

# A routing object whose kind is not watched (rollouts.controller.routingwatch: its CRD is absent, its
# watch not listed yet, or not allowed) is read with a GET per reconcile; its Rollout is looked at again
# at least this often, so a change someone else makes to it is undone. Watched ones requeue on events,
# except the objects a router follows from another (App Mesh's VirtualRouter): the cache's index knows
# only what the Rollout itself names, so those Rollouts keep this resync (read from the cache: no request).
ROUTING_RESYNC_SECONDS = 30.0
ROUTING_WRITE_RETRY_SECONDS = 15.0
# A write the API server forbids (403): the controller's role lacks a rule. Said once per pass as a
# Warning Event naming the verb and resource (the server's message does), retried this often.
MISSING_PERMISSION_REASON = "MissingPermission"
FORBIDDEN_RETRY_SECONDS = 30.0


def rollout_routers(rollout: Mapping[str, Any]) -> list[Router]:
    """The Rollout's traffic routers (none without trafficRouting)."""
    meta = rollout.get("metadata") or {}
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    routing = canary.get("trafficRouting")
    if not isinstance(routing, Mapping):
        return []
    routers, _ = build_routers(
        routing,
        str(meta.get("name", "")),
        str(meta.get("namespace", "")),
        str(canary.get("stableService") or ""),
        str(canary.get("canaryService") or ""),
    )
    return routers


def routing_refs(rollout: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects the Rollout's traffic routers read first (none without trafficRouting)."""
    return [ref for router in rollout_routers(rollout) for ref in router.objects()]


def rollout_references(rollout: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What a Rollout names in its namespace, as (resource, name) (`Kind.resource`: a routing kind's plural
    alone is ambiguous): the Services of either strategy, its
    workloadRef Deployment and its routers' objects. The cache indexes Rollouts by these. Runs on
    every cached version of every Rollout, the malformed ones too: it never raises on a bad spec."""
    spec = _mapping(rollout.get("spec"))
    strategy = _mapping(spec.get("strategy"))
    canary, blue_green = _mapping(strategy.get("canary")), _mapping(strategy.get("blueGreen"))
    services = [canary.get("canaryService"), canary.get("stableService")]
    services += [blue_green.get("activeService"), blue_green.get("previewService")]
    out = [(SERVICES.resource, name) for name in services if isinstance(name, str) and name]
    workload = _mapping(spec.get("workloadRef")).get("name")
    if isinstance(workload, str) and workload:
        out.append((DEPLOYMENTS.resource, workload))
    if canary:
        out += [(ref_kind(ref).resource, ref.name) for ref in routing_refs(rollout)]
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# Writes whose whole effect is in the API server's answer: the ReplicaSet created (it has no pods yet,
# nothing to wait for) and the Rollout's annotations. A pass plans on after them from the answers,
# rather than writing its status and starting again; this many rounds at most.
ANSWERED_IN_FULL = (CreateReplicaSet, PatchRolloutMetadata)
MAX_ANSWERED_ROUNDS = 3


def answered_in_full(plan: Plan) -> bool:
    """Are all the plan's writes ones whose effect the API server's answers show in full, and does the
    plan want the next move planned at once?"""
    return (
        bool(plan.actions)
        and plan.requeue_after == 0
        and all(isinstance(action, ANSWERED_IN_FULL) for action in plan.actions)
    )


@dataclass
class Written:
    """How many writes a pass has made so far."""

    count: int = 0


@dataclass
class Outcome:
    """What one reconcile did: when to look again, and how many writes it made."""

    requeue_after: float | None
    writes: int = 0


#: Told of every Event recorded on a Rollout (rollout, reason, message): the notifier; it must not block.
EventHook = Callable[[Mapping[str, Any], str, str], None]


class Reconciler:
    def __init__(
        self,
        client: Client,
        cache: Cache,
        clock: Callable[[], float] = time.time,
        notify: EventHook | None = None,
        routing_cached: Callable[[ObjectRef], bool] = lambda _: False,
    ) -> None:
        self.client = client
        self.cache = cache
        self.clock = clock
        # Is this routing object read from the cache (its kind watched and listed) rather than with a GET?
        self.routing_cached = routing_cached
        # Told (namespace, name, type, reason) of each Event recorded: the controller counts them.
        self.on_event: Callable[[str, str, str, str], None] = lambda *_: None
        self.notify = notify
        self.stable_replicasets = WholeStableReplicaSets()  # for experiments' `specRef: stable`

    # ------------------------------------------------------------------ observe

    def observe(self, rollout: dict[str, Any]) -> Observed:
        meta = rollout.get("metadata") or {}
        ns, uid = str(meta.get("namespace", "")), str(meta.get("uid", ""))
        rss = self.cache.owned_by(REPLICASETS, uid)
        services: dict[str, dict[str, Any]] = {}
        for name in canary.referenced_services(rollout) + bluegreen.referenced_services(rollout):
            svc = self.cache.get(SERVICES, ns, name)
            if svc is not None:
                services[name] = svc
        ref = (rollout.get("spec") or {}).get("workloadRef") or {}
        workload = self.cache.get(DEPLOYMENTS, ns, str(ref.get("name"))) if ref.get("name") else None
        pods = None
        if (rollout.get("spec") or {}).get("restartAt") or bluegreen.uses_pod_metadata(rollout):
            pods = [p for rs in rss for p in self.cache.owned_by(PODS, str(rs["metadata"]["uid"]))]
        runs: list[dict[str, Any]] = []
        run_names: frozenset[str] = frozenset()
        templates: dict[str, dict[str, Any]] = {}
        cluster_templates: dict[str, dict[str, Any]] = {}
        status = rollout.get("status") or {}
        if uses_analysis(rollout) or status.get("canary") or status.get("blueGreen"):
            runs = self.cache.owned_by(ANALYSISRUNS, uid)
            run_names = frozenset(str(r["metadata"].get("name")) for r in self.cache.all(ANALYSISRUNS, ns))
            templates = {str(t["metadata"].get("name")): t for t in self.cache.all(ANALYSISTEMPLATES, ns)}
            cluster_templates = {str(t["metadata"].get("name")): t for t in self.cache.all(CLUSTERANALYSISTEMPLATES)}
        else:
            runs = self.cache.owned_by(ANALYSISRUNS, uid)  # leftovers of analysis removed from the spec
            run_names = frozenset(str(r["metadata"].get("name")) for r in runs)
        return Observed(
            rollout=rollout,
            replicasets=rss,
            services=services,
            now=self.clock(),
            workload=workload,
            pods=pods,
            analysis_runs=runs,
            analysis_run_names=run_names,
            analysis_templates=templates,
            cluster_analysis_templates=cluster_templates,
            experiments=self.cache.owned_by(EXPERIMENTS, uid),
        )

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        rollout = self.cache.get(ROLLOUTS, namespace, name)
        if rollout is None or (rollout.get("metadata") or {}).get("deletionTimestamp"):
            return Outcome(None)
        refs = routing_refs(rollout)
        routing = await self.read_routing(refs) if refs else None
        followed: list[ObjectRef] = []
        if routing is not None:
            followed = followed_refs(rollout_routers(rollout), routing)  # named by the objects just read
            if followed:
                routing.update(await self.read_routing(followed))

        whole_stable = await self.stable_replicasets.get(self.client, self.cache, rollout)

        def replan(current: dict[str, Any]) -> Plan:
            observed = self.observe(current)
            replicasets = with_whole(observed.replicasets, whole_stable)  # an experiment's specRef: stable
            return plan_pass(dataclasses.replace(observed, routing=routing, replicasets=replicasets))

        outcome = await self.act(rollout, replan(rollout), replan)
        polled = followed or any(not self.routing_cached(ref) for ref in refs)
        if polled and (outcome.requeue_after is None or outcome.requeue_after > ROUTING_RESYNC_SECONDS):
            outcome.requeue_after = ROUTING_RESYNC_SECONDS
        return outcome

    async def read_routing(self, refs: list[ObjectRef]) -> dict[ObjectRef, dict[str, Any] | None]:
        """Every routing object, from the cache when its kind is watched, else with a GET (absent ones, or
        ones whose kind is not served, as None)."""

        async def one(ref: ObjectRef) -> dict[str, Any] | None:
            if self.routing_cached(ref):
                return self.cache.get(ref_kind(ref), ref.namespace, ref.name)
            try:
                return await self.client.get(ref_kind(ref), ref.namespace, ref.name)
            except ApiError as exc:
                if exc.not_found:
                    return None
                raise

        found = await asyncio.gather(*(one(ref) for ref in refs))
        return dict(zip(refs, found, strict=True))

    async def act(
        self, rollout: dict[str, Any], plan: Plan, replan: Callable[[dict[str, Any]], Plan] | None = None
    ) -> Outcome:
        """Carry out ``plan``: its writes, then one status write, then its Events. When the plan's writes
        are all answered in full by the API server (:func:`answered_in_full`), their Events are recorded
        and ``replan`` plans on from the answers and the status the plan would have written; the pass
        carries out that plan too, and its status write carries the earlier plan's."""
        current, written, rounds = rollout, Written(), 1
        while True:
            current, failed = await self._write_objects(rollout, current, plan, written)
            if failed is not None:
                return failed
            if replan is None or rounds >= MAX_ANSWERED_ROUNDS or not answered_in_full(plan) or plan.status is None:
                break  # the last plan's writes are made: its status may be written
            # recorded now, with the writes they tell of, not after writes a crash may never make
            await self._record(current, plan.events, written)
            plan, rounds = replan({**current, "status": plan.status}), rounds + 1
        ns, name = rollout["metadata"].get("namespace", ""), rollout["metadata"]["name"]
        if plan.status is not None:
            patch = merge_patch(rollout.get("status") or {}, plan.status)
            if patch:
                body = {"metadata": {"resourceVersion": current["metadata"].get("resourceVersion")}, "status": patch}
                try:
                    written.count += 1
                    updated = await self.client.patch(ROLLOUTS, ns, name, body, subresource="status")
                    self.cache.put(ROLLOUTS, updated)
                    current = updated
                except ApiError as exc:
                    if exc.not_found:
                        return Outcome(None, written.count)
                    if exc.status == 409:
                        await self._refresh(ROLLOUTS, ns, name)
                        return Outcome(0.0, written.count)
                    if exc.status == 403:
                        return await self._forbidden(current, exc, written.count)
                    raise
        await self._record(current, plan.events, written)
        return Outcome(plan.requeue_after, written.count)

    async def _write_objects(
        self, rollout: dict[str, Any], current: dict[str, Any], plan: Plan, written: Written
    ) -> tuple[dict[str, Any], Outcome | None]:
        """The plan's writes in its order; returns the Rollout as it now is, and the pass's outcome when
        a write was refused in a way that ends it."""
        routing_refused = False
        for action in plan.actions:
            if routing_refused and isinstance(action, WriteRoutingObject):
                continue
            try:
                written.count += 1
                current = await self._do(current, action)
            except ApiError as exc:
                if isinstance(action, WriteRoutingObject) and exc.status != 409:
                    # The planner sized the ReplicaSets by what the routing objects route now, not by
                    # what it asked for, so the rest of the plan is safe without the refused write.
                    routing_refused = True
                    written.count += 1
                    await self._routing_refused(rollout, action, exc)
                    plan.requeue(ROUTING_WRITE_RETRY_SECONDS)
                    continue
                return current, await self._write_failed(rollout, action, exc, written.count)
        return current, None

    async def _record(self, rollout: dict[str, Any], events: list[EventSpec], written: Written) -> None:
        if events:
            written.count += len(events)
            await asyncio.gather(*(self._event(rollout, e) for e in events))

    async def _write_experiment(self, ns: str, action: CreateExperiment | PatchExperiment) -> None:
        """An experiment step's Experiment: created, or terminated (one that is gone needs no terminating)."""
        if isinstance(action, CreateExperiment):
            self.cache.put(EXPERIMENTS, await self.client.create(EXPERIMENTS, ns, action.manifest))
            return
        try:
            self.cache.put(EXPERIMENTS, await self.client.patch(EXPERIMENTS, ns, action.name, action.patch))
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _do(self, rollout: dict[str, Any], action: Action) -> dict[str, Any]:
        """Carry out one action; returns the Rollout as it now is (changed only by PatchRolloutMetadata).
        The match is exhaustive: mypy flags an action type added to ``Action`` and not handled here."""
        meta = rollout["metadata"]
        ns = meta.get("namespace", "")
        match action:
            case PatchService():
                self.cache.put(SERVICES, await self.client.patch(SERVICES, ns, action.name, action.patch))
            case WriteRoutingObject():
                await self._write_routing(action)
            case CreateReplicaSet():
                self.cache.put(REPLICASETS, await self.client.create(REPLICASETS, ns, action.manifest))
            case PatchReplicaSet():
                self.cache.put(REPLICASETS, await self.client.patch(REPLICASETS, ns, action.name, action.patch))
            case DeleteReplicaSet():
                await self.client.delete(REPLICASETS, ns, action.name, uid=action.uid)
                gone = self.cache.get(REPLICASETS, ns, action.name)
                if gone is not None:
                    self.cache.remove(REPLICASETS, gone)
            case DeletePod():
                try:
                    await self.client.delete(PODS, ns, action.name)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
            case PatchPod():
                try:
                    self.cache.put(PODS, await self.client.patch(PODS, ns, action.name, action.patch))
                except ApiError as exc:
                    if not exc.not_found:
                        raise
            case ScaleWorkload():
                self.cache.put(
                    DEPLOYMENTS,
                    await self.client.patch(DEPLOYMENTS, ns, action.name, {"spec": {"replicas": action.replicas}}),
                )
            case CreateAnalysisRun():
                self.cache.put(ANALYSISRUNS, await self.client.create(ANALYSISRUNS, ns, action.manifest))
            case PatchAnalysisRun():
                try:
                    self.cache.put(ANALYSISRUNS, await self.client.patch(ANALYSISRUNS, ns, action.name, action.patch))
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                    log.warning("AnalysisRun %s/%s not found", ns, action.name)
            case CreateExperiment() | PatchExperiment():
                await self._write_experiment(ns, action)
            case DeleteAnalysisRun():
                try:
                    await self.client.delete(ANALYSISRUNS, ns, action.name, uid=action.uid)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                gone = self.cache.get(ANALYSISRUNS, ns, action.name)
                if gone is not None:
                    self.cache.remove(ANALYSISRUNS, gone)
            case PatchRolloutMetadata():
                updated = await self.client.patch(
                    ROLLOUTS,
                    ns,
                    meta["name"],
                    {
                        "metadata": {
                            "annotations": dict(action.annotations),
                            "resourceVersion": meta.get("resourceVersion"),
                        }
                    },
                )
                self.cache.put(ROLLOUTS, updated)
                return updated
            case _:
                assert_never(action)
        return rollout

    async def _write_routing(self, action: WriteRoutingObject) -> None:
        write = action.write
        ref = write.ref
        kind = ref_kind(ref)
        log.info("%s %s: %s", write.op, ref.describe(), write.why)
        answer: dict[str, Any] | None = None
        if write.op == "create":
            answer = await self.client.create(kind, ref.namespace, write.body)
        elif write.op == "merge-patch":
            answer = await self.client.patch(kind, ref.namespace, ref.name, write.body)
        elif write.op == "json-patch":
            answer = await self.client.json_patch(kind, ref.namespace, ref.name, list(write.body))
        elif write.op == "delete":
            try:
                await self.client.delete(kind, ref.namespace, ref.name)
            except ApiError as exc:
                if not exc.not_found:
                    raise
            existing = self.cache.get(kind, ref.namespace, ref.name)
            if existing is not None and self.routing_cached(ref):
                self.cache.remove(kind, existing)
        if answer is not None and self.routing_cached(ref):
            self.cache.put(kind, answer)  # the next pass reads what we wrote, not the version before it

    async def _routing_refused(self, rollout: dict[str, Any], action: WriteRoutingObject, exc: ApiError) -> None:
        """A routing write the API server refused (kind not served, rejected by its schema, forbidden)."""
        ref = action.write.ref
        message = f"{ref.describe()}: {action.write.op} refused by the API server ({exc.status}): {exc.message}"
        await self._event(rollout, EventSpec("Warning", TRAFFIC_ROUTING_ERROR_REASON, message))

    async def _replicaset_refused(self, rollout: dict[str, Any], rs_name: str, exc: ApiError) -> None:
        """The API server refused the new ReplicaSet (its template): the Rollout is Degraded with the
        server's message, in the phase, the Progressing condition and one Warning Event per refusal."""
        meta = rollout["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        message = FAILED_RS_CREATE_MESSAGE.format(rs_name, exc.message)
        old_conditions = (rollout.get("status") or {}).get("conditions") or []
        if not any(c.get("reason") == FAILED_RS_CREATE_REASON and c.get("message") == message for c in old_conditions):
            # once per refusal, not once per retry
            await self._event(rollout, EventSpec("Warning", FAILED_RS_CREATE_REASON, message))
        stamp = format_time(self.clock())
        conditions = [c for c in old_conditions if c.get("type") != PROGRESSING]
        conditions.append(
            {
                "type": PROGRESSING,
                "status": "False",
                "reason": FAILED_RS_CREATE_REASON,
                "message": message,
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        status = {
            "conditions": conditions,
            "phase": DEGRADED_PHASE,
            "message": f"{FAILED_RS_CREATE_REASON}: {message}",
            # this generation was seen: its template is what the API server refused
            "observedGeneration": str(meta.get("generation", "")),
        }
        try:
            self.cache.put(ROLLOUTS, await self.client.patch(ROLLOUTS, ns, name, {"status": status},
                                                             subresource="status"))
        except ApiError as again:
            log.warning("rollout %s/%s: could not record %s: %s", ns, name, FAILED_RS_CREATE_REASON, again)

    async def _write_failed(self, rollout: dict[str, Any], action: Action, exc: ApiError, writes: int) -> Outcome:
        """A write was refused: look again (409/404), or record why a ReplicaSet cannot be created."""
        meta = rollout["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if isinstance(action, WriteRoutingObject):
            # a conflict or a lost race: the next pass reads the routing objects again
            return Outcome(0.0, writes)
        if isinstance(action, CreateAnalysisRun) and exc.already_exists:
            # our cache had not seen it yet: read it, and decide again (adopt it, or take the next name)
            await self._refresh(ANALYSISRUNS, ns, str(action.manifest["metadata"]["name"]))
            return Outcome(0.0, writes)
        if isinstance(action, CreateReplicaSet) and exc.already_exists:
            rs_name = action.manifest["metadata"]["name"]
            log.info("ReplicaSet %s/%s already exists; reading it", ns, rs_name)
            existing = await self.client.get(REPLICASETS, ns, rs_name)
            if controller_uid(existing) == meta.get("uid"):
                self.cache.put(REPLICASETS, existing)
                return Outcome(0.0, writes)
            # A ReplicaSet of that name belongs to someone else: a hash collision. Bump the count.
            status = rollout.get("status") or {}
            body = {
                "metadata": {"resourceVersion": meta.get("resourceVersion")},
                "status": {"collisionCount": int(status.get("collisionCount") or 0) + 1},
            }
            try:
                self.cache.put(ROLLOUTS, await self.client.patch(ROLLOUTS, ns, name, body, subresource="status"))
            except ApiError as again:
                if again.status != 409:
                    raise
            return Outcome(0.0, writes + 1)
        if isinstance(action, CreateReplicaSet) and exc.status in (400, 403, 422):
            await self._replicaset_refused(rollout, str(action.manifest["metadata"]["name"]), exc)
            return Outcome(30.0, writes + 2)
        if exc.status == 403:
            return await self._forbidden(rollout, exc, writes)
        if exc.status in (404, 409):
            kind = {
                PatchService: SERVICES,
                PatchReplicaSet: REPLICASETS,
                DeleteReplicaSet: REPLICASETS,
                PatchRolloutMetadata: ROLLOUTS,
                ScaleWorkload: DEPLOYMENTS,
                PatchAnalysisRun: ANALYSISRUNS,
                DeleteAnalysisRun: ANALYSISRUNS,
            }.get(type(action))
            target = getattr(action, "name", name)
            if kind is not None:
                await self._refresh(kind, ns, target if kind is not ROLLOUTS else name)
            return Outcome(0.0, writes)
        raise exc

    async def _forbidden(self, rollout: dict[str, Any], exc: ApiError, writes: int) -> Outcome:
        """A write the controller may not make: name the missing permission (a log line and a Warning
        Event on the Rollout) and look again later; the other Rollouts are served meanwhile."""
        message = f"the controller lacks a permission: {exc.message}"
        meta = rollout["metadata"]
        log.warning("rollout %s/%s: %s", meta.get("namespace", ""), meta["name"], message)
        await self._event(rollout, EventSpec("Warning", MISSING_PERMISSION_REASON, message))
        return Outcome(FORBIDDEN_RETRY_SECONDS, writes + 1)

    async def _refresh(self, kind: Any, namespace: str, name: str) -> None:
        """After a conflict or a 404: read the object once, so the next pass sees the truth."""
        log.info("%s %s/%s changed under us; reading it again", kind.kind, namespace, name)
        try:
            self.cache.put(kind, await self.client.get(kind, namespace, name))
        except ApiError as exc:
            if not exc.not_found:
                raise
            cached = self.cache.get(kind, namespace, name)
            if cached is not None:
                self.cache.remove(kind, cached)

    async def _event(self, rollout: dict[str, Any], event: EventSpec) -> None:
        ns = rollout["metadata"].get("namespace", "")
        body = event_body(rollout, event.type, event.reason, event.message, COMPONENT)
        log.info("rollout %s/%s: %s %s", ns, rollout["metadata"]["name"], event.reason, event.message)
        try:
            await self.client.create(EVENTS, ns, body)
        except ApiError as exc:
            # An Event is a record, not progress: losing one must not stop the rollout. Say so loudly.
            log.warning(
                "could not record event %s on rollout %s/%s: %s", event.reason, ns, rollout["metadata"]["name"], exc
            )
        else:
            self.on_event(ns, rollout["metadata"]["name"], event.type, event.reason)
        if self.notify is not None:
            self.notify(rollout, event.reason, event.message)
