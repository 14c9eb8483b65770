"""The statistical judge on the sandbox with a real Prometheus and the real controller (issue 7): a
canary whose error rate is twice the stable's is aborted by a `judge` analysis step; an identical
canary is promoted; a canary twice as slow is aborted by the latency test on the scraped histograms.
The judge compares the canary with the stable version (Argo-style: the stable serves as the
baseline), its queries templated with `{{args.canary-hash}}` / `{{args.stable-hash}}` from
`podTemplateHashValue: Latest / Stable`, fed by Prometheus scraping the simulated traffic every
second; the Kayenta-style mann-whitney test fails the error-ratio regression from range queries;
without traffic the judge only waits, and its Inconclusive final count pauses the rollout; with too
little traffic for its minimum evidence the run ends "too little traffic", which the paused Rollout shows;
a canary already serving one interval before the first measurement is judged from that first measurement;
with `promoteOnLatencyWhenSparse` a canary whose errors are too sparse to judge is promoted on its latency
test's pass, and failed when its latency regresses (issue 22).
The verdicts are read back through `kubectl rollouts get rollout` (the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY, Needs, describe
from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer
from tests.fixtures.judge_world import (  # noqa: F401  (`sandbox`, `controller`)
    STABLE_ERROR_RATE,
    JudgeEnv,
    counter,
    judge_env,
    judge_sandbox_fixture,
    judged_by_prometheus_fixture,
)
from tests.fixtures.sandbox import ROLLOUTS_API as API
from tests.fixtures.tools import poll as wait

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

METRIC = "error-rate-judge"


def template(name: str, metric: str, judge: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "canary-hash"}, {"name": "stable-hash"}],
            "metrics": [{"name": metric, "interval": "1s", "count": 90, "provider": {"judge": judge}}],
        },
    }


TEMPLATE = template("judge", METRIC, {
    "test": "sequential",
    "canary": {"errors": counter("canary-hash", True), "requests": counter("canary-hash", False)},
    "baseline": {"errors": counter("stable-hash", True), "requests": counter("stable-hash", False)},
    "alpha": 0.001,  # a false rollback of the identical canary: at most 1 run in 1,000
    "margin": 1.5,
    "minRequests": 500,
})
LATENCY_METRIC = "latency-judge"
BUCKETS = 'http_request_duration_seconds_bucket{{rollouts_pod_template_hash="{{{{args.{}}}}}"}}'
LATENCY_TEMPLATE = template("latency-judge", LATENCY_METRIC, {
    "test": "sequential-latency",
    "canary": {"latency": BUCKETS.format("canary-hash")},
    "baseline": {"latency": BUCKETS.format("stable-hash")},
    "buckets": [0.025, 0.05, 0.1, 0.25],
    "alpha": 0.001,
    "minRequests": 500,
})
MW_METRIC = "error-ratio-kayenta"
RATIO = (
    'sum(rate(http_requests_total{{rollouts_pod_template_hash="{{{{args.{0}}}}}",code=~"5.."}}[3s]))'
    ' / sum(rate(http_requests_total{{rollouts_pod_template_hash="{{{{args.{0}}}}}"}}[3s]))'
)
MW_TEMPLATE = template("kayenta-judge", MW_METRIC, {
    "test": "mann-whitney",
    "canary": {"query": RATIO.format("canary-hash")},
    "baseline": {"query": RATIO.format("stable-hash")},
    "rangeQuery": {"step": "2s"},  # since the run started
    "minPoints": 5,
    "alpha": 0.01,
})


class Env(JudgeEnv):
    """The judge's world with this file's error-rate template as the default analysis."""

    def start_canary(
        self, name: str, canary: dict[str, str], analysis: dict[str, Any] = TEMPLATE, traffic: bool = True,
        stable_error_rate: str = STABLE_ERROR_RATE,
    ) -> str:
        return super().start_canary(name, canary, analysis, traffic, stable_error_rate)


def judge_result(run: dict[str, Any], metric: str = METRIC) -> dict[str, Any]:
    (result,) = [r for r in run["status"].get("metricResults") or [] if r.get("name") == metric]
    return dict(result)


@pytest.fixture
def env(sandbox: ThreadedSandbox, controller: PrometheusServer, request: pytest.FixtureRequest) -> Iterator[Env]:
    with judge_env(sandbox, controller, request.node.name, Env) as env:
        yield env


def test_the_judge_aborts_a_canary_with_twice_the_stables_error_rate(env: Env) -> None:
    run_name = env.start_canary("twice", {"error-rate": "0.2"})
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Failed", run["status"]
    args = {a["name"]: a.get("value") for a in run["spec"]["args"]}
    st = env.status("twice")
    assert args["canary-hash"] == st["currentPodHash"] and args["stable-hash"] == st["stableRS"]
    assert args["canary-hash"] != args["stable-hash"]

    result = judge_result(run)
    last = result["measurements"][-1]
    meta = last["metadata"]
    assert last["phase"] == "Failed" and meta["decision"] == "fail", last
    assert "canary error rate above 1x baseline" in last["message"]
    assert 1.4 < float(meta["estimate"]) < 2.8, meta  # truly 2.0
    low, high = (float(x) for x in meta["interval"].strip("[]").split(","))
    assert 1.0 < low <= float(meta["estimate"]) <= high, meta
    assert float(meta["canaryRequests"]) >= 500 and float(meta["baselineRequests"]) >= 500, meta
    assert float(meta["eFail"]) >= 1000  # 1 / alpha
    # No measurement decided on a handful of requests: all before the last waited or continued.
    for m in result["measurements"][:-1]:
        assert m["phase"] == "Inconclusive" and m["metadata"]["decision"] in ("nodata", "continue"), m
    assert result["inconclusive"] == 0 and result["failed"] == 1

    st = env.wait_phase("twice", "Degraded", 30)
    assert st.get("abort") is True and st["message"].startswith("RolloutAborted"), st
    assert f'Metric "{METRIC}" assessed Failed' in st["message"], st["message"]
    shown = " ".join(env.plugin("get", "rollout", "twice").split())
    assert f"Judge {run_name}/{METRIC}: fail" in shown, shown
    assert f"Estimate: {meta['estimate']} {meta['interval']} (error-rate ratio canary/baseline)" in shown
    assert "Evidence: e-value fail " in shown and "Sample: canary " in shown
    assert "Reason: canary error rate above 1x baseline" in shown


def test_the_judge_promotes_an_identical_canary(env: Env) -> None:
    run_name = env.start_canary("same", {"error-rate": STABLE_ERROR_RATE})
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Successful", run["status"]
    result = judge_result(run)
    last = result["measurements"][-1]
    meta = last["metadata"]
    assert last["phase"] == "Successful" and meta["decision"] == "pass", last
    assert "canary error rate shown below 1.48x baseline" in last["message"]  # margin 1.5, on the test's grid
    low, high = (float(x) for x in meta["interval"].strip("[]").split(","))
    assert low < 1.0 < high, meta
    assert float(meta["canaryRequests"]) >= 500 and float(meta["baselineRequests"]) >= 500, meta
    assert result["count"] < 90 and result["successful"] == 1  # decided early, not at the final count

    st = env.wait_promoted("same", 30)
    assert not st.get("abort")
    shown = " ".join(env.plugin("get", "rollout", "same").split())
    assert f"Judge {run_name}/{METRIC}: pass" in shown, shown


def test_the_latency_judge_aborts_a_slower_canary(env: Env) -> None:
    """Twice the stable's latency (80 +- 20 ms against 40 +- 10 ms), compared on the histogram's bounds."""
    run_name = env.start_canary("slower", {"latency-ms": "80", "latency-jitter-ms": "20"}, LATENCY_TEMPLATE)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Failed", run["status"]
    result = judge_result(run, LATENCY_METRIC)
    last = result["measurements"][-1]
    meta = last["metadata"]
    assert last["phase"] == "Failed" and meta["decision"] == "fail" and meta["test"] == "sequential-latency", last
    assert "canary slower than baseline" in last["message"]
    assert float(meta["estimate"]) > 2 and float(meta["worstBound"]) in (0.025, 0.05, 0.1, 0.25), meta
    assert float(meta["canaryRequests"]) >= 500 and float(meta["baselineRequests"]) >= 500, meta
    for m in result["measurements"][:-1]:
        assert m["phase"] == "Inconclusive" and m["metadata"]["decision"] in ("nodata", "continue"), m
    st = env.wait_phase("slower", "Degraded", 30)
    assert f'Metric "{LATENCY_METRIC}" assessed Failed' in st["message"], st["message"]


def test_the_mann_whitney_judge_fails_the_error_ratio_regression(env: Env) -> None:
    """Kayenta-style: the canary's and the stable's error ratios over the run's window, one point per 2 s."""
    run_name = env.start_canary("kayenta", {"error-rate": "0.2"}, MW_TEMPLATE)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Failed", run["status"]
    result = judge_result(run, MW_METRIC)
    last = result["measurements"][-1]
    meta = last["metadata"]
    assert last["phase"] == "Failed" and meta["decision"] == "fail" and meta["classification"] == "High", last
    assert "canary higher than baseline" in last["message"]
    assert 0.05 < float(meta["estimate"]) < 0.15, meta  # truly 0.2 - 0.1
    assert int(meta["canaryPoints"]) >= 5 and int(meta["baselinePoints"]) >= 5, meta
    assert meta["window"].endswith("step 2s") and meta["evidence"].startswith("p-value ")
    for m in result["measurements"][:-1]:  # before 5 points per version: waiting for data
        assert m["phase"] == "Inconclusive" and m["metadata"]["decision"] in ("nodata", "continue"), m
    shown = " ".join(env.plugin("get", "rollout", "kayenta").split())
    assert f"Judge {run_name}/{MW_METRIC}: fail" in shown and "Sample: canary " in shown, shown


