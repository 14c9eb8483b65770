"""Prometheus ``authentication.sigv4`` (Amazon Managed Prometheus) and ``authentication.oauth2`` against local
servers that check the signature with botocore's own signer and the OAuth2 client credentials."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.spec_checks import prometheus_problems
from tests.fixtures.aws_servers import (
    ACCESS_KEY,
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    ROLE_ACCESS_KEY,
    ROLE_ARN,
    SECRET_KEY,
    AwsWorld,
    aws_env,
    aws_world,
    sigv4_problem,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    with aws_world() as w:
        for key, value in aws_env(w, str(tmp_path)).items():
            monkeypatch.setenv(key, value)
        w.series["ok"] = [0.99]
        w.series["bad"] = [0.5]
        yield w


def context() -> Context:
    async def read(name: str, key: str) -> str:
        raise ProviderError(f'secret "{name}" not found')

    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def metric(world: AwsWorld, authentication: dict[str, Any], query: str = "ok") -> dict[str, Any]:
    return {"name": "m", "successCondition": "result[0] >= 0.95", "provider": {"prometheus": {
        "address": world.url, "query": query, "timeout": 5, "authentication": authentication}}}


def measure(m: dict[str, Any], ctx: Context | None = None) -> Measurement:
    return asyncio.run(PrometheusProvider().measure(m, ctx or context()))


def oauth2(**extra: Any) -> dict[str, Any]:
    return {"oauth2": {"tokenUrl": "", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, **extra}}


def test_sigv4_requests_carry_a_signature_botocore_accepts(world: AwsWorld) -> None:
    ok = measure(metric(world, {"sigv4": {"region": "us-west-2"}}))
    assert ok.phase == P.SUCCESSFUL, ok.message
    failed = measure(metric(world, {"sigv4": {}}, "bad"))
    assert failed.phase == P.FAILED, failed.message  # region from AWS_REGION
    signed = world.to("/api/v1/query")
    assert len(signed) == 2
    assert all(sigv4_problem(s, "aps", world.keys()) is None for s in signed)
    assert f"Credential={ACCESS_KEY}/" in signed[0].headers["authorization"]
    assert "/us-west-2/aps/aws4_request" in signed[0].headers["authorization"]
    assert "/us-east-1/aps/aws4_request" in signed[1].headers["authorization"]


def test_sigv4_wrong_secret_key_is_an_error_naming_the_cause(world: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret-key")
    bad = measure(metric(world, {"sigv4": {}}))
    assert bad.phase == P.ERROR
    assert "HTTP 403" in bad.message and "signature" in bad.message
    assert "not-the-right-secret-key" not in bad.message


def test_sigv4_profile_from_the_shared_credentials_file(world: AwsWorld, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "credentials").write_text(
        f"[amp]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    assert measure(metric(world, {"sigv4": {"profile": "amp"}})).phase == P.SUCCESSFUL
    missing = measure(metric(world, {"sigv4": {"profile": "nope"}}))
    assert missing.phase == P.ERROR and "authentication.sigv4.profile" in missing.message and "nope" in missing.message


def test_sigv4_role_assumed_through_sts(world: AwsWorld) -> None:
    ok = measure(metric(world, {"sigv4": {"roleArn": ROLE_ARN}}))
    assert ok.phase == P.SUCCESSFUL, ok.message
    assert f"Credential={ROLE_ACCESS_KEY}/" in world.to("/api/v1/query")[-1].headers["authorization"]
    refused = measure(metric(world, {"sigv4": {"roleArn": "arn:aws:iam::123456789012:role/other"}}))
    assert refused.phase == P.ERROR
    assert "authentication.sigv4.roleArn" in refused.message and "AccessDenied" in refused.message


def test_sigv4_without_region_or_credentials(world: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    no_region = measure(metric(world, {"sigv4": {}}))
    assert no_region.phase == P.ERROR and "authentication.sigv4.region: region not configured" in no_region.message
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    no_keys = measure(metric(world, {"sigv4": {"region": "us-east-1"}}))
    assert no_keys.phase == P.ERROR and "no AWS credentials found" in no_keys.message
    assert not world.to("/api/v1/query")  # nothing unsigned was sent


def test_oauth2_client_credentials(world: AwsWorld) -> None:
    auth = oauth2(tokenUrl=f"{world.url}/oauth2/token", scopes=["metrics:read"])
    ctx = context()
    ok = measure(metric(world, auth), ctx)
    assert ok.phase == P.SUCCESSFUL, ok.message
    token_request, query = world.to("/oauth2/token")[0], world.to("/api/v1/query")[0]
    assert b"grant_type=client_credentials" in token_request.body and b"scope=metrics%3Aread" in token_request.body
    assert query.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert {CLIENT_SECRET, ACCESS_TOKEN} <= ctx.secrets  # redacted from anything that leaves the controller


def test_oauth2_bad_client_secret(world: AwsWorld) -> None:
    ctx = context()
    bad = measure(metric(world, oauth2(tokenUrl=f"{world.url}/oauth2/token", clientSecret="wrong-secret-xyz")), ctx)
    assert bad.phase == P.ERROR
    assert "refused the client credentials: HTTP 401: invalid_client" in bad.message
    assert "check clientId and clientSecret" in bad.message and "wrong-secret-xyz" not in bad.message
    assert not world.to("/api/v1/query")


def test_oauth2_token_endpoint_down(world: AwsWorld) -> None:
    world.down = True
    down = measure(metric(world, oauth2(tokenUrl=f"{world.url}/oauth2/token")))
    assert down.phase == P.ERROR and "HTTP 503" in down.message


@pytest.mark.parametrize(
    ("authentication", "problem"),
    [
        ({"oauth2": {"clientId": "a", "clientSecret": "b"}}, "authentication.oauth2.tokenUrl: required"),
        ({"oauth2": {"tokenUrl": "ftp://x", "clientId": "a", "clientSecret": "b"}},
         "authentication.oauth2.tokenUrl: Invalid value"),
        ({"oauth2": {"tokenUrl": "http://x", "clientId": "a"}}, "authentication.oauth2.clientSecret: required"),
        ({"oauth2": {"tokenUrl": "http://x", "clientId": "a", "clientSecret": "b", "scopes": "x"}},
         "authentication.oauth2.scopes: expected a list of strings"),
        ({"sigv4": {"roleArn": "amp-reader"}}, "authentication.sigv4.roleArn: Invalid value"),
        ({"sigv4": {}, "oauth2": {}}, "authentication: sigv4 and oauth2 are mutually exclusive"),
    ],
)
def test_bad_authentication_blocks_name_the_field(authentication: dict[str, Any], problem: str) -> None:
    spec = {"query": "up", "authentication": authentication}
    problems = prometheus_problems(spec, "spec.metrics[0].provider.prometheus")
    assert any(p.startswith("spec.metrics[0].provider.prometheus." + problem) for p in problems), problems
