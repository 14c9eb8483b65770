"""The judge's multi-metric score (Kayenta's canary config) on the sandbox with a real Prometheus and the
real controller: three metrics in two groups, the error rate critical and alone in ``errors`` (weight 80),
the latency histograms and the mean latency in ``latency`` (weight 20), thresholds pass 95 / marginal 75.
A canary with twice the stable's error rate fails the critical metric, which fails the run at once (score 0)
and aborts the update; a canary twice as slow fails both latency metrics, which leaves the score at 80:
MARGINAL, so the run ends Inconclusive and the Rollout pauses. Read back through `kubectl rollouts get
rollout` (the plugin) as well. With weights 50/50 a failed error rate alone fails the score before the
others decide; a passed error rate whose canary pods then fail half their requests fails it later."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY, Needs, describe
from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer
from tests.fixtures.analysis_runs import metric_result
from tests.fixtures.judge_world import (  # noqa: F401  (`sandbox`, `controller`)
    JudgeEnv,
    counter,
    judge_env,
    judge_sandbox_fixture,
    judged_by_prometheus_fixture,
)
from tests.fixtures.tools import poll

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

METRIC = "canary-score"
BUCKETS = 'http_request_duration_seconds_bucket{{rollouts_pod_template_hash="{{{{args.{}}}}}"}}'
MEAN = (
    'sum(rate(http_request_duration_seconds_sum{{rollouts_pod_template_hash="{{{{args.{0}}}}}"}}[3s]))'
    ' / sum(rate(http_request_duration_seconds_count{{rollouts_pod_template_hash="{{{{args.{0}}}}}"}}[3s]))'
)
SCORE_TEMPLATE: dict[str, Any] = {
    "apiVersion": "pyrollouts.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "judge-score"},
    "spec": {
        "args": [{"name": "canary-hash"}, {"name": "stable-hash"}],
        "metrics": [{
            "name": METRIC, "interval": "1s", "count": 90,
            "provider": {"judge": {
                "metrics": [
                    {
                        "name": "error-rate", "groups": ["errors"], "critical": True, "test": "sequential",
                        "canary": {"errors": counter("canary-hash", True), "requests": counter("canary-hash", False)},
                        "baseline": {"errors": counter("stable-hash", True),
                                     "requests": counter("stable-hash", False)},
                        "alpha": 0.001, "minRequests": 500,  # a false rollback of an identical canary: 1 in 1,000
                    },
                    {
                        "name": "latency", "groups": ["latency"], "test": "sequential-latency",
                        "canary": {"latency": BUCKETS.format("canary-hash")},
                        "baseline": {"latency": BUCKETS.format("stable-hash")},
                        "buckets": [0.025, 0.05, 0.1, 0.25], "alpha": 0.001, "minRequests": 500,
                    },
                    {
                        "name": "latency-mean", "groups": ["latency"], "test": "mann-whitney",
                        "canary": {"query": MEAN.format("canary-hash")},
                        "baseline": {"query": MEAN.format("stable-hash")},
                        "rangeQuery": {"step": "2s"}, "minPoints": 5, "alpha": 0.01, "direction": "increase",
                    },
                ],
                "groupWeights": {"errors": 80, "latency": 20},
                "scoreThresholds": {"pass": 95, "marginal": 75},
            }},
        }],
    },
}


@pytest.fixture
def env(sandbox: ThreadedSandbox, controller: PrometheusServer, request: pytest.FixtureRequest) -> Iterator[JudgeEnv]:
    with judge_env(sandbox, controller, request.node.name, JudgeEnv) as env:
        yield env


def last_measurement(run: dict[str, Any]) -> dict[str, Any]:
    result = metric_result(run, METRIC)
    last: dict[str, Any] = result["measurements"][-1]
    return last


def test_a_critical_metrics_regression_fails_the_score_at_once(env: JudgeEnv) -> None:
    run_name = env.start_canary("critical", {"error-rate": "0.2"}, SCORE_TEMPLATE)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Failed", run["status"]
    last = last_measurement(run)
    meta = last["metadata"]
    assert last["phase"] == "Failed" and meta["verdict"] == "fail" and last["value"] == "0", last
    assert last["message"].startswith("critical metric error-rate failed: canary error rate above 1x baseline")
    classes = json.loads(meta["classifications"])
    assert classes["error-rate"] == "High", classes
    assert classes["latency-mean"] != "Pass", classes  # mann-whitney passes at the final count only: not reached
    assert metric_result(run, METRIC)["count"] < 90
    st = env.wait_phase("critical", "Degraded", 30)
    assert st.get("abort") is True and f'Metric "{METRIC}" assessed Failed' in st["message"], st
    shown = " ".join(env.plugin("get", "rollout", "critical").split())
    assert f"Judge {run_name}/{METRIC}: fail" in shown and "Reason: critical metric error-rate failed" in shown, shown


def test_a_non_critical_regression_is_marginal_and_pauses_the_rollout(env: JudgeEnv) -> None:
    """Twice the stable's latency (80 +- 20 ms against 40 +- 10 ms), the same error rate."""
    run_name = env.start_canary("marginal", {"latency-ms": "80", "latency-jitter-ms": "20"}, SCORE_TEMPLATE)
    run = env.finished_run(run_name, timeout=120)
    assert run["status"]["phase"] == "Inconclusive", run["status"]
    last = last_measurement(run)
    meta = last["metadata"]
    assert last["phase"] == "Inconclusive" and meta["verdict"] == "marginal", last
    assert json.loads(meta["classifications"]) == {"error-rate": "Pass", "latency": "High", "latency-mean": "High"}
    assert last["value"] == "80" and json.loads(meta["groups"]) == {"errors": 100.0, "latency": 0.0}, meta
    assert last["message"] == "MARGINAL: score 80.0 (marginal 75, pass 95); failed: latency, latency-mean"
    st = env.wait_phase("marginal", "Paused", 30)
    assert not st.get("abort") and st.get("stableRS") != st.get("currentPodHash"), st
    assert any(c.get("reason") == "InconclusiveAnalysisRun" for c in st.get("pauseConditions") or []), st
    shown = env.plugin("get", "rollout", "marginal")
    lines = shown.splitlines()
    at = lines.index(f"Judge {run_name}/{METRIC}: marginal")
    assert lines[at + 1].split() == ["Score:", "80", "(pass", "95,", "marginal", "75),", "final"], shown
    metrics = lines[lines.index("  Metrics:", at) + 1:][:3]
    assert metrics[0].startswith("    error-rate [errors, critical]: Pass "), shown
    assert metrics[1].startswith("    latency [latency]: High ") and metrics[2].startswith(
        "    latency-mean [latency]: High "), shown
    for line in metrics:  # each test's estimate and its interval
        assert re.search(r": (Pass|High) -?[0-9.e+-]+ \[-?[0-9.e+-]+, -?[0-9.e+-]+\]; ", line), line


