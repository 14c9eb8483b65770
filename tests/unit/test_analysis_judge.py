"""The `judge` provider against a fake Prometheus on 127.0.0.1, driven through the runner's
record/assess functions as the controller drives it (state carried between measurements)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY, Needs
from analysis.phases import AnalysisPhase as P
from analysis.phases import MetricCounters
from analysis.providers.base import Context, Measurement
from analysis.providers.judge.provider import STATE_KEY, TESTS, JudgeProvider, decode_state
from analysis.providers.judge.verdicts import SavedState
from analysis.runner import assess, metric_specs, prepare_status, record_measurement
from analysis.spec import validate_metrics
from tests.fixtures.loopback_http import QuietHandler, loopback_server, send_whole

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

# query -> answer: a number (one series), None (no series), a list of (labels, value) series, "nan", or
# "bad" (a PromQL error). Range queries: RANGES[query] -> the values of one series.
VALUES: dict[str, Any] = {}
RANGES: dict[str, Any] = {}  # "bad": a PromQL error
EARLIER: dict[str, Any] = {}  # as VALUES, for instant queries with a `time` (the counters one interval earlier)
SEEN: list[dict[str, str]] = []  # the parameters of every request


class _Fake(QuietHandler):
    def _send(self, code: int, body: Any) -> None:
        send_whole(self, code, "application/json", json.dumps(body).encode())

    def answer(self, body: bytes) -> None:
        params = self.params(body)
        SEEN.append(params)
        query = params.get("query", "")
        if urlparse(self.path).path.endswith("/query_range"):
            if RANGES.get(query) == "bad":
                return self._send(400, {"status": "error", "errorType": "bad_data", "error": "exceeded maximum "
                                        "resolution of 11,000 points per timeseries"})
            values = [[1714564800 + 10 * n, str(v)] for n, v in enumerate(RANGES.get(query, []))]
            series = [{"metric": {}, "values": values}] if values else []
            return self._send(200, {"status": "success", "data": {"resultType": "matrix", "result": series}})
        value = (EARLIER if "time" in params else VALUES).get(query)
        if value == "bad":
            return self._send(400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})
        result: list[dict[str, Any]]
        if value is None:
            result = []
        elif isinstance(value, list):
            result = [{"metric": labels, "value": [1, str(v)]} for labels, v in value]
        else:
            result = [{"metric": {"__name__": "x"}, "value": [1, str(value)]}]
        return self._send(200, {"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with loopback_server(_Fake) as url:
        yield url


def judge_metric(address: str, count: int = 30, **extra: Any) -> dict[str, Any]:
    spec = {
        "address": address,
        "canary": {"errors": "ce", "requests": "cr"},
        "baseline": {"errors": "be", "requests": "br"},
        "minRequests": 500,
        **extra,
    }
    return {"name": "judge", "interval": "1s", "count": count, "provider": {"judge": spec}}


async def _no_secret(name: str, key: str) -> str:
    raise AssertionError("no secret expected")


class Run:
    """A one-metric AnalysisRun status, measured and assessed as the controller does. The fake
    Prometheus answers counters: `step` adds each interval's counts to the totals it serves."""

    def __init__(
        self, metric: dict[str, Any], run: dict[str, Any] | None = None, start: dict[str, float] | None = None
    ) -> None:
        self.spec = {"metrics": [metric]}
        self.status = prepare_status(self.spec, None, NOW)
        self.provider = JudgeProvider()
        self.run = run or {}
        self.totals = {"ce": 0.0, "cr": 0.0, "be": 0.0, "br": 0.0, **(start or {})}
        if "canary" in (metric.get("provider") or {}).get("judge", {}) and "errors" in str(metric):
            VALUES.update(self.totals)
        self.measure()  # the first reading: the counters' starting values

    @property
    def entry(self) -> dict[str, Any]:
        result: dict[str, Any] = self.status["metricResults"][0]
        return result

    def measure(self) -> Measurement:
        history = tuple(Measurement.from_status(m) for m in self.entry.get("measurements") or [])
        ctx = Context(run=self.run, namespace="ns", now=NOW, args={}, read_secret=_no_secret,
                      history=history, counted=MetricCounters.from_status(self.entry).count)
        m = asyncio.run(self.provider.measure(self.spec["metrics"][0], ctx))
        record_measurement(self.status, "judge", m)
        assess(self.spec, self.status, NOW, metric_specs(self.spec, {}))
        return m

    def step(self, ce: Any, cr: Any, be: Any, br: Any) -> Measurement:
        for query, value in zip(("ce", "cr", "be", "br"), (ce, cr, be, br), strict=True):
            if isinstance(value, int | float):
                self.totals[query] += value
                VALUES[query] = self.totals[query]
            else:
                VALUES[query] = value
        return self.measure()

    def stream(self, p_canary: float, p_baseline: float, n: int = 1000, seed: int = 1, limit: int = 40) -> int:
        rng = np.random.default_rng(seed)
        for i in range(limit):
            self.step(int(rng.binomial(n, p_canary)), n, int(rng.binomial(n, p_baseline)), n)
            if self.status["phase"] != P.RUNNING:
                return i + 1
        return limit


def state_of(measurement: Measurement | dict[str, Any]) -> SavedState:
    metadata = measurement.metadata if isinstance(measurement, Measurement) else measurement["metadata"]
    return decode_state(metadata[STATE_KEY], str(metadata.get("test") or "sequential"))


def test_the_first_reading_only_remembers_the_counters(fake: str) -> None:
    run = Run(judge_metric(fake))
    (first,) = run.entry["measurements"]
    assert first["phase"] == P.INCONCLUSIVE and first["metadata"]["decision"] == "nodata"
    assert first["message"].startswith("waiting for data: first reading of the error and request counters")
    assert state_of(first).state is None and state_of(first).totals["canary.requests"] == {"{}": 0.0}


def test_state_is_carried_between_measurements(fake: str) -> None:
    run = Run(judge_metric(fake))
    first = run.step(5, 100, 10, 200)
    assert first.phase is P.INCONCLUSIVE and first.undecided
    assert first.metadata["decision"] == "nodata" and first.metadata["reason"].startswith("waiting for data")
    second = run.step(7, 300, 12, 400)
    assert second.metadata["intervals"] == "2"
    assert second.metadata["canaryRequests"] == "400" and second.metadata["baselineRequests"] == "600"
    assert second.metadata["thisInterval"] == "canary 7/300 baseline 12/400 (errors/requests)"
    assert second.metadata["samples"] == "canary 400 requests, baseline 600 requests in 2 intervals"
    state = state_of(second)
    assert state.state is not None and (state.state["canaryErrors"], state.state["baselineErrors"]) == (12.0, 22.0)
    assert state.totals["baseline.errors"] == {"{}": 22.0}
    # only the newest measurement keeps the state; the undecided ones count towards `count` only
    stored = run.entry["measurements"]
    assert [STATE_KEY in m["metadata"] for m in stored] == [False, False, True]
    assert run.entry["count"] == 3 and run.entry["inconclusive"] == 0 and run.entry["phase"] == P.RUNNING
    assert run.status["phase"] == P.RUNNING


