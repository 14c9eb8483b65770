"""The cloudWatch provider against a local server speaking GetMetricData (JSON protocol) that checks the SigV4
signature with botocore's signer, the request's shape, and pages its answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.cloudwatch import CloudWatchProvider
from analysis.providers.registry import spec_problems
from tests.fixtures.aws_servers import (
    ROLE_ACCESS_KEY,
    ROLE_ARN,
    SECRET_KEY,
    AwsWorld,
    aws_env,
    aws_world,
    sigv4_problem,
)
from tests.fixtures.slow_http import slow_http_server

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WHERE = "spec.metrics[0].provider.cloudWatch"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    with aws_world() as w:
        for key, value in aws_env(w, str(tmp_path)).items():
            monkeypatch.setenv(key, value)
        w.series["errors"] = [0.001, 0.002, 0.0, 0.004, 0.003]  # two pages
        w.series["slow"] = [0.5]
        yield w


def context() -> Context:
    async def read(name: str, key: str) -> str:
        raise ProviderError(f'secret "{name}" not found')

    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def stat_query(query_id: str) -> dict[str, Any]:
    metric = {"namespace": "AWS/ApplicationELB", "metricName": "HTTPCode_ELB_5XX",
              "dimensions": [{"name": "LoadBalancer", "value": "app/x/1"}]}
    return {"id": query_id, "metricStat": {"metric": metric, "period": 60, "stat": "Average", "unit": "Count"}}


def cloudwatch(*queries: dict[str, Any], condition: str = "all(result[0].Values, {# <= 0.01})",
               **extra: Any) -> dict[str, Any]:
    return {"name": "m", "successCondition": condition,
            "provider": {"cloudWatch": {"interval": "10m", "timeout": 5, "metricDataQueries": list(queries), **extra}}}


def measure(m: dict[str, Any]) -> Measurement:
    return asyncio.run(CloudWatchProvider().measure(m, context()))


def test_get_metric_data_success_pages_and_signature(world: AwsWorld) -> None:
    ok = measure(cloudwatch(stat_query("errors")))
    assert ok.phase == P.SUCCESSFUL, ok.message
    assert ok.value == "[[0.001 0.002 0 0.004 0.003]]"  # as Argo prints [][]float64, both pages joined
    calls = world.to("/")
    assert len(calls) == 2  # NextToken followed
    assert all(sigv4_problem(c, "monitoring", world.keys()) is None for c in calls)
    sent = json.loads(calls[0].body)
    assert sent["EndTime"] - sent["StartTime"] == pytest.approx(600)
    assert sent["MetricDataQueries"][0]["MetricStat"] == {
        "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_ELB_5XX",
                   "Dimensions": [{"Name": "LoadBalancer", "Value": "app/x/1"}]},
        "Period": 60, "Stat": "Average", "Unit": "Count"}
    assert json.loads(calls[1].body)["NextToken"] == "1"


def test_failure_and_expressions(world: AwsWorld) -> None:
    failed = measure(cloudwatch({"id": "slow", "expression": "SELECT AVG(Latency) FROM x", "label": "latency"}))
    assert failed.phase == P.FAILED and failed.value == "[[0.5]]", failed.message
    sent = json.loads(world.to("/")[0].body)["MetricDataQueries"][0]
    assert sent == {"Id": "slow", "Expression": "SELECT AVG(Latency) FROM x", "Label": "latency"}


def test_region_and_role(world: AwsWorld) -> None:
    ok = measure(cloudwatch(stat_query("errors"), region="ap-south-1", roleArn=ROLE_ARN))
    assert ok.phase == P.SUCCESSFUL, ok.message
    authorization = world.to("/")[-1].headers["authorization"]
    assert f"Credential={ROLE_ACCESS_KEY}/" in authorization and "/ap-south-1/monitoring/" in authorization


def test_bad_credentials_down_and_refusals_are_errors(world: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-access-key")
    bad = measure(cloudwatch(stat_query("errors")))
    assert bad.phase == P.ERROR and "HTTP 400: SignatureDoesNotMatch" in bad.message
    assert "wrong-secret-access-key" not in bad.message and SECRET_KEY not in bad.message
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    world.down = True
    down = measure(cloudwatch(stat_query("errors")))
    assert down.phase == P.ERROR and "HTTP 503" in down.message


def test_unreachable_and_timeout(world: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9")
    unreachable = measure(cloudwatch(stat_query("errors"), region="eu-north-1"))
    assert unreachable.phase == P.ERROR and "cannot reach CloudWatch at http://127.0.0.1:9" in unreachable.message
    with slow_http_server() as slow:  # sends its headers, then a byte a second
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f"{slow.url}/trickle")
        started = time.monotonic()
        stuck = measure(cloudwatch(stat_query("errors"), region="eu-north-1", timeout=2))
        assert time.monotonic() - started < 10  # the whole exchange is bounded, not each read
    assert stuck.phase == P.ERROR and stuck.message == "CloudWatch GetMetricData timed out after 2s"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({}, "metricDataQueries: required"),
        ({"metricDataQueries": [{"expression": "x"}]}, "metricDataQueries[0].id: required"),
        ({"metricDataQueries": [{"id": "Bad-id", "expression": "x"}]}, "metricDataQueries[0].id: Invalid value"),
        ({"metricDataQueries": [{"id": "a"}]}, "metricDataQueries[0]: exactly one of expression and metricStat"),
        ({"metricDataQueries": [{"id": "a", "metricStat": {"metric": {}, "period": 60, "stat": "Sum"}}]},
         "metricDataQueries[0].metricStat.metric.metricName: required"),
        ({"metricDataQueries": [{"id": "a", "metricStat": {"metric": {"metricName": "x"}, "period": 90,
                                                           "stat": "Sum"}}]},
         "metricDataQueries[0].metricStat.period: Invalid value"),
        ({"metricDataQueries": [{"id": "a", "expression": "x"}, {"id": "a", "expression": "y"}]},
         "metricDataQueries[1].id: Duplicate value"),
        ({"metricDataQueries": [{"id": "a", "expression": "x"}], "interval": "soon"}, "interval: Invalid value"),
        ({"metricDataQueries": [{"id": "a", "expression": "x"}], "roleArn": "reader"}, "roleArn: Invalid value"),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], problem: str) -> None:
    problems = spec_problems("cloudWatch", spec, WHERE, {"name": "m"})
    assert any(p.startswith(f"{WHERE}.{problem}") for p in problems), problems


def test_validating_a_cloudwatch_metric_loads_neither_botocore_nor_httpx() -> None:
    script = """
import sys
from analysis.spec import validate_metrics
problems = validate_metrics([{"name": "c", "provider": {"cloudWatch": {"metricDataQueries": [
    {"id": "a", "expression": "SELECT AVG(x) FROM y"}]}}}])
assert problems == [], problems
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "httpx", "requests")
                      or m.startswith("analysis.providers."))))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["analysis.providers.cloudwatch_spec", "analysis.providers.registry",
                                  "analysis.providers.spec_checks"]