def test_without_traffic_the_judge_waits_then_pauses_the_rollout(env: Env) -> None:
    """No request reaches either version: every measurement waits for data, none fails or passes, and
    the final count ends Inconclusive, which pauses the rollout (it is neither promoted nor aborted)."""
    quiet = template("quiet-judge", METRIC, TEMPLATE["spec"]["metrics"][0]["provider"]["judge"])
    quiet["spec"]["metrics"][0]["count"] = 5
    run_name = env.start_canary("quiet", {"error-rate": "1"}, quiet, traffic=False)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Inconclusive", run["status"]
    result = judge_result(run)
    assert result["count"] == 5 and result["inconclusive"] == 1 and result["failed"] == result["successful"] == 0
    for m in result["measurements"]:
        assert m["phase"] == "Inconclusive" and m["metadata"]["decision"] == "nodata", m
    for m in result["measurements"][:-1]:
        assert m["message"].startswith("waiting for data"), m
    assert result["measurements"][-1]["message"].startswith(
        "too little traffic after 5 measurements: canary 0/500 and baseline 0/500 requests, 0/3 intervals with "
        "traffic; no request from the canary and baseline yet"
    )
    st = env.wait_phase("quiet", "Paused", 30)
    assert not st.get("abort") and st.get("stableRS") != st.get("currentPodHash"), st
    assert any(c.get("reason") == "InconclusiveAnalysisRun" for c in st.get("pauseConditions") or []), st
    assert st["message"].startswith("InconclusiveAnalysisRun: too little traffic after 5 measurements"), st