@pytest.mark.parametrize("dispersion", [None, 1.0])
def test_twice_the_errors_fails(fake: str, dispersion: float | None) -> None:
    extra: dict[str, Any] = {} if dispersion is None else {"dispersion": dispersion}
    run = Run(judge_metric(fake, **extra))
    steps = run.stream(0.10, 0.05)
    # Without the stable's history the negbin guard cannot rule out clustering for a while.
    assert run.status["phase"] == P.FAILED and steps <= (12 if dispersion is None else 6)
    last = run.entry["measurements"][-1]
    assert last["phase"] == P.FAILED and last["metadata"]["decision"] == "fail"
    assert float(last["value"]) > 1.3 and "canary error rate above" in last["message"]
    assert run.entry["failed"] == 1 and run.entry["count"] == steps + 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identical_streams_pass_early(fake: str, seed: int) -> None:
    run = Run(judge_metric(fake))
    steps = run.stream(0.05, 0.05, seed=seed)
    assert run.status["phase"] == P.SUCCESSFUL and steps < 30
    last = run.entry["measurements"][-1]
    assert last["phase"] == P.SUCCESSFUL and last["metadata"]["decision"] == "pass"
    assert "consecutiveSuccessLimit" not in run.spec["metrics"][0]  # the judge's default of 1 completes it


def test_a_handful_of_requests_is_never_judged(fake: str) -> None:
    """Every request of the canary fails, none of the baseline's: still below minRequests, so it waits."""
    run = Run(judge_metric(fake))
    for _ in range(10):
        m = run.step(20, 20, 0, 20)
        assert m.phase is P.INCONCLUSIVE and m.undecided and m.message.startswith("waiting for data")
    assert "canary 200/500 and baseline 200/500 requests" in m.message
    assert m.message.endswith("; about 15 more intervals (15s) at the pace so far")  # 300 more at 20 an interval
    assert m.metadata["shortfall"] == "about 15 more intervals (15s) at the pace so far"
    assert run.status["phase"] == P.RUNNING


def test_too_little_traffic_says_what_is_still_needed_and_ends_the_run_inconclusive(fake: str) -> None:
    """Traffic too thin for the minimum evidence within `count`: each measurement says how many more intervals
    it needs at the pace seen and what to change; the final one is the explicit "too little traffic" outcome,
    which the run's message carries."""
    run = Run(judge_metric(fake, count=12))  # the first reading is measurement 1
    for _ in range(10):
        m = run.step(0, 20, 0, 40)
    assert m.undecided and m.message == (
        "waiting for data: canary 200/500 and baseline 400/500 requests, 10/3 intervals with traffic; about 15 "
        "more intervals (15s) at the pace so far, but 1 measurement left of count 12: raise count to at least 26, "
        "or lower minRequests / minIntervals, or send the canary more traffic (a larger setWeight)"
    )
    assert OUTCOME_KEY not in m.metadata  # not an outcome while measurements are left
    waiting = Needs.parse(m.metadata[NEEDED_KEY])
    assert waiting == Needs("requests", (200, 500), (400, 500), (10, 3), 15, 1.0, 11, 12), m.metadata
    m = run.step(0, 20, 0, 40)
    assert m.phase is P.INCONCLUSIVE and not m.undecided
    assert m.message.startswith(
        "too little traffic after 12 measurements: canary 220/500 and baseline 440/500 requests, 11/3 intervals "
        "with traffic; about 14 more intervals (14s) at the pace so far, but 0 measurements left of count 12: "
        "raise count to at least 26"
    )
    assert m.metadata["decision"] == "nodata" and m.metadata["reason"] == m.message
    assert m.metadata[OUTCOME_KEY] == "TooLittleTraffic"  # the structured outcome the Rollout reads
    final = Needs.parse(m.metadata[NEEDED_KEY])
    assert final is not None and (final.canary, final.more_intervals, final.measurements) == ((220, 500), 14, 12)
    assert run.status["phase"] == P.INCONCLUSIVE
    assert run.status["message"] == (
        f'Metric "judge" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0): "{m.message}"'
    )


def test_no_traffic_waits_then_is_inconclusive_at_the_final_count(fake: str) -> None:
    run = Run(judge_metric(fake, count=3))
    m = run.step(None, None, None, None)  # no series at all: no traffic
    assert m.phase is P.INCONCLUSIVE and m.undecided and "waiting for data" in m.message
    assert run.status["phase"] == P.RUNNING
    m = run.step(0, 0, 0, 0)
    assert m.phase is P.INCONCLUSIVE and not m.undecided
    assert m.message == (
        "too little traffic after 3 measurements: canary 0/500 and baseline 0/500 requests, 0/3 intervals with "
        "traffic; no request from the canary and baseline yet, so no estimate of the time still needed: check "
        "that both versions get traffic and that the queries select them"
    )
    assert run.status["phase"] == P.INCONCLUSIVE and run.entry["inconclusive"] == 1


def test_bad_query_is_an_error_and_the_state_survives_it(fake: str) -> None:
    run = Run(judge_metric(fake))
    run.step(10, 1000, 10, 1000)
    bad = run.step(10, "bad", 10, 1000)
    assert bad.phase is P.ERROR and bad.message.startswith("canary.requests: query failed: HTTP 400")
    assert STATE_KEY in bad.metadata
    again = run.step(10, 1000, 10, 1000)
    # the interval of the failed query is not lost: its counts come with the next reading
    assert again.metadata["intervals"] == "2" and again.metadata["canaryRequests"] == "2000"
    assert again.metadata["thisInterval"] == "canary 20/1000 baseline 20/2000 (errors/requests)"
    assert run.entry["error"] == 1 and run.status["phase"] == P.RUNNING


