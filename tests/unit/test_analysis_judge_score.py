"""The judge's multi-metric score (Kayenta's canary config) against a fake Prometheus on 127.0.0.1, driven
through the runner's record/assess functions as the controller drives it: a critical metric's regression
fails at once, a non-critical one's leaves the score MARGINAL (Inconclusive), the conditions see
``result.score`` / ``result.verdict`` / ``result.groups``, and faults are Errors naming the metric."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np
import pytest

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY, Needs
from analysis.phases import AnalysisPhase as P
from analysis.phases import MetricCounters
from analysis.providers.base import JUDGE_STATE_KEY, Context, Measurement
from analysis.providers.judge.provider import JudgeProvider
from analysis.providers.judge.verdicts import decode_state, encode_state
from analysis.runner import assess, metric_specs, prepare_status, record_measurement
from tests.fixtures.loopback_http import QuietHandler, loopback_server, send_whole

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class _Prometheus(QuietHandler):
    """Instant queries answer ``counters[query]`` (one series; absent: no series; "bad": a PromQL error),
    range queries ``ranges[query]`` (one series' values; absent: no series)."""

    counters: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, list[float]]] = {}

    def _answer(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        query = params.get("query", "")
        if urlparse(self.path).path.endswith("/query_range"):
            values = [[1714564800 + 10 * n, str(v)] for n, v in enumerate(self.ranges.get(query, []))]
            result = [{"metric": {}, "values": values}] if values else []
            return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}
        value = self.counters.get(query)
        if value == "bad":
            return 400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}
        vector = [] if value is None else [{"metric": {}, "value": [1, str(value)]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": vector}}

    def answer(self, body: bytes) -> None:
        code, answer = self._answer(self.params(body))
        send_whole(self, code, "application/json", json.dumps(answer).encode())


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with loopback_server(_Prometheus) as url:
        yield url


def count_metric(name: str, groups: list[str], prefix: str, **extra: Any) -> dict[str, Any]:
    """A sequential error-rate metric over the counters ``<prefix>ce``, ``<prefix>cr``, ``<prefix>be``,
    ``<prefix>br``."""
    return {
        "name": name, "groups": groups, "test": "sequential",
        "canary": {"errors": f"{prefix}ce", "requests": f"{prefix}cr"},
        "baseline": {"errors": f"{prefix}be", "requests": f"{prefix}br"},
        "minRequests": 500, "baselineHistory": "0", **extra,
    }


MW_METRIC = {
    "name": "latency-mean", "groups": ["latency"], "test": "mann-whitney",
    "canary": {"query": "cq"}, "baseline": {"query": "bq"},
    "rangeQuery": {"start": "now() - 10m", "step": "10s"}, "minPoints": 5,
}


def score_metric(address: str, count: int = 40, **extra: Any) -> dict[str, Any]:
    """Three metrics in two groups: ``errors`` (critical) alone in its group; ``timeouts`` and the
    mann-whitney ``latency-mean`` in ``latency``; weights 80/20, thresholds 95/75."""
    judge = {
        "address": address,
        "metrics": [
            count_metric("errors", ["errors"], "e", critical=True),
            count_metric("timeouts", ["latency"], "t"),
            MW_METRIC,
        ],
        "groupWeights": {"errors": 80, "latency": 20},
        "scoreThresholds": {"pass": 95, "marginal": 75},
        **extra,
    }
    return {"name": "score", "interval": "1s", "count": count, "provider": {"judge": judge}}


async def _no_secret(name: str, key: str) -> str:
    raise AssertionError("no secret expected")


class Run:
    """A one-metric AnalysisRun status, measured and assessed as the controller does."""

    def __init__(self, metric: dict[str, Any]) -> None:
        self.spec = {"metrics": [metric]}
        self.status = prepare_status(self.spec, None, NOW)
        self.provider = JudgeProvider()
        self.totals: dict[str, float] = {}
        _Prometheus.counters.clear()
        self.rng = np.random.default_rng(7)

    @property
    def entry(self) -> dict[str, Any]:
        result: dict[str, Any] = self.status["metricResults"][0]
        return result

    def measure(self) -> Measurement:
        history = tuple(Measurement.from_status(m) for m in self.entry.get("measurements") or [])
        ctx = Context(run={}, namespace="ns", now=NOW, args={}, read_secret=_no_secret,
                      history=history, counted=MetricCounters.from_status(self.entry).count)
        m = asyncio.run(self.provider.measure(self.spec["metrics"][0], ctx))
        record_measurement(self.status, "score", m)
        assess(self.spec, self.status, NOW, metric_specs(self.spec, {}))
        return m

    def interval(self, rates: dict[str, tuple[float, float]], n: int = 1000) -> None:
        """One interval of traffic: per counter prefix, (canary, baseline) error probability."""
        for prefix, (p_canary, p_baseline) in rates.items():
            for side, p in (("c", p_canary), ("b", p_baseline)):
                for what, add in (("e", float(self.rng.binomial(n, p))), ("r", float(n))):
                    key = f"{prefix}{side}{what}"
                    self.totals[key] = self.totals.get(key, 0.0) + add
                    _Prometheus.counters[key] = self.totals[key]

    def until_done(self, rates: dict[str, tuple[float, float]], limit: int = 60) -> Measurement:
        m = self.measure()
        for _ in range(limit):
            if self.status["phase"] != P.RUNNING:
                break
            self.interval(rates)
            m = self.measure()
        return m


def latency_points(canary: float, baseline: float) -> None:
    rng = np.random.default_rng(5)
    _Prometheus.ranges.update(cq=list(rng.normal(canary, 0.005, 30)), bq=list(rng.normal(baseline, 0.005, 30)))


def test_a_critical_metrics_regression_fails_the_score_at_once(fake: str) -> None:
    latency_points(0.05, 0.05)
    run = Run(score_metric(fake))
    last = run.until_done({"e": (0.10, 0.05), "t": (0.05, 0.05)})
    assert run.status["phase"] == P.FAILED, run.status
    meta = last.metadata
    assert last.phase is P.FAILED and meta["decision"] == "fail" and meta["verdict"] == "fail", meta
    assert last.value == "0" and last.message.startswith("critical metric errors failed: canary error rate above 1x")
    assert json.loads(meta["classifications"])["errors"] == "High"
    errors = json.loads(meta["metric.errors"])
    assert errors["label"] == "High" and errors["critical"] and errors["groups"] == ["errors"], errors
    assert errors["decision"] == "fail" and errors["reason"].startswith("canary error rate above"), errors
    assert float(errors["estimate"]) > 1 and errors["interval"].startswith("["), errors
    # Failed before the mann-whitney metric could pass (only at the final count): at once.
    assert json.loads(meta["classifications"])["latency-mean"] in ("Undecided", "Nodata")
    assert run.entry["count"] < 40 and run.entry["failed"] == 1
    # Every measurement before the last decided nothing and counted towards count only.
    for m in run.entry["measurements"][:-1]:
        assert m["phase"] == P.INCONCLUSIVE and m["metadata"]["decision"] == "continue", m


def test_a_non_critical_regression_leaves_the_score_marginal_which_is_inconclusive(fake: str) -> None:
    latency_points(0.05, 0.05)
    run = Run(score_metric(fake, count=25))
    last = run.until_done({"e": (0.05, 0.05), "t": (0.15, 0.05)})
    assert run.status["phase"] == P.INCONCLUSIVE, run.status
    meta = last.metadata
    assert last.phase is P.INCONCLUSIVE and not last.undecided and meta["verdict"] == "marginal", meta
    # errors 100 (weight 80) + latency 50 (weight 20: timeouts High, latency-mean Pass)
    assert last.value == "90" and json.loads(meta["groups"]) == {"errors": 100.0, "latency": 50.0}
    assert json.loads(meta["classifications"]) == {"errors": "Pass", "timeouts": "High", "latency-mean": "Pass"}
    assert last.message == "MARGINAL: score 90.0 (marginal 75, pass 95); failed: timeouts", last.message
    assert "errors 100 (weight 80, 1/1 pass), latency 50 (weight 20, 1/2 pass)" in meta["evidence"]
    assert run.entry["count"] == 25  # the mann-whitney metric passes at the final count only


def test_every_metric_passing_promotes_with_a_score_of_100(fake: str) -> None:
    latency_points(0.05, 0.05)
    run = Run(score_metric(fake, count=20))
    last = run.until_done({"e": (0.05, 0.05), "t": (0.05, 0.05)})
    assert run.status["phase"] == P.SUCCESSFUL, run.entry["measurements"][-1]
    assert last.value == "100" and last.metadata["verdict"] == "pass" and last.message.startswith("PASS: score 100")


def test_the_conditions_see_score_verdict_and_groups(fake: str) -> None:
    """A marginal score that the metric's own conditions accept: the errors group must be perfect."""
    latency_points(0.05, 0.05)
    metric = score_metric(fake, count=25)
    metric["successCondition"] = 'result.groups.errors == 100 && result.score >= 85 && result.verdict == "marginal"'
    run = Run(metric)
    last = run.until_done({"e": (0.05, 0.05), "t": (0.15, 0.05)})
    assert run.status["phase"] == P.SUCCESSFUL and last.metadata["verdict"] == "marginal", last
    assert last.result == {"score": 90.0, "verdict": "marginal", "groups": {"errors": 100.0, "latency": 50.0}}


def test_undecided_metrics_at_the_final_count_cap_the_verdict_at_marginal(fake: str) -> None:
    """`timeouts` never gets traffic: left out of its group at the final count, and a pass needs every metric."""
    latency_points(0.05, 0.05)
    run = Run(score_metric(fake, count=25))
    last = run.until_done({"e": (0.05, 0.05)})
    assert run.status["phase"] == P.INCONCLUSIVE and last.metadata["verdict"] == "marginal", last
    assert last.value == "100" and json.loads(last.metadata["classifications"])["timeouts"] == "Nodata"
    assert "undecided at the final measurement: timeouts (left out; a pass needs every metric decided); " \
           "too little traffic after 25 measurements: timeouts: canary 0/" in last.message, last.message
    # The same structured outcome as one judge's: the Rollout reads it, and what each short metric needs.
    assert last.metadata[OUTCOME_KEY] == "TooLittleTraffic" and last.metadata["reason"] == last.message
    timeouts = json.loads(last.metadata["metric.timeouts"])
    needed = Needs.parse(timeouts[NEEDED_KEY])
    assert timeouts["decision"] == "nodata" and needed is not None and needed.measurements == 25, timeouts
    assert NEEDED_KEY not in json.loads(last.metadata["metric.errors"])  # decided: needs nothing


def test_get_analysisrun_shows_the_score_as_a_score_with_a_line_per_metric(fake: str) -> None:
    """The plugin's view of a score: its value against the thresholds, final, the groups, the outcome, and
    one line per metric with its groups, decision, estimate and interval, or what it still needs."""
    from rollouts.cli.analysisrun_info import analysisrun_detail
    from rollouts.cli.render import render_analysisrun

    latency_points(0.05, 0.05)
    run = Run(score_metric(fake, count=25))
    run.until_done({"e": (0.05, 0.05)})  # timeouts never gets traffic
    obj = {"metadata": {"name": "ro-abc-2", "namespace": "ns"}, "spec": run.spec, "status": run.status}
    lines = render_analysisrun(analysisrun_detail(obj), NOW).splitlines()
    at = lines.index("Judge score: marginal")
    view = lines[at:]
    assert view[1].split() == ["Score:", "100", "(pass", "95,", "marginal", "75),", "final"], view
    assert view[2].split()[0] == "Groups:" and "errors 100 (weight 80, 1/1 pass)" in view[2], view
    assert view[3].split() == ["Outcome:", "TooLittleTraffic"], view
    assert view[4].split()[0] == "Reason:" and view[5] == "  Metrics:", view
    errors, timeouts, mean = view[6:9]
    assert re.fullmatch(r"    errors \[errors, critical\]: Pass [0-9.]+ \[[0-9.]+, [0-9.]+\]; .+", errors), errors
    no_traffic = "    timeouts [latency]: Nodata [0, inf]; canary 0/500 and baseline 0/500 requests"
    assert timeouts.startswith(no_traffic), timeouts
    assert mean.startswith("    latency-mean [latency]: Pass "), mean
    assert len(view) == 9 and JUDGE_STATE_KEY not in "\n".join(lines)


def test_twenty_metrics_short_of_traffic_keep_every_line_in_the_stored_measurement() -> None:
    """The score's metadata at the metric limit (20), final and short of traffic, within the stored cap."""
    from analysis.caps import cap_measurement
    from analysis.providers.judge.score_verdict import MetricDecision, ScoreOutcome, score_metadata
    from analysis.stats import Classification, Decision, ScoreResult, ScoreThresholds, ScoreVerdict

    needs = Needs("requests", (0, 500), (0, 500), (0, 3), None, 1.0, 30, 30)
    decisions = [MetricDecision(f"m{n:02d}", ("g",), False, Decision.NODATA, Classification.NODATA, "x" * 2000,
                                needs=needs) for n in range(20)]
    result = ScoreResult(None, ScoreVerdict.NODATA, "no data", ())
    outcome = ScoreOutcome(result, ScoreVerdict.NODATA, True, "NODATA", tuple(d.name for d in decisions))
    meta = {**score_metadata(outcome, decisions, ScoreThresholds()), OUTCOME_KEY: "TooLittleTraffic",
            JUDGE_STATE_KEY: "s" * 5000}
    stored = cap_measurement({"metadata": meta})["metadata"]
    assert stored == meta or sorted(stored) == sorted(meta), sorted(set(meta) - set(stored))
    for n in range(20):
        line = json.loads(stored[f"metric.m{n:02d}"])  # cut to fit, still JSON
        assert line["reason"].endswith("...") and Needs.parse(line[NEEDED_KEY]) == needs


def test_a_metric_in_two_groups_counts_in_both(fake: str) -> None:
    latency_points(0.05, 0.05)
    metric = score_metric(fake, count=25)
    metric["provider"]["judge"]["metrics"][1]["groups"] = ["latency", "errors"]
    run = Run(metric)
    last = run.until_done({"e": (0.05, 0.05), "t": (0.15, 0.05)})
    # timeouts High in both groups before the others decide: at best (errors and latency-mean passing)
    # errors 50 x 80 + latency 50 x 20 = 50 < marginal, so the score fails at once.
    assert last.value == "0" and last.metadata["verdict"] == "fail" and run.status["phase"] == P.FAILED
    assert last.message == (
        "FAIL: score 0.0 (marginal 75, pass 95); failed: timeouts; the best score still reachable, 50.0 with "
        "errors, latency-mean passing, is below marginal 75"
    ), last.message
    assert run.entry["count"] < 25


def test_a_failed_query_is_an_error_naming_the_metric_and_the_state_survives(fake: str) -> None:
    latency_points(0.05, 0.05)
    run = Run(score_metric(fake))
    run.interval({"e": (0.05, 0.05), "t": (0.05, 0.05)})
    first = run.measure()
    assert first.phase is P.INCONCLUSIVE and first.undecided and JUDGE_STATE_KEY in first.metadata
    assert first.message.startswith("waiting for errors, timeouts, latency-mean to decide; no metric decided yet")
    _Prometheus.counters["tcr"] = "bad"
    failed = run.measure()
    assert failed.phase is P.ERROR and failed.message.startswith("judge metric timeouts: canary.requests: "), failed
    assert failed.metadata[JUDGE_STATE_KEY] == first.metadata[JUDGE_STATE_KEY]
    run.interval({"e": (0.05, 0.05), "t": (0.05, 0.05)})  # puts the counter back
    resumed = run.measure()
    assert resumed.phase is P.INCONCLUSIVE and resumed.undecided, resumed


def test_a_bad_metric_setting_at_measurement_time_is_an_error_naming_its_path(fake: str) -> None:
    metric = score_metric(fake)
    metric["provider"]["judge"]["metrics"][0]["alpha"] = 3
    m = Run(metric).measure()
    assert m.phase is P.ERROR and m.message == (
        "provider.judge.metrics[0].alpha: must be between 0 and 1 (exclusive), got 3"
    ), m.message
    metric = score_metric(fake)
    metric["provider"]["judge"]["groupWeights"] = {"errors": 50, "latency": 20}
    m = Run(metric).measure()
    assert m.phase is P.ERROR and m.message == (
        "provider.judge.groupWeights: the weights must total 100 (as Kayenta's), got 70"
    ), m.message


def test_a_bearer_token_never_reaches_the_measurement(fake: str) -> None:
    """The shared `authentication` reaches every metric's queries, read once per measurement; the token is
    remembered for redaction and appears in no message or metadata, also when a query fails."""
    token = "s3cr3t-token-value"
    reads: list[tuple[str, str]] = []

    async def read_secret(name: str, key: str) -> str:
        reads.append((name, key))
        return token

    latency_points(0.05, 0.05)
    metric = score_metric(fake)
    metric["provider"]["judge"]["authentication"] = {"bearerToken": {"secretKeyRef": {"name": "prometheus",
                                                                                      "key": "token"}}}
    _Prometheus.counters.clear()
    _Prometheus.counters.update(ece=0, ecr=0, ebe=0, ebr=0, tce=0, tcr="bad", tbe=0, tbr=0)
    ctx = Context(run={}, namespace="ns", now=NOW, args={}, read_secret=read_secret)
    m = asyncio.run(JudgeProvider().measure(metric, ctx))
    assert m.phase is P.ERROR and m.message.startswith("judge metric timeouts: canary.requests: "), m.message
    assert token in ctx.secrets
    assert reads == [("prometheus", "token")]  # one read for the three metrics of one measurement
    assert token not in m.message and all(token not in v for v in m.metadata.values())


def _watch_run(address: str) -> tuple[Run, Measurement]:
    """errors (critical) passes on identical error rates while timeouts has no traffic: the score waits."""
    latency_points(0.05, 0.05)
    run = Run(score_metric(address, count=200))
    m = run.measure()
    for _ in range(60):
        if json.loads(m.metadata["classifications"])["errors"] == "Pass":
            break
        run.interval({"e": (0.05, 0.05)})
        m = run.measure()
    assert json.loads(m.metadata["classifications"])["errors"] == "Pass" and run.status["phase"] == P.RUNNING, m
    return run, m


def test_a_passed_sequential_metric_is_watched_and_a_late_regression_fails_the_score(fake: str) -> None:
    run, passed = _watch_run(fake)
    reason = passed.metadata["metric.errors"]
    run.interval({"e": (0.05, 0.05)})
    still = run.measure()
    assert still.metadata["metric.errors"] == reason and still.undecided, still  # the pass stands as it was
    last = run.until_done({"e": (0.5, 0.05)}, limit=60)
    assert run.status["phase"] == P.FAILED and last.phase is P.FAILED, last
    assert last.message.startswith("critical metric errors failed: canary error rate above 1x baseline"), last
    assert last.message.endswith("(after it had passed)"), last.message
    assert json.loads(last.metadata["classifications"])["errors"] == "High"


def test_a_pass_saved_without_its_tests_state_is_kept_as_it_was(fake: str) -> None:
    """States saved before passes were watched carry no test state for a passed metric: it stays a pass."""
    run, _ = _watch_run(fake)
    entry = run.entry["measurements"][-1]["metadata"]
    saved = decode_state(entry[JUDGE_STATE_KEY], "score")
    assert saved.state is not None and saved.state["metrics"]["errors"]["saved"]  # watched from now on
    saved.state["metrics"]["errors"]["saved"] = None
    entry[JUDGE_STATE_KEY] = encode_state(saved)
    for _ in range(5):
        run.interval({"e": (0.5, 0.05)})
        m = run.measure()
        assert json.loads(m.metadata["classifications"])["errors"] == "Pass" and m.undecided, m
