"""InfluxDB metrics: a Flux query through the v2 API (``POST {address}/api/v2/query?org={org}``, header
``Authorization: Token {authToken}``), as Argo's client sends it, the answer read as annotated CSV.

The ``profile`` Secret (default ``influxdb``) holds ``address``, ``authToken`` and ``org`` as in Argo, but
is read in the AnalysisRun's namespace (Argo: the controller's). Conditions see every record's ``_value``
as a list (typed by the ``#datatype`` annotation), stored as Go prints it (``[0.5 0.7]``); no record is an
Error ``no results returned from flux query``. ``timeout`` (seconds, default 30 as Argo's) bounds the
whole measurement."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any, Final

import httpx

from analysis.phases import AnalysisPhase
from analysis.providers.base import (
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    format_time,
    format_value,
    judged,
)
from analysis.providers.influxdb_spec import DEFAULT_PROFILE, influxdb_problems

__all__ = ["DEFAULT_TIMEOUT", "InfluxdbProvider", "flux_query", "flux_values", "read_profile", "value_text"]

DEFAULT_TIMEOUT: Final = 30.0
MAX_ANSWER_BYTES: Final = 16 * 2**20
#: The dialect Argo's client (influxdb-client-go) asks for: annotated CSV with a header row.
DIALECT: Final = {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": True}


def _typed(text: str, datatype: str) -> Any:
    if text == "":
        return None
    if datatype == "double":
        return float(text)
    if datatype in ("long", "unsignedLong"):
        return int(text)
    if datatype == "boolean":
        return text == "true"
    return text


def flux_values(answer: str) -> list[Any]:
    """Every record's ``_value`` in an annotated-CSV answer; ProviderError for an in-band error table."""
    values: list[Any] = []
    datatypes: list[str] = []
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(answer)):
        if not row or not any(row):
            header = None  # a blank line ends a table; the next has its own annotations and header
            continue
        if row[0] == "#datatype":
            datatypes, header = row, None
        elif row[0].startswith("#"):
            continue
        elif header is None:
            header = row
            if "error" in header and "_value" not in header:
                header = ["error-table", *header[1:]]
        elif header[0] == "error-table":
            raise ProviderError(f"the flux query failed: {row[header.index('error')]}")
        elif "_value" in header:
            column = header.index("_value")
            values.append(_typed(row[column], datatypes[column] if column < len(datatypes) else "string"))
    return values


def value_text(values: list[Any]) -> str:
    """``fmt.Sprint`` of Argo's ``[]any``: ``[0.5 0.7]``."""
    return "[" + " ".join(format_value(v) for v in values) + "]"


def _refusal(status: int, body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    if isinstance(document, Mapping) and document.get("message"):
        return f"HTTP {status}: {document.get('code', 'error')}: {document['message']}"
    return f"HTTP {status}"


async def flux_query(address: str, org: str, token: str, query: str) -> str:
    """The annotated-CSV answer of a Flux ``query``; ProviderError for a refusal or an unreachable server."""
    url = f"{address.rstrip('/')}/api/v2/query"
    headers = {"Authorization": f"Token {token}", "Accept": "application/csv"}
    body = {"query": query, "type": "flux", "dialect": DIALECT}
    try:
        async with httpx.AsyncClient() as client, client.stream("POST", url, params={"org": org}, json=body,
                                                                 headers=headers) as answer:
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    raise ProviderError(f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB: ask for less")
            status = answer.status_code
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach InfluxDB at {address}: {type(exc).__name__}") from None
    if status != 200:
        raise ProviderError(f"the flux query failed: {_refusal(status, bytes(data))}")
    return bytes(data).decode(errors="replace")


class InfluxdbProvider(ImmediateProvider):
    kind = "influxdb"
    spec_problems = staticmethod(influxdb_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("influxdb") or {}
        profile = str(spec.get("profile") or DEFAULT_PROFILE)
        timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        try:
            async with asyncio.timeout(timeout):
                address, org, token = await read_profile(context, profile)
                values = flux_values(await flux_query(address, org, token, str(spec.get("query") or "")))
            if not values:
                raise ProviderError("no results returned from flux query")
        except ProviderError as exc:
            return _error(str(exc), started)
        except TimeoutError:
            return _error(f"the flux query timed out after {timeout:g}s", started)
        except ValueError as exc:
            return _error(f"cannot read the flux answer: {exc}", started)
        measurement = judged(metric, values, started, {})
        return Measurement(measurement.phase, value=value_text(values), message=measurement.message,
                           started_at=started, finished_at=measurement.finished_at, result=values)


async def read_profile(context: Context, profile: str) -> tuple[str, str, str]:
    """The profile Secret's address, org and authToken (only the token is marked for redaction)."""
    # The address and org are settings, not credentials: read without marking them for redaction.
    address = await context.read_secret(profile, "address")
    org = await context.read_secret(profile, "org")
    token = await context.secret(profile, "authToken")
    if not (address and org and token):
        raise ProviderError(f'profile: secret "{profile}": authToken, org, or address not found')
    return address, org, token


def _error(message: str, started: str) -> Measurement:
    return Measurement(AnalysisPhase.ERROR, message=message, started_at=started,
                       finished_at=format_time(dt.datetime.now(dt.UTC)))
