"""cloudWatch metrics end to end: AnalysisRuns on the sandbox, measured by a controller with AWS credentials in
its environment, against a local GetMetricData server that checks the SigV4 signature (botocore's signer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.analysis_runs import (
    assert_error_streak,
    assert_example_accepted_and_bad_template_named,
    events,
    metric_result,
    run_manifest,
    wait_done,
)
from tests.fixtures.aws_servers import ACCESS_KEY, SECRET_KEY, AwsWorld, aws_env, aws_world
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers

pytestmark = runs_own_controllers
STALE_SECRET = "st4le-secret-access-KEY-0c3a"


@pytest.fixture(scope="module")
def world() -> Iterator[AwsWorld]:
    with aws_world() as w:
        w.series["errors"] = [0.001, 0.0, 0.002, 0.001]
        w.series["latency"] = [0.9, 1.4]
        yield w


@pytest.fixture(scope="module")
def controller(cluster: Cluster, world: AwsWorld, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ControllerProcess]:
    home = tmp_path_factory.mktemp("aws")
    # A profile whose secret key AWS no longer accepts: "bad credentials".
    Path(home, "credentials").write_text(f"[stale]\naws_access_key_id = {ACCESS_KEY}\n"
                                         f"aws_secret_access_key = {STALE_SECRET}\n")
    env = {**cluster.env, **aws_env(world, str(home))}
    with running_controller(cluster.kubeconfig, env, tmp_path_factory.mktemp("controller")) as proc:
        yield proc


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess) -> str:
    return cluster.new_namespace("cloudwatch")


def cloudwatch_metric(query_id: str, condition: str, provider: dict[str, Any] | None = None, **extra: Any,
                      ) -> dict[str, Any]:
    """A metric of one GetMetricData query; ``provider`` adds to the cloudWatch block, ``extra`` to the metric."""
    query = {"id": query_id, "metricStat": {"metric": {"namespace": "AWS/ApplicationELB", "metricName": "x"},
                                            "period": 60, "stat": "Average"}}
    spec = {"interval": "5m", "timeout": 3, "metricDataQueries": [query], **(provider or {})}
    return {"name": "cw", "successCondition": condition, "failureLimit": 0, "provider": {"cloudWatch": spec}, **extra}


def test_success_and_failure(cluster: Cluster, ns: str) -> None:
    cluster.apply(ns, run_manifest("cw-ok", [cloudwatch_metric("errors", "all(result[0].Values, {# <= 0.01})")]),
                  run_manifest("cw-slow", [cloudwatch_metric("latency", "all(result[0].Values, {# < 1})")]))
    ok, slow = wait_done(cluster, ns, "cw-ok"), wait_done(cluster, ns, "cw-slow")
    assert ok["status"]["phase"] == "Successful", ok["status"]
    assert metric_result(ok, "cw")["measurements"][0]["value"] == "[[0.001 0 0.002 0.001]]"  # two pages
    assert slow["status"]["phase"] == "Failed", slow["status"]
    assert metric_result(slow, "cw")["measurements"][0]["value"] == "[[0.9 1.4]]"


def test_provider_down_counts_against_the_error_limit(cluster: Cluster, ns: str, world: AwsWorld) -> None:
    world.down = True
    try:
        cluster.apply(ns, run_manifest("cw-down", [cloudwatch_metric("errors", "true", interval="1s", count=3,
                                                                     consecutiveErrorLimit=1)]))
        run = wait_done(cluster, ns, "cw-down")
    finally:
        world.down = False
    assert_error_streak(run, "cw", 2, "CloudWatch GetMetricData failed: HTTP 503")


def test_bad_credentials_are_errors_and_no_secret_leaks(cluster: Cluster, ns: str, controller: ControllerProcess,
                                                        ) -> None:
    cluster.apply(ns, run_manifest("cw-stale", [cloudwatch_metric("errors", "true", {"profile": "stale"},
                                                                  consecutiveErrorLimit=0)]))
    run = wait_done(cluster, ns, "cw-stale")
    assert run["status"]["phase"] == "Error"
    assert "HTTP 400: SignatureDoesNotMatch" in metric_result(run, "cw")["measurements"][0]["message"]

    def error_event() -> list[dict[str, Any]] | None:
        seen = [e for e in events(cluster, ns) if e["involvedObject"]["name"] == "cw-stale"]
        return seen if any(e["reason"] == "AnalysisRunError" for e in seen) else None

    seen = cluster.wait("the run's Error Event", error_event, 20)
    leaked = json.dumps([run, seen]) + controller.logs()
    assert STALE_SECRET not in leaked and SECRET_KEY not in leaked


def test_the_example_template_is_accepted_and_a_bad_one_named(cluster: Cluster, ns: str) -> None:
    bad = cloudwatch_metric("errors", "true")
    bad["provider"]["cloudWatch"]["metricDataQueries"][0]["metricStat"]["period"] = 90
    assert_example_accepted_and_bad_template_named(
        cluster, ns, "analysis-template-cloudwatch.yaml", "cw-bad", bad,
        "spec.metrics[0].provider.cloudWatch.metricDataQueries[0].metricStat.period: Invalid value: 90")
