"""The decisions of the AnalysisRun controller, without I/O: which metrics are due, how a measurement
changes the status, the metrics' and the run's phases, retention, termination, when to wake up next
and when a finished run is deleted (``ttlStrategy``).

Follows argo-rollouts ``analysis/analysis.go`` (``generateMetricTasks``, ``runMeasurements``,
``assessRunStatus``, ``calculateNextReconcileTime``, ``garbageCollectMeasurements``,
``maybeGarbageCollectAnalysisRun``); the phase rules themselves live in :mod:`analysis.phases`.
Everything works on a deep copy of ``status`` that the caller writes back.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from analysis.caps import MAX_MESSAGE_CHARS, cap_text, fit_status
from analysis.phases import (
    AnalysisPhase,
    MetricAssessment,
    MetricCounters,
    assess_metric_detail,
    assess_run,
    effective_count,
    is_completed,
    measurement_retention,
    resolve_dry_run,
    retain_measurements,
    run_summaries,
)
from analysis.providers.base import JUDGE_STATE_KEY, Measurement, format_time
from analysis.spec import TTL_MAX_SECONDS, ArgError, SpecError, duration_seconds, provider_kind, substitute

__all__ = [
    "DEFAULT_ERROR_RETRY_SECONDS",
    "TERMINATED_MESSAGE",
    "Task",
    "assess",
    "dry_run_metrics",
    "due_tasks",
    "in_flight",
    "is_terminating",
    "metric_specs",
    "next_wake",
    "parse_time",
    "prepare_status",
    "record_measurement",
    "terminated",
    "ttl_deadline",
]

DEFAULT_ERROR_RETRY_SECONDS: Final = 10.0  # Argo's DefaultErrorRetryInterval
TERMINATED_MESSAGE: Final = "Metric Terminated"


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Task:
    """A metric to measure now: a new measurement, or the in-flight one to resume or terminate."""

    name: str
    in_flight: Measurement | None = None
    terminate: bool = False


def _metric_names(spec: Mapping[str, Any]) -> list[str]:
    return [str(m.get("name")) for m in spec.get("metrics") or []]


def dry_run_metrics(spec: Mapping[str, Any]) -> set[str]:
    """Names of the dry-run metrics (``spec.dryRun``; validated beforehand)."""
    return resolve_dry_run(_metric_names(spec), spec.get("dryRun") or [])


def _results(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(r.get("name")): r for r in status.get("metricResults") or []}


def prepare_status(spec: Mapping[str, Any], status: Mapping[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    """A working copy of ``status``: ``startedAt`` and phase Running on the first pass, and one
    ``metricResults`` entry per metric (Pending until its first measurement)."""
    out = copy.deepcopy(dict(status or {}))
    if is_completed(out.get("phase")):
        return out
    out.setdefault("startedAt", format_time(now))
    out["phase"] = out.get("phase") if out.get("phase") == AnalysisPhase.RUNNING else AnalysisPhase.RUNNING.value
    dry = dry_run_metrics(spec)
    results = _results(out)
    ordered = []
    for name in _metric_names(spec):
        entry = results.get(name) or {"name": name, "phase": AnalysisPhase.PENDING.value}
        if name in dry:
            entry["dryRun"] = True
        ordered.append(entry)
    out["metricResults"] = ordered
    return out


def _last(entry: Mapping[str, Any] | None) -> Measurement | None:
    measurements = (entry or {}).get("measurements") or []
    return Measurement.from_status(measurements[-1]) if measurements else None


def in_flight(status: Mapping[str, Any], name: str) -> Measurement | None:
    """The metric's unfinished measurement, if any."""
    last = _last(_results(status).get(name))
    return last if last is not None and not last.finished_at else None


