"""kayenta metrics end to end: AnalysisRuns on the sandbox, measured by the controller against a local server
speaking Kayenta's canary API (start an execution, look at it 15 s later, judge its score)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.analysis_runs import (
    assert_error_streak,
    assert_example_accepted_and_bad_template_named,
    closed_port,
    metric_result,
    run_manifest,
    wait_done,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.kayenta_server import ACCOUNTS, APPLICATION, Kayenta, kayenta_server


@pytest.fixture(scope="module")
def kayenta() -> Iterator[Kayenta]:
    with kayenta_server() as server:
        server.scores.update({"good": 96, "meh": 80, "bad": 30})
        yield server


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: Any) -> str:
    return cluster.new_namespace("kayenta")


def kayenta_metric(address: str, config: str, **extra: Any) -> dict[str, Any]:
    scope = {"scope": "app=guestbook", "step": 60, "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:10:00Z"}
    return {"name": "kayenta", "provider": {"kayenta": {
        "address": address, "application": APPLICATION, "canaryConfigName": config, **ACCOUNTS,
        "threshold": {"pass": 90, "marginal": 75},
        "scopes": [{"name": "default", "controlScope": scope, "experimentScope": {**scope, "scope": "app=canary"}}],
    }}, **extra}


def test_scores_decide_and_faults_are_errors(cluster: Cluster, ns: str, kayenta: Kayenta) -> None:
    # All at once: each waits the 15 s Kayenta needs before its result is looked at.
    cluster.apply(ns, run_manifest("k-good", [kayenta_metric(kayenta.url, "good")]),
                  run_manifest("k-meh", [kayenta_metric(kayenta.url, "meh")]),
                  run_manifest("k-bad", [kayenta_metric(kayenta.url, "bad")]),
                  run_manifest("k-unknown", [kayenta_metric(kayenta.url, "nope", consecutiveErrorLimit=0)]),
                  run_manifest("k-down", [kayenta_metric(f"http://127.0.0.1:{closed_port()}", "good",
                                                         interval="1s", count=3, consecutiveErrorLimit=1)]))
    phases = {name: wait_done(cluster, ns, name, timeout=45) for name in
              ("k-good", "k-meh", "k-bad", "k-unknown", "k-down")}
    assert {name: run["status"]["phase"] for name, run in phases.items()} == {
        "k-good": "Successful", "k-meh": "Inconclusive", "k-bad": "Failed", "k-unknown": "Error", "k-down": "Error"}
    good = metric_result(phases["k-good"], "kayenta")["measurements"][0]
    assert good["value"] == "96" and good["metadata"]["canaryExecutionId"].startswith("exec-")
    assert 'no canary config "nope"' in metric_result(phases["k-unknown"], "kayenta")["measurements"][0]["message"]
    assert_error_streak(phases["k-down"], "kayenta", 2, "cannot reach Kayenta")


def test_the_example_template_is_accepted_and_a_bad_one_named(cluster: Cluster, ns: str) -> None:
    bad = kayenta_metric("http://kayenta:8090", "good")
    bad["provider"]["kayenta"]["threshold"] = {"pass": 70, "marginal": 80}
    assert_example_accepted_and_bad_template_named(
        cluster, ns, "analysis-template-kayenta.yaml", "k-bad-template", bad,
        "spec.metrics[0].provider.kayenta.threshold.marginal: Invalid value: 80: at most pass (70)")
