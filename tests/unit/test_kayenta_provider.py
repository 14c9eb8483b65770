"""The kayenta provider against a local server speaking Kayenta's canary API: start, poll, score vs thresholds."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.kayenta import EXECUTION_ID_KEY, KayentaProvider
from analysis.providers.registry import spec_problems
from tests.fixtures.analysis_runs import closed_port
from tests.fixtures.kayenta_server import ACCOUNTS, APPLICATION, Kayenta, kayenta_server

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WHERE = "spec.metrics[0].provider.kayenta"


@pytest.fixture
def kayenta() -> Iterator[Kayenta]:
    with kayenta_server() as server:
        server.scores.update({"good": 95, "meh": 80, "bad": 40})
        yield server


def context() -> Context:
    async def read(name: str, key: str) -> str:
        raise ProviderError(f'secret "{name}" not found')

    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def kayenta_spec(address: str, config: str) -> dict[str, Any]:
    return {"address": address, "application": APPLICATION, "canaryConfigName": config, **ACCOUNTS,
            "threshold": {"pass": 90, "marginal": 75},
            "scopes": [{"name": "default",
                        "controlScope": {"scope": "app=guestbook and rollouts-pod-template-hash=abc", "step": 60,
                                         "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:10:00Z"},
                        "experimentScope": {"scope": "app=guestbook and rollouts-pod-template-hash=def", "step": 60,
                                            "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:10:00Z"}}]}


def metric(address: str, config: str) -> dict[str, Any]:
    return {"name": "m", "provider": {"kayenta": kayenta_spec(address, config)}}


def run_to_end(m: dict[str, Any]) -> list[Measurement]:
    async def go() -> list[Measurement]:
        provider = KayentaProvider()
        seen = [await provider.measure(m, context())]
        while seen[-1].phase == P.RUNNING and len(seen) < 5:
            assert seen[-1].resume_at
            seen.append(await provider.resume(m, seen[-1], context()))
        return seen

    return asyncio.run(go())


@pytest.mark.parametrize(("config", "phase"), [("good", P.SUCCESSFUL), ("meh", P.INCONCLUSIVE), ("bad", P.FAILED)])
def test_score_against_thresholds(kayenta: Kayenta, config: str, phase: P) -> None:
    kayenta.slow = True
    seen = run_to_end(metric(kayenta.url, config))
    assert [m.phase for m in seen] == [P.RUNNING, P.RUNNING, phase]
    assert seen[-1].value == str(kayenta.scores[config])
    assert seen[-1].metadata[EXECUTION_ID_KEY] == "exec-1"
    sent = kayenta.started[0]
    assert sent["thresholds"] == {"pass": 90, "marginal": 75}
    assert sent["scopes"]["default"]["controlScope"]["scope"].endswith("hash=abc")


def test_unknown_config_down_and_missing_score_are_errors(kayenta: Kayenta) -> None:
    unknown = run_to_end(metric(kayenta.url, "nope"))[-1]
    assert unknown.phase == P.ERROR and 'no canary config "nope" for application "checkout"' in unknown.message
    down = run_to_end(metric(f"http://127.0.0.1:{closed_port()}", "good"))[-1]
    assert down.phase == P.ERROR and "cannot reach Kayenta: ConnectError" in down.message
    wrong_account = metric(kayenta.url, "good")
    wrong_account["provider"]["kayenta"]["storageAccountName"] = "other"
    refused = run_to_end(wrong_account)[-1]
    assert refused.phase == P.ERROR and "HTTP 400" in refused.message and "storageAccountName" in refused.message


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"canaryConfigName": None}, "canaryConfigName: required"),
        ({"address": "kayenta:8090"}, "address: Invalid value"),
        ({"threshold": {"pass": 90}}, "threshold.marginal: Invalid value"),
        ({"threshold": {"pass": 70, "marginal": 80}}, "threshold.marginal: Invalid value: 80: at most pass (70)"),
        ({"scopes": []}, "scopes: required"),
        ({"scopes": [{"name": "s", "controlScope": {"scope": "a"}}]}, "scopes[0].experimentScope.scope: required"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], problem: str) -> None:
    spec = {**kayenta_spec("http://kayenta:8090", "good"), **change}
    problems = spec_problems("kayenta", {k: v for k, v in spec.items() if v is not None}, WHERE, {"name": "m"})
    assert any(p.startswith(f"{WHERE}.{problem}") for p in problems), problems
