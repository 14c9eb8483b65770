"""New Relic metrics: an NRQL ``query`` through NerdGraph (New Relic's GraphQL API), as Argo Rollouts
asks it.

The access profile is a Secret in the controller's namespace, ``newrelic`` unless ``profile`` names
another: ``personal-api-key`` and ``account-id`` (required), ``region`` (``us``, the default, or
``eu``), ``base-url-nerdgraph`` (the GraphQL URL behind a proxy; ``base-url-rest`` is read by Argo's
client but NRQL never uses it). ``timeout`` (seconds, default 5) is the NRQL timeout NerdGraph enforces;
the whole HTTP exchange gets 10 s more.

One result row is a map to the conditions (``result.successRate``, ``result['average.duration']``),
several a list of maps; no row is an Error measurement (Argo: "no results returned from NRQL query").
``metadata.ResolvedNewRelicQuery`` is the query with its arguments substituted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderError, format_time, judged
from analysis.providers.hosted import Answer, controller_namespace, error_measurement, exchange, json_answer
from analysis.providers.hosted_spec import newrelic_problems

__all__ = ["DEFAULT_NRQL_TIMEOUT", "DEFAULT_PROFILE", "NERDGRAPH_URLS", "NRQL_QUERY", "NewRelicProvider", "nrql_result",
           "run_nrql"]

DEFAULT_PROFILE: Final = "newrelic"
DEFAULT_NRQL_TIMEOUT: Final = 5
#: What the HTTP exchange may take beyond the NRQL timeout NerdGraph enforces itself.
_EXCHANGE_MARGIN: Final = 10.0
NERDGRAPH_URLS: Final = {"us": "https://api.newrelic.com/graphql", "eu": "https://api.eu.newrelic.com/graphql"}
USER_AGENT: Final = "pyrollouts (https://github.com/argoproj/argo-rollouts compatible)"
_SERVICE: Final = "New Relic"
_PUBLIC_KEYS: Final = ("account-id", "region", "base-url-rest", "base-url-nerdgraph")
NRQL_QUERY: Final = """query ($query: Nrql!, $accountId: Int!, $timeout: Seconds!) {
  actor { account(id: $accountId) { nrql(query: $query, timeout: $timeout) { results } } }
}"""


class NewRelicProvider(ImmediateProvider):
    kind = "newRelic"
    spec_problems = staticmethod(newrelic_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("newRelic") or {}
        query = str(spec.get("query") or "")
        metadata = {"ResolvedNewRelicQuery": query}
        nrql_timeout = int(spec["timeout"]) if spec.get("timeout") is not None else DEFAULT_NRQL_TIMEOUT
        try:
            result = nrql_result(await run_nrql(str(spec.get("profile") or DEFAULT_PROFILE), context, query,
                                                nrql_timeout))
        except ProviderError as exc:
            return error_measurement(started, str(exc), metadata)
        measurement = judged(metric, result, started, metadata)
        return _with_json_value(measurement, result)


async def run_nrql(profile: str, context: Context, query: str, nrql_timeout: int) -> Any:
    """NerdGraph's answer to ``query`` run with the profile Secret ``profile``; refusals are ProviderErrors."""
    url, api_key, account = await _profile(profile, context)
    headers = {"API-Key": api_key, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    body = {"query": NRQL_QUERY, "variables": {"query": query, "accountId": account, "timeout": nrql_timeout}}
    answer = await exchange(_SERVICE, "POST", url, headers, nrql_timeout + _EXCHANGE_MARGIN, body=body)
    return _document(answer)


async def _profile(name: str, context: Context) -> tuple[str, str, int]:
    """The NerdGraph URL, the personal API key and the account id of the profile Secret ``name``."""
    namespace = controller_namespace()
    try:
        data = await context.secret_data(namespace, name, public=_PUBLIC_KEYS)
    except ProviderError as exc:
        raise ProviderError(
            f"{exc}: create it with the keys personal-api-key and account-id, or name another profile "
            "in provider.newRelic.profile"
        ) from None
    if not data.get("personal-api-key") or not data.get("account-id"):
        raise ProviderError(
            f'account ID or personal API key not found: secret "{name}" in namespace "{namespace}" needs the '
            "keys personal-api-key and account-id"
        )
    try:
        account = int(data["account-id"])
    except ValueError:
        raise ProviderError(
            f'could not parse account ID: secret "{name}" key account-id is "{data["account-id"]}": use the number'
        ) from None
    region = (data.get("region") or "us").lower()
    if data.get("base-url-nerdgraph"):
        return data["base-url-nerdgraph"], data["personal-api-key"], account
    if region not in NERDGRAPH_URLS:
        raise ProviderError(f'secret "{name}" key region is "{region}": use us or eu')
    return NERDGRAPH_URLS[region], data["personal-api-key"], account


def _document(answer: Answer) -> Any:
    if answer.status in (401, 403):
        raise ProviderError(f"received authentication error response code: {answer.status} {answer.snippet()}")
    if answer.status == 429:
        retry = answer.headers.get("retry-after")
        after = f" (rate limited: retry after {retry}s)" if retry else " (rate limited)"
        raise ProviderError(f"received non 2xx response code: 429 {answer.snippet()}{after}")
    if not 200 <= answer.status < 300:
        raise ProviderError(f"received non 2xx response code: {answer.status} {answer.snippet()}")
    return json_answer(_SERVICE, answer)


def nrql_result(document: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """The rows of a NerdGraph NRQL answer: one row as a map, several as a list; GraphQL errors raised."""
    if not isinstance(document, Mapping):
        raise ProviderError("New Relic answered with something that is not a GraphQL result")
    errors = document.get("errors") or []
    if errors:
        messages = "; ".join(str(e.get("message") if isinstance(e, Mapping) else e) for e in errors)
        raise ProviderError(f"NerdGraph query failed: {messages}")
    try:
        rows = document["data"]["actor"]["account"]["nrql"]["results"]
    except (KeyError, TypeError):
        raise ProviderError("New Relic answered without NRQL results") from None
    if not rows or not isinstance(rows, list) or (len(rows) == 1 and not rows[0]):
        raise ProviderError("no results returned from NRQL query")
    return dict(rows[0]) if len(rows) == 1 else [dict(row) for row in rows]


def _with_json_value(measurement: Measurement, result: Any) -> Measurement:
    """Argo shows the rows as JSON (Go's encoding: sorted keys, no spaces)."""
    return replace(measurement, value=json.dumps(result, sort_keys=True, separators=(",", ":")))
