"""The `judge` provider against a fake Prometheus on 127.0.0.1, driven through the runner's
record/assess functions as the controller drives it (state carried between measurements)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from analysis.phases import AnalysisPhase as P
from analysis.phases import MetricCounters
from analysis.providers.base import Context, Measurement
from analysis.providers.judge import STATE_KEY, JudgeProvider, decode_state
from analysis.runner import assess, metric_specs, prepare_status, record_measurement
from analysis.spec import validate_metrics

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

# query -> answer: a number, None (no series), "nan", or "bad" (a PromQL error)
VALUES: dict[str, Any] = {}


class _Fake(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        return

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, body: bytes = b"") -> None:
        params = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        value = VALUES.get(params.get("query", ""))
        if value == "bad":
            return self._send(400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})
        result = [] if value is None else [{"metric": {}, "value": [1, str(value)]}]
        return self._send(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def judge_metric(address: str, count: int = 30, **extra: Any) -> dict[str, Any]:
    spec = {
        "address": address,
        "canary": {"errors": "ce", "requests": "cr"},
        "baseline": {"errors": "be", "requests": "br"},
        "minRequests": 500,
        **extra,
    }
    return {"name": "judge", "interval": "1s", "count": count, "provider": {"judge": spec}}


async def _no_secret(name: str, key: str) -> str:
    raise AssertionError("no secret expected")


class Run:
    """A one-metric AnalysisRun status, measured and assessed as the controller does."""

    def __init__(self, metric: dict[str, Any]) -> None:
        self.spec = {"metrics": [metric]}
        self.status = prepare_status(self.spec, None, NOW)
        self.provider = JudgeProvider()

    @property
    def entry(self) -> dict[str, Any]:
        result: dict[str, Any] = self.status["metricResults"][0]
        return result

    def step(self, ce: Any, cr: Any, be: Any, br: Any) -> Measurement:
        VALUES.update({"ce": ce, "cr": cr, "be": be, "br": br})
        history = tuple(Measurement.from_status(m) for m in self.entry.get("measurements") or [])
        ctx = Context(run={}, namespace="ns", now=NOW, args={}, read_secret=_no_secret,
                      history=history, counted=MetricCounters.from_status(self.entry).count)
        m = asyncio.run(self.provider.measure(self.spec["metrics"][0], ctx))
        record_measurement(self.status, "judge", m)
        assess(self.spec, self.status, NOW, metric_specs(self.spec, {}))
        return m

    def stream(self, p_canary: float, p_baseline: float, n: int = 1000, seed: int = 1, limit: int = 40) -> int:
        rng = np.random.default_rng(seed)
        for i in range(limit):
            self.step(int(rng.binomial(n, p_canary)), n, int(rng.binomial(n, p_baseline)), n)
            if self.status["phase"] != P.RUNNING:
                return i + 1
        return limit


def test_state_is_carried_between_measurements(fake: str) -> None:
    run = Run(judge_metric(fake))
    first = run.step(5, 100, 10, 200)
    assert first.phase is P.INCONCLUSIVE and first.undecided
    assert first.metadata["decision"] == "nodata" and first.metadata["reason"].startswith("waiting for data")
    second = run.step(7, 300, 12, 400)
    assert second.metadata["intervals"] == "2"
    assert second.metadata["canaryRequests"] == "400" and second.metadata["baselineRequests"] == "600"
    state = decode_state(second.metadata[STATE_KEY])
    assert (state.canary_errors, state.baseline_errors) == (12.0, 22.0)
    # only the newest measurement keeps the state; the undecided ones count towards `count` only
    stored = run.entry["measurements"]
    assert STATE_KEY not in stored[0]["metadata"] and STATE_KEY in stored[1]["metadata"]
    assert run.entry["count"] == 2 and run.entry["inconclusive"] == 0 and run.entry["phase"] == P.RUNNING
    assert run.status["phase"] == P.RUNNING


@pytest.mark.parametrize("dispersion", [None, 1.0])
def test_twice_the_errors_fails(fake: str, dispersion: float | None) -> None:
    extra = {} if dispersion is None else {"dispersion": dispersion}
    run = Run(judge_metric(fake, **extra))
    steps = run.stream(0.10, 0.05)
    assert run.status["phase"] == P.FAILED and steps <= 10
    last = run.entry["measurements"][-1]
    assert last["phase"] == P.FAILED and last["metadata"]["decision"] == "fail"
    assert float(last["value"]) > 1.3 and "canary error rate above" in last["message"]
    assert run.entry["failed"] == 1 and run.entry["count"] == steps


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identical_streams_pass_early(fake: str, seed: int) -> None:
    run = Run(judge_metric(fake))
    steps = run.stream(0.05, 0.05, seed=seed)
    assert run.status["phase"] == P.SUCCESSFUL and steps < 30
    last = run.entry["measurements"][-1]
    assert last["phase"] == P.SUCCESSFUL and last["metadata"]["decision"] == "pass"
    assert "consecutiveSuccessLimit" not in run.spec["metrics"][0]  # the judge's default of 1 completes it


def test_no_traffic_waits_then_is_inconclusive_at_the_final_count(fake: str) -> None:
    run = Run(judge_metric(fake, count=3))
    for _ in range(2):
        m = run.step(None, None, None, None)  # no series at all: no traffic
        assert m.phase is P.INCONCLUSIVE and m.undecided and "waiting for data" in m.message
        assert run.status["phase"] == P.RUNNING
    m = run.step(None, None, None, None)
    assert m.phase is P.INCONCLUSIVE and not m.undecided
    assert m.message.startswith("no decision after 3 measurements: waiting for data")
    assert run.status["phase"] == P.INCONCLUSIVE and run.entry["inconclusive"] == 1


def test_bad_query_is_an_error_and_the_state_survives_it(fake: str) -> None:
    run = Run(judge_metric(fake))
    run.step(10, 1000, 10, 1000)
    bad = run.step(10, "bad", 10, 1000)
    assert bad.phase is P.ERROR and bad.message.startswith("canary.requests: query failed: HTTP 400")
    assert STATE_KEY in bad.metadata
    again = run.step(10, 1000, 10, 1000)
    assert again.metadata["intervals"] == "2" and again.metadata["canaryRequests"] == "2000"
    assert run.entry["error"] == 1 and run.status["phase"] == P.RUNNING


def test_nan_is_a_missing_interval_and_faults_are_errors(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(judge_metric(fake))
    m = run.step("nan", 1000, 10, 1000)
    assert m.phase is P.INCONCLUSIVE and decode_state(m.metadata[STATE_KEY]).missing == 1
    bad = run.step(20, 10, 1, 10)  # more errors than requests
    assert bad.phase is P.ERROR and "exceed its requests" in bad.message
    monkeypatch.delenv("PYROLLOUTS_PROMETHEUS_ADDRESS", raising=False)
    nowhere = Run(judge_metric(""))
    assert nowhere.step(1, 1, 1, 1).message.startswith("no Prometheus address")
    closed = Run(judge_metric("http://127.0.0.1:9"))
    assert "cannot reach Prometheus" in closed.step(1, 1, 1, 1).message


def test_validate_metrics_accepts_judge_and_names_bad_fields(fake: str) -> None:
    assert validate_metrics([judge_metric(fake)]) == []
    bad = judge_metric(fake, test="mann-whitney", alpha=2)
    del bad["provider"]["judge"]["baseline"]
    problems = validate_metrics([bad])
    assert any('test: "mann-whitney" is not implemented' in p for p in problems)
    assert any("baseline.errors: required" in p for p in problems)
    assert any("alpha_fail must be in (0, 1)" in p for p in problems)
    assert validate_metrics([judge_metric(fake, alpha="{{args.alpha}}")]) == []


def test_get_analysisrun_shows_the_judges_verdict(fake: str) -> None:
    from rollouts.cli.info import analysisrun_detail
    from rollouts.cli.render import render_analysisrun

    run = Run(judge_metric(fake))
    steps = run.stream(0.10, 0.05)
    obj = {"metadata": {"name": "ro-abc-2", "namespace": "ns"}, "spec": run.spec, "status": run.status}
    text = render_analysisrun(analysisrun_detail(obj), NOW)
    words = " ".join(text.split())
    assert "Judge judge: fail" in text
    assert "(error-rate ratio canary/baseline)" in text and "Estimate:" in text
    assert "Evidence: e-value fail " in words and f"Requests: canary {1000 * steps}, baseline {1000 * steps}" in words
    assert "Reason: canary error rate above 1x baseline" in words
    assert STATE_KEY not in text
    plain = Run({"name": "p", "provider": {"prometheus": {"query": "q"}}})
    assert "Judge" not in render_analysisrun(analysisrun_detail({"spec": plain.spec, "status": plain.status}), NOW)
