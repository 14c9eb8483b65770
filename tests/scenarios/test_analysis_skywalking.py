"""SkyWalking metrics end to end: AnalysisRuns measured by the controller against a local OAP query API
(tests/fixtures/fake_skywalking.py) that checks the GraphQL document and its $duration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.analysis_runs import (
    assert_bad_metric_rejected,
    assert_error_streak,
    closed_port,
    example_template,
    metric_result,
    run_example_metric,
    run_manifest,
    wait_done,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.fake_service import serving
from tests.fixtures.fake_skywalking import FakeSkyWalking

APDEX = """query queryData($duration: Duration!) {
  service_apdex: readMetricsValues(
    condition: { name: "service_apdex", entity: { scope: Service, serviceName: "%s", normal: true } },
    duration: $duration) { label values { values { value } } }
}"""


@pytest.fixture(scope="module")
def skywalking() -> Iterator[tuple[FakeSkyWalking, str]]:
    service = FakeSkyWalking()
    service.metrics = {("service_apdex", "web"): [9950, 9990, 9930], ("service_apdex", "slow"): [9950, 8000]}
    with serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess | None) -> str:
    return cluster.new_namespace("sw")


def sw_metric(name: str, address: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"skywalking": {"address": address, "interval": "3m", "query": query}},
            **extra}


GOOD = "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"


def test_graphql_data_is_the_result(cluster: Cluster, ns: str, skywalking: tuple[FakeSkyWalking, str]) -> None:
    metrics = [sw_metric("web", skywalking[1], APDEX % "web", successCondition=GOOD),
               sw_metric("slow", skywalking[1], APDEX % "slow", successCondition=GOOD)]
    cluster.apply(ns, run_manifest("apdex", metrics))
    run = wait_done(cluster, ns, "apdex")
    assert metric_result(run, "web")["phase"] == "Successful", run["status"]
    assert metric_result(run, "slow")["phase"] == "Failed"
    assert metric_result(run, "web")["measurements"][0]["value"] == (
        '{"service_apdex":{"label":null,"values":{"values":[{"value":9950},{"value":9990},{"value":9930}]}}}')
    duration = skywalking[0].requests_to("/graphql")[-1].json()["variables"]["duration"]
    assert duration["step"] == "MINUTE" and duration["start"] < duration["end"]


def test_graphql_errors_are_error_measurements(
    cluster: Cluster, ns: str, skywalking: tuple[FakeSkyWalking, str]
) -> None:
    metrics = [sw_metric("unknown", skywalking[1], APDEX % "nobody", consecutiveErrorLimit=0),
               sw_metric("syntax", skywalking[1], "query q($duration: Duration!) { x {", consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("broken-query", metrics))
    run = wait_done(cluster, ns, "broken-query")
    assert metric_result(run, "unknown")["measurements"][0]["message"] == (
        "graphql: Metric [service_apdex] does not exist for service [nobody]")
    assert metric_result(run, "syntax")["measurements"][0]["message"].startswith("graphql: Invalid Syntax")


def test_provider_down_counts_against_consecutive_error_limit(cluster: Cluster, ns: str) -> None:
    metric = sw_metric("web", f"http://127.0.0.1:{closed_port()}", APDEX % "web", interval="1s", count=3,
                       consecutiveErrorLimit=1)
    cluster.apply(ns, run_manifest("down", [metric]))
    assert_error_streak(wait_done(cluster, ns, "down"), "web", 2, "cannot reach SkyWalking at http://127.0.0.1:")


def test_bad_spec_is_rejected_naming_the_field(
    cluster: Cluster, ns: str, skywalking: tuple[FakeSkyWalking, str]
) -> None:
    bad = {"name": "web", "provider": {"skywalking": {"address": skywalking[1], "query": APDEX % "web"}}}
    assert_bad_metric_rejected(cluster, ns, "sw-broken", bad, "spec.metrics[0].provider.skywalking.interval",
                               "required")


def test_example_template_runs(cluster: Cluster, ns: str, skywalking: tuple[FakeSkyWalking, str]) -> None:
    template = example_template("analysis-template-skywalking.yaml")
    # The example names an in-cluster OAP: point it at the local one.
    template["spec"]["metrics"][0]["provider"]["skywalking"]["address"] = skywalking[1]
    run = run_example_metric(cluster, ns, template)
    assert run["status"]["phase"] == "Successful", run["status"]