def test_too_little_traffic_is_an_outcome_the_rollout_shows(env: Env) -> None:
    """Traffic flows but far too little for `minRequests` within `count`: every measurement after the first
    reading says how many more intervals the judge needs at the pace Prometheus shows, the final one ends
    the run Inconclusive with "too little traffic", and the paused Rollout's message and `kubectl rollouts
    get rollout` say so, with the count that would have been enough."""
    thin = template("thin-judge", METRIC, {**TEMPLATE["spec"]["metrics"][0]["provider"]["judge"],
                                           "minRequests": 900000})
    thin["spec"]["metrics"][0]["count"] = 5
    run_name = env.start_canary("thin", {"error-rate": STABLE_ERROR_RATE}, thin)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Inconclusive", run["status"]
    result = judge_result(run)
    assert result["count"] == 5 and result["failed"] == result["successful"] == 0
    measurements = result["measurements"]
    # A first reading, unless both versions' counters were in Prometheus one interval before it (see below).
    assert measurements[0]["message"].startswith(("waiting for data: first reading", "waiting for data: canary "))
    counted = [m for m in measurements[1:] if "/900000 and baseline " in m["message"]]
    assert counted, measurements  # Prometheus had scraped some requests of both versions
    for m in counted[:-1]:
        assert m["message"].startswith("waiting for data: canary "), m
        assert "more intervals (" in m["message"] and "at the pace so far" in m["message"], m
        assert m["metadata"]["decision"] == "nodata" and m["metadata"]["shortfall"].startswith("about "), m
    last = measurements[-1]["message"]
    assert last.startswith("too little traffic after 5 measurements: canary "), last
    assert ", but 0 measurements left of count 5: raise count to at least " in last, last
    assert last in run["status"]["message"], run["status"]
    # The outcome is data on that measurement; the controller words the Rollout's message from it alone.
    meta = measurements[-1]["metadata"]
    needs = Needs.parse(meta[NEEDED_KEY])
    assert meta[OUTCOME_KEY] == "TooLittleTraffic" and needs is not None and needs.measurements == 5, meta
    assert needs.canary[1] == 900000 and needs.more_intervals is not None and needs.more_intervals > 0, needs
    st = env.wait_phase("thin", "Paused", 30)
    assert not st.get("abort"), st
    assert st["message"] == f"InconclusiveAnalysisRun: {describe(meta[OUTCOME_KEY], 5, [('', needs)])}", st
    shown = " ".join(env.plugin("get", "rollout", "thin").split())
    assert "Message: InconclusiveAnalysisRun: too little traffic after 5 measurements: canary " in shown, shown
    assert f"Judge {run_name}/{METRIC}: nodata" in shown and "raise count to at least " in shown, shown


