"""CloudWatch metrics: ``GetMetricData`` over CloudWatch's JSON protocol, every request signed with SigV4
(service ``monitoring``) by :mod:`analysis.providers.aws` with the controller's AWS default credential chain.

Argo's fields: ``interval`` (the window ending now, default 5m) and ``metricDataQueries`` (``id``,
``expression`` or ``metricStat{metric{namespace,metricName,dimensions},period,stat,unit}``, ``label``,
``period``, ``returnData``); ours: ``region``, ``profile``, ``roleArn`` (else the default chain's) and
``timeout`` (seconds, default 30, bounding the whole measurement: credentials, every page, every body).
Conditions see Argo's result: a list of ``MetricDataResults`` (``Id``, ``Label``, ``StatusCode``,
``Timestamps``, ``Values``), e.g. ``all(result[0].Values, {# <= 0.01})``; pages (``NextToken``) are joined.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from analysis.phases import AnalysisPhase
from analysis.providers.aws import AwsIdentity, signed_headers
from analysis.providers.base import (
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    format_time,
    format_value,
    judged,
)
from analysis.providers.cloudwatch_spec import cloudwatch_problems
from analysis.spec import SpecError, duration_seconds

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_TIMEOUT", "CloudWatchProvider", "metric_data_queries", "value_text"]

DEFAULT_INTERVAL: Final = 300.0
DEFAULT_TIMEOUT: Final = 30.0
SERVICE: Final = "monitoring"
TARGET: Final = "GraniteServiceVersion20100801.GetMetricData"
#: The largest answer page read; GetMetricData pages hold at most 100,800 data points (a few MiB).
MAX_PAGE_BYTES: Final = 16 * 2**20
#: At most this many pages per measurement (a runaway NextToken would hold it until the timeout).
MAX_PAGES: Final = 20

_ENDPOINTS: dict[tuple[str, ...], str] = {}
_ENDPOINTS_LOCK = threading.Lock()


def _endpoint(identity: AwsIdentity) -> tuple[str, str]:
    """The region and CloudWatch endpoint botocore resolves (``AWS_ENDPOINT_URL_CLOUDWATCH``, partitions)."""
    session = identity.session()
    region = identity.resolved_region(session)
    with _ENDPOINTS_LOCK:
        # The environment's endpoint overrides are part of the key: botocore reads them when a client is made.
        key = (identity.profile, region, *(os.environ.get(v, "") for v in ("AWS_ENDPOINT_URL_CLOUDWATCH",
                                                                           "AWS_ENDPOINT_URL")))
        if key not in _ENDPOINTS:
            _ENDPOINTS[key] = str(session.create_client("cloudwatch", region_name=region).meta.endpoint_url)
        return region, _ENDPOINTS[key]


def _stat(stat: Mapping[str, Any]) -> dict[str, Any]:
    metric = stat.get("metric") or {}
    out: dict[str, Any] = {
        "Metric": {
            "MetricName": str(metric.get("metricName")),
            **({"Namespace": str(metric["namespace"])} if metric.get("namespace") else {}),
            "Dimensions": [{"Name": str(d["name"]), "Value": str(d["value"])} for d in metric.get("dimensions") or []],
        },
        "Period": int(stat["period"]),
        "Stat": str(stat.get("stat")),
    }
    if stat.get("unit"):
        out["Unit"] = str(stat["unit"])
    return out


def metric_data_queries(queries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Argo's ``metricDataQueries`` as GetMetricData's ``MetricDataQueries``."""
    out = []
    for query in queries:
        entry: dict[str, Any] = {"Id": str(query.get("id"))}
        if query.get("expression"):
            entry["Expression"] = str(query["expression"])
        if query.get("label"):
            entry["Label"] = str(query["label"])
        if query.get("metricStat") is not None:
            entry["MetricStat"] = _stat(query["metricStat"])
        if query.get("period") is not None:
            entry["Period"] = int(query["period"])
        if query.get("returnData") is not None:
            entry["ReturnData"] = bool(query["returnData"])
        out.append(entry)
    return out


def value_text(results: Sequence[Mapping[str, Any]]) -> str:
    """The measurement's value as Argo prints it: each result's values, ``[[0.01 0.02] [3]]``."""
    return "[" + " ".join("[" + " ".join(format_value(float(v)) for v in r.get("Values") or []) + "]"
                          for r in results) + "]"