def test_nan_is_a_missing_interval_and_faults_are_errors(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(judge_metric(fake))
    m = run.step("nan", 1000, 10, 1000)
    assert m.phase is P.INCONCLUSIVE and m.undecided
    state = state_of(m).state
    assert state is not None and state["missing"] == 1
    bad = run.step(20, 10, 1, 10)  # more errors than requests
    assert bad.phase is P.ERROR and "exceed its requests" in bad.message
    monkeypatch.delenv("PYROLLOUTS_PROMETHEUS_ADDRESS", raising=False)
    nowhere = Run(judge_metric(""))
    assert nowhere.step(1, 1, 1, 1).message.startswith("no Prometheus address")
    closed = Run(judge_metric("http://127.0.0.1:9"))
    assert "cannot reach Prometheus" in closed.step(1, 1, 1, 1).message


@pytest.mark.parametrize(("answer", "expected"), [
    ("-5", "canary.requests: a counter must be finite and >= 0, Prometheus answered -5"),
    ("+Inf", "canary.requests: a counter must be finite and >= 0, Prometheus answered inf"),
    ("many", "canary.requests: cannot read the sample value 'many'"),
])
def test_impossible_counters_are_errors_naming_the_query(fake: str, answer: str, expected: str) -> None:
    run = Run(judge_metric(fake))
    m = run.step(0, answer, 0, 10)
    assert m.phase is P.ERROR and m.message == expected


def test_counter_resets_and_vanished_series(fake: str) -> None:
    """Per series: a counter that went down restarted (its new value is the increase); a series missing
    from one answer keeps its value, so its return is not mistaken for new traffic."""
    run = Run(judge_metric(fake))
    pod = [{"pod": "a"}, {"pod": "b"}]
    VALUES.update(ce=[(pod[0], 10), (pod[1], 5)], cr=[(pod[0], 1000), (pod[1], 500)], be=0, br=1000)
    run.measure()
    VALUES.update(ce=[(pod[0], 12), (pod[1], 2)], cr=[(pod[0], 1100), (pod[1], 40)], be=0, br=1200)
    m = run.measure()  # pod b restarted: +2 errors and +40 requests from it
    assert m.metadata["thisInterval"] == "canary 4/140 baseline 0/200 (errors/requests)"
    VALUES.update(ce=[(pod[0], 12)], cr=[(pod[0], 1200)], be=0, br=1300)
    assert run.measure().metadata["thisInterval"] == "canary 0/100 baseline 0/100 (errors/requests)"
    VALUES.update(ce=[(pod[0], 12), (pod[1], 3)], cr=[(pod[0], 1300), (pod[1], 90)], be=0, br=1400)
    assert run.measure().metadata["thisInterval"] == "canary 1/150 baseline 0/100 (errors/requests)"


def test_an_unreadable_saved_state_is_an_error(fake: str) -> None:
    run = Run(judge_metric(fake))
    run.entry["measurements"][-1]["metadata"][STATE_KEY] = "not base64!"
    m = run.step(1, 100, 1, 100)
    assert m.phase is P.ERROR and m.message == "judge: saved judge state is not readable"


# --------------------------------------------------------------------------- sequential-latency

BOUNDS = ("0.05", "0.1", "0.25", "0.5", "+Inf")


def histogram(latencies: np.ndarray, labels: dict[str, str]) -> list[tuple[dict[str, str], float]]:
    return [({**labels, "le": le}, float(np.sum(latencies <= float(le)))) for le in BOUNDS]


def latency_metric(address: str, count: int = 30, **extra: Any) -> dict[str, Any]:
    spec = {
        "address": address,
        "test": "sequential-latency",
        "canary": {"latency": "cl"},
        "baseline": {"latency": "bl"},
        **extra,
    }
    return {"name": "judge", "interval": "1s", "count": count, "provider": {"judge": spec}}


def latency_run(address: str, canary_ms: float, baseline_ms: float, seed: int = 1, **extra: Any) -> Run:
    rng = np.random.default_rng(seed)
    VALUES.update(cl=None, bl=None)
    run = Run(latency_metric(address, **extra))
    canary, baseline = np.zeros(0), np.zeros(0)
    for _ in range(40):
        canary = np.concatenate([canary, rng.lognormal(np.log(canary_ms / 1000), 0.5, 500)])
        baseline = np.concatenate([baseline, rng.lognormal(np.log(baseline_ms / 1000), 0.5, 500)])
        VALUES.update(cl=histogram(canary, {"pod": "c"}), bl=histogram(baseline, {"pod": "b"}))
        run.measure()
        if run.status["phase"] != P.RUNNING:
            break
    return run


def test_latency_slower_canary_fails(fake: str) -> None:
    run = latency_run(fake, 120, 60)
    assert run.status["phase"] == P.FAILED
    last = run.entry["measurements"][-1]
    assert last["metadata"]["test"] == "sequential-latency" and last["metadata"]["decision"] == "fail"
    assert "canary slower than baseline" in last["message"]
    assert last["metadata"]["quantity"] == "latency exceedance-rate ratio canary/baseline"
    assert float(last["value"]) > 1.5 and last["metadata"]["interval"].startswith("[")


def test_latency_identical_canary_passes(fake: str) -> None:
    run = latency_run(fake, 60, 60)
    assert run.status["phase"] == P.SUCCESSFUL
    assert run.entry["measurements"][-1]["metadata"]["decision"] == "pass"


def test_latency_bad_answers(fake: str) -> None:
    VALUES.update(cl=[({"pod": "c"}, 5)], bl=None)
    run = Run(latency_metric(fake))
    m = run.measure()
    assert m.phase is P.ERROR and m.message.startswith("canary.latency: a series has no le label")
    VALUES.update(cl=histogram(np.array([0.01]), {}), bl=histogram(np.array([0.01]), {}))
    configured = Run(latency_metric(fake, buckets=[0.05, 0.3]))
    VALUES.update(cl=histogram(np.array([0.01, 0.02]), {}), bl=histogram(np.array([0.01, 0.2]), {}))
    m = configured.measure()
    assert m.phase is P.ERROR and m.message == "judge: latency histograms: histogram lacks the configured bounds [0.3]"
    VALUES.update(cl=histogram(np.array([0.01]), {}), bl=histogram(np.array([0.01]), {}))
    mismatched = Run(latency_metric(fake))
    VALUES.update(cl=[*histogram(np.array([0.01, 0.01]), {}), ({"le": "0.2"}, 1)],
                  bl=histogram(np.array([0.01, 0.01]), {}))  # a bound only the canary's histogram has
    m = mismatched.measure()
    assert m.phase is P.ERROR
    assert m.message == "judge: latency histograms: histogram lacks the configured bounds [0.2]"
    VALUES.update(cl=None, bl=None)
    quiet = Run(latency_metric(fake))
    m = quiet.measure()
    assert m.phase is P.INCONCLUSIVE and m.undecided and m.message.startswith("waiting for data")


# --------------------------------------------------------------------------- mann-whitney


def mw_metric(address: str, count: int = 3, **extra: Any) -> dict[str, Any]:
    spec = {
        "address": address,
        "test": "mann-whitney",
        "canary": {"query": "cq"},
        "baseline": {"query": "bq"},
        "rangeQuery": {"start": "now() - 10m", "step": "10s"},
        **extra,
    }
    return {"name": "judge", "interval": "1s", "count": count, "provider": {"judge": spec}}


def mw_run(address: str, canary: list[Any] | str, baseline: list[Any], count: int = 3, **extra: Any) -> Run:
    """A Mann-Whitney run whose canary and baseline queries answer `canary` and `baseline` (a str one is an
    answer the fake server knows by name, such as "bad")."""
    RANGES.update(cq=canary, bq=baseline)
    return Run(mw_metric(address, count, **extra))


def test_mann_whitney_fails_a_higher_canary_at_once(fake: str) -> None:
    rng = np.random.default_rng(3)
    SEEN.clear()
    run = mw_run(fake, list(rng.normal(0.10, 0.01, 40)), list(rng.normal(0.05, 0.01, 40)))
    assert run.status["phase"] == P.FAILED  # Kayenta stops at the first failing interval
    m = run.entry["measurements"][-1]
    assert m["metadata"]["decision"] == "fail" and m["metadata"]["classification"] == "High"
    assert "canary higher than baseline" in m["message"]
    assert float(m["value"]) == pytest.approx(0.05, abs=0.01)
    lo, hi = (float(x) for x in m["metadata"]["interval"].strip("[]").split(","))
    assert 0.03 < lo < 0.05 < hi < 0.07
    assert m["metadata"]["samples"] == "canary 40 points, baseline 40 points"
    assert m["metadata"]["evidence"].startswith("p-value ")
    ranges = [p for p in SEEN if p.get("query") == "cq"]
    assert ranges and ranges[-1]["step"] == "10s"
    assert float(ranges[-1]["end"]) - float(ranges[-1]["start"]) == pytest.approx(600)


def test_mann_whitney_passes_only_at_the_final_measurement(fake: str) -> None:
    rng = np.random.default_rng(4)
    run = mw_run(fake, list(rng.normal(0.05, 0.01, 40)), list(rng.normal(0.05, 0.01, 40)), count=3)
    first = run.entry["measurements"][-1]
    assert first["phase"] == P.INCONCLUSIVE and first["metadata"]["decision"] == "continue"
    assert first["message"].startswith("no decision before the final measurement (Pass so far)")
    run.measure()
    assert run.status["phase"] == P.RUNNING
    last = run.measure()
    assert last.phase is P.SUCCESSFUL and last.metadata["decision"] == "pass"
    assert run.status["phase"] == P.SUCCESSFUL and run.entry["count"] == 3


def test_mann_whitney_fail_early_off_waits_for_the_final_measurement(fake: str) -> None:
    run = mw_run(fake, [0.2] * 20, [0.1] * 19 + [0.11], count=2, failEarly=False)
    assert run.entry["measurements"][-1]["metadata"]["decision"] == "continue"
    assert run.measure().phase is P.FAILED


def test_mann_whitney_direction_and_effect_size(fake: str) -> None:
    lower = ([0.05] * 19 + [0.051], [0.1] * 19 + [0.11])
    assert mw_run(fake, *lower, count=1).status["phase"] == P.SUCCESSFUL  # increase: lower is fine
    assert mw_run(fake, *lower, count=1, direction="either").status["phase"] == P.FAILED
    higher = ([0.11] * 19 + [0.111], [0.1] * 19 + [0.101])
    assert mw_run(fake, *higher, count=1).status["phase"] == P.FAILED
    small: dict[str, Any] = {"effectSize": {"measure": "meanRatio", "allowedIncrease": 1.2}}
    assert mw_run(fake, *higher, count=1, **small).status["phase"] == P.SUCCESSFUL


def test_mann_whitney_nan_strategy_and_minimum_points(fake: str) -> None:
    canary: list[Any] = ["NaN"] * 15 + [0.1] * 5
    run = mw_run(fake, canary, [0.1] * 20, count=2)
    m = run.entry["measurements"][-1]
    assert m["metadata"]["decision"] == "nodata"
    assert m["message"].startswith("waiting for data: canary 5/10 and baseline 20/10 points (minPoints)")
    last = run.measure()
    assert last.phase is P.INCONCLUSIVE
    # One point every 10 s (rangeQuery.step) per 1 s interval: 5 more points take 50 more intervals.
    assert last.message.startswith("too little data after 2 measurements: canary 5/10 and baseline 20/10 points")
    assert last.message.endswith("; about 50 more intervals (50s) at the pace so far, but 0 measurements left of "
                                 "count 2: raise count to at least 52, or lower minPoints, or give rangeQuery a "
                                 "longer window or a shorter step")
    assert last.metadata[OUTCOME_KEY] == "TooLittleData"
    replaced = mw_run(fake, canary, [0.1] * 20, count=1, nanStrategy="replace")
    assert replaced.status["phase"] == P.SUCCESSFUL  # NaN -> 0: lower, and only an increase fails
    must = mw_run(fake, [], [0.1] * 20, count=1, mustHaveData=True)
    assert must.status["phase"] == P.FAILED
    assert must.entry["measurements"][-1]["message"].startswith("no data (mustHaveData)")
    infinite = mw_run(fake, ["+Inf"] * 20, [0.1] * 20, count=1)
    assert infinite.entry["measurements"][-1]["metadata"]["canaryPoints"] == "0"


def test_mann_whitney_window_defaults_to_the_runs_start(fake: str) -> None:
    SEEN.clear()
    RANGES.update(cq=[0.1] * 20, bq=[0.1] * 20)
    started = (NOW - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    metric = mw_metric(fake, count=1)
    del metric["provider"]["judge"]["rangeQuery"]
    Run(metric, run={"status": {"startedAt": started}})
    (params,) = [p for p in SEEN if p.get("query") == "cq"]
    assert float(params["end"]) - float(params["start"]) == pytest.approx(300) and params["step"] == "1s"
    empty = Run(mw_metric(fake, count=2, rangeQuery={"start": "now()"}))
    assert empty.entry["measurements"][-1]["message"].startswith("waiting for data: the window")


def test_mann_whitney_outliers(fake: str) -> None:
    rng = np.random.default_rng(5)
    baseline = list(rng.normal(0.1, 0.01, 40))
    canary = list(rng.normal(0.1, 0.01, 36)) + [50.0] * 4
    kept = mw_run(fake, canary, baseline, count=1, effectSize={"measure": "meanRatio", "allowedIncrease": 1.5})
    assert kept.status["phase"] == P.SUCCESSFUL  # the rank test ignores the size of 4 outliers
    assert float(kept.entry["measurements"][-1]["metadata"]["effectSize"]) > 2
    removed = mw_run(fake, canary, baseline, count=1, removeOutliers=True)
    assert removed.entry["measurements"][-1]["metadata"]["canaryPoints"] == "40"
    assert removed.status["phase"] == P.SUCCESSFUL


# --------------------------------------------------------------------------- validation


def problems_of(**extra: Any) -> list[str]:
    metric = judge_metric("http://prom", count=extra.pop("_count", 30), **extra)
    return validate_metrics([metric])


def test_validate_metrics_accepts_judge_metrics(fake: str) -> None:
    assert problems_of() == []
    assert validate_metrics([latency_metric("http://prom", buckets=[0.1, 0.5])]) == []
    assert validate_metrics([mw_metric("http://prom", direction="either", nanStrategy="replace",
                                       effectSize={"measure": "cles", "allowedIncrease": 0.6})]) == []
    assert validate_metrics([mw_metric("http://prom", count=11, rangeQuery={})]) == []
    forever = mw_metric("http://prom", failEarly=False)
    del forever["count"]
    assert validate_metrics([forever]) == [
        "spec.metrics[0].provider.judge.failEarly: false needs a count: without one there is no final "
        "measurement, so the judge would never decide"
    ]
    del forever["provider"]["judge"]["failEarly"]
    assert validate_metrics([forever]) == []  # background analysis: fails at the first regression
    assert validate_metrics([mw_metric("http://prom", count=3, rangeQuery={"step": "10s"})]) == []
    assert problems_of(alpha="{{args.alpha}}") == []
    unlimited = judge_metric("http://prom")
    del unlimited["count"]  # an interval without a count: measures until it decides
    assert validate_metrics([unlimited]) == []
    once = judge_metric("http://prom")
    del once["count"], once["interval"]
    assert validate_metrics([once]) == [
        "spec.metrics[0].count: a sequential judge needs more than minIntervals (3) measurements (the first only "
        "reads the counters), got 1; raise count, or set an interval without count"
    ]


@pytest.mark.parametrize(("extra", "expected"), [
    ({"test": "kayenta"}, 'judge.test: "kayenta" is not a judge test (supported: sequential, sequential-latency, '
                          "mann-whitney)"),
    ({"alpha": 2}, "judge.alpha: must be between 0 and 1 (exclusive), got 2"),
    ({"alphaPass": "x"}, "judge.alphaPass: expected a number, got 'x'"),
    ({"margin": 0.8}, "judge.margin: must be >= failRatio (1), got 0.8"),
    ({"failRatio": -1}, "judge.failRatio: must be > 0, got -1"),
    ({"minIntervals": 1.5}, "judge.minIntervals: expected an integer >= 1, got 1.5"),
    ({"dispersion": 0.5}, "judge.dispersion: must be >= 1 (1: Poisson counts), got 0.5"),
    ({"timeout": "soon"}, "judge.timeout: expected a number, got 'soon'"),
    ({"guard": "poisson"}, "judge.guard: expected one of negbin, t, got 'poisson'"),
    ({"dispersionLevel": 1}, "judge.dispersionLevel: must be between 0 and 1 (exclusive), got 1"),
    ({"test": "sequential-latency", "canary": {"latency": "l"}, "baseline": {"latency": "l"}, "guard": "t"},
     "judge.guard: unknown field for test sequential-latency"),
    ({"minIntervals": 3, "_count": 3},
     "spec.metrics[0].count: a sequential judge needs more than minIntervals (3) measurements (the first only "
     "reads the counters), got 3"),
    ({"alhpa": 0.1}, "judge.alhpa: unknown field for test sequential"),
    ({"canary": {"errors": "e"}}, "judge.canary.requests: required (a counter of all requests"),
    ({"canary": {"errors": "e", "requests": "r", "p99": "l"}}, "judge.canary.p99: unknown query"),
    ({"canary": {"errors": "e", "requests": "r", "latency": "l"}},
     "judge.baseline.latency: required (a histogram's bucket counter"),
    ({"baseline": {"errors": "sum(rate(x[1m]))", "requests": "r"}},
     "judge.baseline.errors: give the counter itself, not rate()"),
    ({"test": "sequential-latency", "canary": {"latency": "l"}, "baseline": {"latency": "l"}, "buckets": [0.5, 0.1]},
     "judge.buckets: expected increasing bounds > 0 (seconds), got [0.5, 0.1]"),
])
def test_validate_metrics_names_the_bad_field(extra: dict[str, Any], expected: str) -> None:
    problems = problems_of(**extra)
    assert any(p.startswith("spec.metrics[0].") and expected in p for p in problems), problems


@pytest.mark.parametrize(("extra", "expected"), [
    ({"direction": "up"}, "judge.direction: must be one of increase, decrease, either, got 'up'"),
    ({"nanStrategy": "drop"}, "judge.nanStrategy: must be one of remove, replace, got 'drop'"),
    ({"effectSize": {"measure": "median"}}, "judge.effectSize.measure: must be one of meanRatio, cles"),
    ({"effectSize": {"criticalIncrease": 2}}, "judge.effectSize.criticalIncrease: unknown field"),
    ({"rangeQuery": {"step": "soon"}}, "judge.rangeQuery.step:"),
    ({"minPoints": 1}, "judge.minPoints: expected an integer >= 2, got 1"),
    ({"removeOutliers": "yes"}, "judge.removeOutliers: expected true or false, got 'yes'"),
    ({"canary": {}}, "judge.canary.query: required"),
    ({"margin": 2}, "judge.margin: unknown field for test mann-whitney"),
    ({"rangeQuery": {}}, "judge.minPoints: must be below the metric's count (3), got 10: with the default window"),
    ({"rangeQuery": {"step": "1s"}, "minPoints": 3}, "judge.minPoints: must be below the metric's count (3), got 3"),
])
def test_validate_metrics_names_the_bad_mann_whitney_field(extra: dict[str, Any], expected: str) -> None:
    problems = validate_metrics([mw_metric("http://prom", **extra)])
    assert any(expected in p for p in problems), problems


def test_a_bad_setting_at_measurement_time_is_an_error(fake: str) -> None:
    """A placeholder that resolved to a bad value passes validation and fails the measurement clearly."""
    VALUES.update(ce=0, cr=0, be=0, br=0)
    run = Run(judge_metric(fake, alpha="1.5"))
    assert run.entry["measurements"][-1]["phase"] == P.ERROR
    assert run.entry["measurements"][-1]["message"] == (
        "provider.judge.alpha: must be between 0 and 1 (exclusive), got '1.5'"
    )


# --------------------------------------------------------------------------- the plugin


def test_get_analysisrun_shows_the_judges_verdict(fake: str) -> None:
    from rollouts.cli.analysisrun_info import analysisrun_detail
    from rollouts.cli.render import render_analysisrun

    run = Run(judge_metric(fake))
    run.stream(0.10, 0.05)
    obj = {"metadata": {"name": "ro-abc-2", "namespace": "ns"}, "spec": run.spec, "status": run.status}
    text = render_analysisrun(analysisrun_detail(obj), NOW)
    words = " ".join(text.split())
    assert "Judge judge: fail" in text
    assert "(error-rate ratio canary/baseline)" in text and "Estimate:" in text
    assert "Evidence: e-value fail " in words
    assert re.search(r"Sample: canary (\d+) requests, baseline \1 requests in \d+ intervals", words)
    assert "Reason: canary error rate above 1x baseline" in words
    assert STATE_KEY not in text
    plain = Run({"name": "p", "provider": {"prometheus": {"query": "q"}}})
    assert "Judge" not in render_analysisrun(analysisrun_detail({"spec": plain.spec, "status": plain.status}), NOW)


def test_get_rollout_shows_the_current_analysis_judges(fake: str) -> None:
    from rollouts.cli.info import rollout_info
    from rollouts.cli.render import render_rollout

    failed = Run(judge_metric(fake))
    failed.stream(0.10, 0.05)
    rng = np.random.default_rng(4)
    passed = mw_run(fake, list(rng.normal(0.05, 0.01, 40)), list(rng.normal(0.05, 0.01, 40)), count=1)

    def run(name: str, revision: str, r: Run) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "ownerReferences": [{"uid": "u1"}],
                             "annotations": {"rollouts.pyrollouts.io/revision": revision},
                             "creationTimestamp": "2024-05-01T11:59:00Z"},
                "spec": r.spec, "status": r.status}

    runs = [run("ro-old-1", "1", failed), run("ro-new-2", "2", passed), run("ro-other", "2", failed)]
    runs[2]["metadata"]["ownerReferences"] = [{"uid": "someone-else"}]
    ro: dict[str, Any] = {
        "metadata": {"name": "ro", "namespace": "ns", "uid": "u1"},
        "spec": {"replicas": 1, "strategy": {"canary": {"steps": [{"setWeight": 50}]}}},
        "status": {"canary": {"currentStepAnalysisRunStatus": {"name": "ro-old-1", "status": "Failed"}}},
    }
    words = " ".join(render_rollout(rollout_info(ro, [], [], runs), NOW).split())
    assert "Judge ro-old-1/judge: fail" in words and "ro-new-2/judge" not in words
    assert "Evidence: e-value fail " in words
    assert re.search(r"Sample: canary (\d+) requests, baseline \1 requests in \d+ intervals", words)
    assert "Reason: canary error rate above 1x baseline" in words
    del ro["status"]["canary"]  # promoted: the newest revision's runs
    words = " ".join(render_rollout(rollout_info(ro, [], [], runs), NOW).split())
    assert "Judge ro-new-2/judge: pass" in words and "ro-old-1" in words and "Judge ro-old-1" not in words
    assert "Sample: canary 40 points, baseline 40 points" in words and "Evidence: p-value " in words
    assert "(shift canary - baseline (Hodges-Lehmann, 95% confidence interval))" in words
    assert "Judge ro-other" not in words and STATE_KEY not in words


