"""The influxdb provider against a local server speaking the v2 query API (annotated CSV), the profile Secret
read through the context (the token remembered for redaction)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.influxdb import InfluxdbProvider, flux_values
from analysis.providers.registry import spec_problems
from tests.fixtures.analysis_runs import closed_port
from tests.fixtures.influxdb_server import COMPILE_ERROR, ORG, TOKEN, Influx, annotated_csv, influxdb_server

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WHERE = "spec.metrics[0].provider.influxdb"


@pytest.fixture
def influx() -> Iterator[Influx]:
    with influxdb_server() as server:
        server.series.update({"errors": [0.01, 0.02, 0.0], "slow": [0.9]})
        yield server


def context(profile: dict[str, str]) -> Context:
    async def read(name: str, key: str) -> str:
        if name != "influxdb":
            raise ProviderError(f'secret "{name}" not found in namespace "ns"')
        if key not in profile:
            raise ProviderError(f'secret "{name}" has no key "{key}"')
        return profile[key]

    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def measure(query: str, secret: dict[str, str], ctx: Context | None = None, **extra: Any) -> Measurement:
    m = {"name": "m", "successCondition": "all(result, {# <= 0.05})",
         "provider": {"influxdb": {"query": query, "timeout": 5, **extra}}}
    return asyncio.run(InfluxdbProvider().measure(m, ctx or context(secret)))


def good(influx: Influx) -> dict[str, str]:
    return {"address": influx.url, "authToken": TOKEN, "org": ORG}


def test_flux_success_failure_and_the_request(influx: Influx) -> None:
    ctx = context(good(influx))
    ok = measure("errors", {}, ctx)
    assert ok.phase == P.SUCCESSFUL and ok.value == "[0.01 0.02 0]", ok.message  # both tables
    assert TOKEN in ctx.secrets and ORG not in ctx.secrets
    assert influx.bodies[0]["dialect"]["annotations"] == ["datatype", "group", "default"]
    assert measure("slow", good(influx)).phase == P.FAILED


def test_errors_name_the_cause(influx: Influx) -> None:
    assert measure("nothing", good(influx)).message == "no results returned from flux query"
    assert measure("bad", good(influx)).message == f"the flux query failed: HTTP 400: invalid: {COMPILE_ERROR}"
    assert measure("in-band", good(influx)).message == "the flux query failed: runtime error: division by zero"
    bad_token = measure("errors", {**good(influx), "authToken": "wr0ng-token-value"})
    assert bad_token.phase == P.ERROR and "HTTP 401: unauthorized: unauthorized access" in bad_token.message
    assert "wr0ng-token-value" not in bad_token.message
    missing = measure("errors", {"address": influx.url, "org": ORG})
    assert missing.message == 'secret "influxdb" has no key "authToken"'
    assert 'secret "other" not found' in measure("errors", good(influx), profile="other").message
    down = measure("errors", {**good(influx), "address": f"http://127.0.0.1:{closed_port()}"})
    assert "cannot reach InfluxDB at http://127.0.0.1:" in down.message


def test_annotated_csv_types() -> None:
    assert flux_values(annotated_csv([1.5, 2.0, 3.25])) == [1.5, 2.0, 3.25]
    longs = "#datatype,string,long,long\r\n#group,false,false,false\r\n#default,_result,,\r\n,result,table,_value\r\n" \
            ",,0,7\r\n,,0,\r\n"
    assert flux_values(longs) == [7, None]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [({}, "query: required"), ({"query": "x", "profile": "Influx_Prod"}, "profile: Invalid value"),
     ({"query": "x", "timeout": -1}, "timeout: Invalid value")],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], problem: str) -> None:
    problems = spec_problems("influxdb", spec, WHERE, {"name": "m"})
    assert any(p.startswith(f"{WHERE}.{problem}") for p in problems), problems
