"""graphite metrics end to end against a real Graphite (Debian's carbon-cache and graphite-web on loopback
ports): data points written through carbon's plaintext port, AnalysisRuns on the sandbox measured by the
controller through graphite-web's render API."""

from __future__ import annotations

import time
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
from tests.fixtures.graphite import Graphite, running_graphite
from tests.fixtures.slow_http import slow_http_server
from tests.fixtures.tools import poll


@pytest.fixture(scope="module")
def graphite(carbon_cache_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    with running_graphite(carbon_cache_binary, tmp_path_factory.mktemp("graphite")) as server:
        now = time.time()
        server.send(*[("app.canary.errors", v, now - i) for i, v in enumerate([0.01, 0.02, 0.0])],
                    *[("app.bad.errors", v, now - i) for i, v in enumerate([0.2, 0.3])])
        poll("graphite-web to render the points", lambda: len(server.values("app.bad.errors")) == 2, 30)
        yield server


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: Any, graphite: Graphite) -> str:
    return cluster.new_namespace("graphite")


def graphite_metric(address: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"name": "errors", "successCondition": "all(result, {# <= 0.05})", "failureLimit": 0,
            "provider": {"graphite": {"address": address, "timeout": 3,
                                      "query": f"target={target}\n  &from=-10min"}}, **extra}


def test_success_and_failure(cluster: Cluster, ns: str, graphite: Graphite) -> None:
    cluster.apply(ns, run_manifest("g-ok", [graphite_metric(graphite.url, "app.canary.errors")]),
                  run_manifest("g-bad", [graphite_metric(graphite.url, "sumSeries(app.bad.*)")]))
    ok, bad = wait_done(cluster, ns, "g-ok"), wait_done(cluster, ns, "g-bad")
    assert ok["status"]["phase"] == "Successful", ok["status"]
    assert metric_result(ok, "errors")["measurements"][0]["value"] == "[0.000000,0.020000,0.010000]"
    assert bad["status"]["phase"] == "Failed", bad["status"]
    assert metric_result(bad, "errors")["measurements"][0]["value"] == "[0.300000,0.200000]"


def test_no_series_and_a_bad_target_are_errors(cluster: Cluster, ns: str, graphite: Graphite) -> None:
    cluster.apply(ns, run_manifest("g-none", [graphite_metric(graphite.url, "app.nothing.here",
                                                              consecutiveErrorLimit=0)]))
    run = wait_done(cluster, ns, "g-none")
    assert run["status"]["phase"] == "Error"
    assert metric_result(run, "errors")["measurements"][0]["message"] == \
        "no values found: the query matched no series"


def test_graphite_down_and_stuck_count_against_the_error_limit(cluster: Cluster, ns: str) -> None:
    with slow_http_server() as slow:  # answers its headers, then a byte a second
        cluster.apply(ns, run_manifest("g-down", [graphite_metric(f"http://127.0.0.1:{closed_port()}", "a.b",
                                                                  interval="1s", count=3, consecutiveErrorLimit=1)]),
                      run_manifest("g-stuck", [graphite_metric(slow.url, "a.b",
                                                               consecutiveErrorLimit=0)]))
        down, stuck = wait_done(cluster, ns, "g-down"), wait_done(cluster, ns, "g-stuck")
    assert_error_streak(down, "errors", 2, "cannot reach Graphite at http://127.0.0.1:")
    assert "did not answer within 3s" in metric_result(stuck, "errors")["measurements"][0]["message"]


def test_the_example_template_is_accepted_and_a_bad_one_named(cluster: Cluster, ns: str) -> None:
    bad = graphite_metric("http://graphite", "x")
    bad["provider"]["graphite"]["query"] = "app.errors"  # no target=
    assert_example_accepted_and_bad_template_named(
        cluster, ns, "analysis-template-graphite.yaml", "g-bad-template", bad,
        'spec.metrics[0].provider.graphite.query: Invalid value: "app.errors": no target=')
