"""The controller process: kopf watches the objects, we keep the caches and the work queue.

- kopf runs the watch streams (Rollouts, ReplicaSets and Pods carrying our hash label, Services,
  Deployments). Only *index* and low-level *event* handlers are registered: kopf needs no
  progress or diff-base storage for those and writes nothing to our objects (no annotations, no
  finalizers). The index handlers fill our :class:`~rollouts.controller.client.Cache` during the initial
  listing; kopf holds every event handler back until all those listings are complete, so the first
  reconcile already sees every ReplicaSet (a controller that reconciled from a half-filled cache
  could think a Rollout has no stable ReplicaSet).
- Each event updates the cache and queues the owning Rollout (a ReplicaSet by its controller
  reference, a Pod through its ReplicaSet, a Service or Deployment by name). After the first listings
  rollouts.controller.kopfwatch hands the events to :meth:`Controller.dispatch` itself, past kopf's
  per-event machinery (a third of the CPU at scale, for handlers that only do this).
- Traffic routing objects (every kind a router of rollouts.traffic.registry reads: Ingresses,
  VirtualServices, TrafficSplits, HTTPRoutes, ...) are watched while their kind is served: kopf follows
  CRDs, so a CRD installed later starts its watch. They are read from the cache once their watch has
  listed (rollouts.controller.routingwatch), with a GET before that; a change to one requeues the
  Rollouts that name it. They have event handlers only, no index handler: an absent CRD must not hold
  back the first reconcile. The kinds not served yet are re-checked on a slow timer
  (rollouts.controller.discovery), never per pass.
- :class:`WorkQueue` runs one reconcile at a time per Rollout (many Rollouts in parallel),
  coalesces bursts of events, and wakes a Rollout at the time its plan asked for (pause
  durations, scale-down delays, progress deadlines) instead of polling.
- With ``--leader-elect`` (:mod:`rollouts.controller.leader`; kopf's own peering stays standalone)
  every replica watches, but only the Lease holder reconciles; its client refuses writes once the
  renew deadline passes. With ``--instance-id`` the Rollout and AnalysisRun watches carry the shard's
  label selector.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf
from kopf._cogs.structs import references

from rollouts.controller import client as kube
from rollouts.controller import discovery, kopfwatch
from rollouts.controller.analysisruns import JOB_LABEL_SELECTOR, AnalysisController
from rollouts.controller.client import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    DEFAULT_BURST,
    DEFAULT_QPS,
    DEPLOYMENTS,
    EXPERIMENTS,
    JOBS,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    ApiError,
    Cache,
    Client,
    NotLeading,
    WritesHeld,
)
from rollouts.controller.experiments import ExperimentController
from rollouts.controller.kubeconfig import Connection
from rollouts.controller.leader import LeaderElector, Timing, default_identity, lease_name
from rollouts.controller.listen import Listen, serve
from rollouts.controller.metrics import ANALYSIS_RUN, CONTENT_TYPE, ROLLOUT, ControllerMetrics
from rollouts.controller.notifier import Notifier
from rollouts.controller.ratelimit import TokenBucket
from rollouts.controller.reconciler import Reconciler, rollout_references, uses_analysis
from rollouts.controller.resync import Resync, ServerWatch, Watched
from rollouts.controller.routingwatch import RoutingWatches
from rollouts.controller.workqueue import Key, WorkQueue
from rollouts.model.spec import HASH_LABEL, INSTANCE_ID_LABEL
from rollouts.strategy.replicasets import MANAGED_BY
from rollouts.traffic.registry import routed_kinds

log = logging.getLogger("pyrollouts.operator")

ERROR_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# The work queues' names in the workqueue_* metrics: Argo's.
ROLLOUT_QUEUE, ANALYSIS_QUEUE, EXPERIMENT_QUEUE = "Rollouts", "AnalysisRuns", "Experiments"


@dataclass(frozen=True)
class Election:
    """Where and how to elect the leader (``--leader-elect``); the Lease is named after the instance id."""

    namespace: str
    identity: str = field(default_factory=default_identity)
    timing: Timing = field(default_factory=Timing)


class Controller:
    """Caches, queue, reconciler and the kopf registry that feeds them.

    With leader election every controller watches (its caches stay warm) but only the holder of the
    Lease reconciles and writes: the client refuses writes once leadership has lapsed."""

    def __init__(
        self,
        conn: Connection,
        namespaces: Sequence[str] = (),
        login: Callable[[], Connection] | None = None,
        election: Election | None = None,
        instance_id: str | None = None,
        notifications_namespace: str | None = None,
        limit: TokenBucket | None = None,
    ) -> None:
        self.conn = conn
        self.login = login
        self.namespaces = list(namespaces)
        self.instance_id = instance_id
        self.cache = Cache(references={ROLLOUTS.resource: rollout_references})
        self.limit = limit or TokenBucket(DEFAULT_QPS, DEFAULT_BURST)
        self.client = Client(
            conn,
            login=login,
            may_write=self.leading,
            limit=self.limit,
            writes_held=lambda: self.resync.held,
            on_connection_lost=lambda: self.resync.trigger("a request could not reach the API server"),
        )
        self._notifiers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._kinds: dict[str, kube.Kind] = {}  # every watched kind, by resource (filled with the registry)
        self._releasing: set[asyncio.Task[None]] = set()  # deleted Rollouts giving their Services back
        self.routing = RoutingWatches(self.cache, routed_kinds(), lambda kind, obj: self._on_routing_object(kind, obj))
        self.resync = Resync(
            self.client, self.cache, self._watched(), self.namespaces, self._forgotten, self._resynced
        )
        self.elector = (
            LeaderElector(
                Client(conn, retries=0, login=login),  # its own connection: renewals never queue behind reconciles
                election.namespace,
                lease_name(instance_id),
                election.identity,
                on_started=self._started_leading,
                on_stopped=self._stopped_leading,
                timing=election.timing,
            )
            if election is not None
            else None
        )
        self.notifier = Notifier(self.client, notifications_namespace or conn.namespace)
        self.reconciler = Reconciler(
            self.client, self.cache, notify=self.notifier.on_event, routing_cached=self.routing.cached
        )
        self.analysis = AnalysisController(self.client, self.cache)
        self.analysis_queue: WorkQueue | None = None
        self.experiments = ExperimentController(self.client, self.cache)
        self.experiment_queue: WorkQueue | None = None
        self.metrics = ControllerMetrics(
            lambda: self.cache.all(ROLLOUTS), lambda: self.cache.all(ANALYSISRUNS), self.leading
        )
        self.client.on_response = self.metrics.response
        self.reconciler.on_event = self.analysis.on_event = self.experiments.on_event = self.metrics.event
        self.queue: WorkQueue | None = None
        self.ready = asyncio.Event()
        # kopf runs no event handler before every watch has listed its objects: the first event means
        # the caches are complete (with no object at all there is nothing to reconcile before one comes).
        self.synced = asyncio.Event()
        self._failures: dict[Key, int] = {}
        self._burst: dict[Key, tuple[float, int]] = {}
        self._halting: asyncio.Task[None] | None = None
        self._rescan: asyncio.Task[None] | None = None
        self.insights: references.Insights | None = None  # kopf's view of what is served, once running
        self.registry = self._build_registry()

    # ------------------------------------------------------------------ leadership

    def leading(self) -> bool:
        """True without leader election; with it, while the Lease is ours (until the renew deadline)."""
        return self.elector is None or self.elector.leading()

    def _started_leading(self) -> None:
        """The caches are warm: queue every Rollout and AnalysisRun and validate the templates now.
        Before the caches are complete there is nothing to do: kopf's first events queue everything."""
        if not self.synced.is_set():
            return
        queues = ((ROLLOUTS, self.queue), (ANALYSISRUNS, self.analysis_queue), (EXPERIMENTS, self.experiment_queue))
        for kind, queue in queues:
            for obj in list(self.cache.all(kind)):
                if queue is not None:
                    queue.add((str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"])))
        for kind in (ANALYSISTEMPLATES, CLUSTERANALYSISTEMPLATES):
            for obj in list(self.cache.all(kind)):
                self.analysis.on_template(obj)

    def _stopped_leading(self) -> None:
        """Writes are refused from now on (the client asks `leading`); drop the work in flight."""
        self._halting = asyncio.get_running_loop().create_task(self._halt(), name="stop reconciling")

    async def _halt(self) -> None:
        for queue in (self.queue, self.analysis_queue, self.experiment_queue):
            if queue is not None:
                await queue.stop()
        await self.analysis.stop()

    def _on_template(self, obj: dict[str, Any]) -> None:
        if self.leading():  # a new leader validates every template when it takes over
            self.analysis.on_template(obj)

    # ------------------------------------------------------------------ reconciling

    async def _work(self, key: Key) -> float | None:
        if not self.leading():
            return None  # a new leader queues every Rollout
        started = time.monotonic()
        ns, name = key
        try:
            outcome = await self.reconciler.reconcile(ns, name)
        except (NotLeading, WritesHeld):
            return None  # a new leader, or the end of the resync, queues every Rollout
        except ApiError as exc:
            return self._failed(key, started, f"API error: {exc}")
        except Exception as exc:
            log.exception("reconcile of rollout %s/%s failed", ns, name)
            return self._failed(key, started, f"{type(exc).__name__}: {exc}")
        self._failures.pop(key, None)
        self.metrics.observe_reconcile(ROLLOUT, ns, name, time.monotonic() - started)
        return self._throttle(key, outcome.requeue_after)

    async def _analysis_work(self, key: Key) -> float | None:
        if not self.leading():
            return None
        started = time.monotonic()
        try:
            requeue = await self.analysis.reconcile(key)
        except (NotLeading, WritesHeld):
            return None
        except ApiError as exc:
            log.warning("analysisrun %s/%s: API error: %s; retrying in 2s", key[0], key[1], exc)
            return self._analysis_failed(key, started, 2.0)
        except Exception:
            log.exception("analysisrun %s/%s: reconcile failed; retrying in 5s", key[0], key[1])
            return self._analysis_failed(key, started, 5.0)
        self.metrics.observe_reconcile(ANALYSIS_RUN, *key, time.monotonic() - started)
        return requeue

    async def _experiment_work(self, key: Key) -> float | None:
        if not self.leading():
            return None
        try:
            return await self.experiments.reconcile(key)
        except (NotLeading, WritesHeld):
            return None
        except ApiError as exc:
            log.warning("experiment %s/%s: API error: %s; retrying in 2s", key[0], key[1], exc)
            return 2.0
        except Exception:
            log.exception("experiment %s/%s: reconcile failed; retrying in 5s", key[0], key[1])
            return 5.0

    def _analysis_failed(self, key: Key, started: float, delay: float) -> float:
        self.metrics.observe_reconcile(ANALYSIS_RUN, *key, time.monotonic() - started, failed=True)
        self.metrics.queues.retried(ANALYSIS_QUEUE)
        return delay

    def _failed(self, key: Key, started: float, why: str) -> float:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        delay = ERROR_BACKOFF[min(count, len(ERROR_BACKOFF) - 1)]
        log.warning("rollout %s/%s: %s; retrying in %.1fs", key[0], key[1], why, delay)
        self.metrics.observe_reconcile(ROLLOUT, *key, time.monotonic() - started, failed=True)
        self.metrics.queues.retried(ROLLOUT_QUEUE)
        return delay

    def _throttle(self, key: Key, requeue: float | None) -> float | None:
        """An immediate requeue is normal (one move per pass), but never a hot loop."""
        if requeue is None or requeue > 0:
            return requeue
        now = time.monotonic()
        since, count = self._burst.get(key, (now, 0))
        if now - since > 1.0:
            since, count = now, 0
        self._burst[key] = (since, count + 1)
        if count > 50:
            log.warning("rollout %s/%s asked to be reconciled again more than 50 times in 1s; slowing down", *key)
            return 1.0
        return 0.0

    def enqueue(self, namespace: str, name: str) -> None:
        if self.queue is not None:
            self.queue.add((namespace, name))

    # ------------------------------------------------------------------ listing again

    def _selectors(self) -> dict[str, str]:
        """The label selector of each kind's watch (kinds not named: every object)."""
        # Sharding as Argo's --instance-id: only our shard's Rollouts and runs (the unlabelled ones without).
        shard = f"{INSTANCE_ID_LABEL}={self.instance_id}" if self.instance_id else f"!{INSTANCE_ID_LABEL}"
        return {
            REPLICASETS.resource: HASH_LABEL,
            PODS.resource: HASH_LABEL,
            JOBS.resource: JOB_LABEL_SELECTOR,
            ROLLOUTS.resource: shard,
            ANALYSISRUNS.resource: shard,
            EXPERIMENTS.resource: shard,
        }

    def _watched_kinds(self) -> list[kube.Kind]:
        """The kinds whose initial listing every reconcile waits for (kopf index handlers)."""
        kinds = [ROLLOUTS, REPLICASETS, PODS, SERVICES, DEPLOYMENTS, ANALYSISRUNS, JOBS, ANALYSISTEMPLATES]
        kinds.append(EXPERIMENTS)
        if not self.namespaces:  # kopf serves cluster-scoped kinds only when cluster-wide
            kinds.append(CLUSTERANALYSISTEMPLATES)
        return kinds

    def _watched(self) -> list[Watched]:
        selectors = self._selectors()
        kinds = self._watched_kinds() + list(self.routing.kinds.values())
        return [Watched(kind, selectors.get(kind.resource)) for kind in kinds]

    def _forgotten(self, kind: kube.Kind, obj: dict[str, Any]) -> None:
        """An object the server no longer has left the cache: its owners look again (as on a deletion)."""
        notify = self._notifiers.get(kind.resource)
        if notify is not None and kind is not ROLLOUTS:
            notify(obj)

    def _resynced(self) -> None:
        """The caches are the server's again: every Rollout and run is looked at anew."""
        if self.leading():
            self._started_leading()

    # ------------------------------------------------------------------ who owns what

    # Every look-up below is an index of the cache (by uid, by owner, by what a Rollout refers to):
    # the cost of an event does not grow with the number of Rollouts.

    def _rollout_by_uid(self, namespace: str, uid: str) -> dict[str, Any] | None:
        ro = self.cache.by_uid(ROLLOUTS, uid)
        return ro if ro is not None and (ro.get("metadata") or {}).get("namespace") == namespace else None

    def _enqueue_referring(self, obj: dict[str, Any], resource: str) -> None:
        ns, name = str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"])
        for ro in self.cache.referring_to(ROLLOUTS, ns, resource, name):
            self.enqueue(ns, ro["metadata"]["name"])

    def _on_replicaset(self, obj: dict[str, Any]) -> None:
        owner = kube.controller_uid(obj)
        ns = str(obj["metadata"].get("namespace", ""))
        ro = self._rollout_by_uid(ns, owner) if owner else None
        if ro is not None:
            self.enqueue(ns, ro["metadata"]["name"])

    def _on_pod(self, obj: dict[str, Any]) -> None:
        """A pod of a Rollout's ReplicaSet changed: only a pending restart (restartAt) reads pods."""
        owner = kube.controller_uid(obj)
        rs = self.cache.by_uid(REPLICASETS, owner) if owner else None
        rollout_uid = kube.controller_uid(rs) if rs is not None else None
        ns = str(obj["metadata"].get("namespace", ""))
        ro = self._rollout_by_uid(ns, rollout_uid) if rollout_uid else None
        if ro is None:
            return
        spec, status = ro.get("spec") or {}, ro.get("status") or {}
        if spec.get("restartAt") and spec.get("restartAt") != status.get("restartedAt"):
            self.enqueue(ns, ro["metadata"]["name"])

    def _on_service(self, obj: dict[str, Any]) -> None:
        self._enqueue_referring(obj, SERVICES.resource)

    def _on_deployment(self, obj: dict[str, Any]) -> None:
        self._enqueue_referring(obj, DEPLOYMENTS.resource)

    def _on_routing_object(self, kind: kube.Kind, obj: dict[str, Any]) -> None:
        """A routing object changed (or went): the Rollouts whose routers read it look again."""
        self._enqueue_referring(obj, kind.resource)

    def _on_analysisrun(self, obj: dict[str, Any]) -> None:
        """A run changed (or went): its owning Rollout reacts to the phase."""
        owner = kube.controller_uid(obj)
        ns = str(obj["metadata"].get("namespace", ""))
        ro = self._rollout_by_uid(ns, owner) if owner else None
        if ro is not None:
            self.enqueue(ns, ro["metadata"]["name"])

    def _on_analysis_template(self, obj: dict[str, Any]) -> None:
        """A template changed: Rollouts with analysis look again (a missing template makes InvalidSpec).
        A scan, but templates change seldom."""
        ns = obj["metadata"].get("namespace")
        rollouts = list(self.cache.all(ROLLOUTS, str(ns) if ns else None))
        for ro in rollouts:
            if uses_analysis(ro):
                self.enqueue(str(ro["metadata"].get("namespace", "")), ro["metadata"]["name"])

    async def _release_services(self, rollout: dict[str, Any]) -> None:
        """A deleted Rollout gives its Services back: our hash leaves their selectors."""
        if not self.leading():
            return
        ns, name = rollout["metadata"].get("namespace", ""), rollout["metadata"]["name"]
        for svc in list(self.cache.all(SERVICES, ns)):
            if ((svc.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY) != name:
                continue
            patch = {"metadata": {"annotations": {MANAGED_BY: None}}, "spec": {"selector": {HASH_LABEL: None}}}
            try:
                self.cache.put(SERVICES, await self.client.patch(SERVICES, ns, svc["metadata"]["name"], patch))
            except ApiError as exc:
                log.warning(
                    "could not release service %s/%s of deleted rollout %s: %s", ns, svc["metadata"]["name"], name, exc
                )

    # ------------------------------------------------------------------ kopf wiring

    def _build_registry(self) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        async def login(**_: Any) -> kopf.ConnectionInfo:
            # kopf logs in at start and again once the server rejects its credentials or their
            # `expiration` passes: that is when they are due (shortly before an exec plugin's credential
            # expires; a minute for a token file), so kopf fetches new ones before the server says 401.
            conn = await asyncio.to_thread(self.login) if self.login is not None else self.conn
            due = conn.refresh_at if self.login is not None else None
            return kopf.ConnectionInfo(
                server=conn.server,
                token=conn.token,
                ca_path=conn.ca_path,
                certificate_path=conn.cert_path,
                private_key_path=conn.key_path,
                insecure=not conn.verify,
                default_namespace=conn.namespace,
                expiration=dt.datetime.fromtimestamp(due, dt.UTC) if due is not None else None,
            )

        @kopf.on.startup(registry=registry)
        async def rescan_routing_kinds(settings: kopf.OperatorSettings, **_: Any) -> None:
            # started from kopf's context, so its discovery requests carry kopf's credentials
            if self.insights is not None and self._rescan is None:
                kinds = list(self.routing.kinds.values())
                self._rescan = asyncio.create_task(
                    discovery.rescan(kinds, registry, settings, self.insights), name="routing kinds discovery"
                )

        notifiers: dict[str, Callable[[dict[str, Any]], None]] = {
            ROLLOUTS.resource: lambda obj: self.enqueue(obj["metadata"].get("namespace", ""), obj["metadata"]["name"]),
            REPLICASETS.resource: self._on_replicaset,
            PODS.resource: self._on_pod,
            SERVICES.resource: self._on_service,
            DEPLOYMENTS.resource: self._on_deployment,
            # The AnalysisRun controller: its runs, the Jobs of Job metrics, templates (validation Events).
            ANALYSISRUNS.resource: self.analysis.on_run,
            JOBS.resource: self.analysis.on_job,
            ANALYSISTEMPLATES.resource: self._on_template,
            CLUSTERANALYSISTEMPLATES.resource: self._on_template,
            EXPERIMENTS.resource: self.experiments.on_experiment,
        }
        for kind in self._watched_kinds():
            self._register(registry, kind, notifiers[kind.resource])
        for kind in self.routing.kinds.values():
            self._register(registry, kind, functools.partial(self._on_routing_object, kind), indexed=False)
        return registry

    def _register(
        self,
        registry: kopf.OperatorRegistry,
        kind: kube.Kind,
        notify: Callable[[dict[str, Any]], None],
        indexed: bool = True,
    ) -> None:
        cache = self.cache
        group_version = kind.api_version
        # The Rollout controller also follows its AnalysisRuns and the templates its analysis names.
        rollout_follows: dict[str, Callable[[dict[str, Any]], None]] = {
            kube.ANALYSISRUNS.resource: self._on_analysisrun,
            kube.ANALYSISTEMPLATES.resource: self._on_analysis_template,
            kube.CLUSTERANALYSISTEMPLATES.resource: self._on_analysis_template,
            EXPERIMENTS.resource: self._on_analysisrun,  # an experiment step's Experiment: its phase, like a run's
        }
        follow = rollout_follows.get(kind.resource)
        # The Experiment controller follows what its Experiments own.
        experiment_follows = kind.resource in (REPLICASETS.resource, SERVICES.resource, ANALYSISRUNS.resource)

        def notify_all(obj: dict[str, Any]) -> None:
            notify(obj)
            if follow is not None:
                follow(obj)
            if experiment_follows:
                self.experiments.on_owned(obj)

        self._notifiers[kind.resource] = notify_all

        async def prime(body: kopf.Body, **_: Any) -> None:
            # An index handler: runs during the initial listing, before any event handler.
            cache.put(kind, dict(body))

        prime.__name__ = f"prime_{kind.resource}"
        if indexed:
            # Only while listing (`when`): kopf runs index handlers on every event, and after the first
            # listing `on_event` caches each object anyway; the filter spares kopf's handler machinery.
            kopf.index(group_version, kind.plural, registry=registry, id=f"cache-{kind.resource}", when=self._listing)(
                prime
            )

        async def on_event(event: kopf.RawEvent, **_: Any) -> None:
            # Only until every first listing is done: then rollouts.controller.kopfwatch hands the events
            # to `dispatch` itself, past kopf's per-event machinery.
            self.synced.set()
            self._on_watch_event(kind, event["type"], event["object"])

        on_event.__name__ = f"on_{kind.resource}"
        kopf.on.event(group_version, kind.plural, registry=registry, id=f"watch-{kind.resource}")(on_event)
        self._kinds[kind.resource] = kind

    def _on_watch_event(self, kind: kube.Kind, event_type: str | None, raw: Any) -> None:
        """One watch event: the cache follows it, then whoever follows the kind is told."""
        obj = dict(raw)
        if event_type == "DELETED":
            self.cache.remove(kind, obj)
            self._forget_metrics(kind, obj)
            if kind is ROLLOUTS:
                self._forget_rollout(obj)
                releasing = asyncio.get_running_loop().create_task(self._release_services(obj))
                self._releasing.add(releasing)
                releasing.add_done_callback(self._releasing.discard)
                return
        else:
            self.cache.put(kind, obj)
        self._notifiers[kind.resource](obj)

    def takes(self, resource: str) -> bool:
        """Does `dispatch` take this kind's events now (kopfwatch asks)? Once the first listings are done."""
        return self.synced.is_set() and resource in self._kinds

    def dispatch(self, resource: str, event: dict[str, Any]) -> None:
        """A watch event kopfwatch hands over (kopf never sees it)."""
        self._on_watch_event(self._kinds[resource], event.get("type"), event["object"])

    def _forget_rollout(self, rollout: dict[str, Any]) -> None:
        """A deleted Rollout's bookkeeping (failure and burst counts, its stable ReplicaSet's copy) goes with it."""
        key = (str(rollout["metadata"].get("namespace", "")), str(rollout["metadata"]["name"]))
        self._failures.pop(key, None)
        self._burst.pop(key, None)
        self.reconciler.stable_replicasets.forget(str(rollout["metadata"].get("uid") or ""))

    def _listing(self, **_: Any) -> bool:
        """Are the first listings still under way (no event handler has run yet)?"""
        return not self.synced.is_set()

    def _forget_metrics(self, kind: kube.Kind, obj: dict[str, Any]) -> None:
        """A deleted Rollout or AnalysisRun takes its series off /metrics."""
        which = {ROLLOUTS.resource: ROLLOUT, ANALYSISRUNS.resource: ANALYSIS_RUN}.get(kind.resource)
        if which is not None:
            self.metrics.forget(which, str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"]))

    def settings(self) -> kopf.OperatorSettings:
        settings = kopf.OperatorSettings()
        settings.peering.standalone = True
        settings.posting.enabled = False  # our own Events, with Argo's reasons; none from kopf
        settings.batching.batch_window = 0.01
        settings.batching.idle_timeout = 5.0
        settings.batching.exit_timeout = 0.5
        selectors = self._selectors()
        for kind in self._watched_kinds():
            if kind.resource in selectors:
                settings.watching.label_selectors[kind.group, kind.version, kind.plural] = selectors[kind.resource]
        # Nothing we register needs kopf's storages; keep them off our objects all the same.
        settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.controller.kopf-progress")
        settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.controller.kopf-diffbase")
        settings.persistence.finalizer = "pyrollouts.io/unused"
        return settings

    async def run(
        self,
        stop: asyncio.Event,
        metrics: Listen | None = None,
        health: Listen | None = None,
        signals: bool = False,
    ) -> None:
        """Watch and reconcile until `stop` is set. A listen address in use raises ListenError first."""
        self.queue = WorkQueue(self._work, name=ROLLOUT_QUEUE, metrics=self.metrics.queues)
        self.analysis_queue = self.analysis.queue = WorkQueue(
            self._analysis_work, name=ANALYSIS_QUEUE, metrics=self.metrics.queues
        )
        self.experiment_queue = self.experiments.queue = WorkQueue(
            self._experiment_work, name=EXPERIMENT_QUEUE, metrics=self.metrics.queues
        )
        runners = []
        try:
            if metrics is not None:
                page = {"/metrics": lambda: (200, self.metrics.render())}
                runners.append(await serve(metrics, page, {"/metrics": CONTENT_TYPE}))
            if health is not None:
                runners.append(await serve(health, {"/healthz": self._health, "/readyz": self._health}))
        except BaseException:
            for runner in runners:
                await runner.cleanup()
            raise
        kopfwatch.install(self.routing, self)
        discovery.quiet_unresolved()
        self.insights = references.Insights()
        await self.client.open()
        electing = (
            asyncio.create_task(self._elect(stop), name="leader election") if self.elector is not None else None
        )
        operator = asyncio.create_task(
            kopf.operator(
                registry=self.registry,
                settings=self.settings(),
                standalone=True,
                clusterwide=not self.namespaces,
                namespaces=self.namespaces,
                stop_flag=stop,
                ready_flag=self.ready,
                insights=self.insights,
            ),
            name="kopf operator",
        )
        stopping = asyncio.create_task(stop.wait(), name="stop flag")
        server_watch = asyncio.create_task(self._watch_server(), name="server watch")
        try:
            if signals:
                # kopf installs its own SIGINT/SIGTERM handlers when it starts; ours replace them
                # (once kopf is up) so that a stop is quick, as below.
                ready = asyncio.create_task(self.ready.wait(), name="ready flag")
                await asyncio.wait({operator, ready}, return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
            await asyncio.wait({operator, stopping}, return_when=asyncio.FIRST_COMPLETED)
            await self._step_down(electing)
            if not operator.done():
                # kopf stops its watches at once, then gives every other task on the loop 5 s to end;
                # ours need none of that, so cut the wait short.
                await asyncio.wait({operator}, timeout=1.0)
                operator.cancel()
            await asyncio.gather(operator, return_exceptions=True)
            if not operator.cancelled() and operator.exception() is not None:
                raise operator.exception()  # type: ignore[misc]
        finally:
            stopping.cancel()
            server_watch.cancel()
            await asyncio.gather(server_watch, return_exceptions=True)
            if self._rescan is not None:
                self._rescan.cancel()
                await asyncio.gather(self._rescan, return_exceptions=True)
            await self.resync.stop()
            for releasing in list(self._releasing):
                releasing.cancel()
            await asyncio.gather(*self._releasing, return_exceptions=True)
            await self._step_down(electing)
            await self.queue.stop()
            await self.analysis_queue.stop()
            await self.experiment_queue.stop()
            await self.analysis.stop()
            await self.notifier.stop()
            await self.client.close()
            for runner in runners:
                await runner.cleanup()

    async def _watch_server(self) -> None:
        """Once kopf is up: notice an API server that went away or came back empty (rollouts.controller.resync)."""
        await self.ready.wait()
        lost = self.resync.trigger
        client = Client(self.conn, login=self.login, on_connection_lost=lambda: lost("the API server went away"))
        namespace = self.namespaces[0] if self.namespaces else None
        try:
            await ServerWatch(client, namespace, self._selectors()[ROLLOUTS.resource], lost).run()
        finally:
            await client.close()

    async def _elect(self, stop: asyncio.Event) -> None:
        """Run the election once kopf is up; a leader reconciles only once the caches are complete (`synced`)."""
        assert self.elector is not None
        await self.ready.wait()
        await self.elector.client.open()
        try:
            await self.elector.run(stop)
        finally:
            await self.elector.client.close()

    async def _step_down(self, electing: asyncio.Task[None] | None) -> None:
        """On stop: no more tries, no more writes, then give the Lease up for a quick hand-over."""
        if electing is None or self.elector is None:
            return
        if not electing.done():
            electing.cancel()
        await asyncio.gather(electing, return_exceptions=True)
        if self.elector.leading():
            await self._halt()
            await self.elector.client.open()
            await self.elector.release()
            await self.elector.client.close()

    def _health(self) -> tuple[int, str]:
        return (200, "ok\n") if self.ready.is_set() else (503, "starting\n")