def test_the_example_template_is_valid() -> None:
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "analysis-template-judge.yaml"
    template = yaml.safe_load(path.read_text())
    assert validate_metrics(template["spec"]["metrics"]) == []
    assert [m["provider"]["judge"]["test"] for m in template["spec"]["metrics"]] == list(TESTS)


def test_garbage_never_reaches_the_user_as_a_numpy_or_scipy_exception() -> None:
    """Random NaN, infinite, huge, negative and empty inputs: a verdict or a clear InvalidInput/ProviderError."""
    import math
    import random
    import warnings

    from analysis.providers.base import ProviderError
    from analysis.providers.judge.spec import mann_whitney_settings
    from analysis.providers.judge.verdicts import mann_whitney_verdict, sequential_step
    from analysis.stats import InvalidInput

    rng = random.Random(7)
    values = [0.0, 1.0, -1.0, 1e308, -1e308, 1e-308, math.nan, math.inf, -math.inf, 5e15, 0.5]
    outcomes: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a RuntimeWarning from numpy
        for _ in range(300):
            canary = [rng.choice(values) for _ in range(rng.randint(0, 25))]
            baseline = [rng.choice(values) for _ in range(rng.randint(0, 25))]
            specs: list[dict[str, Any]] = [{}, {"nanStrategy": "replace"}, {"removeOutliers": True}, {"minPoints": 2},
                                           {"direction": "either", "effectSize": {"measure": "cles"}}]
            spec = rng.choice(specs)
            verdict = mann_whitney_verdict(mann_whitney_settings(spec), canary, baseline, rng.random() < 0.5, "w")
            outcomes.add(verdict.decision.value)
        counts = [0.0, 1.0, 3.0, 1e6, 1e15, math.nan]
        for test, keys in (("sequential", ("canary.errors", "canary.requests", "baseline.errors", "baseline.requests")),
                           ("sequential-latency", ("canary.latency", "baseline.latency"))):
            for _ in range(150):
                saved = None
                try:
                    for _ in range(4):
                        answers = {
                            key: ({"{}": rng.choice(counts)} if test == "sequential" else
                                  {json.dumps({"le": le}): rng.choice(counts) for le in ("0.1", "0.5", "+Inf")})
                            for key in keys
                        }
                        verdict, saved = sequential_step(test, {"minRequests": 0, "minIntervals": 1}, saved, answers)
                        outcomes.add(verdict.decision.value)
                except (InvalidInput, ProviderError) as exc:
                    outcomes.add("error")
                    assert str(exc)
    assert outcomes >= {"fail", "pass", "nodata", "error"}


