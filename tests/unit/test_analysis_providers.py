"""Prometheus and Web providers against fakes on 127.0.0.1 (free ports, stopped in teardown)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError, redact
from analysis.providers.prometheus import ADDRESS_ENV, PrometheusProvider, parse_range_time
from analysis.providers.web import WebProvider, json_path
from tests.fixtures.loopback_http import QuietHandler, loopback_server, send_whole

TOKEN = "tok-9f8e7d"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

ANSWERS: dict[str, dict[str, Any]] = {
    "vector": {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [1, "0.25"]},
                                                  {"metric": {"a": "2"}, "value": [1, "0.75"]}]},
    "scalar": {"resultType": "scalar", "result": [1, "42"]},
    "empty": {"resultType": "vector", "result": []},
    "nan": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]},
}


class _Fake(QuietHandler):
    seen: list[dict[str, Any]] = []

    def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
        send_whole(self, code, ctype, body if isinstance(body, bytes) else json.dumps(body).encode())

    def answer(self, body: bytes) -> None:
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        _Fake.seen.append({"path": url.path, "params": params, "headers": dict(self.headers), "body": body})
        query = params.get("query", "")
        if url.path == "/api/v1/query":
            if query == "auth" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, b"unauthorized", "text/plain")
            if query == "bad(":
                return self._send(400, {"status": "error", "errorType": "bad_data",
                                        "error": '1:5: parse error: unclosed left parenthesis'})
            if query == "warn":
                return self._send(200, {"status": "success", "data": ANSWERS["vector"],
                                        "warnings": ["PromQL info: metric might not be a counter"]})
            return self._send(200, {"status": "success", "data": ANSWERS.get(query, ANSWERS["vector"])})
        if url.path == "/api/v1/query_range":
            return self._send(200, {"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {}, "values": [[1, "1"], [2, "2"]]}, {"metric": {}, "values": [[1, "3"]]}]}})
        if url.path == "/slow":
            time.sleep(2)
            return self._send(200, {"ok": True})
        if url.path == "/text":
            return self._send(200, b"<html>hi</html>", "text/html")
        if url.path == "/500":
            return self._send(500, {"error": "boom"})
        if url.path == "/echo":
            return self._send(200, {"method": self.command, "body": json.loads(body or b"null"),
                                    "auth": self.headers.get("Authorization")})
        return self._send(200, {"data": {"ok": True, "items": [{"v": 1}, {"v": 2}]}})


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with loopback_server(_Fake) as url:
        yield url


def context(secrets: dict[tuple[str, str], str] | None = None) -> Context:
    store = secrets or {}

    async def read(name: str, key: str) -> str:
        if (name, key) not in store:
            raise ProviderError(f'secret "{name}" not found')
        return store[(name, key)]

    return Context(run={"metadata": {"name": "r", "namespace": "ns", "uid": "u"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def prom(address: str | None, query: str = "vector", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"query": query, "timeout": 5, **extra}
    if address:
        spec["address"] = address
    return {"name": "m", "successCondition": "len(result) == 0 || result[0] < 0.5", "provider": {"prometheus": spec}}


def measure_prom(metric: dict[str, Any], ctx: Context | None = None) -> Measurement:
    return asyncio.run(PrometheusProvider().measure(metric, ctx or context()))


@pytest.mark.parametrize(
    ("query", "phase", "value"),
    [("vector", P.SUCCESSFUL, "[0.25,0.75]"), ("scalar", P.FAILED, "42"), ("empty", P.SUCCESSFUL, "[]"),
     ("nan", P.FAILED, "[nan]")],
)
def test_prometheus_result_types(fake: str, query: str, phase: P, value: str) -> None:
    metric = prom(fake, query)
    if query == "scalar":  # a scalar is a float: len() does not apply
        metric["successCondition"] = "result < 0.5"
    m = measure_prom(metric)
    assert (m.phase, m.value) == (phase, value), m
    assert m.started_at and m.finished_at


def test_prometheus_indexing_an_empty_result_is_an_error(fake: str) -> None:
    metric = prom(fake, "empty")
    metric["successCondition"] = "result[0] < 0.5"
    m = measure_prom(metric)
    assert m.phase is P.ERROR and "no data" in m.message


def test_prometheus_range_query_and_timeout_param(fake: str) -> None:
    _Fake.seen.clear()
    metric = prom(fake, "rate(x[1m])", rangeQuery={"start": "now() - 5m", "end": "now()", "step": "1m"})
    metric["successCondition"] = "len(result) == 3 && result[2] == 3"
    m = measure_prom(metric)
    assert m.phase is P.SUCCESSFUL and m.metadata["resultType"] == "matrix"
    params = _Fake.seen[-1]["params"]
    assert int(params["end"]) - int(params["start"]) == 300 and params["step"] == "1m" and params["timeout"] == "5s"


def test_prometheus_warnings_and_headers(fake: str) -> None:
    _Fake.seen.clear()
    m = measure_prom(prom(fake, "warn", headers=[{"key": "X-Scope-OrgID", "value": "team"}]))
    assert m.metadata["warnings"] == "PromQL info: metric might not be a counter"
    assert _Fake.seen[-1]["headers"]["X-Scope-OrgID"] == "team"


def test_prometheus_bearer_token_from_a_secret(fake: str) -> None:
    auth = {"bearerToken": {"secretKeyRef": {"name": "prom", "key": "token"}}}
    ctx = context({("prom", "token"): TOKEN})
    ok = measure_prom(prom(fake, "auth", authentication=auth), ctx)
    assert ok.phase is P.SUCCESSFUL and ctx.secrets == {TOKEN}
    missing = measure_prom(prom(fake, "auth", authentication=auth))
    assert missing.phase is P.ERROR and missing.message == 'secret "prom" not found'
    denied = measure_prom(prom(fake, "auth"))
    assert denied.phase is P.ERROR and "HTTP 401" in denied.message


def test_prometheus_faults_are_error_measurements(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = measure_prom(prom(fake, "bad("))
    assert bad.phase is P.ERROR and bad.message == (
        "query failed: HTTP 400: bad_data: 1:5: parse error: unclosed left parenthesis")
    down = measure_prom(prom("http://127.0.0.1:1"))
    assert down.phase is P.ERROR and down.message.startswith("cannot reach Prometheus at http://127.0.0.1:1")
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    assert "PYROLLOUTS_PROMETHEUS_ADDRESS" in measure_prom(prom(None)).message
    monkeypatch.setenv(ADDRESS_ENV, fake)
    assert measure_prom(prom(None)).phase is P.SUCCESSFUL


def test_range_times() -> None:
    assert parse_range_time("now()", NOW, "f") == NOW
    assert parse_range_time("now() - 1h", NOW, "f") == NOW - dt.timedelta(hours=1)
    assert parse_range_time("2024-05-01T11:00:00Z", NOW, "f") == NOW - dt.timedelta(hours=1)


# --------------------------------------------------------------------------- web


def web(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "w", "provider": {"web": {"url": url, "timeoutSeconds": 1, **extra}}}


def measure_web(metric: dict[str, Any], ctx: Context | None = None) -> Measurement:
    return asyncio.run(WebProvider().measure(metric, ctx or context()))


@pytest.mark.parametrize("path", ["{$.data.ok}", "$.data.ok", ".data.ok"])
def test_web_json_path_forms(fake: str, path: str) -> None:
    metric = web(f"{fake}/ok", jsonPath=path)
    metric["successCondition"] = "result == true"
    m = measure_web(metric)
    assert (m.phase, m.value, m.metadata["statusCode"]) == (P.SUCCESSFUL, "true", "200")


def test_web_json_path_several_matches_and_none() -> None:
    doc = {"data": {"items": [{"v": 1}, {"v": 2}]}}
    assert json_path("{$.data.items[*].v}", doc) == [1, 2]
    with pytest.raises(ProviderError, match="matched nothing"):
        json_path("$.nope", doc)


def test_web_post_json_body_and_basic_auth(fake: str) -> None:
    auth = {"basicAuth": {"username": "u", "passwordSecretRef": {"name": "s", "key": "p"}}}
    metric = web(f"{fake}/echo", method="POST", jsonBody={"service": "x"}, authentication=auth)
    m = measure_web(metric, context({("s", "p"): "pw-secret"}))
    assert m.phase is P.SUCCESSFUL
    assert m.result["method"] == "POST" and m.result["body"] == {"service": "x"}
    assert m.result["auth"].startswith("Basic ")
    redacted = m.redacted({"pw-secret"}).value
    assert redacted is not None and "pw-secret" not in redacted  # base64 form is redacted too


@pytest.mark.parametrize(
    ("path", "message"),
    [("/slow", "GET http://127.0.0.1:{port}/slow timed out after 1s"),
     ("/text", "the answer of http://127.0.0.1:{port}/text is not JSON: '<html>hi</html>'"),
     ("/500", "received non 2xx response code: 500")],
)
def test_web_faults_are_error_measurements(fake: str, path: str, message: str) -> None:
    m = measure_web(web(fake + path))
    assert m.phase is P.ERROR
    assert m.message == message.format(port=fake.rsplit(":", 1)[1])


def test_web_unreachable_and_missing_secret() -> None:
    m = measure_web(web("http://127.0.0.1:1/x"))
    assert m.phase is P.ERROR and m.message.startswith("GET http://127.0.0.1:1/x failed: ConnectError")
    m = measure_web({"name": "w", "provider": {"web": {"urlFrom": {"secretKeyRef": {"name": "u", "key": "url"}}}}})
    assert m.phase is P.ERROR and m.message == 'secret "u" not found'


def test_redact() -> None:
    assert redact("a s3cret b czNjcmV0", {"s3cret"}) == "a ***** b *****"
    assert redact("abc", {"a"}) == "abc"  # too short to hide without destroying the text
