"""The ``mann-whitney`` judge reading canary and baseline series from providers other than Prometheus
(``provider.judge.source``): AnalysisRuns on the sandbox, measured by a controller against the same
servers the providers' own scenarios use (a local Datadog API, a local CloudWatch that checks the SigV4
signature, a real Graphite, a local InfluxDB v2 query API, a local Wavefront chart API, a local New Relic
NerdGraph, a local SkyWalking OAP query API). A canary like its baseline passes; one ten times worse fails;
the source's refusals are Error measurements naming the query; no secret leaks."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fixtures.analysis_runs import (
    assert_example_accepted_and_bad_template_named,
    metric_result,
    run_manifest,
    wait_done,
)
from tests.fixtures.aws_servers import AwsWorld, aws_env, aws_world
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers
from tests.fixtures.fake_datadog import API_KEY, APP_KEY, FakeDatadog
from tests.fixtures.fake_newrelic import ACCOUNT_ID, PERSONAL_KEY, FakeNewRelic
from tests.fixtures.fake_service import serving
from tests.fixtures.fake_skywalking import FakeSkyWalking
from tests.fixtures.fake_wavefront import TOKEN as WAVEFRONT_TOKEN
from tests.fixtures.fake_wavefront import FakeWavefront
from tests.fixtures.graphite import Graphite, running_graphite
from tests.fixtures.hosted_providers import assert_no_secret_leaks, create_secret
from tests.fixtures.influxdb_server import ORG, TOKEN, Influx, influxdb_server
from tests.fixtures.tools import poll

pytestmark = runs_own_controllers

# Twelve points a side: a baseline, a canary like it and one ten times worse.
BASELINE = [0.010, 0.012, 0.011, 0.009, 0.010, 0.013, 0.011, 0.010, 0.012, 0.009, 0.011, 0.010]
LIKE = [0.011, 0.010, 0.012, 0.010, 0.009, 0.011, 0.013, 0.010, 0.011, 0.012, 0.010, 0.009]
WORSE = [v * 10 for v in BASELINE]
SERIES = {"baseline": BASELINE, "like": LIKE, "worse": WORSE}
WRONG_WAVEFRONT_TOKEN = "wf-wr0ng-9e8d-7c6b"
WRONG_NEWRELIC_KEY = "NRAK-ST4LE-KEY-0042"


@pytest.fixture(scope="module")
def datadog() -> Iterator[tuple[FakeDatadog, str]]:
    service = FakeDatadog()
    service.series = {f"avg:errors{{version:{name}}}": values for name, values in SERIES.items()}
    with serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def wavefront() -> Iterator[tuple[FakeWavefront, str]]:
    service = FakeWavefront()
    service.ranges = {wavefront_query(name): values for name, values in SERIES.items()}
    with serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def newrelic() -> Iterator[tuple[FakeNewRelic, str]]:
    service = FakeNewRelic()
    service.series = {nrql(name): values for name, values in SERIES.items()}
    with serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def skywalking() -> Iterator[tuple[FakeSkyWalking, str]]:
    service = FakeSkyWalking()
    # The baseline has a minute without data, which does not count as a point.
    service.metrics = {("errors", name): [*values, None] if name == "baseline" else list(values)
                       for name, values in SERIES.items()}
    with serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def world() -> Iterator[AwsWorld]:
    with aws_world() as w:
        w.series.update({f"SELECT AVG(errors) FROM app WHERE version = '{n}'": v for n, v in SERIES.items()})
        yield w


@pytest.fixture(scope="module")
def graphite(carbon_cache_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    with running_graphite(carbon_cache_binary, tmp_path_factory.mktemp("graphite")) as server:
        now = time.time()
        server.send(*[(f"judge.{name}.errors", v, now - 1 - i) for name, values in SERIES.items()
                      for i, v in enumerate(values)])
        poll("graphite-web to render the points", lambda: len(server.values("judge.worse.errors")) == 12, 30)
        yield server


@pytest.fixture(scope="module")
def influx() -> Iterator[Influx]:
    with influxdb_server() as server:
        server.series.update({flux(name): values for name, values in SERIES.items()})
        yield server


@pytest.fixture(scope="module")
def home(cluster: Cluster) -> str:
    return cluster.new_namespace("judgehome")


@pytest.fixture(scope="module")
def controller(cluster: Cluster, home: str, world: AwsWorld, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ControllerProcess]:
    env = {**cluster.env, "POD_NAMESPACE": home, **aws_env(world, str(tmp_path_factory.mktemp("aws")))}
    with running_controller(cluster.kubeconfig, env, tmp_path_factory.mktemp("controller")) as proc:
        yield proc


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess, home: str, datadog: tuple[FakeDatadog, str],
       influx: Influx, newrelic: tuple[FakeNewRelic, str]) -> str:
    profile = {"personal-api-key": PERSONAL_KEY, "account-id": str(ACCOUNT_ID),
               "base-url-nerdgraph": newrelic[1] + "/graphql"}
    create_secret(cluster, home, "newrelic", profile)
    create_secret(cluster, home, "newrelic-stale", {**profile, "personal-api-key": WRONG_NEWRELIC_KEY})
    create_secret(cluster, home, "datadog", {"api-key": API_KEY, "app-key": APP_KEY, "address": datadog[1]})
    # Keys are host names: the fake answers on 127.0.0.1; "localhost" holds a token it refuses.
    create_secret(cluster, home, "wavefront-api-tokens",
                  {"127.0.0.1": WAVEFRONT_TOKEN, "localhost": WRONG_WAVEFRONT_TOKEN})
    namespace = cluster.new_namespace("judgesrc")
    create_secret(cluster, namespace, "influxdb", {"address": influx.url, "authToken": TOKEN, "org": ORG})
    create_secret(cluster, namespace, "influx-stale", {"address": influx.url, "authToken": "st4le-T0KEN-5d1e",
                                                       "org": ORG})
    return namespace


def judge_metric(source: dict[str, Any], canary: str, baseline: str, **extra: Any) -> dict[str, Any]:
    """A one-measurement mann-whitney metric over the last 15 minutes of ``source``."""
    judge = {"test": "mann-whitney", "source": source, "canary": {"query": canary}, "baseline": {"query": baseline},
             "rangeQuery": {"start": "now() - 15m", "step": "1m"}, "minPoints": 5, **extra}
    return {"name": "judge", "count": 1, "provider": {"judge": judge}}


def verdicts(cluster: Cluster, ns: str, prefix: str, source: dict[str, Any], query: Callable[[str], str],
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The finished runs judging the like and the worse canary (``query(version)``) from ``source``."""
    like, worse = f"{prefix}-like", f"{prefix}-worse"
    cluster.apply(ns, run_manifest(like, [judge_metric(source, query("like"), query("baseline"))]),
                  run_manifest(worse, [judge_metric(source, query("worse"), query("baseline"))]))
    return wait_done(cluster, ns, like), wait_done(cluster, ns, worse)


