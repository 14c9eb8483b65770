"""Apache SkyWalking metrics: a GraphQL ``query`` posted to ``<address>/graphql`` (the OAP server's query
API), as Argo Rollouts asks it: the variable ``$duration`` is ``{start, end, step: MINUTE}`` covering the
last ``interval`` (times ``YYYY-MM-DD HHMM`` in UTC), and the answer's ``data`` is the result the
conditions see (``result.service_apdex.values.values``); its JSON is the measurement's value.

A GraphQL error is an Error measurement with the server's message (Argo: ``graphql: <message>``); no
data is an Error (``no results returned from SkyWalking query``). SkyWalking's query API has no
credentials in Argo, nor here. The whole request is held to 30 s (Argo's query timeout).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time, judged
from analysis.providers.hosted import Answer, error_measurement, exchange, json_answer
from analysis.providers.hosted_spec import skywalking_problems
from analysis.spec import duration_seconds

__all__ = ["QUERY_TIMEOUT", "SkyWalkingProvider", "graphql_data", "query_duration", "run_query", "window_duration"]

QUERY_TIMEOUT: Final = 30.0
_SERVICE: Final = "SkyWalking"
#: SkyWalking's ``Step`` values the OAP server keeps metrics at, coarsest first, each with its time format.
_STEPS: Final = (("DAY", 86400, "%Y-%m-%d"), ("HOUR", 3600, "%Y-%m-%d %H"), ("MINUTE", 60, "%Y-%m-%d %H%M"))


class SkyWalkingProvider(ImmediateProvider):
    kind = "skywalking"
    spec_problems = staticmethod(skywalking_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("skywalking") or {}
        try:
            window = duration_seconds(spec.get("interval"), "interval") or 0.0
            data = await run_query(str(spec.get("address") or ""), str(spec.get("query") or ""),
                                   query_duration(context.now, window), QUERY_TIMEOUT)
        except ProviderError as exc:
            return error_measurement(started, str(exc))
        measurement = judged(metric, data, started, {})
        return replace(measurement, value=json.dumps(data, sort_keys=True, separators=(",", ":")))


async def run_query(address: str, query: str, duration: Mapping[str, str], timeout: float) -> Any:
    """The ``data`` of the GraphQL ``query`` posted to ``<address>/graphql`` with ``$duration``."""
    url = address.rstrip("/") + "/graphql"
    body = {"query": query, "variables": {"duration": dict(duration)}}
    headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json; charset=utf-8"}
    return graphql_data(await exchange(_SERVICE, "POST", url, headers, timeout, body=body))


def query_duration(now: dt.datetime, seconds: float) -> dict[str, str]:
    """SkyWalking's ``Duration`` input: minutes, UTC, from ``now - seconds`` to ``now``."""
    return window_duration(now - dt.timedelta(seconds=seconds), now, 60)


def window_duration(start: dt.datetime, end: dt.datetime, step: float) -> dict[str, str]:
    """SkyWalking's ``Duration`` from ``start`` to ``end`` (UTC), at the coarsest step the ``step`` seconds cover
    (MINUTE when it is under a minute)."""
    name, _, fmt = next((kept for kept in _STEPS if step >= kept[1]), _STEPS[-1])
    return {"start": start.astimezone(dt.UTC).strftime(fmt), "end": end.astimezone(dt.UTC).strftime(fmt),
            "step": name}


def graphql_data(answer: Answer) -> Any:
    """The answer's ``data``; its first GraphQL error, or the HTTP status when it is not GraphQL, raised."""
    try:
        document = json_answer(_SERVICE, answer)
    except ProviderError:
        if answer.status != 200:
            raise ProviderError(f"graphql: server returned a non-200 status code: {answer.status}") from None
        raise
    if not isinstance(document, Mapping):
        raise ProviderError("SkyWalking answered with something that is not a GraphQL result")
    errors = document.get("errors") or []
    if errors:
        first = errors[0]
        raise ProviderError(f"graphql: {first.get('message') if isinstance(first, Mapping) else first}")
    if answer.status != 200:
        raise ProviderError(f"graphql: server returned a non-200 status code: {answer.status}")
    if document.get("data") is None:
        raise ProviderError("no results returned from SkyWalking query")
    return document["data"]