def _template(name: str, weights: dict[str, int], count: int, critical: bool) -> dict[str, Any]:
    """SCORE_TEMPLATE with other group weights, count and criticality of the error-rate metric."""
    template = copy.deepcopy(SCORE_TEMPLATE)
    template["metadata"]["name"] = name
    metric = template["spec"]["metrics"][0]
    metric["count"] = count
    metric["provider"]["judge"]["groupWeights"] = weights
    metric["provider"]["judge"]["metrics"][0]["critical"] = critical
    return template


def test_a_failed_half_weight_group_fails_the_score_before_the_others_decide(env: JudgeEnv) -> None:
    """The error rate, not critical, alone in a group of weight 50: once it fails the score can reach 50 at
    best (every latency metric passing), below marginal 75, so the run fails without waiting for the
    mann-whitney metric (which decides at the final count only)."""
    template = _template("judge-score-half", {"errors": 50, "latency": 50}, 90, critical=False)
    run_name = env.start_canary("half", {"error-rate": "0.2"}, template)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Failed", run["status"]
    last = last_measurement(run)
    assert last["phase"] == "Failed" and last["metadata"]["verdict"] == "fail", last
    assert json.loads(last["metadata"]["classifications"])["error-rate"] == "High", last
    assert "latency-mean" in last["message"] and "is below marginal 75" in last["message"], last["message"]
    assert "the best score still reachable, 50.0 with" in last["message"], last["message"]
    assert metric_result(run, METRIC)["count"] < 90
    env.wait_phase("half", "Degraded", 30)


