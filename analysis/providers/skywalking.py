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

__all__ = ["QUERY_TIMEOUT", "SkyWalkingProvider", "graphql_data", "query_duration"]

QUERY_TIMEOUT: Final = 30.0
_SERVICE: Final = "SkyWalking"
_MINUTE_FORMAT: Final = "%Y-%m-%d %H%M"


class SkyWalkingProvider(ImmediateProvider):
    kind = "skywalking"
    spec_problems = staticmethod(skywalking_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("skywalking") or {}
        url = str(spec.get("address") or "").rstrip("/") + "/graphql"
        try:
            window = duration_seconds(spec.get("interval"), "interval") or 0.0
            variables = {"duration": query_duration(context.now, window)}
            body = {"query": str(spec.get("query") or ""), "variables": variables}
            headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json; charset=utf-8"}
            answer = await exchange(_SERVICE, "POST", url, headers, QUERY_TIMEOUT, body=body)
            data = graphql_data(answer)
        except ProviderError as exc:
            return error_measurement(started, str(exc))
        measurement = judged(metric, data, started, {})
        return replace(measurement, value=json.dumps(data, sort_keys=True, separators=(",", ":")))


def query_duration(now: dt.datetime, seconds: float) -> dict[str, str]:
    """SkyWalking's ``Duration`` input: minutes, UTC, from ``now - seconds`` to ``now``."""
    end = now.astimezone(dt.UTC)
    start = end - dt.timedelta(seconds=seconds)
    return {"start": start.strftime(_MINUTE_FORMAT), "end": end.strftime(_MINUTE_FORMAT), "step": "MINUTE"}


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
