"""New Relic metrics end to end: AnalysisRuns measured by a controller against a local NerdGraph
(tests/fixtures/fake_newrelic.py) that checks the key, the GraphQL document and its variables."""

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
from tests.fixtures.fake_newrelic import ACCOUNT_ID, PERSONAL_KEY, FakeNewRelic
from tests.fixtures.fake_service import serving
from tests.fixtures.hosted_providers import (
    assert_no_secret_leaks,
    controller_at_home_fixture,
    create_secret,
    home_namespace,
)

pytestmark = runs_own_controllers

SUCCESS = ("FROM Transaction SELECT percentage(count(*), WHERE httpResponseCode != 500) as successRate"
           " where appName = 'web'")
BY_HOST = "FROM Transaction SELECT average(duration) FACET host"


@pytest.fixture(scope="module")
def newrelic() -> Iterator[tuple[FakeNewRelic, str]]:
    service = FakeNewRelic()
    service.rows = {SUCCESS: [{"successRate": 99.2}],
                    BY_HOST: [{"host": "a", "average.duration": 0.12}, {"host": "b", "average.duration": 0.3}]}
    with serving(service) as url:
        yield service, url


home = home_namespace("nrhome")
controller = controller_at_home_fixture()


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess, home: str, newrelic: tuple[FakeNewRelic, str]) -> str:
    graphql = newrelic[1] + "/graphql"
    profile = {"personal-api-key": PERSONAL_KEY, "account-id": str(ACCOUNT_ID), "base-url-nerdgraph": graphql}
    create_secret(cluster, home, "newrelic", profile)
    create_secret(cluster, home, "nr-wrong", {**profile, "personal-api-key": "NRAK-WRONG-0000"})
    create_secret(cluster, home, "nr-down", {**profile, "base-url-nerdgraph": f"http://127.0.0.1:{closed_port()}/graphql"})
    create_secret(cluster, home, "nr-partial", {"account-id": str(ACCOUNT_ID)})
    return cluster.new_namespace("nr")


def nr_metric(name: str, newrelic: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"newRelic": newrelic}, **extra}


def test_nrql_row_is_a_map_to_the_conditions(cluster: Cluster, ns: str, newrelic: tuple[FakeNewRelic, str]) -> None:
    metric = nr_metric("success", {"query": SUCCESS, "timeout": 10}, successCondition="result.successRate >= 95")
    cluster.apply(ns, run_manifest("row", [metric]))
    run = wait_done(cluster, ns, "row")
    assert run["status"]["phase"] == "Successful", run["status"]
    measurement = metric_result(run, "success")["measurements"][0]
    assert measurement["value"] == '{"successRate":99.2}'
    assert measurement["metadata"]["ResolvedNewRelicQuery"] == SUCCESS
    variables = newrelic[0].requests_to("/graphql")[-1].json()["variables"]
    assert variables == {"query": SUCCESS, "accountId": ACCOUNT_ID, "timeout": 10}


def test_several_rows_are_a_list_and_fail(cluster: Cluster, ns: str) -> None:
    metric = nr_metric("latency", {"query": BY_HOST}, successCondition="all(result, {#['average.duration'] < 0.2})")
    cluster.apply(ns, run_manifest("rows", [metric]))
    run = wait_done(cluster, ns, "rows")
    assert run["status"]["phase"] == "Failed", run["status"]
    assert metric_result(run, "latency")["measurements"][0]["value"].startswith('[{"average.duration":0.12')


def test_no_rows_and_syntax_errors_are_error_measurements(cluster: Cluster, ns: str) -> None:
    metrics = [nr_metric("none", {"query": "FROM Nothing SELECT count(*)"}, consecutiveErrorLimit=0),
               nr_metric("typo", {"query": "SELEKT count(*) FROM Transaction"}, consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("norows", metrics))
    run = wait_done(cluster, ns, "norows")
    assert metric_result(run, "none")["measurements"][0]["message"] == "no results returned from NRQL query"
    assert metric_result(run, "typo")["measurements"][0]["message"].startswith("NerdGraph query failed: NRQL Syntax")


def test_provider_down_counts_against_consecutive_error_limit(cluster: Cluster, ns: str) -> None:
    metric = nr_metric("success", {"query": SUCCESS, "profile": "nr-down"}, interval="1s", count=3,
                       consecutiveErrorLimit=1)
    cluster.apply(ns, run_manifest("down", [metric]))
    assert_error_streak(wait_done(cluster, ns, "down"), "success", 2, "cannot reach New Relic at http://127.0.0.1:")


def test_bad_key_is_an_error_and_secrets_never_leak(
    cluster: Cluster, ns: str, home: str, controller: ControllerProcess
) -> None:
    metrics = [nr_metric("denied", {"query": SUCCESS, "profile": "nr-wrong"}, consecutiveErrorLimit=0),
               nr_metric("partial", {"query": SUCCESS, "profile": "nr-partial"}, consecutiveErrorLimit=0),
               nr_metric("absent", {"query": SUCCESS, "profile": "nr-absent"}, consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("denied", metrics))
    run = wait_done(cluster, ns, "denied")
    denied = metric_result(run, "denied")["measurements"][0]["message"]
    assert denied.startswith("received authentication error response code: 401") and "BAD_API_KEY" in denied
    assert metric_result(run, "partial")["measurements"][0]["message"].startswith(
        f'account ID or personal API key not found: secret "nr-partial" in namespace "{home}"')
    assert metric_result(run, "absent")["measurements"][0]["message"].startswith(
        f'secret "nr-absent" not found in namespace "{home}": create it with the keys personal-api-key')
    succeeded = wait_done(cluster, ns, "row")
    time.sleep(0.5)  # let the controller write its last log lines
    assert_no_secret_leaks(cluster, [ns, home], [run, succeeded], controller, [PERSONAL_KEY, "NRAK-WRONG-0000"])


def test_rate_limit_is_an_error_measurement(cluster: Cluster, ns: str, newrelic: tuple[FakeNewRelic, str]) -> None:
    newrelic[0].rate_limit = True
    try:
        cluster.apply(ns, run_manifest("limited", [nr_metric("success", {"query": SUCCESS}, consecutiveErrorLimit=0)]))
        run = wait_done(cluster, ns, "limited")
    finally:
        newrelic[0].rate_limit = False
    message = metric_result(run, "success")["measurements"][0]["message"]
    assert message.startswith("received non 2xx response code: 429") and "retry after 17s" in message


def test_bad_spec_is_rejected_naming_the_field(cluster: Cluster, ns: str) -> None:
    bad = nr_metric("success", {"query": SUCCESS, "timeout": 600})
    assert_bad_metric_rejected(cluster, ns, "nr-broken", bad, "spec.metrics[0].provider.newRelic.timeout",
                               "Invalid value")


def test_example_template_runs(cluster: Cluster, ns: str) -> None:
    run = run_example_metric(cluster, ns, example_template("analysis-template-newrelic.yaml"))
    assert run["status"]["phase"] == "Successful", run["status"]
