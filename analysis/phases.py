"""Measurement, metric and AnalysisRun phases, derived as Argo Rollouts derives them.

Pure functions only: no I/O and no clock. The rules follow argo-rollouts
``utils/evaluate/evaluate.go`` (``EvaluateResult``), ``analysis/analysis.go``
(``runMeasurements`` counters, ``assessMetricStatus``,
``assessMetricFailureInconclusiveOrError``, ``assessRunStatus``) and
``utils/analysis/helpers.go`` (``IsWorse``, ``IsTerminating``, ``GetDryRunMetrics``,
``GetMeasurementRetentionMetrics``). Where we deliberately differ, the docstring says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from analysis.expr.condition import Condition
from analysis.expr.errors import ConditionEvalError

__all__ = [
    "DEFAULT_CONSECUTIVE_ERROR_LIMIT",
    "DEFAULT_MEASUREMENT_RETENTION",
    "AnalysisPhase",
    "MetricAssessment",
    "MetricCounters",
    "RunSummary",
    "assess_metric",
    "assess_metric_detail",
    "assess_run",
    "consecutive_error_limit",
    "consecutive_success_limit",
    "effective_count",
    "evaluate_measurement",
    "failure_limit",
    "inconclusive_limit",
    "is_completed",
    "is_worse",
    "measurement_retention",
    "resolve_dry_run",
    "retain_measurements",
    "run_summaries",
    "worst",
]

DEFAULT_CONSECUTIVE_ERROR_LIMIT: Final = 4
DEFAULT_MEASUREMENT_RETENTION: Final = 10


class AnalysisPhase(StrEnum):
    """Phase of a measurement, a metric or a whole AnalysisRun (Argo's spelling)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"


_COMPLETED: Final = frozenset(
    {AnalysisPhase.SUCCESSFUL, AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE}
)
# A non-dry-run metric in one of these phases ends the whole run (Argo's IsTerminating).
_DECISIVE: Final = frozenset({AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE})
# Best to worst, as Argo's analysisStatusOrder: Failed is worse than Error.
_ORDER: Final = (
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.RUNNING,
    AnalysisPhase.PENDING,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
    AnalysisPhase.FAILED,
)


def is_completed(phase: AnalysisPhase | str | None) -> bool:
    """True for Successful, Failed, Error and Inconclusive."""
    return phase is not None and phase in _COMPLETED


def is_worse(current: AnalysisPhase, new: AnalysisPhase) -> bool:
    """Whether ``new`` is worse than ``current`` (Successful < ... < Inconclusive < Error < Failed)."""
    return _ORDER.index(new) > _ORDER.index(current)


def worst(left: AnalysisPhase, right: AnalysisPhase) -> AnalysisPhase:
    """The worse of two phases."""
    return right if is_worse(left, right) else left


# --------------------------------------------------------------------------- one measurement


def evaluate_measurement(
    success: Condition | None, failure: Condition | None, result: Any
) -> tuple[AnalysisPhase, str]:
    """Phase of one measurement from its value, as Argo's ``EvaluateResult``.

    * no condition: Successful;
    * only successCondition: true -> Successful, false -> Failed;
    * only failureCondition: true -> Failed, false -> Successful;
    * both: failureCondition true -> Failed (it wins even when successCondition is also true),
      else successCondition true -> Successful, else Inconclusive;
    * a condition that cannot be evaluated (e.g. ``result[0]`` on an empty result) -> Error,
      with the evaluator's message. successCondition is evaluated first, as in Argo.
    """
    env = {"result": result}
    succeeded = failed = False
    try:
        if success is not None:
            succeeded = success.evaluate(env)
        if failure is not None:
            failed = failure.evaluate(env)
    except ConditionEvalError as exc:
        return AnalysisPhase.ERROR, str(exc)
    if success is None and failure is None:
        return AnalysisPhase.SUCCESSFUL, ""
    if failure is None:
        failed = not succeeded
    elif success is None:
        succeeded = not failed
    if failed:
        return AnalysisPhase.FAILED, ""
    if not succeeded:
        return AnalysisPhase.INCONCLUSIVE, ""
    return AnalysisPhase.SUCCESSFUL, ""


# --------------------------------------------------------------------------- counters


@dataclass(frozen=True)
class MetricCounters:
    """The counters of a metric result (``status.metricResults[]``)."""

    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0

    def record(self, phase: AnalysisPhase) -> MetricCounters:
        """Counters after one more completed measurement, as Argo's ``runMeasurements``.

        Errors do not increase ``count`` (an errored measurement is retried, it does not use
        up the metric's count); any non-error result resets ``consecutive_error``; anything
        but Successful resets ``consecutive_success``. Unfinished phases change nothing.
        """
        c = self
        if phase is AnalysisPhase.SUCCESSFUL:
            return MetricCounters(
                c.count + 1, c.successful + 1, c.failed, c.inconclusive, c.error, 0, c.consecutive_success + 1
            )
        if phase is AnalysisPhase.FAILED:
            return MetricCounters(c.count + 1, c.successful, c.failed + 1, c.inconclusive, c.error, 0, 0)
        if phase is AnalysisPhase.INCONCLUSIVE:
            return MetricCounters(c.count + 1, c.successful, c.failed, c.inconclusive + 1, c.error, 0, 0)
        if phase is AnalysisPhase.ERROR:
            return MetricCounters(
                c.count, c.successful, c.failed, c.inconclusive, c.error + 1, c.consecutive_error + 1, 0
            )
        return c

    def record_undecided(self) -> MetricCounters:
        """Counters after a completed measurement that decides nothing (a judge still collecting
        evidence): it uses up one of ``count`` and ends both streaks, nothing else."""
        c = self
        return MetricCounters(c.count + 1, c.successful, c.failed, c.inconclusive, c.error, 0, 0)

    @classmethod
    def from_status(cls, result: Mapping[str, Any]) -> MetricCounters:
        """From a ``status.metricResults[]`` entry (camelCase keys, missing means 0)."""

        def get(key: str) -> int:
            return int(result.get(key) or 0)

        return cls(
            get("count"),
            get("successful"),
            get("failed"),
            get("inconclusive"),
            get("error"),
            get("consecutiveError"),
            get("consecutiveSuccess"),
        )

    def to_status(self) -> dict[str, int]:
        """The camelCase fields of a ``status.metricResults[]`` entry."""
        return {
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.error,
            "consecutiveError": self.consecutive_error,
            "consecutiveSuccess": self.consecutive_success,
        }


# --------------------------------------------------------------------------- metric spec fields

_INT_TEXT: Final = re.compile(r"\s*[+-]?\d+\s*")


def _int_or_string(spec: Mapping[str, Any], key: str, default: int | None) -> int | None:
    # The CRD types these as int-or-string so that "{{args.limit}}" can be substituted.
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    # Argo's IntOrString.IntValue() silently turns this into 0; a clear error is safer.
    raise ValueError(f"{key}: expected an integer, got {value!r}")


def effective_count(spec: Mapping[str, Any]) -> int | None:
    """How many measurements the metric takes; ``None`` means until the run is terminated.

    As Argo's ``Metric.EffectiveCount``: no (or zero) count and no interval means one
    measurement; an interval without a count runs indefinitely.
    """
    count = _int_or_string(spec, "count", None)
    if not count:
        return None if spec.get("interval") else 1
    return count


def failure_limit(spec: Mapping[str, Any]) -> int:
    """``failureLimit`` (default 0; negative disables it)."""
    return _int_or_string(spec, "failureLimit", 0) or 0


def inconclusive_limit(spec: Mapping[str, Any]) -> int:
    """``inconclusiveLimit`` (default 0)."""
    return _int_or_string(spec, "inconclusiveLimit", 0) or 0


def consecutive_error_limit(spec: Mapping[str, Any]) -> int:
    """``consecutiveErrorLimit`` (default 4)."""
    limit = _int_or_string(spec, "consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    return DEFAULT_CONSECUTIVE_ERROR_LIMIT if limit is None else limit


def consecutive_success_limit(spec: Mapping[str, Any]) -> int:
    """``consecutiveSuccessLimit`` (default 0: disabled; 1 for a ``judge`` metric, whose Successful
    measurement is a PASS decision that completes the metric)."""
    provider = spec.get("provider")
    default = 1 if isinstance(provider, Mapping) and provider.get("judge") is not None else 0
    return _int_or_string(spec, "consecutiveSuccessLimit", default) or 0


# --------------------------------------------------------------------------- one metric


@dataclass(frozen=True)
class MetricAssessment:
    """A metric's phase and, when a limit decided it, why (Argo's wording)."""

    phase: AnalysisPhase
    reason: str = ""


def _limit_violation(spec: Mapping[str, Any], counters: MetricCounters) -> MetricAssessment | None:
    # As Argo's assessMetricFailureInconclusiveOrError: the checks run in this order and a
    # later one overrides an earlier one, so Error beats Inconclusive beats Failed.
    found: MetricAssessment | None = None
    limit = failure_limit(spec)
    if limit >= 0 and counters.failed > limit:
        found = MetricAssessment(AnalysisPhase.FAILED, f"failed ({counters.failed}) > failureLimit ({limit})")
    limit = inconclusive_limit(spec)
    if counters.inconclusive > limit:
        found = MetricAssessment(
            AnalysisPhase.INCONCLUSIVE, f"inconclusive ({counters.inconclusive}) > inconclusiveLimit ({limit})"
        )
    limit = consecutive_error_limit(spec)
    if counters.consecutive_error > limit:
        found = MetricAssessment(
            AnalysisPhase.ERROR,
            f"consecutiveErrors ({counters.consecutive_error}) > consecutiveErrorLimit ({limit})",
        )
    return found


def _assess(
    spec: Mapping[str, Any],
    counters: MetricCounters,
    terminating: bool,
    last_measurement_phase: AnalysisPhase | None,
) -> MetricAssessment:
    if last_measurement_phase is None:
        if terminating:  # stopped before the first measurement
            return MetricAssessment(AnalysisPhase.SUCCESSFUL, "run terminated")
        return MetricAssessment(AnalysisPhase.PENDING)
    if not is_completed(last_measurement_phase):
        return MetricAssessment(AnalysisPhase.RUNNING)  # a measurement is in flight
    violation = _limit_violation(spec, counters)
    if violation is not None:
        return violation
    success_limit = consecutive_success_limit(spec)
    if success_limit > 0 and counters.consecutive_success >= success_limit:
        return MetricAssessment(
            AnalysisPhase.SUCCESSFUL,
            f"consecutiveSuccess ({counters.consecutive_success}) >= consecutiveSuccessLimit ({success_limit})",
        )
    count = effective_count(spec)
    if count is not None and counters.count >= count:
        # Argo 1.8: with consecutiveSuccessLimit set, reaching the count without the streak is
        # Inconclusive while failureLimit also applies, and Failed when failureLimit is -1.
        limit = failure_limit(spec)
        failure_applies = limit >= 0
        if success_limit > 0 and failure_applies:
            return MetricAssessment(
                AnalysisPhase.INCONCLUSIVE,
                f"consecutiveSuccessLimit ({success_limit}) not reached and "
                f"failureLimit ({limit}) not violated after count ({count})",
            )
        if success_limit > 0:
            return MetricAssessment(
                AnalysisPhase.FAILED, f"consecutiveSuccessLimit ({success_limit}) not reached after count ({count})"
            )
        return MetricAssessment(AnalysisPhase.SUCCESSFUL, f"count ({count}) reached")
    if terminating:  # an indefinite (or unfinished) metric ends with what it has
        return MetricAssessment(AnalysisPhase.SUCCESSFUL, "run terminated")
    return MetricAssessment(AnalysisPhase.RUNNING)


def assess_metric_detail(
    metric_spec: Mapping[str, Any],
    counters: MetricCounters,
    terminating: bool,
    last_measurement_phase: AnalysisPhase | None,
    current_phase: AnalysisPhase | None = None,
) -> MetricAssessment:
    """Phase of one metric and the reason, as Argo's ``assessMetricStatus``.

    ``last_measurement_phase`` is the phase of the newest retained measurement (``None``
    when none was taken yet); ``current_phase`` is the metric's stored phase: once
    completed it never changes. ``terminating`` is true when the run was told to stop or
    another non-dry-run metric already decided the run.
    """
    fresh = _assess(metric_spec, counters, terminating, last_measurement_phase)
    if current_phase is not None and is_completed(current_phase):
        return MetricAssessment(current_phase, fresh.reason if fresh.phase == current_phase else "")
    return fresh


def assess_metric(
    metric_spec: Mapping[str, Any],
    counters: MetricCounters,
    terminating: bool,
    last_measurement_phase: AnalysisPhase | None,
    current_phase: AnalysisPhase | None = None,
) -> AnalysisPhase:
    """Phase of one metric; see :func:`assess_metric_detail`."""
    return assess_metric_detail(metric_spec, counters, terminating, last_measurement_phase, current_phase).phase


# --------------------------------------------------------------------------- the run


def assess_run(
    metric_phases: Mapping[str, AnalysisPhase],
    dry_run: Iterable[str],
    terminate: bool,
    *,
    reasons: Mapping[str, str] | None = None,
    messages: Mapping[str, str] | None = None,
) -> tuple[AnalysisPhase, str]:
    """Phase and message of an AnalysisRun from its metrics' phases, as Argo's ``assessRunStatus``.

    * ``metric_phases`` in spec order; a metric without a result yet is Pending.
    * The worst completed non-dry-run phase wins (Successful < Inconclusive < Error < Failed).
    * Dry-run metrics never decide: a completed one only counts as Successful.
    * While any metric is unfinished the run is Running, unless the run is terminating:
      ``terminate`` was set, or a non-dry-run metric is already Failed, Error or Inconclusive.
      Then the run is decided now (the caller terminates the metrics still running); a run
      terminated before anything completed is Successful, as in Argo.
    * The message names the metric that decided, in Argo's words, e.g.
      ``Metric "error-rate" assessed Failed due to failed (3) > failureLimit (2)``, followed by
      ``: "Error Message: ..."`` when ``messages`` has that metric's last measurement message (for a
      phase other than Error, e.g. Inconclusive, the message alone: ``: "too little traffic ..."``).
      ``reasons`` are the :class:`MetricAssessment` reasons. ``terminate`` alone gives
      ``Run Terminated``.

    Differs from Argo in one way: Argo notices that a metric failed on the reconcile after
    it failed; we decide in the same call, which only removes one reconcile of delay.
    """
    dry = set(dry_run)
    reasons = reasons or {}
    messages = messages or {}
    terminating = terminate or any(phase in _DECISIVE for name, phase in metric_phases.items() if name not in dry)
    worst_phase: AnalysisPhase | None = None
    message = "Run Terminated" if terminate else ""
    everything_completed = True
    for name, phase in metric_phases.items():
        if not is_completed(phase):
            everything_completed = False
            continue
        if name in dry:
            worst_phase = worst_phase or AnalysisPhase.SUCCESSFUL
            continue
        if worst_phase is None or is_worse(worst_phase, phase):
            worst_phase = phase
            reason = reasons.get(name, "")
            if reason and phase is not AnalysisPhase.SUCCESSFUL:
                message = f'Metric "{name}" assessed {phase.value} due to {reason}'
                if messages.get(name):
                    label = "Error Message: " if phase is AnalysisPhase.ERROR else ""
                    message += f': "{label}{messages[name]}"'
    if terminating:
        return worst_phase or AnalysisPhase.SUCCESSFUL, message
    if not everything_completed or worst_phase is None:
        return AnalysisPhase.RUNNING, ""
    return worst_phase, message


@dataclass(frozen=True)
class RunSummary:
    """``status.runSummary`` / ``status.dryRunSummary``."""

    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0

    def to_status(self) -> dict[str, int]:
        return {
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.error,
        }


def _summarize(phases: Sequence[AnalysisPhase]) -> RunSummary:
    return RunSummary(
        count=len(phases),
        successful=sum(1 for p in phases if p is AnalysisPhase.SUCCESSFUL),
        failed=sum(1 for p in phases if p is AnalysisPhase.FAILED),
        inconclusive=sum(1 for p in phases if p is AnalysisPhase.INCONCLUSIVE),
        error=sum(1 for p in phases if p is AnalysisPhase.ERROR),
    )


def run_summaries(metric_phases: Mapping[str, AnalysisPhase], dry_run: Iterable[str]) -> tuple[RunSummary, RunSummary]:
    """``(runSummary, dryRunSummary)``: metrics counted per group, completed ones by phase.

    Argo counts a completed metric by the limit that was violated and otherwise as
    Successful (so a metric Failed by consecutiveSuccessLimit shows as Successful there);
    we count it by its actual phase.
    """
    dry = set(dry_run)
    regular = [p for n, p in metric_phases.items() if n not in dry]
    dry_phases = [p for n, p in metric_phases.items() if n in dry]
    return _summarize(regular), _summarize(dry_phases)


# --------------------------------------------------------------------------- dryRun / measurementRetention


def _match(kind: str, index: int, pattern: Any, names: Sequence[str]) -> list[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{kind}[{index}].metricName is required")
    if pattern == "*":  # the documented wildcard (Argo's API docs), not a valid regex
        matched = list(names)
    else:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{kind}[{index}].metricName: invalid regular expression {pattern!r}: {exc}") from None
        # Unanchored like Go's regexp.MatchString: "error" also selects "error-rate".
        matched = [name for name in names if regex.search(name)]
    if not matched:
        raise ValueError(f"{kind}[{index}]: Rule didn't match any metric name(s)")
    return matched


def resolve_dry_run(metric_names: Iterable[str], dry_run_entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the metrics that run in dry-run mode.

    Each entry's ``metricName`` is ``"*"`` (all metrics) or a regular expression searched in
    each name, as Argo's ``GetDryRunMetrics``. A rule matching nothing is an error.
    """
    names = list(metric_names)
    selected: set[str] = set()
    for index, entry in enumerate(dry_run_entries):
        selected.update(_match("dryRun", index, entry.get("metricName"), names))
    return selected


def measurement_retention(
    metric_names: Iterable[str],
    entries: Iterable[Mapping[str, Any]],
    default: int = DEFAULT_MEASUREMENT_RETENTION,
) -> dict[str, int]:
    """How many measurements to keep per metric.

    Rules are matched like :func:`resolve_dry_run`; the last matching rule wins and a
    ``limit`` of 0 (or less) means the default, as Argo's ``garbageCollectMeasurements``.
    """
    names = list(metric_names)
    limits = dict.fromkeys(names, default)
    for index, entry in enumerate(entries):
        limit = _int_or_string(entry, "limit", 0) or 0
        for name in _match("measurementRetention", index, entry.get("metricName"), names):
            limits[name] = limit if limit > 0 else default
    return limits


_T = TypeVar("_T")


def retain_measurements(measurements: Sequence[_T], limit: int) -> list[_T]:
    """The newest ``limit`` measurements (a non-positive limit keeps none)."""
    if limit <= 0:
        return []
    return list(measurements[-limit:])
