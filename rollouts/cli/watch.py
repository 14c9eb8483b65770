"""Live views for `get rollout --watch` and `status --watch`.

Each resource the view depends on (the Rollout, its ReplicaSets, their Pods, its AnalysisRuns) gets an
informer thread: list, then watch from the list's resourceVersion, keeping a local copy and relisting
when the server says the version is too old (410). Any change wakes the view, which recomputes from the
local copies and redraws, at most every 200 ms and at least every second (ages move), as Argo's
viewcontroller does. Informer threads are daemons, so Ctrl-C or the end of the command ends them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from rollouts.cli.client import (
    ANALYSISRUNS,
    EXPERIMENTS,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    APIError,
    Client,
    CLIError,
    Resource,
)
from rollouts.model.labelselector import format_label_selector


class Informer(threading.Thread):
    """A local, continuously updated copy of the objects of one list (namespace + selectors)."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        on_change: Callable[[], None],
        label_selector: str = "",
        field_selector: str = "",
        optional: bool = False,
        all_namespaces: bool = False,
    ) -> None:
        super().__init__(name=f"informer-{resource.plural}", daemon=True)
        self.client = client
        self.resource = resource
        self.on_change = on_change
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.optional = optional
        self.all_namespaces = all_namespaces
        self.synced = threading.Event()
        self.error: CLIError | None = None
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def objects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def stop(self) -> None:
        self._stopped.set()

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata") or {}
        return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"

    def _relist(self) -> str:
        listing = self.client.list(
            self.resource, all_namespaces=self.all_namespaces, label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        with self._lock:
            self._objects = {self._key(o): o for o in listing.get("items") or []}
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                version = self._relist()
                self.error = None
                self.synced.set()
                self.on_change()
                self._watch_from(version)
            except CLIError as exc:
                if self.optional and isinstance(exc, CLIError) and "has no resource type" in exc.message:
                    self.synced.set()  # the kind is not installed: it simply has no objects
                    return
                self.error = exc
                self.synced.set()
                self.on_change()
                self._stopped.wait(1.0)

    def _watch_from(self, version: str) -> None:
        path = self.resource.collection(None if self.all_namespaces else self.client.namespace)
        while not self._stopped.is_set():
            query = {"resourceVersion": version}
            if self.label_selector:
                query["labelSelector"] = self.label_selector
            if self.field_selector:
                query["fieldSelector"] = self.field_selector
            for event in self.client.watch(path, query, timeout_seconds=30):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return  # too old: relist
                    raise APIError(int(obj.get("code") or 0), str(obj.get("reason", "")), obj,
                                   str(obj.get("message", "watch failed")))
                version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                if kind == "BOOKMARK":
                    continue
                with self._lock:
                    if kind == "DELETED":
                        self._objects.pop(self._key(obj), None)
                    else:
                        self._objects[self._key(obj)] = obj
                self.on_change()
                if self._stopped.is_set():
                    return


class RolloutView:
    """Informers for one rollout and (when `children`) its ReplicaSets, Pods and AnalysisRuns."""

    def __init__(self, client: Client, rollout: Mapping[str, Any], children: bool = True) -> None:
        self.name = str((rollout.get("metadata") or {}).get("name", ""))
        self._changed = threading.Condition()
        self._generation = 0
        selector = format_label_selector((rollout.get("spec") or {}).get("selector"))
        self.rollout = Informer(client, ROLLOUTS, self._notify, field_selector=f"metadata.name={self.name}")
        self.informers = [self.rollout]
        self.replicasets: Informer | None = None
        self.pods: Informer | None = None
        self.analysisruns: Informer | None = None
        self.experiments: Informer | None = None  # an experiment step's Experiments, drawn beside the runs
        if children:
            self.replicasets = Informer(client, REPLICASETS, self._notify, label_selector=selector)
            self.pods = Informer(client, PODS, self._notify, label_selector=selector)
            self.analysisruns = Informer(client, ANALYSISRUNS, self._notify, optional=True)
            self.experiments = Informer(client, EXPERIMENTS, self._notify, optional=True)
            self.informers += [self.replicasets, self.pods, self.analysisruns, self.experiments]

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def start(self, sync_timeout: float = 10.0) -> None:
        for informer in self.informers:
            informer.start()
        deadline = time.monotonic() + sync_timeout
        for informer in self.informers:
            informer.synced.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until something changed after generation `seen` or `timeout` passed; the new generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=max(0.0, timeout))
            return self._generation

    def errors(self) -> list[CLIError]:
        return [inf.error for inf in self.informers if inf.error is not None]

    def current(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        ro = next(iter(self.rollout.objects()), None)
        return (
            ro,
            self.replicasets.objects() if self.replicasets else [],
            self.pods.objects() if self.pods else [],
            [
                *(self.analysisruns.objects() if self.analysisruns else []),
                *({**e, "kind": "Experiment"} for e in (self.experiments.objects() if self.experiments else [])),
            ],
        )


class ObjectView:
    """An informer over one named object (e.g. an AnalysisRun) for `get analysisrun --watch`."""

    def __init__(self, client: Client, resource: Resource, name: str) -> None:
        self._changed = threading.Condition()
        self._generation = 0
        self.informer = Informer(client, resource, self._notify, field_selector=f"metadata.name={name}")

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def start(self, sync_timeout: float = 10.0) -> None:
        self.informer.start()
        self.informer.synced.wait(sync_timeout)

    def stop(self) -> None:
        self.informer.stop()

    def wait(self, seen: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=max(0.0, timeout))
            return self._generation

    def errors(self) -> list[CLIError]:
        return [self.informer.error] if self.informer.error is not None else []

    def current(self) -> dict[str, Any] | None:
        return next(iter(self.informer.objects()), None)


class RolloutListView:
    """An informer over all rollouts of a namespace (or of all namespaces) for `list rollouts --watch`."""

    def __init__(self, client: Client, all_namespaces: bool) -> None:
        self._changed = threading.Condition()
        self._generation = 0
        self.informer = Informer(client, ROLLOUTS, self._notify, all_namespaces=all_namespaces)

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def start(self) -> None:
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop()

    def wait(self, seen: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=max(0.0, timeout))
            return self._generation


def report_errors(view: RolloutView | ObjectView, reported: set[str], err: TextIO = sys.stderr) -> None:
    """Print each new informer error once (the informer keeps retrying)."""
    for error in view.errors():
        if error.message not in reported:
            reported.add(error.message)
            print(f"Warning: {error.message} (retrying)", file=err)
