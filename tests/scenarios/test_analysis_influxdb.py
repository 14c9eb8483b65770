"""influxdb metrics end to end: AnalysisRuns on the sandbox, the profile Secrets in the run's namespace,
measured by the controller against a local server speaking InfluxDB's v2 query API (Flux, annotated CSV)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.analysis_runs import (
    assert_error_streak,
    assert_example_accepted_and_bad_template_named,
    closed_port,
    events,
    metric_result,
    run_manifest,
    wait_done,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.influxdb_server import ORG, TOKEN, Influx, influxdb_server

WRONG_TOKEN = "st4le-influx-T0KEN-77c1"


@pytest.fixture(scope="module")
def influx() -> Iterator[Influx]:
    with influxdb_server() as server:
        server.series.update({"errors": [0.01, 0.0, 0.02], "slow": [0.7]})
        yield server


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess | None, influx: Influx) -> str:
    namespace = cluster.new_namespace("influxdb")
    for name, address, token in (("influxdb", influx.url, TOKEN), ("influx-stale", influx.url, WRONG_TOKEN),
                                 ("influx-down", f"http://127.0.0.1:{closed_port()}", TOKEN)):
        cluster.kubectl("create", "secret", "generic", name, "-n", namespace, f"--from-literal=address={address}",
                        f"--from-literal=authToken={token}", f"--from-literal=org={ORG}")
    return namespace


def influx_metric(query: str, profile: str | None = None, **extra: Any) -> dict[str, Any]:
    spec = {"query": query, "timeout": 3, **({"profile": profile} if profile else {})}
    return {"name": "flux", "successCondition": "all(result, {# <= 0.05})", "failureLimit": 0,
            "provider": {"influxdb": spec}, **extra}


def test_success_failure_down_and_bad_credentials(cluster: Cluster, ns: str,
                                                  controller: ControllerProcess | None) -> None:
    cluster.apply(ns, run_manifest("i-ok", [influx_metric("errors")]),
                  run_manifest("i-slow", [influx_metric("slow")]),
                  run_manifest("i-down", [influx_metric("errors", "influx-down", interval="1s", count=3,
                                                        consecutiveErrorLimit=1)]),
                  run_manifest("i-stale", [influx_metric("errors", "influx-stale", consecutiveErrorLimit=0)]))
    runs = {name: wait_done(cluster, ns, name) for name in ("i-ok", "i-slow", "i-down", "i-stale")}
    assert {name: run["status"]["phase"] for name, run in runs.items()} == {
        "i-ok": "Successful", "i-slow": "Failed", "i-down": "Error", "i-stale": "Error"}
    assert metric_result(runs["i-ok"], "flux")["measurements"][0]["value"] == "[0.01 0 0.02]"
    assert_error_streak(runs["i-down"], "flux", 2, "cannot reach InfluxDB")
    stale = metric_result(runs["i-stale"], "flux")["measurements"][0]["message"]
    assert "HTTP 401: unauthorized: unauthorized access" in stale

    def error_event() -> list[dict[str, Any]] | None:
        seen = [e for e in events(cluster, ns) if e["involvedObject"]["name"] == "i-stale"]
        return seen if any(e["reason"] == "AnalysisRunError" for e in seen) else None

    seen = cluster.wait("the run's Error Event", error_event, 20)
    leaked = json.dumps([runs, seen]) + (controller.logs() if controller else "")
    assert TOKEN not in leaked and WRONG_TOKEN not in leaked


def test_the_example_template_is_accepted_and_a_bad_one_named(cluster: Cluster, ns: str) -> None:
    assert_example_accepted_and_bad_template_named(
        cluster, ns, "analysis-template-influxdb.yaml", "i-bad-template", influx_metric("errors", "Influx_Prod"),
        'spec.metrics[0].provider.influxdb.profile: Invalid value: "Influx_Prod"')
