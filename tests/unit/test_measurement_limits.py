"""Measurements have total deadlines and bounded answers (issue 16 item 3): a trickling server does not
hold a web or Prometheus measurement past its timeout, a 10 MB answer is stored capped, and a run's
status stays under its budget whatever ``measurementRetention`` says."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from analysis.caps import (
    MAX_MESSAGE_CHARS,
    MAX_METADATA_CHARS,
    MAX_METADATA_ENTRIES,
    MAX_STATUS_BYTES,
    MAX_VALUE_CHARS,
    TRUNCATED_MARK,
    cap_measurement,
    cap_text,
    fit_status,
)
from analysis.phases import AnalysisPhase as P
from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider
from analysis.runner import assess, record_measurement
from tests.fixtures.slow_http import SlowHttp, slow_http_server

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def slow() -> Iterator[SlowHttp]:
    with slow_http_server() as server:
        yield server


def context() -> Context:
    async def read(name: str, key: str) -> str:
        raise ProviderError(f'secret "{name}" not found')

    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=read)


def web(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "m", "successCondition": "true", "provider": {"web": {"url": url, **extra}}}


def test_a_trickling_web_server_does_not_hold_the_measurement_past_its_timeout(slow: SlowHttp) -> None:
    # Without a total deadline this would wait on the trickle until the server stops (never, here).
    measured = asyncio.run(WebProvider().measure(web(f"{slow.url}/trickle", timeoutSeconds=2), context()))
    assert measured.phase is P.ERROR
    assert measured.message.endswith("/trickle timed out after 2s")
    assert slow.trickles == 1


def test_a_trickling_prometheus_does_not_hold_the_measurement_past_its_timeout(slow: SlowHttp) -> None:
    metric = {"name": "m", "successCondition": "true",
              "provider": {"prometheus": {"address": slow.url, "query": "up", "timeout": 2}}}
    measured = asyncio.run(PrometheusProvider().measure(metric, context()))
    assert measured.phase is P.ERROR
    assert "timed out after 2s" in measured.message
    assert slow.trickles == 1


def test_a_10_mb_answer_is_judged_whole_and_stored_capped(slow: SlowHttp) -> None:
    metric = web(f"{slow.url}/big", timeoutSeconds=20)
    metric["successCondition"] = "len(result.data.items) > 100000"  # the condition saw every item
    measured = asyncio.run(WebProvider().measure(metric, context()))
    assert measured.phase is P.SUCCESSFUL, measured.message
    stored = measured.to_status()
    assert len(stored["value"]) == MAX_VALUE_CHARS
    assert TRUNCATED_MARK in stored["value"] and stored["value"].startswith("map[data:map[")


def test_text_and_metadata_caps() -> None:
    assert cap_text("short", 10) == "short"
    cut = cap_text("y" * 5000, 100)
    assert len(cut) == 100 and cut.endswith("from 5000 characters]")
    entry = cap_measurement({"phase": "Error", "message": "m" * 9999, "value": "v" * 9999,
                             "metadata": {f"k{i}": "z" * 9999 for i in range(60)} | {"judgeState": "s" * 9999}})
    assert len(entry["message"]) == MAX_MESSAGE_CHARS and len(entry["value"]) == MAX_VALUE_CHARS
    assert len([k for k in entry["metadata"] if k != "judgeState"]) == MAX_METADATA_ENTRIES
    assert all(len(v) <= MAX_METADATA_CHARS for k, v in entry["metadata"].items() if k != "judgeState")
    assert len(entry["metadata"]["judgeState"]) == 9999  # read back by the judge: kept whole


def test_a_run_stays_under_its_budget_whatever_the_retention_says() -> None:
    metric = {"interval": "1s", "provider": {"web": {"url": "http://x"}}}
    spec: dict[str, Any] = {"metrics": [{"name": n, **metric} for n in ("a", "b")],
                            "measurementRetention": [{"metricName": "*", "limit": 100000}]}
    status: dict[str, Any] = {"phase": "Running"}
    for i in range(400):
        for name in ("a", "b"):
            big = Measurement(P.SUCCESSFUL, value=str(i) + "v" * 20000, metadata={"k": "x" * 5000},
                              started_at="2024-05-01T12:00:00Z", finished_at="2024-05-01T12:00:01Z")
            record_measurement(status, name, big)
    metrics = {m["name"]: m for m in spec["metrics"]}
    assess(spec, status, NOW, metrics)
    assert len(json.dumps(status, separators=(",", ":"))) <= MAX_STATUS_BYTES
    for result in status["metricResults"]:
        assert result["count"] == 400  # every measurement counted, the oldest dropped
        assert result["measurements"][-1]["value"].startswith("399")


def test_fit_status_keeps_each_metrics_newest_measurement() -> None:
    status: dict[str, Any] = {"metricResults": [{"name": "a", "measurements": [{"value": "v" * 1000}] * 5}]}
    assert fit_status(status, budget=10) == 4
    assert len(status["metricResults"][0]["measurements"]) == 1
