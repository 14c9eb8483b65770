"""A ``sequential`` judge that also carries latency queries (issue 22): the sparse-errors rule, the combined
verdict of the error-rate and latency tests, ``promoteOnLatencyWhenSparse``, its validation, and saved states
from before the latency part existed."""

from __future__ import annotations

import base64
import json
import math
import zlib
from typing import Any

import numpy as np
import pytest

from analysis.providers.judge.verdicts import decode_state, encode_state, sequential_step
from analysis.spec import validate_metrics
from analysis.stats import InvalidInput
from analysis.stats.sparse_errors import (
    DEFAULT_HORIZON,
    errors_needed,
    expected_errors,
    leans_to_regression,
    promotes_on_latency,
    sparse_errors,
)
from tests.fixtures.judge_steps import FAST, judge

# One interval's latency histogram (cumulative counts by le) of 1,000 requests: as fast as the baseline,
# or slower at every bound.
SLOW = {"0.025": 100.0, "0.05": 400.0, "0.1": 900.0, "+Inf": 1000.0}
LATENCY = {"canary": {"latency": "canary_bucket"}, "baseline": {"latency": "baseline_bucket"}}


def test_errors_needed_is_the_non_inferiority_tests_sample_size() -> None:
    # ((z_0.95 sqrt(1.5) + z_0.8) / 0.5)^2 = ((1.6449 * 1.2247 + 0.8416) / 0.5)^2
    assert errors_needed(1.5, 0.05) == pytest.approx(32.6, abs=0.05)
    assert errors_needed(2.0, 0.05) == pytest.approx(10.04, abs=0.05)
    assert errors_needed(1.5, 0.01) > errors_needed(1.5, 0.05) > errors_needed(3.0, 0.05)
    assert errors_needed(1.0, 0.05) == math.inf  # no margin: no count is ever enough


def test_expected_errors_extrapolates_the_canarys_pace_at_the_baselines_rate() -> None:
    # 10 intervals of 100 canary requests, 50 to go, at 1%, dispersion 2: 1% * 6,000 / 2
    assert expected_errors(0.01, 1000.0, 10.0, 50.0, 2.0) == pytest.approx(30.0)
    vectorised = expected_errors(np.array([0.01, 0.0]), np.array([1000.0, 1000.0]), np.array([10.0, 10.0]),
                                 np.array([50.0, 50.0]), np.array([1.0, 1.0]))
    assert vectorised.tolist() == pytest.approx([60.0, 0.0])


def test_the_rule_looks_to_the_last_measurement_or_a_default_horizon() -> None:
    bounded = sparse_errors(baseline_rate=0.01, canary_requests=1000.0, intervals=10, intervals_left=20,
                            dispersion=1.0, margin=1.5, alpha_pass=0.05)
    assert bounded.expected == pytest.approx(30.0) and bounded.sparse and bounded.intervals_left == 20
    assert bounded.text() == (
        "error counts too sparse to judge (30 canary errors expected by the last measurement, 32.6 needed)"
    )
    unbounded = sparse_errors(baseline_rate=0.01, canary_requests=1000.0, intervals=10, intervals_left=None,
                              dispersion=1.0, margin=1.5, alpha_pass=0.05)
    assert unbounded.intervals_left == DEFAULT_HORIZON - 10 and unbounded.expected == pytest.approx(60.0)
    assert not unbounded.sparse
    clustered = sparse_errors(baseline_rate=0.01, canary_requests=1000.0, intervals=10, intervals_left=None,
                              dispersion=3.0, margin=1.5, alpha_pass=0.05)
    assert clustered.sparse  # 60 errors that cluster 3x carry the evidence of 20
    wide = sparse_errors(baseline_rate=0.01, canary_requests=1000.0, intervals=10, intervals_left=20,
                         dispersion=1.0, margin=2.0, alpha_pass=0.05)
    assert not wide.sparse  # a wider margin needs fewer errors


def test_a_fail_e_value_above_one_leans_towards_a_regression() -> None:
    assert leans_to_regression(1.5) and not leans_to_regression(1.0) and not leans_to_regression(0.2)
    assert leans_to_regression(np.array([0.5, 2.0])).tolist() == [False, True]


