"""The Experiment controller: the I/O around :mod:`rollouts.experiment.decide`.

:mod:`rollouts.controller.operator` feeds Experiments and what they own (ReplicaSets, Services, AnalysisRuns)
into the shared cache and tells :meth:`ExperimentController.on_experiment` / :meth:`~ExperimentController.on_owned`;
a work queue keyed per Experiment calls :meth:`ExperimentController.reconcile`, which reads the caches, asks
:func:`~rollouts.experiment.decide.decide` for the writes, makes them in order, writes the status last with the
Experiment's resourceVersion (a stale pass never overwrites a user's ``terminate``), then records the Events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rollouts.controller.client import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    EVENTS,
    EXPERIMENTS,
    REPLICASETS,
    SERVICES,
    ApiError,
    Cache,
    Client,
    Kind,
    controller_uid,
    event_body,
)
from rollouts.experiment.decide import ExperimentPlan, Observed, decide
from rollouts.experiment.manifests import TEMPLATE_NAME
from rollouts.strategy.plan import merge_patch

__all__ = ["COMPONENT", "ExperimentController"]

log = logging.getLogger("pyrollouts.experiments")

COMPONENT = "pyrollouts-experiments"
Key = tuple[str, str]
_KINDS: dict[str, Kind] = {"ReplicaSet": REPLICASETS, "Service": SERVICES, "AnalysisRun": ANALYSISRUNS}


class Queue(Protocol):
    def add(self, key: Key) -> None: ...


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ExperimentController:
    def __init__(self, client: Client, cache: Cache, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.client = client
        self.cache = cache
        self.queue: Queue | None = None
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        # Told (namespace, name, type, reason) of each Event recorded: the controller counts them.
        self.on_event: Callable[[str, str, str, str], None] = lambda *_: None

    # ------------------------------------------------------------------ notifications

    def on_experiment(self, obj: dict[str, Any]) -> None:
        if self.queue is not None:
            self.queue.add(_name(obj))

    def on_owned(self, obj: dict[str, Any]) -> None:
        """A ReplicaSet, Service or AnalysisRun changed: its Experiment (if one owns it) looks again."""
        owner = controller_uid(obj)
        exp = self.cache.by_uid(EXPERIMENTS, owner) if owner else None
        if exp is not None and self.queue is not None and _name(exp)[0] == _name(obj)[0]:
            self.queue.add(_name(exp))

    # ------------------------------------------------------------------ reconciling

    def observe(self, exp: Mapping[str, Any]) -> Observed:
        ns = _name(exp)[0]
        uid = str((exp.get("metadata") or {}).get("uid") or "")
        replicasets = {
            str(((rs.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_NAME) or ""): rs
            for rs in self.cache.owned_by(REPLICASETS, uid)
        }

        def lookup(name: str, cluster_scope: bool) -> Mapping[str, Any] | None:
            if cluster_scope:
                return self.cache.get(CLUSTERANALYSISTEMPLATES, "", name)
            return self.cache.get(ANALYSISTEMPLATES, ns, name)

        return Observed(
            experiment=exp,
            replicasets=replicasets,
            services={_name(s)[1]: s for s in self.cache.owned_by(SERVICES, uid)},
            runs={_name(r)[1]: r for r in self.cache.owned_by(ANALYSISRUNS, uid)},
            lookup=lookup,
            now=self.clock(),
        )

    async def reconcile(self, key: Key) -> float | None:
        """One pass over Experiment ``key``; returns when to look again (None: on the next event)."""
        exp = self.cache.get(EXPERIMENTS, *key)
        if exp is None or (exp.get("metadata") or {}).get("deletionTimestamp"):
            return None
        plan = decide(self.observe(exp))
        try:
            await self._write(key, plan)
        except ApiError as exc:
            if exc.status == 409:  # a newer Experiment (or an object made meanwhile): read it and decide again
                await self._refresh(key)
                return 0.0
            raise
        if plan.status is not None:
            status = {"metadata": {"resourceVersion": (exp.get("metadata") or {}).get("resourceVersion")},
                      "status": merge_patch(exp.get("status") or {}, plan.status)}  # fmt: skip
            try:
                self.cache.put(EXPERIMENTS, await self.client.patch(EXPERIMENTS, *key, status, subresource="status"))
            except ApiError as exc:
                if exc.not_found:
                    return None
                if exc.status == 409:
                    await self._refresh(key)
                    return 0.0
                raise
        await asyncio.gather(*(self._event(exp, *event) for event in plan.events))
        return plan.requeue_after

    async def _refresh(self, key: Key) -> None:
        try:
            self.cache.put(EXPERIMENTS, await self.client.get(EXPERIMENTS, *key))
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _write(self, key: Key, plan: ExperimentPlan) -> None:
        ns = key[0]
        for manifest in plan.create:
            kind = _KINDS[str(manifest["kind"])]
            try:
                self.cache.put(kind, await self.client.create(kind, ns, manifest))
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                log.info("experiment %s/%s: %s %s exists already", *key, manifest["kind"], manifest["metadata"]["name"])
        for name, patch in plan.patch_replicasets:
            self.cache.put(REPLICASETS, await self.client.patch(REPLICASETS, ns, name, patch))
        for name in plan.terminate_runs:
            self.cache.put(ANALYSISRUNS, await self.client.patch(ANALYSISRUNS, ns, name, {"spec": {"terminate": True}}))
        for name in plan.delete_services:
            try:
                await self.client.delete(SERVICES, ns, name)
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _event(self, exp: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        ns, name = _name(exp)
        log.info("experiment %s/%s: %s %s", ns, name, reason, message)
        try:
            await self.client.create(EVENTS, ns, event_body(exp, etype, reason, message, COMPONENT))
        except ApiError as exc:  # an Event is a record, not progress
            log.warning("could not record event %s on experiment %s/%s: %s", reason, ns, name, exc)
        else:
            self.on_event(ns, name, etype, reason)