def test_the_first_measurement_judges_a_canary_that_was_already_serving(env: Env) -> None:
    """The metric's `initialDelay` lets Prometheus scrape both versions before the first measurement, so
    that measurement also reads the counters one interval earlier (`time=now-interval`) and judges their
    increase: the test starts one interval sooner than with a first reading that only remembers them."""
    delayed = template("delayed-judge", METRIC, TEMPLATE["spec"]["metrics"][0]["provider"]["judge"])
    delayed["spec"]["metrics"][0]["initialDelay"] = "10s"
    run_name = env.start_canary("delayed", {"error-rate": STABLE_ERROR_RATE}, delayed)
    run = env.finished_run(run_name, timeout=90)
    assert run["status"]["phase"] == "Successful", run["status"]
    first = judge_result(run)["measurements"][0]
    assert not first["message"].startswith("waiting for data: first reading"), first
    assert "thisInterval" in first["metadata"] and first["metadata"]["thisInterval"].startswith("canary "), first
    assert first["metadata"]["decision"] in ("nodata", "continue"), first  # minRequests 500: not yet decided


SPARSE_METRIC = "sparse-judge"
SPARSE_RATE = "0.0001"  # 1,000 canary requests/s for ~90 s: ~9 errors expected, ~33 needed at margin 1.5
SPARSE_JUDGE = {
    **TEMPLATE["spec"]["metrics"][0]["provider"]["judge"],
    "canary": {"errors": counter("canary-hash", True), "requests": counter("canary-hash", False),
               "latency": BUCKETS.format("canary-hash")},
    "baseline": {"errors": counter("stable-hash", True), "requests": counter("stable-hash", False),
                 "latency": BUCKETS.format("stable-hash")},
    "buckets": [0.025, 0.05, 0.1, 0.25],
    "promoteOnLatencyWhenSparse": True,
    # The latency pass covers the bounds that can show it within 30 measurements, not the count's 90:
    # the test is about the sparse rule, and 90 would hold the pass near the end of the run.
    "passHorizon": 30,
}
SPARSE_TEMPLATE = template("sparse-judge", SPARSE_METRIC, SPARSE_JUDGE)