def test_the_rule_wants_sparse_calm_counts_past_the_cautious_window() -> None:
    assert promotes_on_latency(0.3, 10, 20.0, 32.6, 10)
    assert not promotes_on_latency(0.3, 9, 20.0, 32.6, 10)  # the dispersion is still the cautious one
    assert not promotes_on_latency(1.2, 10, 20.0, 32.6, 10)  # leans towards a regression
    assert not promotes_on_latency(0.3, 10, 40.0, 32.6, 10)  # enough errors for the error-rate test
    rows = promotes_on_latency(np.array([0.3, 2.0]), np.array([12.0, 12.0]), np.array([5.0, 5.0]), 32.6, 10)
    assert rows.tolist() == [True, False]




SPARSE = {**LATENCY, "promoteOnLatencyWhenSparse": True}


def test_sparse_errors_and_good_latency_promote_early_and_say_why() -> None:
    verdicts = judge(SPARSE, lambda i: 0.0, lambda i: 1.0, FAST)  # baseline 0.1%: ~40 canary errors in all
    last = verdicts[-1]
    assert last.decision.value == "pass" and len(verdicts) < 40, [v.reason for v in verdicts]
    assert last.reason.startswith("error counts too sparse to judge (") and " needed); latency no worse than the " \
        "baseline: canary exceedance rates shown below " in last.reason, last.reason
    assert "; errors so far: no decision yet (e-values fail " in last.reason and "canary 0/" in last.reason
    meta = last.metadata
    assert meta["errorsSparse"] == "true" and meta["errors.decision"] == "continue", meta
    assert float(meta["expectedCanaryErrors"]) < float(meta["neededCanaryErrors"]) == pytest.approx(32.6, abs=0.1)
    assert meta["latency.decision"] == "pass" and meta["test"] == "sequential", meta
    assert int(meta["intervals"]) >= 10  # not within the error-rate test's cautious-dispersion window
    assert verdicts[0].reason.startswith("waiting for data: first reading of the error and request and latency")
    for v in verdicts[1:-1]:
        assert v.decision.value in ("nodata", "continue"), v.reason


def test_a_latency_regression_fails_the_metric_whatever_the_errors_say() -> None:
    last = judge(SPARSE, lambda i: 0.0, lambda i: 1.0, SLOW)[-1]
    assert last.decision.value == "fail" and last.reason.startswith("latency test failed: canary slower than "
                                                                      "baseline"), last.reason
    assert last.metadata["latency.decision"] == "fail" and last.metadata["errors.decision"] == "continue"


def test_without_the_flag_both_tests_must_pass() -> None:
    verdicts = judge(LATENCY, lambda i: 0.0, lambda i: 1.0, FAST, count=15)
    assert [v.decision.value for v in verdicts][-1] == "continue" and len(verdicts) == 15
    assert verdicts[-1].reason.startswith("no decision yet: errors: no decision yet (e-values fail ")
    assert "; latency: canary exceedance rates shown below " in verdicts[-1].reason
    assert "errorsSparse" not in verdicts[-1].metadata
    # With errors plentiful enough for the error-rate test, both pass.
    both = judge(LATENCY, lambda i: 10.0, lambda i: 10.0, FAST, requests=5000.0)[-1]
    assert both.decision.value == "pass" and both.reason.startswith("both tests passed: errors: canary error rate "
                                                                      "shown below "), both.reason


def test_plentiful_errors_are_not_sparse_and_wait_for_the_error_rate_test() -> None:
    # 1%: ~390 canary errors by the last measurement; the first intervals' cautious dispersion (the canary's
    # own clustering is not known yet) makes them count for less, later it does not.
    verdicts = judge(SPARSE, lambda i: 12.0 if i % 2 else 8.0, lambda i: 10.0, FAST)
    latency_passed = [v for v in verdicts if v.metadata.get("latency.decision") == "pass"]
    assert latency_passed and all(v.metadata["errorsSparse"] == "false" for v in latency_passed), verdicts[-1].metadata
    assert verdicts[-1].decision.value == "pass" and verdicts[-1].reason.startswith("both tests passed: ")


def test_canary_errors_that_lean_towards_a_regression_are_not_promoted_on_latency() -> None:
    verdicts = judge(SPARSE, lambda i: 1.0 if i % 3 == 0 else 0.0, lambda i: 1.0 if i % 10 == 0 else 0.0, FAST,
                     count=15)
    assert all(v.decision.value != "pass" for v in verdicts), verdicts[-1].reason
    meta = verdicts[-1].metadata
    assert meta["errorsSparse"] == "true" and float(meta["eFail"]) > 1, meta


