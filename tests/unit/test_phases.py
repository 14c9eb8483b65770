"""Measurement, metric and run phases (analysis/phases.py), checked against Argo's rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from analysis.expr.condition import compile_condition
from analysis.phases import (
    DEFAULT_CONSECUTIVE_ERROR_LIMIT,
    AnalysisPhase,
    MetricCounters,
    RunSummary,
    assess_metric,
    assess_metric_detail,
    assess_run,
    consecutive_error_limit,
    effective_count,
    evaluate_measurement,
    failure_limit,
    is_completed,
    is_worse,
    measurement_retention,
    resolve_dry_run,
    retain_measurements,
    run_summaries,
    worst,
)

P = AnalysisPhase
S, F, E, N, R, PD = P.SUCCESSFUL, P.FAILED, P.ERROR, P.INCONCLUSIVE, P.RUNNING, P.PENDING


def counters(**kw: int) -> MetricCounters:
    return MetricCounters(**kw)


# --------------------------------------------------------------------------- phases


def test_phase_values_are_argo_strings() -> None:
    assert [p.value for p in AnalysisPhase] == [
        "Pending",
        "Running",
        "Successful",
        "Failed",
        "Error",
        "Inconclusive",
    ]
    assert AnalysisPhase("Failed") is F
    assert F == "Failed"


@pytest.mark.parametrize(("phase", "done"), [(PD, False), (R, False), (S, True), (F, True), (E, True), (N, True)])
def test_is_completed(phase: AnalysisPhase, done: bool) -> None:
    assert is_completed(phase) is done
    assert is_completed(phase.value) is done
    assert is_completed(None) is False


def test_worst_order_is_argos() -> None:
    # utils/analysis/helpers.go analysisStatusOrder: Successful, Running, Pending, Inconclusive, Error, Failed
    assert worst(E, F) is F
    assert worst(F, E) is F
    assert worst(N, E) is E
    assert worst(S, N) is N
    assert worst(S, S) is S
    assert is_worse(S, R) and is_worse(R, PD) and is_worse(PD, N)
    assert not is_worse(F, E)


# --------------------------------------------------------------------------- one measurement


def cond(source: str | None, name: str) -> Any:
    return None if source is None else compile_condition(source, name)


@pytest.mark.parametrize(
    ("success", "failure", "result", "expected"),
    [
        (None, None, [1.0], S),  # no condition at all: Successful unless the provider erred
        (None, None, [], S),
        ("result[0] < 1", None, [0.5], S),
        ("result[0] < 1", None, [1.5], F),  # only success: false means Failed
        (None, "result[0] > 1", [1.5], F),
        (None, "result[0] > 1", [0.5], S),  # only failure: false means Successful
        ("result[0] < 1", "result[0] > 2", [0.5], S),
        ("result[0] < 1", "result[0] > 2", [3.0], F),
        ("result[0] < 1", "result[0] > 2", [1.5], N),  # neither: Inconclusive
        ("result[0] < 1", "result[0] < 2", [0.5], F),  # both true: failure wins
        ("len(result) == 0", None, [], S),
    ],
)
def test_evaluate_measurement(success: str | None, failure: str | None, result: Any, expected: AnalysisPhase) -> None:
    phase, message = evaluate_measurement(cond(success, "successCondition"), cond(failure, "failureCondition"), result)
    assert phase is expected
    assert message == ""


def test_evaluation_errors_are_error_measurements() -> None:
    phase, message = evaluate_measurement(cond("result[0] < 0.05", "successCondition"), None, [])
    assert phase is E
    assert message == (
        'successCondition "result[0] < 0.05": index 0 out of range: '
        "result is an empty list (the query returned no data)"
    )
    phase, message = evaluate_measurement(
        cond("result[0] < 1", "successCondition"), cond("result.x > 1", "failureCondition"), [0.5]
    )
    assert phase is E
    assert message.startswith('failureCondition "result.x > 1"')
    phase, message = evaluate_measurement(cond("result", "successCondition"), None, 0.5)
    assert phase is E
    assert "must evaluate to a bool" in message


# --------------------------------------------------------------------------- counters


def test_counters_follow_argo_run_measurements() -> None:
    c = MetricCounters()
    c = c.record(S).record(S)
    assert c == counters(count=2, successful=2, consecutive_success=2)
    c = c.record(E).record(E)
    # errors do not use up the count, break the success streak and accumulate
    assert c == counters(count=2, successful=2, error=2, consecutive_error=2)
    c = c.record(F)
    assert c == counters(count=3, successful=2, failed=1, error=2)
    c = c.record(N).record(S)
    assert c == counters(count=5, successful=3, failed=1, inconclusive=1, error=2, consecutive_success=1)
    assert c.record(R) is c
    assert c.record(PD) is c


def test_counters_status_round_trip() -> None:
    c = counters(count=5, successful=3, failed=1, inconclusive=1, error=2, consecutive_error=0, consecutive_success=1)
    status = c.to_status()
    assert status["consecutiveSuccess"] == 1
    assert status["consecutiveError"] == 0
    assert MetricCounters.from_status(status) == c
    assert MetricCounters.from_status({"name": "x", "phase": "Running"}) == MetricCounters()


# --------------------------------------------------------------------------- spec fields


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, 1),  # neither count nor interval: one measurement
        ({"count": 0}, 1),
        ({"interval": "1m"}, None),  # interval only: until terminated
        ({"interval": "1m", "count": 0}, None),
        ({"interval": "1m", "count": 5}, 5),
        ({"interval": "1m", "count": "5"}, 5),  # int-or-string
        ({"count": 3}, 3),
    ],
)
def test_effective_count(spec: Mapping[str, Any], expected: int | None) -> None:
    assert effective_count(spec) == expected


def test_limit_defaults_and_strings() -> None:
    assert failure_limit({}) == 0
    assert failure_limit({"failureLimit": "-1"}) == -1
    assert consecutive_error_limit({}) == DEFAULT_CONSECUTIVE_ERROR_LIMIT == 4
    assert consecutive_error_limit({"consecutiveErrorLimit": 0}) == 0
    with pytest.raises(ValueError, match="failureLimit: expected an integer"):
        failure_limit({"failureLimit": "{{args.limit}}"})
    with pytest.raises(ValueError, match="count: expected an integer"):
        effective_count({"count": True})


# --------------------------------------------------------------------------- one metric

EVERY_MINUTE_5 = {"interval": "1m", "count": 5}
FOREVER = {"interval": "1m"}

# (id, spec, counters, terminating, last measurement phase, expected phase, reason fragment)
METRIC_TABLE: list[tuple[str, dict[str, Any], MetricCounters, bool, AnalysisPhase | None, AnalysisPhase, str]] = [
    ("no measurement yet", EVERY_MINUTE_5, counters(), False, None, PD, ""),
    ("terminated before the first measurement", EVERY_MINUTE_5, counters(), True, None, S, "run terminated"),
    ("measurement in flight", EVERY_MINUTE_5, counters(count=1, successful=1), False, R, R, ""),
    ("in flight beats limits", EVERY_MINUTE_5, counters(count=2, failed=2), False, R, R, ""),
    # failureLimit
    ("failureLimit 0 default: one failure fails", EVERY_MINUTE_5, counters(count=1, failed=1), False, F, F,
     "failed (1) > failureLimit (0)"),
    ("failureLimit 2: two failures keep running", {**EVERY_MINUTE_5, "failureLimit": 2},
     counters(count=3, successful=1, failed=2), False, F, R, ""),
    ("failureLimit 2: three failures fail", {**EVERY_MINUTE_5, "failureLimit": 2},
     counters(count=4, successful=1, failed=3), False, F, F, "failed (3) > failureLimit (2)"),
    ("failureLimit 2: count reached with 2 failures succeeds", {**EVERY_MINUTE_5, "failureLimit": 2},
     counters(count=5, successful=3, failed=2), False, S, S, "count (5) reached"),
    ("failureLimit as a string", {**EVERY_MINUTE_5, "failureLimit": "2"},
     counters(count=4, failed=3), False, F, F, "failureLimit (2)"),
    ("failureLimit -1 disables failing", {**EVERY_MINUTE_5, "failureLimit": -1, "consecutiveSuccessLimit": 2},
     counters(count=4, failed=4), False, F, R, ""),
    # inconclusiveLimit
    ("inconclusiveLimit 0 default", EVERY_MINUTE_5, counters(count=1, inconclusive=1), False, N, N,
     "inconclusive (1) > inconclusiveLimit (0)"),
    ("inconclusiveLimit 2 not exceeded", {**EVERY_MINUTE_5, "inconclusiveLimit": 2},
     counters(count=2, inconclusive=2), False, N, R, ""),
    ("inconclusiveLimit 2 exceeded", {**EVERY_MINUTE_5, "inconclusiveLimit": 2},
     counters(count=3, inconclusive=3), False, N, N, "inconclusive (3) > inconclusiveLimit (2)"),
    # consecutiveErrorLimit
    ("4 consecutive errors are tolerated by default", EVERY_MINUTE_5,
     counters(count=1, successful=1, error=4, consecutive_error=4), False, E, R, ""),
    ("5 consecutive errors: Error", EVERY_MINUTE_5, counters(error=5, consecutive_error=5), False, E, E,
     "consecutiveErrors (5) > consecutiveErrorLimit (4)"),
    ("errors that are not consecutive never add up", EVERY_MINUTE_5,
     counters(count=3, successful=3, error=9, consecutive_error=1), False, E, R, ""),
    ("consecutiveErrorLimit 0: first error is Error", {**EVERY_MINUTE_5, "consecutiveErrorLimit": 0},
     counters(error=1, consecutive_error=1), False, E, E, "consecutiveErrors (1) > consecutiveErrorLimit (0)"),
    ("consecutiveErrorLimit 2 custom", {**EVERY_MINUTE_5, "consecutiveErrorLimit": 2},
     counters(error=2, consecutive_error=2), False, E, R, ""),
    ("consecutiveErrorLimit 2 exceeded", {**EVERY_MINUTE_5, "consecutiveErrorLimit": 2},
     counters(error=3, consecutive_error=3), False, E, E, "consecutiveErrorLimit (2)"),
    ("errors do not use up the count", {}, counters(error=1, consecutive_error=1), False, E, R, ""),
    # several limits at once: later checks win, like Argo (Error > Inconclusive > Failed)
    ("error beats failure", EVERY_MINUTE_5, counters(count=1, failed=1, error=5, consecutive_error=5), False, E, E,
     "consecutiveErrors"),
    ("inconclusive beats failure", EVERY_MINUTE_5, counters(count=2, failed=1, inconclusive=1), False, N, N,
     "inconclusive (1)"),
    # consecutiveSuccessLimit (Argo 1.8)
    ("streak reached before count", {"interval": "1m", "count": 10, "consecutiveSuccessLimit": 3},
     counters(count=3, successful=3, consecutive_success=3), False, S, S,
     "consecutiveSuccess (3) >= consecutiveSuccessLimit (3)"),
    ("streak reached with failures tolerated", {"interval": "1m", "count": 10, "consecutiveSuccessLimit": 3,
                                                "failureLimit": 2},
     counters(count=5, successful=3, failed=2, consecutive_success=3), False, S, S, "consecutiveSuccessLimit (3)"),
    ("streak not reached yet", {"interval": "1m", "count": 10, "consecutiveSuccessLimit": 3, "failureLimit": -1},
     counters(count=4, successful=3, failed=1, consecutive_success=2), False, S, R, ""),
    ("count reached without streak, failureLimit applies: Inconclusive",
     {"interval": "1m", "count": 5, "consecutiveSuccessLimit": 3, "failureLimit": 1},
     counters(count=5, successful=4, failed=1, consecutive_success=2), False, S, N,
     "consecutiveSuccessLimit (3) not reached and failureLimit (1) not violated"),
    ("count reached without streak, failureLimit -1: Failed",
     {"interval": "1m", "count": 5, "consecutiveSuccessLimit": 3, "failureLimit": -1},
     counters(count=5, successful=2, failed=3, consecutive_success=1), False, S, F,
     "consecutiveSuccessLimit (3) not reached after count (5)"),
    ("indefinite metric with streak", {"interval": "1m", "consecutiveSuccessLimit": 2, "failureLimit": -1},
     counters(count=9, successful=2, failed=7, consecutive_success=2), False, S, S, "consecutiveSuccessLimit"),
    ("consecutiveSuccessLimit 0 is off", {**EVERY_MINUTE_5, "consecutiveSuccessLimit": 0},
     counters(count=5, successful=5, consecutive_success=5), False, S, S, "count (5) reached"),
    # count
    ("count not reached", EVERY_MINUTE_5, counters(count=4, successful=4), False, S, R, ""),
    ("count reached", EVERY_MINUTE_5, counters(count=5, successful=5), False, S, S, "count (5) reached"),
    ("count as a string", {"interval": "1m", "count": "2"}, counters(count=2, successful=2), False, S, S,
     "count (2)"),
    ("no count, no interval: one measurement", {}, counters(count=1, successful=1), False, S, S, "count (1)"),
    ("interval without count runs forever", FOREVER, counters(count=500, successful=500), False, S, R, ""),
    ("count 0 with interval runs forever", {**FOREVER, "count": 0}, counters(count=9, successful=9), False, S, R, ""),
    # terminate
    ("terminate an indefinite metric", FOREVER, counters(count=7, successful=7), True, S, S, "run terminated"),
    ("terminate before count reached", EVERY_MINUTE_5, counters(count=2, successful=2), True, S, S,
     "run terminated"),
    ("terminate keeps a failure", EVERY_MINUTE_5, counters(count=2, successful=1, failed=1), True, F, F,
     "failed (1)"),
    ("terminate waits for an in-flight measurement", FOREVER, counters(count=2, successful=2), True, R, R, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "c", "terminating", "last", "expected", "reason"),
    [row[1:] for row in METRIC_TABLE],
    ids=[row[0] for row in METRIC_TABLE],
)
def test_assess_metric(
    spec: dict[str, Any],
    c: MetricCounters,
    terminating: bool,
    last: AnalysisPhase | None,
    expected: AnalysisPhase,
    reason: str,
) -> None:
    assert assess_metric(spec, c, terminating, last) is expected
    detail = assess_metric_detail(spec, c, terminating, last)
    assert detail.phase is expected
    if reason:
        assert reason in detail.reason
    else:
        assert detail.reason == ""


def test_a_completed_metric_never_changes() -> None:
    # Argo: "if result.Phase.Completed() return result.Phase"
    spec = EVERY_MINUTE_5
    assert assess_metric(spec, counters(count=1, successful=1), False, S, current_phase=F) is F
    assert assess_metric(spec, counters(count=5, successful=5), False, S, current_phase=S) is S
    detail = assess_metric_detail(spec, counters(count=1, failed=1), False, F, current_phase=F)
    assert detail == assess_metric_detail(spec, counters(count=1, failed=1), False, F)
    assert assess_metric(spec, counters(count=1), False, S, current_phase=R) is R


def simulate(spec: Mapping[str, Any], outcomes: str) -> list[AnalysisPhase]:
    """Feed measurement outcomes (letters S/F/I/E), one by one: the metric phase after each."""
    letters = {"S": S, "F": F, "I": N, "E": E}
    c = MetricCounters()
    phase: AnalysisPhase | None = None
    history = []
    for letter in outcomes:
        c = c.record(letters[letter])
        phase = assess_metric(spec, c, False, letters[letter], current_phase=phase)
        history.append(phase)
    return history


def test_simulated_sequences() -> None:
    spec = {"interval": "1m", "count": 5, "failureLimit": 2}
    assert simulate(spec, "FSFSS") == [R, R, R, R, S]
    assert simulate(spec, "FSFF") == [R, R, R, F]
    # once failed, later successes change nothing
    assert simulate(spec, "FFFSS") == [R, R, F, F, F]
    # errors are retried and do not count toward "count"
    assert simulate({"count": 2, "interval": "1m"}, "SEES") == [R, R, R, S]
    assert simulate({"count": 2, "interval": "1m"}, "EEEEE") == [R, R, R, R, E]
    streak = {"interval": "1m", "count": 6, "consecutiveSuccessLimit": 3, "failureLimit": -1}
    assert simulate(streak, "SFSSS") == [R, R, R, R, S]
    assert simulate(streak, "SSFSSF") == [R, R, R, R, R, F]


# --------------------------------------------------------------------------- the run

# (id, metric phases, dry run, terminate, expected phase, expected message)
RUN_TABLE: list[tuple[str, dict[str, AnalysisPhase], set[str], bool, AnalysisPhase, str]] = [
    ("all successful", {"a": S, "b": S}, set(), False, S, ""),
    ("one still running", {"a": S, "b": R}, set(), False, R, ""),
    ("one not started", {"a": S, "b": PD}, set(), False, R, ""),
    ("no metrics yet", {}, set(), False, R, ""),
    ("failure decides while others run", {"a": F, "b": R}, set(), False, F, 'Metric "a" assessed Failed due to x'),
    ("error decides while others run", {"a": R, "b": E}, set(), False, E, 'Metric "b" assessed Error due to x'),
    ("inconclusive decides while others run", {"a": N, "b": R}, set(), False, N, 'Metric "a" assessed Inconclusive'),
    ("failed is worse than error", {"a": E, "b": F}, set(), False, F, 'Metric "b" assessed Failed'),
    ("error is worse than inconclusive", {"a": N, "b": E, "c": S}, set(), False, E, 'Metric "b" assessed Error'),
    ("inconclusive is worse than successful", {"a": S, "b": N}, set(), False, N, 'Metric "b"'),
    ("first of equally bad metrics names the run", {"a": F, "b": F}, set(), False, F, 'Metric "a"'),
    ("dry-run failure does not decide", {"a": F, "b": S}, {"a"}, False, S, ""),
    ("dry-run failure does not terminate", {"a": F, "b": R}, {"a"}, False, R, ""),
    ("dry-run error does not decide", {"a": E, "b": S}, {"a"}, False, S, ""),
    ("only dry-run metrics, all done", {"a": F}, {"a"}, False, S, ""),
    ("only dry-run metrics, one running", {"a": F, "b": R}, {"a", "b"}, False, R, ""),
    ("dry-run does not hide a real failure", {"a": S, "b": F}, {"a"}, False, F, 'Metric "b"'),
    ("terminate with nothing completed", {"a": R, "b": PD}, set(), True, S, "Run Terminated"),
    ("terminate with no metrics", {}, set(), True, S, "Run Terminated"),
    ("terminate keeps the worst", {"a": S, "b": F}, set(), True, F, 'Metric "b" assessed Failed'),
    ("terminate after success", {"a": S, "b": R}, set(), True, S, "Run Terminated"),
]


@pytest.mark.parametrize(
    ("phases", "dry", "terminate", "expected", "message"),
    [row[1:] for row in RUN_TABLE],
    ids=[row[0] for row in RUN_TABLE],
)
def test_assess_run(
    phases: dict[str, AnalysisPhase], dry: set[str], terminate: bool, expected: AnalysisPhase, message: str
) -> None:
    reasons = {name: "x" for name, phase in phases.items() if phase in (F, E, N)}
    phase, got = assess_run(phases, dry, terminate, reasons=reasons)
    assert phase is expected
    if message:
        assert got.startswith(message)
    else:
        assert got == ""


def test_run_message_is_argos() -> None:
    phases = {"error-rate": F, "latency": R}
    reasons = {"error-rate": "failed (3) > failureLimit (2)"}
    phase, message = assess_run(phases, set(), False, reasons=reasons)
    assert (phase, message) == (F, 'Metric "error-rate" assessed Failed due to failed (3) > failureLimit (2)')
    _, message = assess_run(
        {"q": E},
        set(),
        False,
        reasons={"q": "consecutiveErrors (5) > consecutiveErrorLimit (4)"},
        messages={"q": "connection refused"},
    )
    assert message == (
        'Metric "q" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): '
        '"Error Message: connection refused"'
    )
    # Successful metrics never produce a "due to" message
    _, message = assess_run({"a": S}, set(), False, reasons={"a": "count (1) reached"})
    assert message == ""


def test_run_summaries() -> None:
    phases = {"a": S, "b": F, "c": R, "d": E, "e": N, "f": F}
    run, dry = run_summaries(phases, {"e", "f"})
    assert run == RunSummary(count=4, successful=1, failed=1, error=1)
    assert dry == RunSummary(count=2, failed=1, inconclusive=1)
    assert dry.to_status() == {"count": 2, "successful": 0, "failed": 1, "inconclusive": 1, "error": 0}


# --------------------------------------------------------------------------- dryRun / measurementRetention

METRICS = ["error-rate", "latency-p99", "total-5xx-errors"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], set()),
        ([{"metricName": "*"}], set(METRICS)),
        ([{"metricName": ".*"}], set(METRICS)),
        ([{"metricName": "latency-p99"}], {"latency-p99"}),
        ([{"metricName": "latency.*"}, {"metricName": "error-rate"}], {"latency-p99", "error-rate"}),
        ([{"metricName": "error"}], {"error-rate", "total-5xx-errors"}),  # unanchored like Go
        ([{"metricName": "^error"}], {"error-rate"}),
    ],
)
def test_resolve_dry_run(entries: list[dict[str, str]], expected: set[str]) -> None:
    assert resolve_dry_run(METRICS, entries) == expected


def test_resolve_dry_run_errors() -> None:
    with pytest.raises(ValueError, match=r"dryRun\[1\]: Rule didn't match any metric name\(s\)"):
        resolve_dry_run(METRICS, [{"metricName": "error-rate"}, {"metricName": "nope"}])
    with pytest.raises(ValueError, match=r"dryRun\[0\]\.metricName: invalid regular expression"):
        resolve_dry_run(METRICS, [{"metricName": "(("}])
    with pytest.raises(ValueError, match=r"dryRun\[0\]\.metricName is required"):
        resolve_dry_run(METRICS, [{}])


def test_measurement_retention() -> None:
    assert measurement_retention(METRICS, []) == dict.fromkeys(METRICS, 10)
    assert measurement_retention(METRICS, [{"metricName": "latency-p99", "limit": 20}]) == {
        "error-rate": 10,
        "latency-p99": 20,
        "total-5xx-errors": 10,
    }
    # the last matching rule wins; 0 means the default
    limits = measurement_retention(
        METRICS, [{"metricName": ".*", "limit": 30}, {"metricName": "error-rate", "limit": 0}], default=5
    )
    assert limits == {"error-rate": 5, "latency-p99": 30, "total-5xx-errors": 30}
    with pytest.raises(ValueError, match=r"measurementRetention\[0\]: Rule didn't match"):
        measurement_retention(METRICS, [{"metricName": "nothing", "limit": 3}])


def test_retain_measurements() -> None:
    assert retain_measurements(list(range(15)), 10) == list(range(5, 15))
    assert retain_measurements([1, 2], 10) == [1, 2]
    assert retain_measurements([1, 2], 0) == []
