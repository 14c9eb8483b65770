"""The judge's tuning fields (issue 22): the count test's canary-dispersion window, the latency test's
evidence settings and the sparse rule's settings as ``provider.judge`` fields; each accepted, carried
into the configuration the tests run with, changing when the same counts decide, and a bad value named
with its range and fix. The latency
test's pass horizon follows the metric's ``count``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from analysis.providers.judge.joint import settle_intervals
from analysis.providers.judge.spec import count_config, latency_config, sparse_rule
from analysis.providers.judge.verdicts import SavedState, Verdict, decode_state, encode_state, sequential_step
from analysis.spec import validate_metrics
from analysis.stats import CountTest
from analysis.stats.sequential_latency import DEFAULT_PASS_HORIZON
from analysis.stats.sparse_errors import DEFAULT_HORIZON, MAX_FAIL_EVIDENCE, POWER, errors_needed
from rollouts import schema
from rollouts.cli import lint
from tests.fixtures.judge_steps import FAST, Step, judge

WHERE = "spec.metrics[0].provider.judge"
LATENCY_QUERIES = {"canary": {"latency": "cl"}, "baseline": {"latency": "bl"}}


def metric(count: int | None = 30, **judge_spec: Any) -> dict[str, Any]:
    """A ``sequential`` judge metric with error and latency queries."""
    spec = {"address": "http://prom", "canary": {"errors": "ce", "requests": "cr", "latency": "cl"},
            "baseline": {"errors": "be", "requests": "br", "latency": "bl"}, **judge_spec}
    out: dict[str, Any] = {"name": "judge", "interval": "1m", "provider": {"judge": spec}}
    if count is not None:
        out["count"] = count
    return out


def latency_metric(**judge_spec: Any) -> dict[str, Any]:
    spec = {"test": "sequential-latency", "address": "http://prom", **LATENCY_QUERIES, **judge_spec}
    return {"name": "latency", "interval": "1m", "count": 30, "provider": {"judge": spec}}


# --------------------------------------------------------------------------- accepted, and in the config


def test_defaults_are_todays() -> None:
    spec = metric()["provider"]["judge"]
    counts, latency, rule = count_config(spec), latency_config(spec), sparse_rule(spec)
    assert (counts.canary_dispersion_intervals, counts.canary_dispersion_events) == (10, 12.0)
    assert latency.pass_horizon == DEFAULT_PASS_HORIZON == 30
    assert (latency.pass_min_information, latency.pass_check_information) == (120.0, 20.0)
    assert (latency.fail_min_information, latency.fail_floor) == (10.0, 0.1)
    assert (rule.power, rule.max_fail_evidence, rule.horizon) == (POWER, MAX_FAIL_EVIDENCE, None)


@pytest.mark.parametrize(("field", "value", "read"), [
    ("canaryDispersionIntervals", 4, lambda s: count_config(s).canary_dispersion_intervals),
    ("canaryDispersionIntervals", 0, lambda s: count_config(s).canary_dispersion_intervals),
    ("canaryDispersionEvents", 30, lambda s: count_config(s).canary_dispersion_events),
    ("canaryDispersionEvents", "0", lambda s: count_config(s).canary_dispersion_events),
    ("passHorizon", 45, lambda s: latency_config(s).pass_horizon),
    ("passMinInformation", 80, lambda s: latency_config(s).pass_min_information),
    ("passCheckInformation", 0, lambda s: latency_config(s).pass_check_information),
    ("failMinInformation", 25.5, lambda s: latency_config(s).fail_min_information),
    ("failFloor", 1, lambda s: latency_config(s).fail_floor),
    ("sparseErrorsPower", 0.9, lambda s: sparse_rule(s).power),
    ("sparseErrorsMaxFailEvidence", 3, lambda s: sparse_rule(s).max_fail_evidence),
    ("sparseErrorsHorizon", 90, lambda s: sparse_rule(s).horizon),
])
def test_each_field_is_accepted_and_reaches_its_config(field: str, value: Any, read: Callable[[Any], Any]) -> None:
    extra = {"promoteOnLatencyWhenSparse": True} if field.startswith("sparseErrors") else {}
    spec = metric(**extra, **{field: value})
    assert validate_metrics([spec]) == []
    assert read(spec["provider"]["judge"]) == float(value)


@pytest.mark.parametrize("field", ["passHorizon", "passMinInformation", "passCheckInformation",
                                   "failMinInformation", "failFloor"])
def test_the_latency_fields_are_accepted_by_the_latency_test_too(field: str) -> None:
    spec = latency_metric(**{field: 1})
    assert validate_metrics([spec]) == []
    assert latency_config(spec["provider"]["judge"]).to_dict()[field] == 1


def test_the_canary_dispersion_window_starts_the_sparse_rule() -> None:
    spec = {**metric()["provider"]["judge"], "canaryDispersionIntervals": 6}
    assert settle_intervals(count_config(spec)) == 6
    assert settle_intervals(count_config({**spec, "guard": "t"})) == 0  # the t guard has no cautious window


# --------------------------------------------------------------------------- the values used


def latency_run(
    spec: dict[str, Any], count: int | None, intervals: int = 40, canary: dict[str, float] = FAST,
    baseline: dict[str, float] = FAST,
) -> tuple[int, str]:
    """A ``sequential-latency`` judge on histograms of 1,000 requests per interval (equal ones unless
    given): (the interval of its verdict, -1 for none, and its reason)."""
    spec = {"test": "sequential-latency", **LATENCY_QUERIES, **spec}
    hist_c, hist_b = dict.fromkeys(baseline, 0.0), dict.fromkeys(baseline, 0.0)
    saved: SavedState | None = None
    reason = ""
    for i in range(intervals if count is None else count):
        answers = {f"{side}.latency": {json.dumps({"le": le}): v for le, v in hist.items()}
                   for side, hist in (("canary", hist_c), ("baseline", hist_b))}
        left = None if count is None else count - (i + 1)
        verdict, state = sequential_step("sequential-latency", spec, saved, answers, None, None, left, count)
        saved = decode_state(encode_state(state), "sequential-latency")
        reason = verdict.reason
        if verdict.decision.value in ("pass", "fail"):
            return i, reason
        for le in baseline:
            hist_c[le] += canary[le]
            hist_b[le] += baseline[le]
    return -1, reason


def test_the_pass_horizon_follows_the_metrics_count_unless_set() -> None:
    # The 0.1s bound (1% of 1,000 requests a minute) gathers enough information for the pass set within 30
    # intervals, not within 20: a metric with count 20 only estimates it, as passHorizon 20 does.
    _, unbounded = latency_run({}, None)
    assert "shown below 1.41x baseline at bounds 0.05s, 0.1s at interval" in unbounded, unbounded
    _, counted = latency_run({}, 20)
    assert "(estimated only at 0.1s: too few slower requests to show it within 20 intervals;" in counted, counted
    _, set_short = latency_run({"passHorizon": 20}, None)
    assert "within 20 intervals" in set_short, set_short
    _, set_long = latency_run({"passHorizon": 30}, 20)  # the field wins over the count
    assert "at bounds 0.05s, 0.1s at interval" in set_long, set_long
    assert latency_config({}, 20).pass_horizon == 20 and latency_config({}, None).pass_horizon == 30
    assert latency_config({"passHorizon": 7}, 20).pass_horizon == 7


def test_the_pass_set_rule_reads_pass_min_information() -> None:
    _, easy = latency_run({"passMinInformation": 10}, 20)
    assert "at bounds 0.05s, 0.1s at interval" in easy, easy


def test_a_checked_bound_holds_the_pass_until_it_has_pass_check_information() -> None:
    # With count 20 the 0.1s bound (1% slower, 5 units of information an interval) is checked, not shown:
    # the pass waits until it has gathered passCheckInformation (20 by default, 4 intervals; 60: 12).
    default_at, default = latency_run({}, 20)
    later_at, later = latency_run({"passCheckInformation": 60}, 20)
    for reason in (default, later):
        assert reason.startswith("canary exceedance rates shown below") and "estimated only at 0.1s" in reason, reason
    assert default_at == 4 and later_at == 12, (default_at, later_at)
    # Above what the bound gathers by the horizon (100), it is not checked at all: no wait.
    unchecked_at, unchecked = latency_run({"passCheckInformation": 150}, 20)
    assert unchecked_at < default_at and "not covered: 0.1s" in unchecked, unchecked


# Seven bounds of which two are informative for FAIL (0.05s, 0.1s): the three fastest are exceeded by more
# than half the requests, the two slowest by almost none. The canary is 1.4x slower at 0.1s only.
WIDE = {"0.01": 50.0, "0.02": 100.0, "0.025": 300.0, "0.05": 800.0, "0.1": 990.0, "0.5": 999.9, "1": 1000.0,
        "+Inf": 1000.0}
SLOWER_AT_P99 = {**WIDE, "0.1": 986.0}


def test_the_fail_portfolio_reads_fail_floor_and_fail_min_information() -> None:
    def fail_at(**fields: float) -> int:
        at, reason = latency_run(dict(fields), 60, canary=SLOWER_AT_P99, baseline=WIDE)
        assert reason.startswith("canary slower than baseline") and "P(latency > 0.1s)" in reason, reason
        return at

    default = fail_at()
    # failFloor 1 keeps the equal weights: the uninformative bounds' stakes do not move to 0.1s.
    assert fail_at(failFloor=0.1) == default < fail_at(failFloor=1), (default, fail_at(failFloor=1))
    # failMinInformation 400: 0.1s (about 360 by the horizon) is no longer informative and gives its stake away.
    assert fail_at(failMinInformation=10) == default < fail_at(failMinInformation=400), (
        default, fail_at(failMinInformation=400))


# A canary's errors per interval of 1,000 requests around 10 (the baseline's, steady over a day of history).
VARYING = (4, 16, 9, 12, 6, 14, 8, 11, 10, 13, 7, 9, 12, 10, 8, 11, 10, 9, 12, 10) * 3


def count_decision(spec: dict[str, Any], canary_scale: float) -> tuple[int, str]:
    """(interval, decision) of the ``sequential`` count test made from ``spec``: the baseline steady at 10
    errors per 1,000 requests after 200 intervals of the same history, the canary VARYING x ``canary_scale``."""
    test = CountTest(count_config(spec))
    test.prime_baseline([10.0] * 200, [1000.0] * 200)
    for i, errors in enumerate(VARYING):
        result = test.update(canary_errors=errors * canary_scale, canary_requests=1000.0, baseline_errors=10.0,
                             baseline_requests=1000.0)
        if result.decision.value in ("pass", "fail"):
            return i, result.decision.value
    return -1, result.decision.value


@pytest.mark.parametrize(("scale", "decision"), [(0.5, "pass"), (3.0, "fail")])
def test_the_canary_dispersion_window_ends_on_canary_dispersion_events(scale: float, decision: str) -> None:
    # At 10 expected errors an interval the cautious window ends after 3 intervals by default (12 events);
    # with 0 (or more events than 10 intervals bring) it lasts canaryDispersionIntervals (10), and the same
    # counts decide later.
    default = count_decision({}, scale)
    assert default[1] == decision and count_decision({"canaryDispersionEvents": 12}, scale) == default
    for events in (0, 1000):
        later = count_decision({"canaryDispersionEvents": events}, scale)
        assert later[1] == decision and later[0] > default[0], (events, later, default)


def test_the_canary_dispersion_window_is_canary_dispersion_intervals_long() -> None:
    # canaryDispersionEvents 0: the window is its intervals whatever the traffic; 0 intervals: no window.
    at = {w: count_decision({"canaryDispersionEvents": 0, "canaryDispersionIntervals": w}, 3.0) for w in (0, 10, 20)}
    assert {d for _, d in at.values()} == {"fail"}
    assert at[0][0] < at[10][0] < at[20][0], at


def joint_run(spec: dict[str, Any], canary_errors: Step, baseline_errors: Step, count: int = 40) -> list[Verdict]:
    """A ``sequential`` judge with latency queries, 1,000 requests per version per interval, equal latency."""
    spec = {"canary": {"errors": "ce", "requests": "cr", "latency": "cl"},
            "baseline": {"errors": "be", "requests": "br", "latency": "bl"}, "promoteOnLatencyWhenSparse": True,
            **spec}
    return judge(spec, canary_errors, baseline_errors, FAST, count, horizon_from_count=True)


def test_the_sparse_rules_power_sets_the_errors_needed() -> None:
    last = joint_run({"sparseErrorsPower": 0.9}, lambda i: 0.0, lambda i: 1.0)[-1]
    assert float(last.metadata["neededCanaryErrors"]) == pytest.approx(errors_needed(1.5, 0.05, 0.9), rel=1e-5)
    assert float(last.metadata["neededCanaryErrors"]) > errors_needed(1.5, 0.05)
    assert last.decision.value == "pass", last.reason


def test_the_sparse_rules_horizon_replaces_the_count() -> None:
    # 0.1% of 1,000 requests over 2,000 intervals: far more errors than needed, so not sparse: the metric
    # waits for the error-rate test's own pass; by the count (40) the same counts are sparse.
    long = joint_run({"sparseErrorsHorizon": 2000}, lambda i: 0.0, lambda i: 1.0)[-1]
    assert long.reason.startswith("both tests passed: "), long.reason
    assert long.metadata["errorsSparse"] == "false", long.metadata
    by_count = joint_run({}, lambda i: 0.0, lambda i: 1.0)[-1]
    assert by_count.reason.startswith("error counts too sparse to judge"), by_count.reason
    assert int(by_count.metadata["intervals"]) < int(long.metadata["intervals"])


def test_the_sparse_rules_fail_evidence_ceiling_and_first_interval() -> None:
    def leaning(i: int) -> float:
        return 1.0 if i % 3 == 0 else 0.0

    def rare(i: int) -> float:
        return 1.0 if i % 10 == 0 else 0.0

    held = joint_run({}, leaning, rare, count=15)
    assert all(v.decision.value != "pass" for v in held) and float(held[-1].metadata["eFail"]) > 1
    allowed = joint_run({"sparseErrorsMaxFailEvidence": 50}, leaning, rare, count=15)
    assert allowed[-1].decision.value == "pass", allowed[-1].reason
    # The rule waits for the count test's cautious window: 10 intervals by default, 20 when set so.
    default = joint_run({}, lambda i: 0.0, lambda i: 1.0)[-1]
    later = joint_run({"canaryDispersionIntervals": 20}, lambda i: 0.0, lambda i: 1.0)[-1]
    assert default.decision.value == later.decision.value == "pass"
    assert 10 <= int(default.metadata["intervals"]) < 20 <= int(later.metadata["intervals"]), (
        default.metadata["intervals"], later.metadata["intervals"])


# --------------------------------------------------------------------------- rejected, with the fix


@pytest.mark.parametrize(("spec", "expected"), [
    (metric(canaryDispersionIntervals=-1),
     f"{WHERE}.canaryDispersionIntervals: expected an integer >= 0, got -1"),
    (metric(canaryDispersionIntervals=2.5),
     f"{WHERE}.canaryDispersionIntervals: expected an integer >= 0, got 2.5"),
    (metric(canaryDispersionIntervals=1001),
     f"{WHERE}.canaryDispersionIntervals: expected an integer from 0 to 1000 (intervals; 0: assume the canary "
     "clusters like the baseline), got 1001"),
    (metric(canaryDispersionEvents=-3), f"{WHERE}.canaryDispersionEvents: must be >= 0, got -3"),
    (metric(canaryDispersionEvents="many"), f"{WHERE}.canaryDispersionEvents: expected a number, got 'many'"),
    (metric(guard="t", canaryDispersionIntervals=5),
     f"{WHERE}.canaryDispersionIntervals: only used by the negbin guard (guard: negbin, without dispersion), "
     "which estimates the canary's own clustering; remove canaryDispersionIntervals, or remove dispersion and guard"),
    (metric(dispersion=2, canaryDispersionEvents=5),
     f"{WHERE}.canaryDispersionEvents: only used by the negbin guard"),
    (metric(passHorizon=0), f"{WHERE}.passHorizon: expected an integer >= 1, got 0"),
    (metric(passHorizon=100_001),
     f"{WHERE}.passHorizon: expected an integer from 1 to 100000 (intervals), got 100001"),
    (metric(passMinInformation=-1), f"{WHERE}.passMinInformation: must be >= 0, got -1"),
    (metric(passCheckInformation=True), f"{WHERE}.passCheckInformation: expected a number, got True"),
    (metric(failMinInformation="inf"), f"{WHERE}.failMinInformation: expected a finite number, got 'inf'"),
    (metric(failFloor=0),
     f"{WHERE}.failFloor: must be in (0, 1] (the share of its first stake every bound keeps; 1: equal weights), "
     "got 0"),
    (metric(failFloor=1.5), f"{WHERE}.failFloor: must be in (0, 1]"),
    (metric(promoteOnLatencyWhenSparse=True, sparseErrorsPower=1),
     f"{WHERE}.sparseErrorsPower: must be between 0 and 1 (exclusive), got 1"),
    (metric(promoteOnLatencyWhenSparse=True, sparseErrorsMaxFailEvidence=0),
     f"{WHERE}.sparseErrorsMaxFailEvidence: must be > 0, got 0"),
    (metric(promoteOnLatencyWhenSparse=True, sparseErrorsHorizon=0.5),
     f"{WHERE}.sparseErrorsHorizon: expected an integer >= 1, got 0.5"),
    (metric(sparseErrorsHorizon=60),
     f"{WHERE}.sparseErrorsHorizon: only used with promoteOnLatencyWhenSparse: true; set it, or remove "
     "sparseErrorsHorizon"),
    ({**metric(), "provider": {"judge": {**metric()["provider"]["judge"], "canary": {"errors": "ce", "requests": "cr"},
                                         "baseline": {"errors": "be", "requests": "br"}, "passHorizon": 20}}},
     f"{WHERE}.passHorizon: only used with the latency queries canary.latency and baseline.latency; add them, "
     "or remove passHorizon"),
    (metric(passHorizn=20), f"{WHERE}.passHorizn: unknown field for test sequential (known: "),
    (latency_metric(canaryDispersionIntervals=5),
     f"{WHERE}.canaryDispersionIntervals: unknown field for test sequential-latency"),
    (latency_metric(sparseErrorsPower=0.9), f"{WHERE}.sparseErrorsPower: unknown field for test sequential-latency"),
])
def test_a_bad_value_is_named_with_its_range_and_fix(spec: dict[str, Any], expected: str) -> None:
    problems = validate_metrics([spec])
    assert any(p.startswith(expected) for p in problems), problems


def test_templated_fields_are_left_to_the_run() -> None:
    assert validate_metrics([metric(passHorizon="{{args.horizon}}", canaryDispersionIntervals="{{args.w}}")]) == []


def test_the_unbounded_defaults_stay() -> None:
    assert sparse_rule({}).horizon is None and DEFAULT_HORIZON == 60
    assert latency_config({}, None).pass_horizon == DEFAULT_PASS_HORIZON


def test_kubectl_rollouts_lint_accepts_the_fields_and_names_a_bad_one() -> None:
    def template(**judge_spec: Any) -> dict[str, Any]:
        return {"apiVersion": "pyrollouts.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "judge"},
                "spec": {"metrics": [metric(**judge_spec)]}}

    good = template(canaryDispersionIntervals=8, canaryDispersionEvents=20, passHorizon=45, passMinInformation=100,
                    passCheckInformation=15, failMinInformation=12, failFloor=0.2, promoteOnLatencyWhenSparse=True,
                    sparseErrorsPower=0.85, sparseErrorsMaxFailEvidence=2, sparseErrorsHorizon=90)
    crds = schema.load_crds()
    assert lint.lint_documents([good], crds) == (1, [])
    checked, findings = lint.lint_documents([template(passHorizon=0)], crds)
    assert checked == 1 and [str(f) for f in findings] == [
        f'AnalysisTemplate "judge": {WHERE}.passHorizon: expected an integer >= 1, got 0'], findings