def test_an_error_rate_regression_fails_with_the_error_tests_reason() -> None:
    last = judge(SPARSE, lambda i: 40.0, lambda i: 5.0, FAST)[-1]
    assert last.decision.value == "fail" and last.reason.startswith("error-rate test failed: canary error rate "
                                                                      "above 1x baseline"), last.reason


def test_a_state_saved_before_the_latency_part_still_loads() -> None:
    old = {"test": "sequential", "totals": {"canary.errors": {"{}": 1.0}}, "state": None}
    text = base64.b64encode(zlib.compress(json.dumps(old).encode())).decode()
    saved = decode_state(text, "sequential")
    assert saved.latency is None and saved.totals == {"canary.errors": {"{}": 1.0}}
    assert "latency" not in json.loads(zlib.decompress(base64.b64decode(encode_state(saved))))
    # A judge with latency queries resumed from it starts the latency test at this reading.
    answers = {key: {"{}": 0.0} for key in ("canary.errors", "canary.requests", "baseline.errors",
                                             "baseline.requests")}
    answers |= {f"{side}.latency": {json.dumps({"le": le}): v for le, v in FAST.items()} for side in ("canary",
                                                                                                     "baseline")}
    verdict, state = sequential_step("sequential", SPARSE, saved, answers)
    assert verdict.metadata["latency.decision"] == "nodata" and state.latency is not None
    with pytest.raises(InvalidInput, match="not a judge state"):
        decode_state(base64.b64encode(zlib.compress(json.dumps({**old, "latency": [1]}).encode())).decode(),
                     "sequential")


def metric(**judge_spec: Any) -> dict[str, Any]:
    spec = {"address": "http://prom", "canary": {"errors": "ce", "requests": "cr"},
            "baseline": {"errors": "be", "requests": "br"}, **judge_spec}
    return {"name": "judge", "interval": "1m", "count": 30, "provider": {"judge": spec}}


def with_latency(canary_latency: str = "cl", **extra: Any) -> dict[str, Any]:
    return metric(canary={"errors": "ce", "requests": "cr", "latency": canary_latency},
                  baseline={"errors": "be", "requests": "br", "latency": "bl"}, **extra)


def test_latency_queries_on_sequential_are_valid_with_or_without_the_flag() -> None:
    assert validate_metrics([with_latency()]) == []
    assert validate_metrics([with_latency(promoteOnLatencyWhenSparse=True, buckets=[0.1, 0.5])]) == []
    assert validate_metrics([with_latency(promoteOnLatencyWhenSparse="{{args.sparse}}")]) == []


@pytest.mark.parametrize(("spec", "expected"), [
    (metric(promoteOnLatencyWhenSparse=True),
     "spec.metrics[0].provider.judge.promoteOnLatencyWhenSparse: needs the latency queries canary.latency and "
     "baseline.latency (a histogram's bucket counter, e.g. http_request_duration_seconds_bucket{...}): the "
     "latency test's pass is what promotes when error counts are too sparse; add both queries, or remove "
     "promoteOnLatencyWhenSparse"),
    (with_latency(promoteOnLatencyWhenSparse="yes"),
     "spec.metrics[0].provider.judge.promoteOnLatencyWhenSparse: expected true or false, got 'yes'"),
    (metric(buckets=[0.1]),
     "spec.metrics[0].provider.judge.buckets: only used with the latency queries canary.latency and "
     "baseline.latency; add them, or remove buckets"),
    (metric(canary={"errors": "ce", "requests": "cr", "latency": "cl"}),
     "spec.metrics[0].provider.judge.baseline.latency: required (a histogram's bucket counter"),
    (with_latency(buckets=[0.5, 0.1]),
     "spec.metrics[0].provider.judge.buckets: expected increasing bounds > 0 (seconds), got [0.5, 0.1]"),
    (with_latency("rate(cl[1m])"),
     "spec.metrics[0].provider.judge.canary.latency: give the counter itself, not rate()"),
])
def test_a_bad_latency_part_is_named_with_its_fix(spec: dict[str, Any], expected: str) -> None:
    problems = validate_metrics([spec])
    assert any(p.startswith(expected) for p in problems), problems