def _refusal(status: int, body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    if not isinstance(document, Mapping):
        return f"HTTP {status}"
    code = str(document.get("__type") or document.get("code") or "").rpartition("#")[2]
    message = document.get("message") or document.get("Message") or ""
    return f"HTTP {status}: {code}: {message}" if code else f"HTTP {status}: {message}"


async def _page(client: httpx.AsyncClient, identity: AwsIdentity, url: str, body: bytes) -> dict[str, Any]:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET}
    headers = await asyncio.to_thread(signed_headers, identity, SERVICE, "POST", url, headers, body)
    async with client.stream("POST", url, content=body, headers=headers) as answer:
        chunks = bytearray()
        async for chunk in answer.aiter_bytes():
            chunks += chunk
            if len(chunks) > MAX_PAGE_BYTES:
                raise ProviderError(f"a GetMetricData page is larger than {MAX_PAGE_BYTES // 2**20} MiB: ask for less")
        if answer.status_code != 200:
            raise ProviderError(f"CloudWatch GetMetricData failed: {_refusal(answer.status_code, bytes(chunks))}")
    try:
        document = json.loads(chunks)
    except ValueError:
        raise ProviderError("CloudWatch answered with something that is not JSON") from None
    if not isinstance(document, dict):
        raise ProviderError("CloudWatch answered with something that is not a GetMetricData result")
    return document


async def get_metric_data(identity: AwsIdentity, request: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every page of one GetMetricData call: the results (joined by ``Id``) and the messages."""
    _, endpoint = await asyncio.to_thread(_endpoint, identity)
    url = endpoint if urlsplit(endpoint).path else endpoint + "/"  # JSON-protocol calls go to the endpoint itself
    results: dict[str, dict[str, Any]] = {}
    messages: list[str] = []
    async with httpx.AsyncClient() as client:
        for _ in range(MAX_PAGES):
            try:
                page = await _page(client, identity, url, json.dumps(request).encode())
            except httpx.HTTPError as exc:
                raise ProviderError(f"cannot reach CloudWatch at {endpoint}: {type(exc).__name__}") from None
            for result in page.get("MetricDataResults") or []:
                entry = results.setdefault(str(result.get("Id")), {
                    "Id": result.get("Id"), "Label": result.get("Label"), "StatusCode": result.get("StatusCode"),
                    "Timestamps": [], "Values": []})
                entry["StatusCode"] = result.get("StatusCode")
                entry["Timestamps"] += [_timestamp(t) for t in result.get("Timestamps") or []]
                entry["Values"] += [float(v) for v in result.get("Values") or []]
            messages += [f"{m.get('Code')}: {m.get('Value')}" for m in page.get("Messages") or []]
            if not page.get("NextToken"):
                return list(results.values()), messages
            request = {**request, "NextToken": page["NextToken"]}
    raise ProviderError(f"GetMetricData answered more than {MAX_PAGES} pages: ask for a shorter interval")


def _timestamp(value: Any) -> str:
    if isinstance(value, int | float):
        return format_time(dt.datetime.fromtimestamp(value, dt.UTC))
    return str(value)


class CloudWatchProvider(ImmediateProvider):
    kind = "cloudWatch"
    spec_problems = staticmethod(cloudwatch_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("cloudWatch") or {}
        timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        identity = AwsIdentity.from_spec(spec, "provider.cloudWatch")
        try:
            interval = duration_seconds(spec.get("interval"), "provider.cloudWatch.interval") or DEFAULT_INTERVAL
            now = dt.datetime.now(dt.UTC)
            request = {"StartTime": (now - dt.timedelta(seconds=interval)).timestamp(), "EndTime": now.timestamp(),
                       "MetricDataQueries": metric_data_queries(list(spec.get("metricDataQueries") or []))}
            async with asyncio.timeout(timeout):
                results, messages = await get_metric_data(identity, request)
        except (ProviderError, SpecError) as exc:
            return self._error(str(exc), started)
        except TimeoutError:
            return self._error(f"CloudWatch GetMetricData timed out after {timeout:g}s", started)
        except (ValueError, TypeError) as exc:
            return self._error(f"cannot read the GetMetricData answer: {exc}", started)
        metadata = {"messages": "; ".join(messages)} if messages else {}
        return replace(judged(metric, results, started, metadata), value=value_text(results))

    @staticmethod
    def _error(message: str, started: str) -> Measurement:
        return Measurement(AnalysisPhase.ERROR, message=message, started_at=started,
                           finished_at=format_time(dt.datetime.now(dt.UTC)))
