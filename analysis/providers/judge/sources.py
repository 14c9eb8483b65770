"""Where the ``mann-whitney`` judge reads its series when ``provider.judge.source`` names a provider other
than Prometheus: every value of ``canary.query`` and ``baseline.query`` over the judge's window
(``[start, end]``), all series of an answer pooled (as :func:`~analysis.providers.judge.answers.range_values`
pools Prometheus's), null points left out. The fields and checks are in
:mod:`analysis.providers.judge.source_spec`; the credentials and HTTP exchange are each provider's own.

* ``datadog``: ``GET /api/v1/query`` with ``from`` / ``to`` = the window; every point of every series.
* ``cloudWatch``: one ``GetMetricData`` per query, its ``Expression`` the query, ``Period`` the judge's step.
* ``graphite``: ``GET /render?target=<query>&from=<start>&until=<end>``; every datapoint of every target.
* ``influxdb``: the Flux query after ``option v = {timeRangeStart, timeRangeStop, windowPeriod}`` (the
  variables InfluxDB's own UI defines); every record's numeric ``_value``.
* ``newRelic``: the NRQL query with `` SINCE <start> UNTIL <end> TIMESERIES <step> seconds`` appended (epoch
  milliseconds, NRQL's Unix time); the one aggregate of each bucket.
* ``skywalking``: the GraphQL query with ``$duration`` = the window at the coarsest of DAY, HOUR, MINUTE the step
  covers; every ``value`` in the answer's data, points marked ``isEmptyValue`` left out.
* ``wavefront``: the chart API with ``s`` / ``e`` = the window in epoch ms, the granularity the coarsest of
  d, h, m, s the step covers; every point of every series.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from analysis.providers import cloudwatch, datadog, graphite, influxdb, newrelic, skywalking, wavefront
from analysis.providers.aws import AwsIdentity
from analysis.providers.base import Context, ProviderError, format_time
from analysis.providers.hosted import exchange
from analysis.providers.influxdb_spec import DEFAULT_PROFILE
from analysis.providers.judge.source_spec import timeout_seconds
from analysis.spec import SpecError, duration_seconds

__all__ = ["SourceReader"]

#: One query's values over [start, end] with a step in seconds.
_Fetch = Callable[[Mapping[str, Any], Context, str, dt.datetime, dt.datetime, float], Awaitable[list[float]]]


def _numbers(raw: Sequence[Any], what: str) -> list[float]:
    values: list[float] = []
    for value in raw:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ProviderError(f"{what}: cannot read the value {value!r} as a number")
        try:
            values.append(float(value))
        except ValueError:
            raise ProviderError(f"{what}: cannot read the value {value!r} as a number") from None
    return values


def _timeout(settings: Mapping[str, Any], key: str, default: float, kind: str) -> float:
    try:
        return timeout_seconds(settings, key, default, f"source.{kind}")
    except SpecError as exc:
        raise ProviderError(str(exc)) from None


async def _datadog(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                   end: dt.datetime, step: float) -> list[float]:
    credentials = await datadog.find_credentials(settings, context)
    timeout = _timeout(settings, "requestTimeout", datadog.DEFAULT_REQUEST_TIMEOUT, "datadog")
    headers = {"DD-API-KEY": credentials.api_key, "DD-APPLICATION-KEY": credentials.app_key}
    params = {"query": query, "from": str(int(start.timestamp())), "to": str(int(end.timestamp()))}
    answer = await exchange("Datadog", "GET", credentials.address.rstrip("/") + "/api/v1/query", headers, timeout,
                            params=params)
    document = datadog.answer_document(answer)
    series = document.get("series") if isinstance(document, Mapping) else None
    points = [point for s in series or [] if isinstance(s, Mapping) for point in s.get("pointlist") or []]
    if any(not isinstance(point, Sequence) or len(point) != 2 for point in points):
        raise ProviderError("Datapoint does not have 2 values")
    return _numbers([point[1] for point in points], "Datadog")


async def _cloudwatch(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                      end: dt.datetime, step: float) -> list[float]:
    identity = AwsIdentity.from_spec(settings, "provider.judge.source.cloudWatch")
    timeout = _timeout(settings, "timeout", cloudwatch.DEFAULT_TIMEOUT, "cloudWatch")
    request = {"StartTime": start.timestamp(), "EndTime": end.timestamp(),
               "MetricDataQueries": [{"Id": "judge", "Expression": query, "Period": max(1, int(step)),
                                      "ReturnData": True}]}
    try:
        async with asyncio.timeout(timeout):
            results, _ = await cloudwatch.get_metric_data(identity, request)
    except TimeoutError:
        raise ProviderError(f"CloudWatch GetMetricData timed out after {timeout:g}s") from None
    return _numbers([v for result in results for v in result.get("Values") or []], "CloudWatch")


async def _graphite(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                    end: dt.datetime, step: float) -> list[float]:
    address = str(settings.get("address") or "")
    timeout = _timeout(settings, "timeout", graphite.DEFAULT_TIMEOUT, "graphite")
    params = [("target", query), ("from", str(int(start.timestamp()))), ("until", str(int(end.timestamp()))),
              ("format", "json")]
    try:
        async with asyncio.timeout(timeout):
            status, body = await graphite.render(f"{address.rstrip('/')}/render?{urlencode(params)}", timeout)
    except TimeoutError:
        raise ProviderError(f"Graphite at {address} did not answer within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach Graphite at {address}: {type(exc).__name__}") from None
    if status >= 400:
        raise ProviderError(f"error response: HTTP {status}: {body[:300].decode(errors='replace').strip()}")
    try:
        document = json.loads(body)
    except ValueError:
        raise ProviderError("Graphite answered with something that is not JSON") from None
    if not isinstance(document, list):
        raise ProviderError("Graphite answered with something that is not a render result")
    points = [p for target in document if isinstance(target, Mapping) for p in target.get("datapoints") or []]
    return _numbers([p[0] for p in points if isinstance(p, list) and p], "Graphite")


async def _influxdb(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                    end: dt.datetime, step: float) -> list[float]:
    profile = str(settings.get("profile") or DEFAULT_PROFILE)
    timeout = _timeout(settings, "timeout", influxdb.DEFAULT_TIMEOUT, "influxdb")
    window = (f"option v = {{timeRangeStart: {format_time(start)}, timeRangeStop: {format_time(end)}, "
              f"windowPeriod: {max(1, int(step))}s}}\n")
    try:
        async with asyncio.timeout(timeout):
            address, org, token = await influxdb.read_profile(context, profile)
            answer = await influxdb.flux_query(address, org, token, window + query)
    except TimeoutError:
        raise ProviderError(f"the flux query timed out after {timeout:g}s") from None
    return _numbers(influxdb.flux_values(answer), "InfluxDB")


#: The keys of a TIMESERIES bucket that are its bounds, not its aggregate.
_BUCKET_BOUNDS: Final = ("beginTimeSeconds", "endTimeSeconds")


async def _newrelic(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                    end: dt.datetime, step: float) -> list[float]:
    profile = str(settings.get("profile") or newrelic.DEFAULT_PROFILE)
    nrql_timeout = math.ceil(_timeout(settings, "timeout", newrelic.DEFAULT_NRQL_TIMEOUT, "newRelic"))
    window = (f" SINCE {int(start.timestamp()) * 1000} UNTIL {int(end.timestamp()) * 1000} "
              f"TIMESERIES {max(1, int(step))} seconds")
    rows = newrelic.nrql_result(await newrelic.run_nrql(profile, context, query + window, nrql_timeout))
    values: list[Any] = []
    for row in rows if isinstance(rows, list) else [rows]:
        aggregates = [key for key in row if key not in _BUCKET_BOUNDS]
        if len(aggregates) != 1:
            raise ProviderError(f"each TIMESERIES bucket has {len(aggregates)} aggregates ({', '.join(aggregates)}): "
                                "select exactly one value in the query, without FACET")
        values.append(row[aggregates[0]])
    return _numbers(values, "New Relic")


async def _skywalking(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                      end: dt.datetime, step: float) -> list[float]:
    timeout = _timeout(settings, "timeout", skywalking.QUERY_TIMEOUT, "skywalking")
    data = await skywalking.run_query(str(settings.get("address") or ""), query,
                                      skywalking.window_duration(start, end, step), timeout)
    return _numbers(list(_graphql_values(data)), "SkyWalking")


def _graphql_values(node: Any) -> Iterator[Any]:
    """Every ``value`` field under ``node`` (readMetricsValues' ``values.values[].value`` and the like)."""
    if isinstance(node, Mapping):
        if "value" in node and not node.get("isEmptyValue"):
            yield node["value"]
        for key, child in node.items():
            if key != "value":
                yield from _graphql_values(child)
    elif isinstance(node, list):
        for child in node:
            yield from _graphql_values(child)


def _granularity(step: float) -> str:
    """The coarsest chart granularity no longer than the step (Wavefront buckets by d, h, m or s)."""
    return next((unit for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)) if step >= seconds), "s")


