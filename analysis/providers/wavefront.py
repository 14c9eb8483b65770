"""Wavefront (VMware Aria Operations for Applications) metrics: a ``query`` through the chart API, as
Argo Rollouts asks it: ``GET https://<address>/api/v2/chart/api`` with the query, the window from the
measurement's start to itself (``s`` = ``e``, epoch milliseconds), at most one point (``p=1``), second
granularity, and series whose points lie outside the window (``i=true``).

The token is in the Secret ``wavefront-api-tokens`` in the controller's namespace, under the key that
equals ``address``. A pyrollouts addition: ``address`` may carry a scheme and a port
(``http://wavefront.internal:8080``); Secret keys cannot hold ``:`` or ``/``, so the token is then looked up
by the address's host name.

Each series gives the value of its point nearest the measurement's start: one series is a number,
several a list; ``metadata.timestamps`` (the points' epoch seconds) and ``metadata.drift`` (their
distance from the start), ``metadata.warnings`` when Wavefront sends any. No series is an Error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlsplit

from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time, judged
from analysis.providers.hosted import Answer, controller_namespace, error_measurement, exchange, json_answer
from analysis.providers.hosted_spec import wavefront_problems

__all__ = ["TOKENS_SECRET", "WavefrontProvider", "answer_document", "api_token", "base_url", "nearest_points"]

TOKENS_SECRET: Final = "wavefront-api-tokens"
QUERY_PATH: Final = "/api/v2/chart/api"
TIMEOUT: Final = 30.0
_SERVICE: Final = "Wavefront"


class WavefrontProvider(ImmediateProvider):
    kind = "wavefront"
    spec_problems = staticmethod(wavefront_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("wavefront") or {}
        address = str(spec.get("address") or "")
        at = int(context.now.timestamp())
        params = {"q": str(spec.get("query") or ""), "s": str(at * 1000), "e": str(at * 1000), "g": "s", "p": "1",
                  "i": "true"}
        metadata: dict[str, str] = {}
        try:
            token = await api_token(address, context)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            answer = await exchange(_SERVICE, "GET", base_url(address) + QUERY_PATH, headers, TIMEOUT, params=params)
            document = answer_document(answer)
            if isinstance(document, Mapping) and document.get("warnings"):
                metadata["warnings"] = str(document["warnings"])
            series = document.get("timeseries") if isinstance(document, Mapping) else None
            if not series:
                raise ProviderError("No TimeSeries found in response from Wavefront")
            points = nearest_points(series, at)
        except ProviderError as exc:
            return error_measurement(started, str(exc), metadata)
        values = [value for value, _, _ in points]
        if len(points) == 1:
            result: float | list[float] = values[0]
            metadata["timestamps"], metadata["drift"] = str(points[0][1]), str(points[0][2])
            text = f"{values[0]:.2f}"
        else:
            result = values
            metadata["timestamps"] = "[" + ",".join(str(p[1]) for p in points) + "]"
            metadata["drift"] = "[" + ",".join(str(p[2]) for p in points) + "]"
            text = "[" + ",".join(f"{v:.2f}" for v in values) + "]"
        return replace(judged(metric, result, started, metadata), value=text)


def base_url(address: str) -> str:
    """``https://<address>``, or the address itself when it names its scheme."""
    return address.rstrip("/") if "://" in address else f"https://{address.rstrip('/')}"


async def api_token(address: str, context: Context) -> str:
    """The API token of ``address`` from the tokens Secret in the controller's namespace (by address, then host)."""
    namespace = controller_namespace()
    try:
        tokens = await context.secret_data(namespace, TOKENS_SECRET)
    except ProviderError as exc:
        raise ProviderError(f"{exc}: create it with one key per Wavefront address, its API token the value") from None
    host = urlsplit(base_url(address)).hostname or address
    token = tokens.get(address) or tokens.get(host)
    if not token:
        raise ProviderError(
            f'API token not found: secret "{TOKENS_SECRET}" in namespace "{namespace}" has no key "{host}"'
        )
    return token


def answer_document(answer: Answer) -> Any:
    """The chart API's JSON answer; a refusal (401/403, 429, any non-2xx) is a ProviderError in Argo's words."""
    if answer.status in (401, 403):
        raise ProviderError(f"received authentication error response code: {answer.status} {answer.snippet()}")
    if answer.status == 429:
        raise ProviderError(f"received non 2xx response code: 429 {answer.snippet()} (rate limited)")
    if not 200 <= answer.status < 300:
        raise ProviderError(f"received non 2xx response code: {answer.status} {answer.snippet()}")
    return json_answer(_SERVICE, answer)


def nearest_points(series: Sequence[Any], at: int) -> list[tuple[float, int, int]]:
    """Per series: the value of the point nearest ``at`` (epoch seconds), its time and ``time - at``
    (Argo: 0, 0 and a drift of ``-at`` for a series without points)."""
    out: list[tuple[float, int, int]] = []
    for one in series:
        value, when, delta = 0.0, 0.0, math.inf
        for point in (one.get("data") if isinstance(one, Mapping) else None) or []:
            if not isinstance(point, Sequence) or len(point) < 2:
                raise ProviderError("Wavefront answered with a data point that is not [time, value]")
            if abs(float(point[0]) - at) < abs(delta):
                when, value, delta = float(point[0]), float(point[1]), float(point[0]) - at
        out.append((value, int(when), int(delta) if math.isfinite(delta) else -at))
    return out
