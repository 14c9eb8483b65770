"""Kayenta canary analysis through its standalone REST API, as Argo drives it:

1. ``GET {address}/canaryConfig?application=...&configurationAccountName=...``: the id of the config named
   ``canaryConfigName``;
2. ``POST {address}/canary/{configId}?application=...&metricsAccountName=...&configurationAccountName=...
   &storageAccountName=...`` with the ``scopes`` (control and experiment) and the thresholds: a
   ``canaryExecutionId``, kept in the measurement's metadata; the measurement is Running;
3. ``GET {address}/canary/{canaryExecutionId}`` every 15 s until ``complete``: the score
   (``result.judgeResult.score.score``) is Successful at ``threshold.pass`` or more, Inconclusive at
   ``threshold.marginal`` or more, else Failed.

Each call has 15 s (Argo's client timeout) for the whole exchange. A stopped run keeps the execution
(Kayenta has no cancel; Argo does the same)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx

from analysis.phases import AnalysisPhase
from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time
from analysis.providers.kayenta_spec import kayenta_problems

__all__ = ["EXECUTION_ID_KEY", "RESUME_SECONDS", "KayentaProvider", "phase_of_score"]

EXECUTION_ID_KEY: Final = "canaryExecutionId"
RESUME_SECONDS: Final = 15.0
CALL_TIMEOUT: Final = 15.0
MAX_ANSWER_BYTES: Final = 16 * 2**20


def phase_of_score(score: int, passing: int, marginal: int) -> AnalysisPhase:
    if score >= passing:
        return AnalysisPhase.SUCCESSFUL
    if score >= marginal:
        return AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.FAILED


async def _call(method: str, url: str, body: Any = None) -> Any:
    """One call within :data:`CALL_TIMEOUT`: the JSON answer; ProviderError for anything else."""
    where = url.partition("?")[0]
    try:
        async with asyncio.timeout(CALL_TIMEOUT), httpx.AsyncClient() as client, \
                client.stream(method, url, json=body) as answer:
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    raise ProviderError(f"the answer of {where} is larger than {MAX_ANSWER_BYTES // 2**20} MiB")
            status = answer.status_code
    except (TimeoutError, httpx.TimeoutException):
        raise ProviderError(f"{method} {where}: Kayenta did not answer within {CALL_TIMEOUT:g}s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"{method} {where}: cannot reach Kayenta: {type(exc).__name__}") from None
    if status != 200:
        snippet = bytes(data[:300]).decode(errors="replace").strip()
        raise ProviderError(f"{method} {where}: Invalid Response: HTTP {status}: {snippet}")
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderError(f"{method} {where}: Kayenta answered with something that is not JSON") from None


async def _config_id(spec: Mapping[str, Any], address: str) -> str:
    query = urlencode({"application": spec.get("application"),
                       "configurationAccountName": spec.get("configurationAccountName")})
    configs = await _call("GET", f"{address}/canaryConfig?{query}")
    name = str(spec.get("canaryConfigName"))
    for config in configs if isinstance(configs, list) else []:
        if isinstance(config, Mapping) and config.get("name") == name and config.get("id"):
            return str(config["id"])
    raise ProviderError(f'canaryConfigName: no canary config "{name}" for application "{spec.get("application")}" '
                        "in Kayenta's configuration account: check the name and configurationAccountName")


def _execution_request(spec: Mapping[str, Any]) -> dict[str, Any]:
    threshold = spec.get("threshold") or {}
    return {
        "scopes": {str(s.get("name")): {"controlScope": dict(s.get("controlScope") or {}),
                                        "experimentScope": dict(s.get("experimentScope") or {})}
                   for s in spec.get("scopes") or []},
        "thresholds": {"pass": int(threshold.get("pass", 0)), "marginal": int(threshold.get("marginal", 0))},
    }


class KayentaProvider(ImmediateProvider):
    kind = "kayenta"
    spec_problems = staticmethod(kayenta_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("kayenta") or {}
        address = str(spec.get("address") or "").rstrip("/")
        try:
            config_id = await _config_id(spec, address)
            query = urlencode({key: spec.get(key) for key in ("application", "metricsAccountName",
                                                               "configurationAccountName", "storageAccountName")})
            answer = await _call("POST", f"{address}/canary/{quote(config_id, safe='')}?{query}",
                                 _execution_request(spec))
            execution = answer.get(EXECUTION_ID_KEY) if isinstance(answer, Mapping) else None
            if not execution:
                raise ProviderError("Invalid canaryExecutionId: Kayenta's answer has none")
        except ProviderError as exc:
            return _error(str(exc), started)
        return Measurement(AnalysisPhase.RUNNING, metadata={EXECUTION_ID_KEY: str(execution)}, started_at=started,
                           resume_at=_later())

    async def resume(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        spec = (metric.get("provider") or {}).get("kayenta") or {}
        address = str(spec.get("address") or "").rstrip("/")
        execution = measurement.metadata.get(EXECUTION_ID_KEY, "")
        started = measurement.started_at or format_time(context.now)
        try:
            if not execution:
                raise ProviderError("the measurement has no canaryExecutionId to look at")
            answer = await _call("GET", f"{address}/canary/{quote(execution, safe='')}")
            if not isinstance(answer, Mapping) or not isinstance(answer.get("complete"), bool):
                raise ProviderError("Missing Complete Status in Kayenta's answer")
            if not answer["complete"]:
                return Measurement(AnalysisPhase.RUNNING, metadata=measurement.metadata, started_at=started,
                                   resume_at=_later())
            score = _score(answer)
        except ProviderError as exc:
            return _error(str(exc), started, measurement.metadata)
        threshold = spec.get("threshold") or {}
        phase = phase_of_score(score, int(threshold.get("pass", 0)), int(threshold.get("marginal", 0)))
        return Measurement(phase, value=str(score), metadata=measurement.metadata, started_at=started,
                           finished_at=format_time(dt.datetime.now(dt.UTC)))


def _score(answer: Mapping[str, Any]) -> int:
    try:
        return int(float(answer["result"]["judgeResult"]["score"]["score"]))
    except (KeyError, TypeError, ValueError):
        raise ProviderError("Missing Score: the completed execution has no result.judgeResult.score.score") from None


def _later() -> str:
    return format_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=RESUME_SECONDS))


def _error(message: str, started: str, metadata: Mapping[str, str] | None = None) -> Measurement:
    return Measurement(AnalysisPhase.ERROR, message=message, metadata=dict(metadata or {}), started_at=started,
                       finished_at=format_time(dt.datetime.now(dt.UTC)))
