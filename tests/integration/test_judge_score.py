"""The judge's multi-metric score (Kayenta's canary config) on the sandbox with a real Prometheus and the
real controller: three metrics in two groups, the error rate critical and alone in ``errors`` (weight 80),
the latency histograms and the mean latency in ``latency`` (weight 20), thresholds pass 95 / marginal 75.
A canary with twice the stable's error rate fails the critical metric, which fails the run at once (score 0)
and aborts the update; a canary twice as slow fails both latency metrics, which leaves the score at 80:
MARGINAL, so the run ends Inconclusive and the Rollout pauses. Read back through `kubectl rollouts get
rollout` (the plugin) as well."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

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
    shown = " ".join(env.plugin("get", "rollout", "marginal").split())
    assert f"Judge {run_name}/{METRIC}: marginal" in shown and "Estimate: 80 (canary score 0-100" in shown, shown