def example_mann_whitney_metric(address: str) -> dict[str, Any]:
    """The example template's mann-whitney metric, its queries pointed at the fake's cq/bq and its window at
    the fake's points (every other setting as users copy it)."""
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "analysis-template-judge.yaml"
    template = yaml.safe_load(path.read_text())
    (metric,) = [m for m in template["spec"]["metrics"] if m["provider"]["judge"]["test"] == "mann-whitney"]
    metric["provider"]["judge"].update(address=address, canary={"query": "cq"}, baseline={"query": "bq"},
                                       rangeQuery={"start": "now() - 10m", "step": "1m"})
    metric.update(name="judge", count=1)  # the name the Run helper records under
    return dict(metric)


@pytest.mark.parametrize(("increase", "phase"), [(1.2, P.FAILED), (1.05, P.SUCCESSFUL)])
def test_the_example_mann_whitney_fails_a_20_percent_increase(fake: str, increase: float, phase: str) -> None:
    """Mean latency 20% above the baseline's is a regression under the example's `allowedIncrease`; 5% is not."""
    rng = np.random.default_rng(11)
    baseline = rng.normal(0.100, 0.004, 11)
    canary = rng.normal(0.100 * increase, 0.004 * increase, 11)
    RANGES.update(cq=list(canary), bq=list(baseline))
    run = Run(example_mann_whitney_metric(fake))
    assert run.status["phase"] == phase
    assert run.entry["measurements"][-1]["metadata"]["samples"] == "canary 11 points, baseline 11 points"