def is_terminating(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``spec.terminate``, or a non-dry-run metric already Failed, Error or Inconclusive (Argo's IsTerminating)."""
    if spec.get("terminate"):
        return True
    dry = dry_run_metrics(spec)
    return any(
        r.get("phase") in (AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE)
        for name, r in _results(status).items()
        if name not in dry
    )


def _seconds(metric: Mapping[str, Any], key: str) -> float | None:
    try:
        return duration_seconds(metric.get(key), key)
    except SpecError:
        return None


def _count_reached(metric: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    try:
        count = effective_count(metric)
    except ValueError:
        return False
    return count is not None and MetricCounters.from_status(entry).count >= count


def _due_at(metric: Mapping[str, Any], entry: Mapping[str, Any], status: Mapping[str, Any]) -> dt.datetime | None:
    """When the metric's next measurement is due (not in flight, not terminating); None: never."""
    if _count_reached(metric, entry):
        return None
    last = _last(entry)
    if last is None:
        started = parse_time(status.get("startedAt"))
        delay = _seconds(metric, "initialDelay") or 0.0
        return started + dt.timedelta(seconds=delay) if started is not None else None
    finished = parse_time(last.finished_at)
    if finished is None:
        return None
    interval = _seconds(metric, "interval")
    if last.phase is AnalysisPhase.ERROR:
        retry = DEFAULT_ERROR_RETRY_SECONDS if interval is None else min(interval, DEFAULT_ERROR_RETRY_SECONDS)
        return finished + dt.timedelta(seconds=retry)
    if interval is None:
        return None
    return finished + dt.timedelta(seconds=interval)


# Providers whose measurement an outside object finishes (a Job's condition): resuming one only reads
# the cache, so every pass of the run does, as Argo's Job metric, which has no resumeAt.
RESUMED_ON_EVENTS: Final = frozenset({"job"})


def due_tasks(
    spec: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime, metrics: Mapping[str, Mapping[str, Any]]
) -> list[Task]:
    """What to do now, as Argo's ``generateMetricTasks``.

    ``metrics`` are the metric specs by name with their plain (non-secret) args substituted, so that
    ``interval: "{{args.every}}"`` works. An in-flight measurement is resumed once its ``resumeAt``
    has passed (terminated instead when the run is terminating), a Job metric's on every pass (the Job
    watch wakes the run when the Job finishes; its ``resumeAt`` is the poll should an event be missed);
    a new one starts when the metric is
    unfinished, the run is not terminating, its count is not reached and it is due: after
    ``initialDelay`` for the first, ``interval`` after the last, and ``min(interval, 10s)`` after an
    Error.
    """
    if is_completed(status.get("phase")):
        return []
    terminating = is_terminating(spec, status)
    results = _results(status)
    tasks: list[Task] = []
    for name in _metric_names(spec):
        entry = results.get(name) or {}
        current = entry.get("phase")
        flying = in_flight(status, name)
        if flying is not None:
            resume = parse_time(flying.resume_at)
            if terminating or is_completed(current):
                tasks.append(Task(name, flying, terminate=True))
            elif resume is None or resume <= now or _resumed_on_events(metrics.get(name) or {}):
                tasks.append(Task(name, flying))
            continue
        if is_completed(current) or terminating:
            continue
        due = _due_at(metrics.get(name) or {}, entry, status)
        if due is not None and due <= now:
            tasks.append(Task(name))
    return tasks


def _resumed_on_events(metric: Mapping[str, Any]) -> bool:
    """Is the metric's in-flight measurement finished by an outside event the controller watches?"""
    return provider_kind(metric) in RESUMED_ON_EVENTS


def record_measurement(status: dict[str, Any], name: str, measurement: Measurement) -> None:
    """Put ``measurement`` into the metric's result: it replaces the in-flight one or is appended;
    a completed one updates the counters (Argo's ``runMeasurements``)."""
    entry = next((r for r in status.setdefault("metricResults", []) if r.get("name") == name), None)
    if entry is None:
        entry = {"name": name, "phase": AnalysisPhase.PENDING.value}
        status["metricResults"].append(entry)
    measurements = entry.setdefault("measurements", [])
    if measurements and not measurements[-1].get("finishedAt"):
        measurements[-1] = measurement.to_status()
    else:
        measurements.append(measurement.to_status())
    if JUDGE_STATE_KEY in measurement.metadata:  # a judge's state: only the newest measurement keeps it
        for older in measurements[:-1]:
            (older.get("metadata") or {}).pop(JUDGE_STATE_KEY, None)
    if is_completed(measurement.phase) and measurement.undecided:
        entry.update(MetricCounters.from_status(entry).record_undecided().to_status())
        entry.pop("message", None)
    elif is_completed(measurement.phase):
        entry.update(MetricCounters.from_status(entry).record(measurement.phase).to_status())
        if measurement.phase is AnalysisPhase.ERROR and measurement.message:
            entry["message"] = cap_text(measurement.message, MAX_MESSAGE_CHARS)
        elif measurement.phase is not AnalysisPhase.ERROR:
            entry.pop("message", None)


def terminated(measurement: Measurement, now: dt.datetime) -> Measurement:
    """An in-flight measurement stopped because the run was decided: Successful, "Metric Terminated"."""
    return Measurement(
        phase=AnalysisPhase.SUCCESSFUL,
        value=measurement.value,
        message=TERMINATED_MESSAGE,
        metadata=measurement.metadata,
        started_at=measurement.started_at or format_time(now),
        finished_at=format_time(now),
    )


def _assess_one(
    metric: Mapping[str, Any], entry: Mapping[str, Any], terminating: bool
) -> MetricAssessment:
    last = _last(entry)
    current = entry.get("phase")
    try:
        return assess_metric_detail(
            metric,
            MetricCounters.from_status(entry),
            terminating,
            last.phase if last is not None else None,
            AnalysisPhase(current) if current else None,
        )
    except ValueError as exc:  # e.g. failureLimit: "{{args.x}}" whose value is not a number
        return MetricAssessment(AnalysisPhase.ERROR, f"invalid metric spec: {exc}")


def assess(
    spec: Mapping[str, Any], status: dict[str, Any], now: dt.datetime, metrics: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Derive every metric's phase and the run's phase, message, summaries and ``completedAt``;
    drop measurements beyond ``measurementRetention`` (default 10 per metric), and the oldest ones
    while the status is over :data:`analysis.caps.MAX_STATUS_BYTES`.

    Returns the names of metrics whose in-flight measurement must be terminated now because the
    run is terminating (decided, or ``spec.terminate``); the caller terminates them, records the
    result and calls :func:`assess` again.
    """
    if is_completed(status.get("phase")):
        return []
    dry = dry_run_metrics(spec)
    names = _metric_names(spec)
    results = _results(status)
    phases, reasons = _metric_phases(spec, status, metrics, dry)
    messages = _record_metric_phases(names, results, phases, reasons)
    retention = measurement_retention(names, spec.get("measurementRetention") or [])
    for name in names:
        kept = results.get(name)
        if kept is not None and kept.get("measurements"):
            kept["measurements"] = retain_measurements(kept["measurements"], retention[name])
    fit_status(status)  # whatever the retention says, the run stays far below the object limit
    # Metrics with a measurement in flight are not finished; the run waits for them or terminates them.
    flying = [n for n in names if in_flight(status, n) is not None]
    run_phase, message = assess_run(
        {n: (AnalysisPhase.RUNNING if n in flying and not is_completed(phases[n]) else phases[n]) for n in names},
        dry,
        bool(spec.get("terminate")),
        reasons=reasons,
        messages=messages,
    )
    regular, dry_summary = run_summaries(phases, dry)
    status["runSummary"] = regular.to_status()
    if dry:
        status["dryRunSummary"] = dry_summary.to_status()
    if is_completed(run_phase) and flying:
        # Decided while something was still measuring: stop those first, then complete.
        status["phase"] = AnalysisPhase.RUNNING.value
        return flying
    _record_run_phase(status, run_phase, message, now)
    return []


def _metric_phases(
    spec: Mapping[str, Any], status: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]], dry: set[str]
) -> tuple[dict[str, AnalysisPhase], dict[str, str]]:
    """Every metric's phase and the reason for it (a metric with a measurement in flight is Running)."""
    results = _results(status)
    # Two passes: a metric decided in this pass makes the run terminating for the others (Argo
    # notices one reconcile later; see assess_run).
    phases: dict[str, AnalysisPhase] = {}
    reasons: dict[str, str] = {}
    for _ in range(2):
        terminating = bool(spec.get("terminate")) or any(
            p in (AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE)
            for n, p in phases.items()
            if n not in dry
        ) or is_terminating(spec, status)
        for name in _metric_names(spec):
            current = results.get(name) or {"name": name}
            busy = in_flight(status, name) is not None
            verdict = _assess_one(metrics.get(name) or {}, current, terminating and not busy)
            if busy and not is_completed(current.get("phase")):
                verdict = MetricAssessment(AnalysisPhase.RUNNING)
            phases[name], reasons[name] = verdict.phase, verdict.reason
    return phases, reasons


def _record_metric_phases(
    names: list[str],
    results: Mapping[str, dict[str, Any]],
    phases: Mapping[str, AnalysisPhase],
    reasons: Mapping[str, str],
) -> dict[str, str]:
    """Write each metric's phase and message into its result; returns the last messages of the Error metrics
    and of the Inconclusive metrics whose last measurement was Inconclusive."""
    messages: dict[str, str] = {}
    for name in names:
        found = results.get(name)
        if found is None:
            continue
        entry = found
        entry["phase"] = phases[name].value
        last = _last(entry)
        # An Inconclusive metric's own last Inconclusive message says why it could not decide (the
        # judge's "too little traffic ..."); an Error metric's last message, whatever its phase.
        explained = phases[name] is AnalysisPhase.ERROR or (
            phases[name] is AnalysisPhase.INCONCLUSIVE and last is not None and last.phase is phases[name]
        )
        if explained and last is not None and last.message:
            messages[name] = last.message
        if reasons[name] and phases[name] not in (AnalysisPhase.SUCCESSFUL, AnalysisPhase.RUNNING):
            entry["message"] = reasons[name] + (f": {messages[name]}" if name in messages else "")
    return messages


def _record_run_phase(status: dict[str, Any], run_phase: AnalysisPhase, message: str, now: dt.datetime) -> None:
    status["phase"] = run_phase.value
    if message:
        status["message"] = message
    elif not is_completed(run_phase):
        status.pop("message", None)
    if is_completed(run_phase):
        status.setdefault("completedAt", format_time(now))
        if not message and run_phase is AnalysisPhase.SUCCESSFUL:
            status.pop("message", None)


def next_wake(
    spec: Mapping[str, Any], status: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]
) -> dt.datetime | None:
    """The earliest time something is due (Argo's ``calculateNextReconcileTime``); for a finished run,
    its ``ttlStrategy`` deadline. None when only an outside event (a Job finishing) can move it."""
    if is_completed(status.get("phase")):
        return ttl_deadline(spec, status)
    terminating = is_terminating(spec, status)
    results = _results(status)
    times: list[dt.datetime] = []
    for name in _metric_names(spec):
        entry = results.get(name) or {}
        flying = in_flight(status, name)
        if flying is not None:
            resume = parse_time(flying.resume_at)
            if resume is not None:
                times.append(resume)
            continue
        if is_completed(entry.get("phase")) or terminating:
            continue
        due = _due_at(metrics.get(name) or {}, entry, status)
        if due is not None:
            times.append(due)
    return min(times) if times else None


def ttl_deadline(spec: Mapping[str, Any], status: Mapping[str, Any]) -> dt.datetime | None:
    """When a finished run is deleted: ``completedAt`` + ``secondsAfterSuccess`` for a Successful run,
    ``secondsAfterFailure`` for a Failed one, else ``secondsAfterCompletion``; None: kept."""
    ttl = spec.get("ttlStrategy") or {}
    completed = parse_time(status.get("completedAt"))
    phase = status.get("phase")
    if not ttl or completed is None or not is_completed(phase):
        return None
    seconds: Any = None
    if phase == AnalysisPhase.SUCCESSFUL and ttl.get("secondsAfterSuccess") is not None:
        seconds = ttl["secondsAfterSuccess"]
    elif phase == AnalysisPhase.FAILED and ttl.get("secondsAfterFailure") is not None:
        seconds = ttl["secondsAfterFailure"]
    elif ttl.get("secondsAfterCompletion") is not None:
        seconds = ttl["secondsAfterCompletion"]
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= TTL_MAX_SECONDS:
        return None  # unset, or refused by validate_run_spec: kept (a huge one would overflow the date)
    return completed + dt.timedelta(seconds=seconds)


def metric_specs(spec: Mapping[str, Any], args: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
    """Metric specs by name with ``args`` substituted where possible (the raw spec where not)."""
    out: dict[str, Mapping[str, Any]] = {}
    for metric in spec.get("metrics") or []:
        try:
            out[str(metric.get("name"))] = substitute(metric, args)
        except ArgError:
            out[str(metric.get("name"))] = metric
    return out