def flux(version: str) -> str:
    return (f'from(bucket: "app") |> range(start: v.timeRangeStart, stop: v.timeRangeStop) '
            f'|> filter(fn: (r) => r.version == "{version}")')


def wavefront_query(version: str) -> str:
    return f'ts("errors.rate", version="{version}")'


def nrql(version: str) -> str:
    return f"SELECT average(errors) FROM Transaction WHERE appVersion = '{version}'"


def skywalking_query(version: str) -> str:
    return ('query ($duration: Duration!) { errors: readMetricsValues(condition: {name: "errors", entity: '
            f'{{scope: Service, serviceName: "{version}", normal: true}}}}, duration: $duration) '
            '{ values { values { value isEmptyValue } } } }')


def assert_like_passes_and_worse_fails(like: dict[str, Any], worse: dict[str, Any]) -> None:
    assert like["status"]["phase"] == "Successful", like["status"]
    assert worse["status"]["phase"] == "Failed", worse["status"]
    passed, failed = (metric_result(run, "judge")["measurements"][0] for run in (like, worse))
    assert passed["metadata"]["canaryPoints"] == passed["metadata"]["baselinePoints"] == "12"
    assert failed["metadata"]["decision"] == "fail" and float(failed["value"]) > 0


def test_datadog_series(cluster: Cluster, ns: str, datadog: tuple[FakeDatadog, str],
                        controller: ControllerProcess) -> None:
    like, worse = verdicts(cluster, ns, "dd", {"datadog": {}}, lambda version: f"avg:errors{{version:{version}}}")
    assert_like_passes_and_worse_fails(like, worse)
    asked = [r for r in datadog[0].received if r.path == "/api/v1/query"]
    assert {r.query["query"] for r in asked} >= {"avg:errors{version:worse}", "avg:errors{version:baseline}"}
    assert all(int(r.query["to"]) - int(r.query["from"]) in range(899, 902) for r in asked)
    assert_no_secret_leaks(cluster, [ns], [like, worse], controller, [API_KEY, APP_KEY])


