"""Graphite metrics through its render API, as Argo asks it: ``GET {address}/render?{query}&format=json``
(``query`` holds the render parameters, ``target=...&from=-5min``; runs of whitespace become one space).

Conditions see the first target's non-null values as a list (Argo's ``[]float64``), stored as Argo prints
them (``[0.010000,0.020000]``); an answer without any target is an Error measurement ``no values found``.
``timeout`` (seconds, default 5 as Argo's client; ours bounds the whole exchange, headers and body)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import httpx

from analysis.phases import AnalysisPhase
from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time, judged
from analysis.providers.graphite_spec import graphite_problems

__all__ = ["DEFAULT_TIMEOUT", "GraphiteProvider", "render", "render_url", "values"]

DEFAULT_TIMEOUT: Final = 5.0
#: The largest answer read; a render answer of a few series is far smaller.
MAX_ANSWER_BYTES: Final = 16 * 2**20


def render_url(address: str, query: str) -> str:
    """The render URL of ``query`` (whitespace collapsed, ``format=json`` set) under ``address``'s path."""
    params = [(k, v) for k, v in parse_qsl(re.sub(r"\s+", " ", query.strip()), keep_blank_values=True)
              if k != "format"]
    return f"{address.rstrip('/')}/render?{urlencode([*params, ('format', 'json')])}"


def values(document: Any) -> list[float]:
    """The first target's non-null values; ProviderError when the answer holds no target."""
    if not isinstance(document, list):
        raise ProviderError("Graphite answered with something that is not a render result")
    if not document:
        raise ProviderError("no values found: the query matched no series")
    out = []
    for point in document[0].get("datapoints") or []:
        if isinstance(point, list) and point and point[0] is not None:
            out.append(float(point[0]))
    return out


async def render(url: str, timeout: float) -> tuple[int, bytes]:
    """The status and body of a render request (the body capped at MAX_ANSWER_BYTES)."""
    async with httpx.AsyncClient(timeout=timeout) as client, client.stream("GET", url) as answer:
        body = bytearray()
        async for chunk in answer.aiter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise ProviderError(f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB: ask for less")
        return answer.status_code, bytes(body)


class GraphiteProvider(ImmediateProvider):
    kind = "graphite"
    spec_problems = staticmethod(graphite_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("graphite") or {}
        address = str(spec.get("address") or "")
        timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        try:
            async with asyncio.timeout(timeout):
                status, body = await render(render_url(address, str(spec.get("query") or "")), timeout)
            if status >= 400:
                snippet = body[:300].decode(errors="replace").strip()
                raise ProviderError(f"error response: HTTP {status}: {snippet}")
            try:
                result = values(json.loads(body))
            except ValueError:
                raise ProviderError("Graphite answered with something that is not JSON") from None
        except ProviderError as exc:
            return self._error(str(exc), started)
        except (TimeoutError, httpx.TimeoutException):
            return self._error(f"Graphite at {address} did not answer within {timeout:g}s", started)
        except httpx.HTTPError as exc:
            return self._error(f"cannot reach Graphite at {address}: {type(exc).__name__}", started)
        measurement = judged(metric, result, started, {})
        return Measurement(measurement.phase, value="[" + ",".join(f"{v:f}" for v in result) + "]",
                           message=measurement.message, started_at=started, finished_at=measurement.finished_at,
                           result=result)

    @staticmethod
    def _error(message: str, started: str) -> Measurement:
        return Measurement(AnalysisPhase.ERROR, message=message, started_at=started,
                           finished_at=format_time(dt.datetime.now(dt.UTC)))
