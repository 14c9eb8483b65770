"""Rollout and AnalysisRun state as Argo's metrics, read from the controller's cache at scrape time.

Argo Rollouts' collectors list its informers on each scrape instead of setting gauges while it
reconciles; so do these, from :class:`~rollouts.controller.client.Cache`. A deleted object leaves the
cache, so its series leave the next scrape. Names, label sets and label values are Argo's
(``controller/metrics/rollouts.go`` and ``analysis.go``): ``rollout_info``, ``rollout_info_replicas_*``,
``rollout_phase``, ``analysis_run_info``, ``analysis_run_phase``, ``analysis_run_metric_type``,
``analysis_run_metric_phase``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analysis.phases import resolve_dry_run
from rollouts.model import conditions as cond

# Argo's RolloutPhase of the metrics (not status.phase): what the Progressing condition says.
PHASE_BY_PROGRESSING_REASON = {
    cond.NEW_RS_AVAILABLE_REASON: "Completed",
    cond.ROLLOUT_PAUSED_REASON: "Paused",
    cond.FAILED_RS_CREATE_REASON: "Error",
    cond.TIMED_OUT_REASON: "Timeout",
    cond.ROLLOUT_ABORTED_REASON: "Abort",
}
# rollout_phase has one series per phase, 1 for the current one; Argo lists these six (not InvalidSpec).
ROLLOUT_PHASES = ("Completed", "Progressing", "Paused", "Timeout", "Error", "Abort")
ANALYSIS_PHASES = ("Pending", "Error", "Failed", "Successful", "Running", "Inconclusive")
# The routers Argo names in rollout_info's traffic_router label, in the order it checks them (the
# last one present wins); any other router (a plugin, the Gateway API) leaves the label empty, as in Argo.
TRAFFIC_ROUTERS = (
    ("alb", "ALB"),
    ("ambassador", "Ambassador"),
    ("istio", "Istio"),
    ("nginx", "Nginx"),
    ("smi", "SMI"),
    ("appMesh", "AppMesh"),
)
# analysis_run_metric_type: Argo's provider type names (metricproviders.Type), by the spec's provider key.
PROVIDER_TYPES = {
    "prometheus": "Prometheus",
    "job": "Job",
    "kayenta": "Kayenta",
    "web": "Web",
    "datadog": "Datadog",
    "wavefront": "Wavefront",
    "newRelic": "NewRelic",
    "cloudWatch": "CloudWatch",
    "graphite": "Graphite",
    "influxdb": "Influxdb",
    "skywalking": "SkyWalking",
    "plugin": "RPCPlugin",
}
UNKNOWN_PROVIDER = "Unknown Provider"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def rollout_phase(rollout: Mapping[str, Any]) -> str:
    """Argo's calculatePhase: from the Progressing condition's reason; InvalidSpec wins."""
    found = {str(c.get("type")): c for c in _map(rollout.get("status")).get("conditions") or [] if isinstance(c, dict)}
    if cond.INVALID_SPEC in found:
        return "InvalidSpec"
    reason = str(_map(found.get(cond.PROGRESSING)).get("reason") or "")
    return PHASE_BY_PROGRESSING_REASON.get(reason, "Progressing")


def strategy_and_router(rollout: Mapping[str, Any]) -> tuple[str, str]:
    """``(strategy, traffic_router)`` as Argo labels them: blueGreen, canary or none."""
    strategy = _map(_map(rollout.get("spec")).get("strategy"))
    if strategy.get("blueGreen") is not None:
        return "blueGreen", ""
    if strategy.get("canary") is None:
        return "none", ""
    routing = _map(_map(strategy.get("canary")).get("trafficRouting"))
    router = ""
    for key, name in TRAFFIC_ROUTERS:
        if routing.get(key) is not None:
            router = name
    return "canary", router


def provider_type(metric: Mapping[str, Any]) -> str:
    """Argo's type name of a metric's provider; one of ours Argo lacks (``judge``) by its key."""
    provider = _map(metric.get("provider"))
    for key, name in PROVIDER_TYPES.items():
        if provider.get(key) is not None:
            return name
    return next(iter(provider), UNKNOWN_PROVIDER)


def _dry_run_metrics(spec: Mapping[str, Any], names: Sequence[str]) -> set[str]:
    try:
        return resolve_dry_run(names, [e for e in spec.get("dryRun") or [] if isinstance(e, Mapping)])
    except ValueError:  # a rule matching nothing: the run is Errored for it; report no dry-run here
        return set()


def _metric_states(run: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """``(metric, provider type, dry_run, phase)`` of each metric of a run; Pending before a result."""
    spec, status = _map(run.get("spec")), _map(run.get("status"))
    metrics = [m for m in spec.get("metrics") or [] if isinstance(m, Mapping)]
    dry_run = _dry_run_metrics(spec, [str(m.get("name")) for m in metrics])
    results = {str(r.get("name")): r for r in status.get("metricResults") or [] if isinstance(r, Mapping)}
    for metric in metrics:
        name = str(metric.get("name"))
        phase = str(_map(results.get(name)).get("phase") or "") or "Pending"
        yield name, provider_type(metric), "true" if name in dry_run else "false", phase


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _map(obj.get("metadata"))
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class RolloutCollector(Collector):
    """``rollout_info``, ``rollout_info_replicas_*`` and the deprecated ``rollout_phase``, per Rollout."""

    def __init__(self, rollouts: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self.rollouts = rollouts

    def collect(self) -> Iterator[Metric]:
        keys = ["namespace", "name"]
        info = GaugeMetricFamily(
            "rollout_info", "Information about rollout.", labels=[*keys, "strategy", "traffic_router", "phase"]
        )
        replicas = {
            what: GaugeMetricFamily(
                f"rollout_info_replicas_{what}", f"The number of {what} replicas per rollout.", labels=keys
            )
            for what in ("available", "unavailable", "desired", "updated")
        }
        phase = GaugeMetricFamily(
            "rollout_phase",
            "Information on the state of the rollout (DEPRECATED - use rollout_info)",
            labels=[*keys, "strategy", "phase"],
        )
        for rollout in list(self.rollouts()):
            ns, name = _name(rollout)
            strategy, router = strategy_and_router(rollout)
            current = rollout_phase(rollout)
            spec, status = _map(rollout.get("spec")), _map(rollout.get("status"))
            available = _int(status.get("availableReplicas"))
            info.add_metric([ns, name, strategy, router, current], 1)
            replicas["available"].add_metric([ns, name], available)
            replicas["unavailable"].add_metric([ns, name], _int(status.get("replicas")) - available)
            replicas["desired"].add_metric([ns, name], _int(spec.get("replicas"), 1))
            replicas["updated"].add_metric([ns, name], _int(status.get("updatedReplicas")))
            for each in ROLLOUT_PHASES:
                phase.add_metric([ns, name, strategy, each], float(each == current))
        yield info
        yield from replicas.values()
        yield phase


class AnalysisRunCollector(Collector):
    """``analysis_run_info``, the deprecated ``analysis_run_phase``, and per metric of each run
    ``analysis_run_metric_type`` and ``analysis_run_metric_phase``."""

    def __init__(self, runs: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self.runs = runs

    def collect(self) -> Iterator[Metric]:
        keys = ["namespace", "name"]
        info = GaugeMetricFamily("analysis_run_info", "Information about analysis run.", labels=[*keys, "phase"])
        phase = GaugeMetricFamily(
            "analysis_run_phase",
            "Information on the state of the Analysis Run (DEPRECATED - use analysis_run_info)",
            labels=[*keys, "phase"],
        )
        metric_type = GaugeMetricFamily(
            "analysis_run_metric_type",
            "Information on the type of a specific metric in the Analysis Runs",
            labels=[*keys, "metric", "type"],
        )
        metric_phase = GaugeMetricFamily(
            "analysis_run_metric_phase",
            "Information on the duration of a specific metric in the Analysis Run",
            labels=[*keys, "metric", "type", "dry_run", "phase"],
        )
        for run in list(self.runs()):
            ns, name = _name(run)
            current = str(_map(run.get("status")).get("phase") or "")
            info.add_metric([ns, name, current], 1)
            for each in ANALYSIS_PHASES:
                phase.add_metric([ns, name, each], float(each == (current or "Pending")))
            for metric, kind, dry, result_phase in _metric_states(run):
                metric_type.add_metric([ns, name, metric, kind], 1)
                for each in ANALYSIS_PHASES:
                    metric_phase.add_metric([ns, name, metric, kind, dry, each], float(each == result_phase))
        yield from (info, phase, metric_type, metric_phase)