def test_cloudwatch_series(cluster: Cluster, ns: str, world: AwsWorld) -> None:
    like, worse = verdicts(cluster, ns, "cw", {"cloudWatch": {"timeout": 10}},
                           lambda version: f"SELECT AVG(errors) FROM app WHERE version = '{version}'")
    assert_like_passes_and_worse_fails(like, worse)
    calls = world.to("/")
    assert any(b"WHERE version = 'worse'" in seen.body and b'"Period": 60' in seen.body for seen in calls)


def test_graphite_series(cluster: Cluster, ns: str, graphite: Graphite) -> None:
    like, worse = verdicts(cluster, ns, "gr", {"graphite": {"address": graphite.url}},
                           lambda version: f"judge.{version}.errors")
    assert_like_passes_and_worse_fails(like, worse)


def test_influxdb_series(cluster: Cluster, ns: str, influx: Influx, controller: ControllerProcess) -> None:
    like, worse = verdicts(cluster, ns, "ix", {"influxdb": {}}, flux)
    assert_like_passes_and_worse_fails(like, worse)
    assert any(body["query"].startswith("option v = {timeRangeStart: ") for body in influx.bodies)
    assert_no_secret_leaks(cluster, [ns], [like, worse], controller, [TOKEN])


def test_wavefront_series(cluster: Cluster, ns: str, home: str, wavefront: tuple[FakeWavefront, str],
                          controller: ControllerProcess) -> None:
    like, worse = verdicts(cluster, ns, "wf", {"wavefront": {"address": wavefront[1]}}, wavefront_query)
    assert_like_passes_and_worse_fails(like, worse)
    asked = [r.query for r in wavefront[0].requests_to("/api/v2/chart/api")]
    assert {q["q"] for q in asked} >= {wavefront_query("worse"), wavefront_query("baseline")}
    assert all(int(q["e"]) - int(q["s"]) in range(899_000, 902_000) and q["g"] == "m" for q in asked), asked
    refused_source = {"wavefront": {"address": wavefront[1].replace("127.0.0.1", "localhost")}}
    cluster.apply(ns, run_manifest("wf-refused", [{**judge_metric(refused_source, wavefront_query("like"),
                                                                  wavefront_query("baseline")),
                                                   "consecutiveErrorLimit": 0}]))
    refused = wait_done(cluster, ns, "wf-refused")
    assert refused["status"]["phase"] == "Error"
    message = metric_result(refused, "judge")["measurements"][0]["message"]
    assert message.startswith("canary.query (source.wavefront): received authentication error response code: 401"), \
        message
    assert_no_secret_leaks(cluster, [ns, home], [like, worse, refused], controller,
                           [WAVEFRONT_TOKEN, WRONG_WAVEFRONT_TOKEN])


