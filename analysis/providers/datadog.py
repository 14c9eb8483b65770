"""Datadog metrics, as Argo Rollouts queries them.

``apiVersion: v1`` (the default) asks ``GET /api/v1/query`` for ``query`` over the last ``interval``
(default 5m) and takes the last point of the first series. ``apiVersion: v2`` posts a
``scalar_request`` to ``/api/v2/query/scalar``: ``query`` or named ``queries`` (with a ``formula`` over
them when there are several), each reduced by ``aggregator`` (default ``last``); a grouped query
(``by {tag}``) gives a list, one value per group, and ``metadata.groups`` names them. An empty answer is
``nil`` to the conditions (``default(result, 0)``), its value ``[]``.

Credentials (``api-key``, ``app-key``, optional ``address``, default ``https://api.datadoghq.com``):
``secretRef.name`` (in the run's namespace with ``secretRef.namespaced: true``, else the controller's);
without a ``secretRef``, ``DD_API_KEY`` + ``DD_APP_KEY`` + ``DD_ADDRESS`` in the controller's
environment, else the ``datadog`` Secret in the controller's namespace. ``requestTimeout`` (default 10s)
bounds the whole request.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time, judged
from analysis.providers.hosted import Answer, controller_namespace, error_measurement, exchange, json_answer
from analysis.providers.hosted_spec import datadog_problems
from analysis.spec import duration_seconds

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_SECRET",
    "MAX_GROUPS_IN_METADATA",
    "Credentials",
    "DatadogProvider",
    "answer_document",
    "find_credentials",
    "scalar_request",
    "scalar_result",
    "series_result",
]

DEFAULT_ADDRESS: Final = "https://api.datadoghq.com"
DEFAULT_SECRET: Final = "datadog"
DEFAULT_INTERVAL: Final = 300.0
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: Groups listed in ``metadata.groups`` (the highest values): a tag with many values would bloat the status.
MAX_GROUPS_IN_METADATA: Final = 100
_SERVICE: Final = "Datadog"
_KEYS: Final = ("api-key", "app-key", "address")


@dataclass(frozen=True)
class Credentials:
    address: str
    api_key: str
    app_key: str


class DatadogProvider(ImmediateProvider):
    kind = "datadog"
    spec_problems = staticmethod(datadog_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("datadog") or {}
        version = str(spec.get("apiVersion") or "v1")
        try:
            credentials = await find_credentials(spec, context)
            interval = int(duration_seconds(spec.get("interval"), "interval") or DEFAULT_INTERVAL)
            timeout = duration_seconds(spec.get("requestTimeout"), "requestTimeout") or DEFAULT_REQUEST_TIMEOUT
            headers = {
                "Content-Type": "application/json",
                "DD-API-KEY": credentials.api_key,
                "DD-APPLICATION-KEY": credentials.app_key,
            }
            now = int(context.now.timestamp())
            base = credentials.address.rstrip("/")
            result: float | list[float] | None
            if version == "v1":
                params = {"query": str(spec.get("query") or ""), "from": str(now - interval), "to": str(now)}
                answer = await exchange(_SERVICE, "GET", base + "/api/v1/query", headers, timeout, params=params)
                result, metadata = series_result(answer_document(answer))
            else:
                body = scalar_request(spec, now, interval)
                answer = await exchange(_SERVICE, "POST", base + "/api/v2/query/scalar", headers, timeout, body=body)
                result, metadata = scalar_result(answer_document(answer))
        except ProviderError as exc:
            return error_measurement(started, str(exc))
        measurement = judged(metric, result, started, metadata)
        return measurement if result is not None else _with_value(measurement, "[]")


async def find_credentials(spec: Mapping[str, Any], context: Context) -> Credentials:
    """Argo's order: the ``secretRef`` Secret; else the ``DD_*`` environment; else the ``datadog`` Secret."""
    ref = spec.get("secretRef") or {}
    name = str(ref.get("name") or "")
    namespace = context.namespace if ref.get("namespaced") else controller_namespace()
    if not name:
        found = {key: os.environ.get("DD_" + key.upper().replace("-", "_"), "") for key in _KEYS}
        if all(found.values()):
            context.secrets.update((found["api-key"], found["app-key"]))
            return Credentials(found["address"], found["api-key"], found["app-key"])
        name = DEFAULT_SECRET
    try:
        data = await context.secret_data(namespace, name, public=("address",))
    except ProviderError as exc:
        raise ProviderError(
            f"failed to find the credentials for datadog metrics provider: {exc}: create it with the keys "
            "api-key and app-key (and address), or set provider.datadog.secretRef"
        ) from None
    if not data.get("api-key") or not data.get("app-key"):
        raise ProviderError(
            f'API or App token not found: secret "{name}" in namespace "{namespace}" needs the keys api-key and app-key'
        )
    return Credentials(data.get("address") or DEFAULT_ADDRESS, data["api-key"], data["app-key"])


