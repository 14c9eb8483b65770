"""Datadog metrics end to end: AnalysisRuns measured by a controller against a local Datadog API
(tests/fixtures/fake_datadog.py) that checks the keys and the request shape."""

from __future__ import annotations

import time
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
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.fake_datadog import API_KEY, APP_KEY, FakeDatadog
from tests.fixtures.fake_service import serving
from tests.fixtures.hosted_providers import (
    assert_no_secret_leaks,
    controller_at_home_fixture,
    create_secret,
    home_namespace,
)

pytestmark = runs_own_controllers

ERRORS = "sum:requests.error.rate{service:web}"
REQUESTS = "sum:requests{service:web}.as_count()"
FAILURES = "sum:requests.errors{service:web}.as_count()"


@pytest.fixture(scope="module")
def datadog() -> Iterator[tuple[FakeDatadog, str]]:
    service = FakeDatadog()
    service.values = {ERRORS: 0.004, REQUESTS: 200.0, FAILURES: 3.0,
                      "sum:errors{service:web} by {resource_name}": {"GET /a": 0.01, "GET /b": 0.2}}
    with serving(service) as url:
        yield service, url


home = home_namespace("ddhome")
controller = controller_at_home_fixture()


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess, home: str, datadog: tuple[FakeDatadog, str]) -> str:
    # The controller's `datadog` Secret (Argo's default) and a namespaced one for secretRef.
    create_secret(cluster, home, "datadog", {"api-key": API_KEY, "app-key": APP_KEY, "address": datadog[1]})
    namespace = cluster.new_namespace("dd")
    create_secret(cluster, namespace, "dd-team", {"api-key": API_KEY, "app-key": APP_KEY, "address": datadog[1]})
    create_secret(cluster, namespace, "dd-wrong", {"api-key": "wrong-key-1234", "app-key": APP_KEY,
                                                   "address": datadog[1]})
    create_secret(cluster, namespace, "dd-down", {"api-key": API_KEY, "app-key": APP_KEY,
                                                  "address": f"http://127.0.0.1:{closed_port()}"})
    return namespace


def dd_metric(name: str, datadog: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"datadog": datadog}, **extra}


def team(secret: str = "dd-team") -> dict[str, Any]:
    return {"secretRef": {"name": secret, "namespaced": True}}


def test_v1_query_with_the_controllers_datadog_secret(
    cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str]
) -> None:
    metric = dd_metric("errors", {"interval": "10m", "query": ERRORS}, successCondition="result <= 0.01")
    cluster.apply(ns, run_manifest("v1", [metric]))
    run = wait_done(cluster, ns, "v1")
    assert run["status"]["phase"] == "Successful", run["status"]
    assert metric_result(run, "errors")["measurements"][0]["value"] == "0.004"
    sent = datadog[0].requests_to("/api/v1/query")[-1]
    assert sent.query["query"] == ERRORS and int(sent.query["to"]) - int(sent.query["from"]) == 600


def test_v2_queries_and_formula_with_a_namespaced_secret(
    cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str]
) -> None:
    spec = {"apiVersion": "v2", "interval": "5m", "aggregator": "sum", **team(),
            "queries": {"a": FAILURES, "b": REQUESTS}, "formula": "a / b * 100"}
    cluster.apply(ns, run_manifest("v2", [dd_metric("ratio", spec, successCondition="result < 5")]))
    run = wait_done(cluster, ns, "v2")
    assert run["status"]["phase"] == "Successful", run["status"]
    assert metric_result(run, "ratio")["measurements"][0]["value"] == "1.5"
    body = datadog[0].requests_to("/api/v2/query/scalar")[-1].json()["data"]
    assert body["type"] == "scalar_request" and body["attributes"]["formulas"] == [{"formula": "a / b * 100"}]
    assert {q["name"]: q["aggregator"] for q in body["attributes"]["queries"]} == {"a": "sum", "b": "sum"}
    assert body["attributes"]["to"] - body["attributes"]["from"] == 300_000


def test_grouped_query_fails_and_names_the_groups(cluster: Cluster, ns: str) -> None:
    spec = {"apiVersion": "v2", **team(), "query": "sum:errors{service:web} by {resource_name}"}
    cluster.apply(ns, run_manifest("grouped", [dd_metric("worst", spec, successCondition="max(result) < 0.05")]))
    run = wait_done(cluster, ns, "grouped")
    assert run["status"]["phase"] == "Failed"
    measurement = metric_result(run, "worst")["measurements"][0]
    assert measurement["value"] == "[0.01,0.2]"
    assert measurement["metadata"]["groups"].startswith('[{"name": "GET /b", "value": 0.2}')