def test_newrelic_series(cluster: Cluster, ns: str, home: str, newrelic: tuple[FakeNewRelic, str],
                         controller: ControllerProcess) -> None:
    like, worse = verdicts(cluster, ns, "nr", {"newRelic": {"timeout": 10}}, nrql)
    assert_like_passes_and_worse_fails(like, worse)
    asked = [r.json()["variables"] for r in newrelic[0].requests_to("/graphql")]
    sent = next(v["query"] for v in asked if v["query"].startswith(nrql("worse")))
    since, until, step = (int(word) for word in sent.removeprefix(nrql("worse")).split()[1::2])
    assert until - since in range(899_000, 902_000) and step == 60, sent
    assert all(v["timeout"] == 10 and v["accountId"] == ACCOUNT_ID for v in asked), asked
    metric = {**judge_metric({"newRelic": {"profile": "newrelic-stale"}}, nrql("like"), nrql("baseline")),
              "consecutiveErrorLimit": 0}
    cluster.apply(ns, run_manifest("nr-refused", [metric]))
    refused = wait_done(cluster, ns, "nr-refused")
    assert refused["status"]["phase"] == "Error"
    message = metric_result(refused, "judge")["measurements"][0]["message"]
    assert message.startswith("canary.query (source.newRelic): received authentication error response code: 401"), \
        message
    assert_no_secret_leaks(cluster, [ns, home], [like, worse, refused], controller, [PERSONAL_KEY, WRONG_NEWRELIC_KEY])


def test_skywalking_series(cluster: Cluster, ns: str, skywalking: tuple[FakeSkyWalking, str]) -> None:
    like, worse = verdicts(cluster, ns, "sw", {"skywalking": {"address": skywalking[1], "timeout": 10}},
                           skywalking_query)
    assert_like_passes_and_worse_fails(like, worse)
    durations = [r.json()["variables"]["duration"] for r in skywalking[0].requests_to("/graphql")]
    spans = {dt.datetime.strptime(d["end"], "%Y-%m-%d %H%M") - dt.datetime.strptime(d["start"], "%Y-%m-%d %H%M")
             for d in durations}
    assert all(d["step"] == "MINUTE" for d in durations) and spans <= {dt.timedelta(minutes=m) for m in (14, 15)}
    metric = {**judge_metric({"skywalking": {"address": skywalking[1]}}, skywalking_query("gone"),
                             skywalking_query("baseline")), "consecutiveErrorLimit": 0}
    cluster.apply(ns, run_manifest("sw-refused", [metric]))
    refused = wait_done(cluster, ns, "sw-refused")
    assert refused["status"]["phase"] == "Error"
    assert metric_result(refused, "judge")["measurements"][0]["message"] == (
        "canary.query (source.skywalking): graphql: Metric [errors] does not exist for service [gone]")


def test_a_refusal_is_an_error_naming_the_query(cluster: Cluster, ns: str) -> None:
    metric = judge_metric({"influxdb": {"profile": "influx-stale"}}, "a", "b")
    cluster.apply(ns, run_manifest("ix-refused", [{**metric, "consecutiveErrorLimit": 0}]))
    run = wait_done(cluster, ns, "ix-refused")
    assert run["status"]["phase"] == "Error"
    message = metric_result(run, "judge")["measurements"][0]["message"]
    assert message.startswith("canary.query (source.influxdb): the flux query failed: HTTP 401"), message


def test_the_example_is_accepted_and_a_sequential_source_named(cluster: Cluster, ns: str) -> None:
    bad = judge_metric({"graphite": {"address": "http://graphite"}}, "a", "b")
    bad["provider"]["judge"] = {"source": {"graphite": {}}, "canary": {"errors": "e", "requests": "r"},
                                "baseline": {"errors": "e", "requests": "r"}}
    assert_example_accepted_and_bad_template_named(
        cluster, ns, "analysis-template-judge-graphite.yaml", "judge-bad-source", bad,
        "spec.metrics[0].provider.judge.source: only test: mann-whitney reads another provider's series")