def scalar_request(spec: Mapping[str, Any], now: int, interval: int) -> dict[str, Any]:
    """The v2 ``scalar_request`` body: times in milliseconds, one formula at most."""
    queries: Mapping[str, Any] = spec.get("queries") or {"query": spec.get("query") or ""}
    aggregator = str(spec.get("aggregator") or "last")
    return {
        "data": {
            "type": "scalar_request",
            "attributes": {
                "from": (now - interval) * 1000,
                "to": now * 1000,
                "queries": [
                    {"aggregator": aggregator, "data_source": "metrics", "name": str(name), "query": str(query)}
                    for name, query in queries.items()
                ],
                "formulas": [{"formula": str(spec["formula"])}] if spec.get("formula") else [],
            },
        }
    }


def answer_document(answer: Answer) -> Any:
    """The JSON of a 200 answer; ProviderError with Argo's wording for a refusal or a rate limit."""
    if answer.status in (401, 403):
        raise ProviderError(f"received authentication error response code: {answer.status} {answer.snippet()}")
    if answer.status == 429:
        reset = answer.headers.get("x-ratelimit-reset")
        after = f" (rate limited: the limit resets in {reset}s)" if reset else " (rate limited)"
        raise ProviderError(f"received non 2xx response code: 429 {answer.snippet()}{after}")
    if answer.status != 200:
        raise ProviderError(f"received non 2xx response code: {answer.status} {answer.snippet()}")
    return json_answer(_SERVICE, answer)


def series_result(document: Any) -> tuple[float | None, dict[str, str]]:
    """v1: the last point of the first series (None when there is none)."""
    series = document.get("series") if isinstance(document, Mapping) else None
    if not series or not isinstance(series, Sequence) or not (series[0] or {}).get("pointlist"):
        return None, {}
    point = series[0]["pointlist"][-1]
    if not isinstance(point, Sequence) or len(point) != 2:
        raise ProviderError("Datapoint does not have 2 values")
    if point[1] is None:
        return None, {}
    return float(point[1]), {}


def scalar_result(document: Any) -> tuple[float | list[float] | None, dict[str, str]]:
    """v2: the first number column; one value, or (grouped by a tag) a list and ``metadata.groups``."""
    data = document.get("data") if isinstance(document, Mapping) else None
    if not isinstance(data, Mapping):
        raise ProviderError("Datadog answered with something that is not a scalar query result")
    if data.get("errors"):
        raise ProviderError(f"There were errors in your query: {data['errors']}")
    columns = (data.get("attributes") or {}).get("columns") or []
    numbers = next((c for c in columns if c.get("type") == "number"), None)
    group_columns = [c for c in columns if c.get("type") == "group"]
    pairs = _named_values(numbers, group_columns) if numbers is not None else []
    if not pairs:
        return None, {}
    if not group_columns:
        return pairs[0][1], {}
    ranked = sorted(pairs, key=lambda p: -p[1] if not math.isnan(p[1]) else math.inf)
    metadata = {"groups": json.dumps([{"name": n, "value": v} for n, v in ranked[:MAX_GROUPS_IN_METADATA]])}
    if len(ranked) > MAX_GROUPS_IN_METADATA:
        metadata["groups_truncated"] = "true"
    return [value for _, value in pairs], metadata


def _named_values(numbers: Mapping[str, Any], groups: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """The number column's values (nulls skipped), each with its group's name."""
    pairs: list[tuple[str, float]] = []
    for index, raw in enumerate(numbers.get("values") or []):
        if raw is None:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ProviderError(f'could not parse numeric value {raw!r} in column "{numbers.get("name")}"') from None
        pairs.append((_group_name(groups, index), value))
    return pairs


def _group_name(columns: Sequence[Mapping[str, Any]], index: int) -> str:
    """A group's tag values, one per ``by {tag}`` dimension, joined with commas."""
    names: list[str] = []
    for column in columns:
        values = column.get("values") or []
        tag = values[index] if index < len(values) else []
        names.append(",".join(str(t) for t in tag) if isinstance(tag, list) else str(tag))
    return ",".join(names)


def _with_value(measurement: Measurement, value: str) -> Measurement:
    return replace(measurement, value=value)