def test_mann_whitney_query_errors_and_bad_windows(fake: str) -> None:
    run = mw_run(fake, "bad", [0.1] * 20, count=3)
    m = run.entry["measurements"][-1]
    assert m["phase"] == P.ERROR
    assert m["message"] == ("canary.query: query failed: HTTP 400: bad_data: exceeded maximum resolution of "
                            "11,000 points per timeseries")
    RANGES.update(cq=[0.1] * 20)
    assert run.measure().phase is P.INCONCLUSIVE and run.status["phase"] == P.RUNNING  # the error was not fatal
    bad_start = mw_run(fake, [0.1] * 20, [0.1] * 20, count=3, rangeQuery={"start": "yesterday"})
    message = bad_start.entry["measurements"][-1]["message"]
    assert message.startswith("provider.judge.rangeQuery.start: expected now(), now() - DURATION or an RFC 3339")


def test_lint_and_the_template_condition_name_a_bad_judge_field(tmp_path: Any) -> None:
    """`kubectl rollouts lint` and the template's Invalid condition say what validate_metrics says."""
    import pathlib

    import yaml

    from analysis.spec import validate_template
    from rollouts import schema
    from rollouts.cli import lint
    from rollouts.controller.analysisruns import template_status

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "analysis-template-judge.yaml"
    template = yaml.safe_load(path.read_text())
    template["spec"]["metrics"][0]["provider"]["judge"]["alpha"] = 0
    template["spec"]["metrics"][2]["provider"]["judge"]["direction"] = "up"
    problems = validate_template(template)
    assert problems == [
        "spec.metrics[0].provider.judge.alpha: must be between 0 and 1 (exclusive), got 0",
        "spec.metrics[2].provider.judge.direction: must be one of increase, decrease, either, got 'up'",
    ]
    status = template_status({}, problems, 1, NOW)
    assert status is not None and status["conditions"][0]["message"] == "; ".join(problems)
    checked, findings = lint.lint_documents([template], schema.load_crds())
    texts = [str(f) for f in findings]
    assert checked == 1 and all(any(p in t for t in texts) for p in problems), texts