def test_a_score_short_of_traffic_ends_with_the_outcome_the_rollout_shows(env: JudgeEnv) -> None:
    """Traffic flows but far too little for any metric's minimum evidence within `count`: the score's final
    measurement has the structured outcome (`outcome`, each short metric's `needed` in `metric.<name>`),
    and the paused Rollout's message, worded by the controller from those keys, names every short metric."""
    template = _template("judge-score-thin", {"errors": 80, "latency": 20}, 5, critical=True)
    judge = template["spec"]["metrics"][0]["provider"]["judge"]
    for metric in judge["metrics"]:  # mann-whitney: 0.1 point an interval, 4 needed within a count of 5
        thin = {"minPoints": 4, "rangeQuery": {"step": "10s"}} if metric["test"] == "mann-whitney" else {}
        metric.update(thin or {"minRequests": 900000})
    run_name = env.start_canary("thin", {}, template)
    run = env.finished_run(run_name)
    assert run["status"]["phase"] == "Inconclusive", run["status"]
    last = last_measurement(run)
    meta = last["metadata"]
    assert meta["verdict"] == "nodata" and meta[OUTCOME_KEY] == "TooLittleTraffic", meta
    short = [(name, Needs.parse(json.loads(meta[f"metric.{name}"])[NEEDED_KEY]))
             for name in ("error-rate", "latency", "latency-mean")]
    assert all(needs is not None and needs.measurements == 5 for _, needs in short), short
    units = [needs.unit for _, needs in short if needs is not None]
    assert units == ["requests", "requests", "points"], short
    assert "; too little traffic after 5 measurements: error-rate: canary " in last["message"], last["message"]
    worded = describe("TooLittleTraffic", 5, [(n, needs) for n, needs in short if needs is not None])
    st = env.wait_phase("thin", "Paused", 30)
    assert st["message"] == f"InconclusiveAnalysisRun: {worded}", st
    shown = env.plugin("get", "rollout", "thin")
    assert ["Outcome:", "TooLittleTraffic"] in [line.split() for line in shown.splitlines()], shown


def _canary_pods(env: JudgeEnv, name: str) -> list[dict[str, Any]]:
    canary = env.status(name)["currentPodHash"]
    pods = env.get(f"/api/v1/namespaces/{env.ns}/pods?labelSelector=rollouts-pod-template-hash%3D{canary}")
    items: list[dict[str, Any]] = pods["items"]
    return items


def test_a_passed_metric_that_regresses_later_fails_the_score(env: JudgeEnv) -> None:
    """The error rate passes on the stable's own rate; the canary's pods then fail half their requests
    (their annotation, read live by the simulated traffic) while the mann-whitney metric still waits for
    the final count: the watched metric's fail side fires and the score fails."""
    template = _template("judge-score-watch", {"errors": 80, "latency": 20}, 600, critical=True)
    run_name = env.start_canary("watch", {}, template)

    def error_rate_passed() -> dict[str, Any] | None:
        run = env.run(run_name)
        measurements = (metric_result(run, METRIC) if run.get("status") else {}).get("measurements") or []
        meta = (measurements[-1].get("metadata") or {}) if measurements else {}
        classes = json.loads(meta.get("classifications") or "{}")
        return run if classes.get("error-rate") == "Pass" else None

    run = poll("the error rate to pass", error_rate_passed, 240, interval=0.5)
    assert run["status"]["phase"] == "Running", run["status"]
    pods = _canary_pods(env, "watch")
    assert pods
    for pod in pods:
        response = env.client.patch(
            f"/api/v1/namespaces/{env.ns}/pods/{pod['metadata']['name']}",
            json={"metadata": {"annotations": {"sandbox.pyrollouts.io/error-rate": "0.5"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code < 300, response.text
    run = env.finished_run(run_name, timeout=120)
    assert run["status"]["phase"] == "Failed", run["status"]
    last = last_measurement(run)
    assert json.loads(last["metadata"]["classifications"])["error-rate"] == "High", last
    assert last["message"].startswith("critical metric error-rate failed: canary error rate above"), last
    assert "(after it had passed)" in last["message"], last["message"]
    env.wait_phase("watch", "Degraded", 30)