def test_empty_answer_is_nil_to_the_conditions(cluster: Cluster, ns: str) -> None:
    spec = {"apiVersion": "v2", **team(), "query": "sum:nothing{*}"}
    metrics = [dd_metric("default", spec, successCondition="default(result, 0) < 1"),
               dd_metric("plain", spec, successCondition="result < 1", consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("empty", metrics))
    run = wait_done(cluster, ns, "empty")
    assert metric_result(run, "default")["phase"] == "Successful"
    assert metric_result(run, "default")["measurements"][0]["value"] == "[]"
    assert "mismatched types" in metric_result(run, "plain")["measurements"][0]["message"]


def test_provider_down_counts_against_consecutive_error_limit(cluster: Cluster, ns: str) -> None:
    spec = {"query": ERRORS, **team("dd-down")}
    cluster.apply(ns, run_manifest("down", [dd_metric("errors", spec, interval="1s", count=3,
                                                      consecutiveErrorLimit=1, successCondition="result < 1")]))
    assert_error_streak(wait_done(cluster, ns, "down"), "errors", 2, "cannot reach Datadog at http://127.0.0.1:")


def test_bad_credentials_are_an_error_and_never_leak(
    cluster: Cluster, ns: str, home: str, controller: ControllerProcess
) -> None:
    spec = {"apiVersion": "v2", "query": ERRORS, **team("dd-wrong")}
    cluster.apply(ns, run_manifest("denied", [dd_metric("errors", spec, consecutiveErrorLimit=0,
                                                        successCondition="result < 1")]))
    denied = wait_done(cluster, ns, "denied")
    assert denied["status"]["phase"] == "Error"
    message = metric_result(denied, "errors")["measurements"][0]["message"]
    assert message == 'received authentication error response code: 403 {"errors": ["Forbidden"]}'
    succeeded = wait_done(cluster, ns, "v1")  # the keys were sent, and never shown
    time.sleep(0.5)  # let the controller write its last log lines
    assert_no_secret_leaks(cluster, [ns, home], [denied, succeeded], controller, [API_KEY, APP_KEY, "wrong-key-1234"])


def test_rate_limit_is_an_error_measurement(cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str]) -> None:
    datadog[0].rate_limit = True
    try:
        spec = {"apiVersion": "v2", "query": ERRORS, **team()}
        cluster.apply(ns, run_manifest("limited", [dd_metric("errors", spec, consecutiveErrorLimit=0,
                                                             successCondition="result < 1")]))
        run = wait_done(cluster, ns, "limited")
    finally:
        datadog[0].rate_limit = False
    message = metric_result(run, "errors")["measurements"][0]["message"]
    assert message.startswith("received non 2xx response code: 429") and "resets in 42s" in message


def test_missing_credentials_name_the_secret(cluster: Cluster, ns: str) -> None:
    spec = {"query": ERRORS, "secretRef": {"name": "absent", "namespaced": True}}
    cluster.apply(ns, run_manifest("nokeys", [dd_metric("errors", spec, consecutiveErrorLimit=0)]))
    run = wait_done(cluster, ns, "nokeys")
    message = metric_result(run, "errors")["measurements"][0]["message"]
    assert message.startswith("failed to find the credentials for datadog metrics provider: secret \"absent\"")


def test_bad_spec_is_rejected_naming_the_field(cluster: Cluster, ns: str) -> None:
    bad = dd_metric("errors", {"apiVersion": "v2", "queries": {"a": ERRORS, "b": REQUESTS}})
    assert_bad_metric_rejected(cluster, ns, "dd-broken", bad, "spec.metrics[0].provider.datadog.formula", "required")


def test_example_template_runs(cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str]) -> None:
    run = run_example_metric(cluster, ns, example_template("analysis-template-datadog.yaml"))
    assert run["status"]["phase"] == "Successful", run["status"]


def test_request_timeout_bounds_the_whole_request(cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str]) -> None:
    datadog[0].hang = True
    try:
        spec = {"apiVersion": "v2", "query": ERRORS, "requestTimeout": "1s", **team()}
        cluster.apply(ns, run_manifest("slow", [dd_metric("errors", spec, consecutiveErrorLimit=0)]))
        run = wait_done(cluster, ns, "slow")
    finally:
        datadog[0].hang = False
    message = metric_result(run, "errors")["measurements"][0]["message"]
    assert message.startswith("Datadog at http://127.0.0.1:") and message.endswith("did not answer within 1s")