async def _wavefront(settings: Mapping[str, Any], context: Context, query: str, start: dt.datetime,
                     end: dt.datetime, step: float) -> list[float]:
    address = str(settings.get("address") or "")
    timeout = _timeout(settings, "timeout", wavefront.TIMEOUT, "wavefront")
    token = await wavefront.api_token(address, context)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    params = {"q": query, "s": str(int(start.timestamp()) * 1000), "e": str(int(end.timestamp()) * 1000),
              "g": _granularity(step)}
    answer = await exchange("Wavefront", "GET", wavefront.base_url(address) + wavefront.QUERY_PATH, headers, timeout,
                            params=params)
    document = wavefront.answer_document(answer)
    series = document.get("timeseries") if isinstance(document, Mapping) else None
    points = [point for s in series or [] if isinstance(s, Mapping) for point in s.get("data") or []]
    if any(not isinstance(point, Sequence) or len(point) < 2 for point in points):
        raise ProviderError("Wavefront answered with a data point that is not [time, value]")
    return _numbers([point[1] for point in points], "Wavefront")


_FETCHERS: Final[Mapping[str, _Fetch]] = {
    "datadog": _datadog, "cloudWatch": _cloudwatch, "graphite": _graphite, "influxdb": _influxdb,
    "wavefront": _wavefront, "newRelic": _newrelic, "skywalking": _skywalking,
}


class SourceReader:
    """The judge's series from one ``source`` (its kind and settings) for one measurement."""

    def __init__(self, kind: str, settings: Mapping[str, Any], context: Context):
        fetch = _FETCHERS.get(kind)
        if fetch is None:
            raise ProviderError(f"source.{kind}: not a series source (supported: {', '.join(_FETCHERS)})")
        self.kind, self.settings, self.context, self._fetch = kind, settings, context, fetch

    async def values(
        self, named: list[tuple[str, str]], start: dt.datetime, end: dt.datetime, step: str
    ) -> dict[str, list[float]]:
        """Each named query's values over [start, end], the queries run concurrently; a failure names its query."""
        seconds = duration_seconds(step, "rangeQuery.step") or 60.0
        answers = await asyncio.gather(
            *(self._fetch(self.settings, self.context, query, start, end, seconds) for _, query in named),
            return_exceptions=True,
        )
        out: dict[str, list[float]] = {}
        for (name, _), answer in zip(named, answers, strict=True):
            if isinstance(answer, ProviderError):
                raise ProviderError(f"{name} (source.{self.kind}): {answer}")
            if isinstance(answer, BaseException):
                raise answer
            out[name] = answer
        return out