def test_prometheus_answers_to_counters() -> None:
    import math

    from analysis.providers.base import ProviderError
    from analysis.providers.judge.answers import by_le, increases, range_values, series_totals

    vector = [{"metric": {"__name__": "x", "pod": "a"}, "value": [1, "3"]},
              {"metric": {"pod": "b"}, "value": [1, "NaN"]}]
    totals = series_totals("vector", vector, "q")
    assert totals['{"pod":"a"}'] == 3.0 and math.isnan(totals['{"pod":"b"}'])
    assert series_totals("scalar", [1, "7"], "q") == {"{}": 7.0}
    for kind, answer, message in (
        ("matrix", [], "q: expected an instant vector of counters, Prometheus answered a matrix"),
        ("vector", [{"metric": {}}], "q: cannot read the answer's series"),
        ("vector", [{"metric": {}, "value": [1, "x"]}], "q: cannot read the sample value 'x'"),
        ("vector", [{"metric": {}, "value": [1, "-Inf"]}], "q: a counter must be finite and >= 0"),
    ):
        with pytest.raises(ProviderError) as caught:
            series_totals(kind, answer, "q")
        assert str(caught.value).startswith(message)
    delta, remembered = increases({"a": 5.0, "gone": 9.0}, {"a": 7.0, "new": 2.0, "nan": math.nan})
    assert delta["a"] == 2.0 and delta["new"] == 2.0 and math.isnan(delta["nan"])
    assert remembered == {"a": 7.0, "gone": 9.0, "new": 2.0}  # the NaN series keeps no value, "gone" stays
    assert increases({"a": 5.0}, {"a": 1.0})[0] == {"a": 1.0}  # a reset
    assert by_le({'{"le":"0.1","pod":"a"}': 1.0, '{"le":"0.1","pod":"b"}': 2.0, '{"le":"+Inf"}': 4.0}, "q") == {
        "0.1": 3.0, "+Inf": 4.0}
    with pytest.raises(ProviderError, match="q: a series has no le label"):
        by_le({'{"pod":"a"}': 1.0}, "q")
    matrix = [{"metric": {}, "values": [[1, "1"], [2, "NaN"]]}, {"metric": {}, "values": [[1, "+Inf"]]}]
    values = range_values("matrix", matrix, "q")
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf
    with pytest.raises(ProviderError, match="q: expected a range of numbers, Prometheus answered a string"):
        range_values("string", [1, "x"], "q")


def test_count_guard_settings_reach_the_test() -> None:
    from analysis.providers.judge.spec import count_config

    assert count_config({}).guard == "negbin"
    config = count_config({"guard": "t", "dispersionLevel": 0.95})
    assert (config.guard, config.dispersion_level) == ("t", 0.95)


def _stable_history(points: int, rate: float, seed: int = 7) -> None:
    """The baseline's counters over the history window (one series, Poisson errors)."""
    rng = np.random.default_rng(seed)
    requests = np.cumsum(np.full(points, 1000.0))
    errors = np.cumsum(rng.poisson(1000 * rate, points)).astype(float)
    RANGES["be"], RANGES["br"] = errors.tolist(), requests.tolist()


def _range_requests() -> list[dict[str, str]]:
    return [p for p in SEEN if "start" in p and p.get("query") in ("be", "br")]


def test_the_stable_history_is_read_once_and_speeds_up_the_count_test(fake: str) -> None:
    _stable_history(121, 0.05)
    SEEN.clear()
    try:
        run = Run(judge_metric(fake))
        (first,) = run.entry["measurements"]
        assert first["metadata"]["baselineHistory"] == "120 intervals"
        saved = state_of(first).state
        assert saved is not None and saved["historyIntervals"] == 120 and saved["intervals"] == 0
        asked = _range_requests()
        # a day at the metric's 1s interval would be 86,400 points: clamped to 10,000
        assert sorted(p["query"] for p in asked) == ["be", "br"]
        assert all(p["step"] == "1s" and float(p["end"]) - float(p["start"]) == 10_000 for p in asked)
        steps = run.stream(0.10, 0.05)
        assert run.status["phase"] == P.FAILED and steps <= 6
        assert len(_range_requests()) == 2  # only at the first measurement
        last = run.entry["measurements"][-1]
        assert last["metadata"]["baselineHistory"] == "120 intervals"
        assert last["metadata"]["samples"].endswith("intervals (and 120 intervals of the baseline's history)")
    finally:
        RANGES.pop("be", None), RANGES.pop("br", None)


