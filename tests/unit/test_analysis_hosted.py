"""The hosted-service providers' pure parts: spec checks (fields named) and answer reading."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from analysis.providers.base import Context, ProviderError
from analysis.providers.datadog import (
    MAX_GROUPS_IN_METADATA,
    Credentials,
    find_credentials,
    scalar_request,
    scalar_result,
    series_result,
)
from analysis.providers.hosted import Answer
from analysis.providers.hosted_spec import (
    datadog_problems,
    newrelic_problems,
    skywalking_problems,
    wavefront_problems,
)
from analysis.providers.newrelic import nrql_result
from analysis.providers.skywalking import graphql_data, query_duration, window_duration
from analysis.providers.wavefront import base_url, nearest_points

W = "spec.metrics[0].provider.datadog"


@pytest.mark.parametrize(("spec", "problem"), [
    ({}, f"{W}.query: must have either a query or queries"),
    ({"query": "q", "queries": {"a": "q"}, "apiVersion": "v2"}, f"{W}.queries: cannot have both"),
    ({"queries": {"a": "q"}}, f"{W}.queries: API version v1 only supports the query field"),
    ({"query": "q", "formula": "a"}, f"{W}.formula: a formula is only valid with queries"),
    ({"queries": {"a": "q", "b": "r"}, "apiVersion": "v2"}, f"{W}.formula: required when several queries"),
    ({"query": "q", "apiVersion": "v3"}, f'{W}.apiVersion: Unsupported value: "v3"'),
    ({"query": "q", "aggregator": "sum"}, f"{W}.aggregator: not supported with apiVersion v1"),
    ({"query": "q", "apiVersion": "v2", "aggregator": "median"}, f'{W}.aggregator: Unsupported value: "median"'),
    ({"query": "q", "interval": "soon"}, f'{W}.interval: Invalid value: "soon": not a duration'),
    ({"query": "q", "requestTimeout": "0s"}, f'{W}.requestTimeout: Invalid value: "0s": must be a positive'),
    ({"query": "q", "requestTimeout": "1h"}, f'{W}.requestTimeout: Invalid value: "1h": at most 600s'),
    ({"query": "q", "secretRef": {"namespaced": True}}, f"{W}.secretRef.name: secret name is required"),
    ({"queries": {"a": 3}, "apiVersion": "v2"}, f"{W}.queries: must map names to Datadog queries"),
])
def test_datadog_spec_problems(spec: dict[str, object], problem: str) -> None:
    problems = datadog_problems(spec, W)
    assert any(p.startswith(problem) for p in problems), problems


def test_datadog_valid_specs_and_templated_fields() -> None:
    assert datadog_problems({"query": "q", "interval": "{{args.window}}"}, W) == []
    assert datadog_problems({"apiVersion": "v2", "queries": {"a": "x", "b": "y"}, "formula": "a/b",
                             "aggregator": "sum", "requestTimeout": "30s"}, W) == []


def test_datadog_v2_body_names_each_query() -> None:
    body = scalar_request({"query": "sum:x{*}"}, now=1000, interval=60)["data"]
    assert body["type"] == "scalar_request"
    assert body["attributes"] == {"from": 940_000, "to": 1_000_000, "formulas": [], "queries": [
        {"aggregator": "last", "data_source": "metrics", "name": "query", "query": "sum:x{*}"}]}


def test_datadog_answers() -> None:
    assert series_result({"series": [{"pointlist": [[1.0, 2.0], [2.0, 3.5]]}]}) == (3.5, {})
    assert series_result({"series": []}) == (None, {})
    with pytest.raises(ProviderError, match="Datapoint does not have 2 values"):
        series_result({"series": [{"pointlist": [[1.0]]}]})
    number = {"name": "a", "type": "number", "values": [None, 0.5]}
    assert scalar_result({"data": {"attributes": {"columns": [number]}}}) == (0.5, {})
    with pytest.raises(ProviderError, match="There were errors in your query: bad"):
        scalar_result({"data": {"errors": "bad"}})
    many = MAX_GROUPS_IN_METADATA + 5
    groups = {"name": "tag", "type": "group", "values": [[f"g{i}"] for i in range(many)]}
    values = {"name": "a", "type": "number", "values": [float(i) for i in range(many)]}
    result, metadata = scalar_result({"data": {"attributes": {"columns": [groups, values]}}})
    assert isinstance(result, list) and len(result) == many
    assert metadata["groups_truncated"] == "true" and metadata["groups"].startswith(f'[{{"name": "g{many - 1}"')


def test_newrelic_spec_problems() -> None:
    where = "spec.metrics[0].provider.newRelic"
    assert newrelic_problems({"query": "FROM T SELECT count(*)", "timeout": 10, "profile": "p"}, where) == []
    assert newrelic_problems({}, where)[0].startswith(f"{where}.query: required")
    assert newrelic_problems({"query": "q", "timeout": -1}, where) == [
        f"{where}.timeout: Invalid value: -1: must be a number of seconds from 0 to 120 (NerdGraph's limit)"]
    assert newrelic_problems({"query": "q", "timeout": "{{args.t}}"}, where) == []


def test_newrelic_rows() -> None:
    def answer(rows: object) -> dict[str, object]:
        return {"data": {"actor": {"account": {"nrql": {"results": rows}}}}}

    assert nrql_result(answer([{"count": 3}])) == {"count": 3}
    assert nrql_result(answer([{"count": 3}, {"count": 4}])) == [{"count": 3}, {"count": 4}]
    with pytest.raises(ProviderError, match="no results returned from NRQL query"):
        nrql_result(answer([]))
    with pytest.raises(ProviderError, match="no results returned from NRQL query"):
        nrql_result(answer([{}]))
    with pytest.raises(ProviderError, match="NerdGraph query failed: nope"):
        nrql_result({"errors": [{"message": "nope"}]})


def test_wavefront_spec_problems_and_addresses() -> None:
    where = "spec.metrics[0].provider.wavefront"
    assert wavefront_problems({"query": 'ts("x")', "address": "example.wavefront.com"}, where) == []
    assert [p.split(":")[0] for p in wavefront_problems({}, where)] == [f"{where}.query", f"{where}.address"]
    assert base_url("example.wavefront.com") == "https://example.wavefront.com"
    assert base_url("http://127.0.0.1:9/") == "http://127.0.0.1:9"


def test_wavefront_takes_the_point_nearest_the_start() -> None:
    series = [{"data": [[90, 1.0], [98, 2.0], [130, 3.0]]}, {"data": []}]
    assert nearest_points(series, 100) == [(2.0, 98, -2), (0.0, 0, -100)]
    with pytest.raises(ProviderError, match="not \\[time, value\\]"):
        nearest_points([{"data": [[1]]}], 100)


def test_skywalking_spec_problems() -> None:
    where = "spec.metrics[0].provider.skywalking"
    ok = {"query": "q", "address": "http://oap:12800", "interval": "3m"}
    assert skywalking_problems(ok, where) == []
    assert skywalking_problems({**ok, "address": "oap:12800"}, where)[0].startswith(f"{where}.address: Invalid value")
    assert skywalking_problems({**ok, "interval": "0s"}, where)[0].startswith(f"{where}.interval: Invalid value")
    assert [p.split(":")[0] for p in skywalking_problems({}, where)] == [
        f"{where}.query", f"{where}.address", f"{where}.interval"]


def test_skywalking_duration_and_answers() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 59, tzinfo=dt.UTC)
    assert query_duration(now, 180) == {"start": "2026-01-02 0301", "end": "2026-01-02 0304", "step": "MINUTE"}
    start = now - dt.timedelta(days=2)
    assert window_duration(start, now, 30) == {"start": "2025-12-31 0304", "end": "2026-01-02 0304", "step": "MINUTE"}
    assert window_duration(start, now, 7200) == {"start": "2025-12-31 03", "end": "2026-01-02 03", "step": "HOUR"}
    assert window_duration(start, now, 86400) == {"start": "2025-12-31", "end": "2026-01-02", "step": "DAY"}
    assert graphql_data(Answer(200, b'{"data": {"a": 1}}', {})) == {"a": 1}
    with pytest.raises(ProviderError, match=r"^graphql: bad$"):
        graphql_data(Answer(200, b'{"errors": [{"message": "bad"}]}', {}))
    with pytest.raises(ProviderError, match="non-200 status code: 503"):
        graphql_data(Answer(503, b"unavailable", {}))
    with pytest.raises(ProviderError, match="no results returned from SkyWalking query"):
        graphql_data(Answer(200, b'{"data": null}', {}))


def test_datadog_credentials_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """secretRef first; else the DD_* environment (all three set); else the `datadog` Secret at home."""
    read: list[tuple[str, str]] = []

    async def secret_data(namespace: str, name: str) -> dict[str, str]:
        read.append((namespace, name))
        return {"api-key": f"api-{name}", "app-key": f"app-{name}", "address": "http://dd"}

    async def no_secret(name: str, key: str) -> str:
        raise AssertionError(name)

    def context() -> Context:
        return Context(run={}, namespace="team", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), args={},
                       read_secret=no_secret, read_secret_data=secret_data)

    monkeypatch.setenv("POD_NAMESPACE", "home")
    for key in ("DD_API_KEY", "DD_APP_KEY", "DD_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    ctx = context()
    assert asyncio.run(find_credentials({}, ctx)) == Credentials("http://dd", "api-datadog", "app-datadog")
    assert asyncio.run(find_credentials({"secretRef": {"name": "mine", "namespaced": True}}, ctx)).api_key == "api-mine"
    assert asyncio.run(find_credentials({"secretRef": {"name": "shared"}}, ctx)).app_key == "app-shared"
    assert read == [("home", "datadog"), ("team", "mine"), ("home", "shared")]
    assert {"api-datadog", "app-mine", "api-shared"} <= ctx.secrets and "http://dd" not in ctx.secrets
    monkeypatch.setenv("DD_API_KEY", "env-api-key")
    monkeypatch.setenv("DD_APP_KEY", "env-app-key")
    monkeypatch.setenv("DD_ADDRESS", "https://api.datadoghq.eu")
    ctx = context()
    found = asyncio.run(find_credentials({}, ctx))
    assert found == Credentials("https://api.datadoghq.eu", "env-api-key", "env-app-key")
    assert {"env-api-key", "env-app-key"} <= ctx.secrets
