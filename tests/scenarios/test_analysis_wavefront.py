"""Wavefront metrics end to end: AnalysisRuns measured by a controller against a local Wavefront chart API
(tests/fixtures/fake_wavefront.py) that checks the token and the query parameters."""

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
from tests.fixtures.fake_service import serving
from tests.fixtures.fake_wavefront import TOKEN, FakeWavefront
from tests.fixtures.hosted_providers import (
    assert_no_secret_leaks,
    controller_at_home_fixture,
    create_secret,
    home_namespace,
)

pytestmark = runs_own_controllers

RATE = 'sum(rate(5m, ts("istio.requestcount.count", response_code!=500 and destination_service="web"))) / ' \
       'sum(rate(5m, ts("istio.requestcount.count", reporter=client and destination_service="web")))'
PER_POD = 'ts("errors.rate", service="web")'


@pytest.fixture(scope="module")
def wavefront() -> Iterator[tuple[FakeWavefront, str]]:
    service = FakeWavefront()
    service.series = {RATE: {"rate": 0.98}, PER_POD: {"a": 0.01, "b": 0.4}}
    with serving(service) as url:
        yield service, url


home = home_namespace("wfhome")
controller = controller_at_home_fixture()


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess, home: str) -> str:
    # Keys are host names: the fake answers on 127.0.0.1; "localhost" holds a wrong token.
    create_secret(cluster, home, "wavefront-api-tokens", {"127.0.0.1": TOKEN, "localhost": "wf-wrong-token-77"})
    return cluster.new_namespace("wf")


def wf_metric(name: str, address: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"wavefront": {"address": address, "query": query}}, **extra}


def test_one_series_is_a_number(cluster: Cluster, ns: str, wavefront: tuple[FakeWavefront, str]) -> None:
    cluster.apply(ns, run_manifest("one", [wf_metric("rate", wavefront[1], RATE, successCondition="result >= 0.95")]))
    run = wait_done(cluster, ns, "one")
    assert run["status"]["phase"] == "Successful", run["status"]
    measurement = metric_result(run, "rate")["measurements"][0]
    assert measurement["value"] == "0.98" and measurement["metadata"]["drift"] == "-5"
    sent = wavefront[0].requests_to("/api/v2/chart/api")[-1].query
    assert sent["q"] == RATE and sent["s"] == sent["e"] and sent["p"] == "1" and sent["i"] == "true"


def test_several_series_are_a_list(cluster: Cluster, ns: str, wavefront: tuple[FakeWavefront, str]) -> None:
    metric = wf_metric("errors", wavefront[1], PER_POD, successCondition="all(result, # < 0.1)")
    cluster.apply(ns, run_manifest("many", [metric]))
    run = wait_done(cluster, ns, "many")
    assert run["status"]["phase"] == "Failed"
    assert metric_result(run, "errors")["measurements"][0]["value"] == "[0.01,0.40]"


def test_no_series_and_bad_queries_are_errors(cluster: Cluster, ns: str, wavefront: tuple[FakeWavefront, str]) -> None:
    metrics = [wf_metric("none", wavefront[1], 'ts("nothing")', consecutiveErrorLimit=0),
               wf_metric("typo", wavefront[1], "sum(nothing", consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("noseries", metrics))
    run = wait_done(cluster, ns, "noseries")
    none = metric_result(run, "none")["measurements"][0]
    assert none["message"] == "No TimeSeries found in response from Wavefront"
    assert none["metadata"]["warnings"] == "No metrics matching"
    assert metric_result(run, "typo")["measurements"][0]["message"].startswith("received non 2xx response code: 400")


def test_provider_down_counts_against_consecutive_error_limit(cluster: Cluster, ns: str) -> None:
    metric = wf_metric("rate", f"http://127.0.0.1:{closed_port()}", RATE, interval="1s", count=3,
                       consecutiveErrorLimit=1)
    cluster.apply(ns, run_manifest("down", [metric]))
    assert_error_streak(wait_done(cluster, ns, "down"), "rate", 2, "cannot reach Wavefront at http://127.0.0.1:")


def test_bad_token_is_an_error_and_tokens_never_leak(
    cluster: Cluster, ns: str, home: str, controller: ControllerProcess, wavefront: tuple[FakeWavefront, str]
) -> None:
    wrong = wavefront[1].replace("127.0.0.1", "localhost")
    metrics = [wf_metric("denied", wrong, RATE, consecutiveErrorLimit=0),
               wf_metric("unknown", "metrics.example.com", RATE, consecutiveErrorLimit=0)]
    cluster.apply(ns, run_manifest("denied", metrics))
    run = wait_done(cluster, ns, "denied")
    assert metric_result(run, "denied")["measurements"][0]["message"].startswith(
        "received authentication error response code: 401")
    assert metric_result(run, "unknown")["measurements"][0]["message"] == (
        f'API token not found: secret "wavefront-api-tokens" in namespace "{home}" has no key "metrics.example.com"')
    succeeded = wait_done(cluster, ns, "one")
    time.sleep(0.5)  # let the controller write its last log lines
    assert_no_secret_leaks(cluster, [ns, home], [run, succeeded], controller, [TOKEN, "wf-wrong-token-77"])


def test_rate_limit_is_an_error_measurement(cluster: Cluster, ns: str, wavefront: tuple[FakeWavefront, str]) -> None:
    wavefront[0].rate_limit = True
    try:
        cluster.apply(ns, run_manifest("limited", [wf_metric("rate", wavefront[1], RATE, consecutiveErrorLimit=0)]))
        run = wait_done(cluster, ns, "limited")
    finally:
        wavefront[0].rate_limit = False
    message = metric_result(run, "rate")["measurements"][0]["message"]
    assert message.startswith("received non 2xx response code: 429") and "rate limited" in message


def test_bad_spec_is_rejected_naming_the_field(cluster: Cluster, ns: str) -> None:
    bad = {"name": "rate", "provider": {"wavefront": {"query": RATE}}}
    assert_bad_metric_rejected(cluster, ns, "wf-broken", bad, "spec.metrics[0].provider.wavefront.address", "required")


def test_example_template_runs(cluster: Cluster, ns: str, wavefront: tuple[FakeWavefront, str]) -> None:
    template = example_template("analysis-template-wavefront.yaml")
    # The example names a real Wavefront host: point it at the local one.
    template["spec"]["metrics"][0]["provider"]["wavefront"]["address"] = wavefront[1]
    run = run_example_metric(cluster, ns, template)
    assert run["status"]["phase"] == "Successful", run["status"]