def test_sparse_errors_and_good_latency_are_promoted_early_on_the_latency_test(env: Env) -> None:
    """Both versions fail 1 request in 10,000: by the metric's last measurement the canary is expected to
    fail about 9, far from the ~33 a test of "below 1.5x" needs; its latency is the stable's, so the judge
    promotes it early on the latency test's pass and says why."""
    run_name = env.start_canary("sparse", {"error-rate": SPARSE_RATE}, SPARSE_TEMPLATE, stable_error_rate=SPARSE_RATE)
    run = env.finished_run(run_name, timeout=120)
    assert run["status"]["phase"] == "Successful", run["status"]
    result = judge_result(run, SPARSE_METRIC)
    last = result["measurements"][-1]
    meta = last["metadata"]
    assert last["phase"] == "Successful" and meta["decision"] == "pass", last
    assert last["message"].startswith("error counts too sparse to judge ("), last["message"]
    assert " needed); latency no worse than the baseline: canary exceedance rates shown below " in last["message"]
    assert "; errors so far: no decision yet (e-values fail " in last["message"], last["message"]
    assert float(meta["expectedCanaryErrors"]) < float(meta["neededCanaryErrors"]), meta
    assert meta["errorsSparse"] == "true" and meta["latency.decision"] == "pass", meta
    assert meta["errors.decision"] == "continue" and float(meta["eFail"]) <= 1, meta
    assert result["count"] < 90 and result["successful"] == 1  # early, not at the final count
    st = env.wait_promoted("sparse", 30)
    assert not st.get("abort")
    shown = " ".join(env.plugin("get", "rollout", "sparse").split())
    assert f"Judge {run_name}/{SPARSE_METRIC}: pass" in shown and "error counts too sparse to judge" in shown, shown


def test_sparse_errors_with_a_latency_regression_fail(env: Env) -> None:
    """The same sparse errors, but the canary answers in 80 +- 20 ms: the latency test fails the metric."""
    run_name = env.start_canary(
        "sparse-slow", {"error-rate": SPARSE_RATE, "latency-ms": "80", "latency-jitter-ms": "20"}, SPARSE_TEMPLATE,
        stable_error_rate=SPARSE_RATE,
    )
    run = env.finished_run(run_name, timeout=120)
    assert run["status"]["phase"] == "Failed", run["status"]
    last = judge_result(run, SPARSE_METRIC)["measurements"][-1]
    assert last["phase"] == "Failed" and last["metadata"]["latency.decision"] == "fail", last
    assert last["message"].startswith("latency test failed: canary slower than baseline"), last["message"]
    st = env.wait_phase("sparse-slow", "Degraded", 30)
    assert f'Metric "{SPARSE_METRIC}" assessed Failed' in st["message"], st["message"]


def test_the_flag_without_latency_queries_is_rejected_with_the_fix(env: Env) -> None:
    judge = {k: v for k, v in SPARSE_JUDGE.items() if k not in ("buckets", "passHorizon")}
    judge["canary"] = TEMPLATE["spec"]["metrics"][0]["provider"]["judge"]["canary"]
    judge["baseline"] = TEMPLATE["spec"]["metrics"][0]["provider"]["judge"]["baseline"]
    env.create(f"{API}/{env.ns}/analysistemplates", template("no-latency", SPARSE_METRIC, judge))

    def invalid() -> str | None:
        status = env.get(f"{API}/{env.ns}/analysistemplates/no-latency").get("status") or {}
        found = [c for c in status.get("conditions") or [] if c.get("type") == "Invalid"]
        return str(found[0].get("message")) if found and found[0].get("status") == "True" else None

    message = wait("the template's Invalid condition", invalid, 30)
    assert message == (
        "spec.metrics[0].provider.judge.promoteOnLatencyWhenSparse: needs the latency queries canary.latency and "
        "baseline.latency (a histogram's bucket counter, e.g. http_request_duration_seconds_bucket{...}): the "
        "latency test's pass is what promotes when error counts are too sparse; add both queries, or remove "
        "promoteOnLatencyWhenSparse"
    ), message