def test_the_stable_history_can_be_switched_off_and_is_skipped_without_the_guard(fake: str) -> None:
    _stable_history(61, 0.05)
    try:
        for extra in ({"baselineHistory": "0"}, {"baselineHistory": 0}, {"dispersion": 1.0}, {"guard": "t"}):
            SEEN.clear()
            run = Run(judge_metric(fake, **extra))
            assert _range_requests() == [] and state_of(run.entry["measurements"][0]).state is None, extra
        SEEN.clear()
        Run(judge_metric(fake, baselineHistory="30m"))
        assert all(float(p["end"]) - float(p["start"]) == 1800 for p in _range_requests())
    finally:
        RANGES.pop("be", None), RANGES.pop("br", None)


def test_a_failed_history_query_is_an_error_naming_the_field(fake: str) -> None:
    RANGES["be"] = "bad"
    try:
        run = Run(judge_metric(fake))
        (first,) = run.entry["measurements"]
        assert first["phase"] == P.ERROR
        assert first["message"].startswith("baselineHistory (set baselineHistory: 0 to skip it): baseline.errors")
        assert STATE_KEY not in (first.get("metadata") or {})  # the next measurement tries again
    finally:
        RANGES.pop("be", None)


@pytest.mark.parametrize("value", ["soon", "-5m", True])
def test_a_bad_history_window_is_reported_by_validation(fake: str, value: Any) -> None:
    problems = validate_metrics([judge_metric(fake, baselineHistory=value)])
    assert any("baselineHistory" in p and "0 to not read" in p for p in problems), problems


def test_range_increases_difference_each_series_and_count_resets() -> None:
    from analysis.providers.base import ProviderError
    from analysis.providers.judge.answers import range_increases

    result = [
        {"metric": {"pod": "a"}, "values": [[20, "15"], [10, "10"], [30, "3"], [40, "NaN"], [50, "8"]]},
        {"metric": {"pod": "b"}, "values": [[30, "100"], [40, "101"]]},  # appears later: its first point only starts it
    ]
    assert range_increases("matrix", result, "q") == {20: 5.0, 30: 3.0, 40: 1.0}
    assert range_increases("matrix", [], "q") == {}
    with pytest.raises(ProviderError, match="q: expected a range of counters"):
        range_increases("vector", [], "q")
    with pytest.raises(ProviderError, match="q: cannot read"):
        range_increases("matrix", [{"values": [[1]]}], "q")


@pytest.fixture
def earlier() -> Iterator[dict[str, Any]]:
    """The counters the fake Prometheus answers one interval before the first reading (none by default)."""
    SEEN.clear()
    yield EARLIER
    EARLIER.clear()


def test_the_first_reading_judges_the_interval_since_the_counters_one_interval_earlier(
    fake: str, earlier: dict[str, Any]
) -> None:
    earlier.update(ce=10.0, cr=1000.0, be=20.0, br=2000.0)
    run = Run(judge_metric(fake), start={"ce": 15.0, "cr": 1300.0, "be": 30.0, "br": 2400.0})
    (first,) = run.entry["measurements"]
    meta = first["metadata"]
    assert first["phase"] == P.INCONCLUSIVE and meta["decision"] == "nodata", first
    assert meta["thisInterval"] == "canary 5/300 baseline 10/400 (errors/requests)" and meta["intervals"] == "1"
    assert first["message"].startswith("waiting for data: canary 300/500 and baseline 400/500 requests"), first
    saved = state_of(first)
    assert saved.state is not None and saved.totals["canary.requests"] == {"{}": 1300.0}
    at = f"{(NOW - dt.timedelta(seconds=1)).timestamp():.3f}"  # the metric's interval is 1s
    assert sorted(p["query"] for p in SEEN if p.get("time") == at) == ["be", "br", "ce", "cr"]
    second = run.step(7, 300, 12, 400)
    assert second.metadata["intervals"] == "2" and second.metadata["canaryRequests"] == "600"


def test_a_canary_without_series_one_interval_earlier_gets_a_first_reading(fake: str, earlier: dict[str, Any]) -> None:
    """The canary did not exist one interval before the first reading: its counters' first values may
    hold requests from before that interval, so the first measurement only remembers the counters."""
    earlier.update(be=20.0, br=2000.0)
    run = Run(judge_metric(fake), start={"ce": 15.0, "cr": 1300.0, "be": 30.0, "br": 2400.0})
    (first,) = run.entry["measurements"]
    assert first["message"].startswith("waiting for data: first reading of the error and request counters")
    assert state_of(first).state is None and state_of(first).totals["canary.requests"] == {"{}": 1300.0}
    assert run.step(5, 300, 10, 400).metadata["thisInterval"] == "canary 5/300 baseline 10/400 (errors/requests)"


def test_the_stable_history_ends_where_the_first_judged_interval_starts(fake: str, earlier: dict[str, Any]) -> None:
    _stable_history(121, 0.05)
    earlier.update(ce=0.0, cr=100.0, be=0.0, br=100.0)
    try:
        run = Run(judge_metric(fake), start={"cr": 200.0, "br": 200.0})
        (first,) = run.entry["measurements"]
        assert first["metadata"]["baselineHistory"] == "120 intervals" and first["metadata"]["intervals"] == "1"
        assert all(float(p["end"]) == (NOW - dt.timedelta(seconds=1)).timestamp() for p in _range_requests())
    finally:
        RANGES.pop("be", None), RANGES.pop("br", None)


def test_a_failed_earlier_reading_is_an_error_naming_it(fake: str, earlier: dict[str, Any]) -> None:
    earlier.update(cr="bad")
    run = Run(judge_metric(fake))
    (first,) = run.entry["measurements"]
    assert first["phase"] == P.ERROR
    assert first["message"].startswith("the counters one interval before the first reading: canary.requests"), first


def test_earlier_start_needs_both_versions_serving() -> None:
    from analysis.providers.judge.verdicts import earlier_start

    both = {"canary.errors": {}, "canary.requests": {"{}": 5.0}, "baseline.requests": {"{}": 0.0}}
    assert earlier_start("sequential", both) == both
    assert earlier_start("sequential", None) is None
    assert earlier_start("sequential", {**both, "canary.requests": {}}) is None
    assert earlier_start("sequential", {**both, "baseline.requests": {"{}": float("nan")}}) is None
    latency = {"canary.latency": {'{"le":"0.1"}': 3.0}, "baseline.latency": {'{"le":"0.1"}': 4.0}}
    assert earlier_start("sequential-latency", latency) == latency
    assert earlier_start("sequential-latency", {**latency, "canary.latency": {}}) is None


def test_a_one_metric_judge_refuses_conditions_it_would_ignore() -> None:
    metric = {**judge_metric("http://prom"), "successCondition": "result < 2", "failureCondition": "result > 3"}
    problems = validate_metrics([metric])
    assert any(p.startswith("spec.metrics[0].successCondition: a judge metric is decided by") for p in problems)
    assert any(p.startswith("spec.metrics[0].failureCondition: ") and "provider.judge.metrics" in p for p in problems)
    assert validate_metrics([judge_metric("http://prom")]) == []
