"""Pure: what `get analysisrun` shows, computed from the AnalysisRun the API server returns: its phase,
arguments (references shown as what they point at, never a secret's value), and per metric the phase,
counts, the last measurements and a judge's verdict. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollouts.cli.info import JudgeInfo, analysis_icon, as_int, as_list, as_map, judge_info, meta
from rollouts.model.timestamps import parse_datetime

# How many of a metric's most recent measurements `get analysisrun` shows.
LAST_MEASUREMENTS = 3
_COMPLETED_PHASES = ("Successful", "Failed", "Error", "Inconclusive")


@dataclass
class MeasurementInfo:
    status: str
    icon: str
    value: str
    started: dt.datetime | None
    finished: dt.datetime | None
    message: str


@dataclass
class MetricInfo:
    name: str
    status: str
    icon: str
    measured: int
    count: int | None
    successful: int
    failed: int
    inconclusive: int
    error: int
    message: str
    dry_run: bool
    measurements: list[MeasurementInfo] = field(default_factory=list)
    judge: JudgeInfo | None = None


@dataclass
class AnalysisRunDetail:
    name: str
    namespace: str
    created: dt.datetime | None
    status: str
    icon: str
    message: str
    terminating: bool
    args: list[str]
    metrics: list[MetricInfo]
    last: int = LAST_MEASUREMENTS  # measurements shown per metric


def argument_text(arg: Mapping[str, Any]) -> str:
    """`name=value`; a reference is shown as what it points at, never as a secret's content."""
    name = str(arg.get("name", ""))
    if "value" in arg:
        return f"{name}={arg.get('value')}"
    value_from = as_map(arg.get("valueFrom"))
    secret = as_map(value_from.get("secretKeyRef"))
    if secret:
        return f"{name}=<secret {secret.get('name', '')}/{secret.get('key', '')}>"
    field_ref = as_map(value_from.get("fieldRef"))
    if field_ref:
        return f"{name}=<field {field_ref.get('fieldPath', '')}>"
    template_hash = value_from.get("podTemplateHashValue")
    if template_hash:
        return f"{name}=<podTemplateHash {template_hash}>"
    return f"{name}=<unset>"


def _measurement_value(measurement: Mapping[str, Any]) -> str:
    value = measurement.get("value")
    if isinstance(value, str) and value:
        return value
    job = as_map(measurement.get("metadata")).get("job-name")
    return f"job/{job}" if isinstance(job, str) and job else ""


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    number = as_int(value, -1)
    return number if number >= 0 else None


def analysisrun_detail(run: Mapping[str, Any], last: int = LAST_MEASUREMENTS) -> AnalysisRunDetail:
    """What `get analysisrun` shows: the run's phase, its args, and per metric (in spec order, then
    results for metrics the spec no longer names) the phase, counts and the last `last` measurements."""
    run_meta, spec, status = meta(run), as_map(run.get("spec")), as_map(run.get("status"))
    phase = str(status.get("phase") or "Pending")
    results = {str(as_map(r).get("name", "")): as_map(r) for r in as_list(status.get("metricResults"))}
    dry_run_names = {str(as_map(d).get("metricName", "")) for d in as_list(spec.get("dryRun"))}
    specs = {str(as_map(m).get("name", "")): as_map(m) for m in as_list(spec.get("metrics"))}
    names = list(specs) + [n for n in results if n not in specs]
    metrics: list[MetricInfo] = []
    for name in names:
        result, metric_spec = results.get(name, {}), specs.get(name, {})
        metric_phase = str(result.get("phase") or "Pending")
        measurements = [as_map(m) for m in as_list(result.get("measurements"))]
        shown = measurements[-last:] if last > 0 else []
        metrics.append(
            MetricInfo(
                name=name,
                status=metric_phase,
                icon=analysis_icon(metric_phase),
                measured=as_int(result.get("count")),
                count=_int_or_none(metric_spec.get("count")),
                successful=as_int(result.get("successful")),
                failed=as_int(result.get("failed")),
                inconclusive=as_int(result.get("inconclusive")),
                error=as_int(result.get("error")),
                message=str(result.get("message") or ""),
                dry_run=result.get("dryRun") is True or name in dry_run_names or "*" in dry_run_names,
                measurements=[
                    MeasurementInfo(
                        status=str(m.get("phase") or ""),
                        icon=analysis_icon(str(m.get("phase") or "")),
                        value=_measurement_value(m),
                        started=parse_datetime(m.get("startedAt")),
                        finished=parse_datetime(m.get("finishedAt")),
                        message=str(m.get("message") or ""),
                    )
                    for m in shown
                ],
                judge=judge_info(metric_spec, measurements),
            )
        )
    return AnalysisRunDetail(
        name=str(run_meta.get("name", "")),
        namespace=str(run_meta.get("namespace", "")),
        created=parse_datetime(run_meta.get("creationTimestamp")),
        status=phase,
        icon=analysis_icon(phase),
        message=str(status.get("message") or ""),
        terminating=spec.get("terminate") is True and phase not in _COMPLETED_PHASES,
        args=[argument_text(as_map(a)) for a in as_list(spec.get("args"))],
        metrics=metrics,
        last=last,
    )
