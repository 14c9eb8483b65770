"""The controller's ``/metrics``: Argo Rollouts' metric names, types and labels, with prometheus_client.

What happens is counted here as it happens (reconcile times and errors, Events, API requests, work
queue activity); what the objects look like is read from the cache at scrape time
(:mod:`rollouts.controller.state_metrics`). Series about one Rollout or AnalysisRun are removed when it
is deleted (:meth:`ControllerMetrics.forget`). Names Argo does not have keep a ``pyrollouts_`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from rollouts.controller.state_metrics import AnalysisRunCollector, RolloutCollector
from rollouts.controller.workqueue import QueueMetrics

# Argo's buckets for rollout_reconcile and analysis_run_reconcile.
RECONCILE_BUCKETS = (0.01, 0.15, 0.25, 0.5, 1.0)
ROLLOUT, ANALYSIS_RUN = "rollout", "analysisrun"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# The verbs of client-go's request metrics (argoproj/pkg kubeclientmetrics), by HTTP method.
VERBS = {"POST": "Create", "PUT": "Update", "PATCH": "Patch", "DELETE": "Delete"}
# Kinds whose requests Argo counts without the object's name (too many names).
UNNAMED_KINDS = frozenset({"events", "replicasets"})


def request_labels(method: str, path: str) -> tuple[str, str, str, str]:
    """``(kind, namespace, name, verb)`` of an API request path, as Argo's request counter labels
    them: the resource's plural as kind, ``List`` for a GET of a collection, ``N/A`` for the name of a
    list or of an Event or ReplicaSet, ``Unknown`` for what is not a resource path."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    # /api/v1/... or /apis/GROUP/VERSION/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else []
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return "Unknown", "Unknown", "Unknown", "Unknown"
    kind, name = rest[0], rest[1] if len(rest) > 1 else ""
    verb = VERBS.get(method.upper(), "Get" if name else "List")
    if verb == "List" or kind in UNNAMED_KINDS:
        name = "N/A"
    return kind, namespace, name, verb


class _ErrorCounts(Collector):
    """``rollout_reconcile_error`` and ``analysis_run_reconcile_error``: counters under Argo's names,
    which lack the ``_total`` suffix prometheus_client gives every counter, so exposed untyped."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], float] = {}  # (kind, namespace, name)

    def add(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        self.counts[key] = self.counts.get(key, 0.0) + 1

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.counts.pop((kind, namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        families = {
            ROLLOUT: Metric("rollout_reconcile_error", "Error occurring during the rollout", "unknown"),
            ANALYSIS_RUN: Metric("analysis_run_reconcile_error", "Error occurring during the analysis run", "unknown"),
        }
        for (kind, ns, name), count in sorted(self.counts.items()):
            family = families[kind]
            family.add_sample(family.name, {"namespace": ns, "name": name}, count)
        yield from families.values()


class ControllerMetrics:
    """Every metric of one controller process, in its own registry (tests run several controllers)."""

    def __init__(
        self,
        rollouts: Callable[[], Iterable[Mapping[str, Any]]],
        analysis_runs: Callable[[], Iterable[Mapping[str, Any]]],
        leading: Callable[[], bool],
    ) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # Argo's series have no *_created companions
        self.registry = CollectorRegistry(auto_describe=True)
        keys = ["namespace", "name"]
        self.reconcile = {
            ROLLOUT: Histogram(
                "rollout_reconcile", "Rollout reconciliation performance.", keys,
                buckets=RECONCILE_BUCKETS, registry=self.registry,
            ),
            ANALYSIS_RUN: Histogram(
                "analysis_run_reconcile", "Analysis Run reconciliation performance.", keys,
                buckets=RECONCILE_BUCKETS, registry=self.registry,
            ),
        }  # fmt: skip
        self.errors = _ErrorCounts()
        self.registry.register(self.errors)
        self.events = Counter(
            "rollout_events", "Count of rollout events", [*keys, "type", "reason"], registry=self.registry
        )
        self.requests = Counter(
            "controller_clientset_k8s_request",
            "Number of kubernetes requests executed during application reconciliation.",
            ["kind", "namespace", "name", "verb", "status_code"],
            registry=self.registry,
        )
        leader = Gauge(
            "pyrollouts_leader",
            "1 while this controller may write (holds the Lease, or runs without election).",
            registry=self.registry,
        )
        leader.set_function(lambda: float(leading()))
        self.queues = QueueMetrics(self.registry)
        self.registry.register(RolloutCollector(rollouts))
        self.registry.register(AnalysisRunCollector(analysis_runs))
        # Argo's Go runtime reports process_* and go_*; ours process_* and the Python equivalents.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_reconcile(self, kind: str, namespace: str, name: str, seconds: float, failed: bool = False) -> None:
        """One reconcile of a Rollout or AnalysisRun (`kind`: ROLLOUT, ANALYSIS_RUN) took `seconds`."""
        self.reconcile[kind].labels(namespace, name).observe(seconds)
        if failed:
            self.errors.add(kind, namespace, name)

    def event(self, namespace: str, name: str, etype: str, reason: str) -> None:
        """An Event was recorded about the object `namespace/name`."""
        self.events.labels(namespace, name, etype, reason).inc()

    def response(self, method: str, path: str, status: int) -> None:
        """The API server answered one request (the API client's hook: one call per response)."""
        kind, namespace, name, verb = request_labels(method, path)
        self.requests.labels(kind, namespace, name, verb, str(status)).inc()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The object is deleted: its reconcile, error and Event series go (the state metrics follow the cache)."""
        self.reconcile[kind].remove(namespace, name)
        self.errors.forget(kind, namespace, name)
        self.events.remove_by_labels({"namespace": namespace, "name": name})
        plural = "rollouts" if kind == ROLLOUT else "analysisruns"
        self.requests.remove_by_labels({"kind": plural, "namespace": namespace, "name": name})

    def render(self) -> str:
        return prometheus_client.generate_latest(self.registry).decode()
