"""Web metrics through ``httpx.AsyncClient``: ``url`` (or ``urlFrom.secretKeyRef``), ``method``,
``headers``, ``body`` / ``jsonBody``, ``timeoutSeconds`` (default 10; it bounds the whole request,
headers and body), ``insecure``, bearer or basic authentication from Secrets, and ``jsonPath`` (JSONPath,
also in Argo's ``{$.data.ok}`` form) on the JSON answer (read up to 16 MiB). Without ``jsonPath`` the whole
JSON answer is the result."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Final

import httpx
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from analysis.phases import AnalysisPhase
from analysis.providers.base import (
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    authenticate,
    format_time,
    judged,
)
from analysis.providers.spec_checks import web_problems

__all__ = ["DEFAULT_TIMEOUT", "MAX_ANSWER_BYTES", "AnswerTooLarge", "WebProvider", "json_path"]

DEFAULT_TIMEOUT: Final = 10.0
#: The largest answer read (a JSON document is parsed whole); what is stored of it is capped far
#: lower (:mod:`analysis.caps`).
MAX_ANSWER_BYTES: Final = 16 * 2**20


def json_path(path: str, document: Any) -> Any:
    """Apply ``path`` (``$.a.b``, ``{$.a.b}`` or ``.a.b``) to ``document``: one match is the value,
    several are a list. ProviderError when the path is invalid or matches nothing."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("."):
        text = "$" + text
    try:
        expression = parse_jsonpath(text)
    except JSONPathError as exc:
        raise ProviderError(f'invalid jsonPath "{path}": {exc}') from None
    matches = [m.value for m in expression.find(document)]
    if not matches:
        raise ProviderError(f'jsonPath "{path}" matched nothing in the answer')
    return matches[0] if len(matches) == 1 else matches


class WebProvider(ImmediateProvider):
    kind = "web"
    spec_problems = staticmethod(web_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)

        def error(message: str) -> Measurement:
            return Measurement(
                AnalysisPhase.ERROR,
                message=message,
                started_at=started,
                finished_at=format_time(dt.datetime.now(dt.UTC)),
            )

        spec = (metric.get("provider") or {}).get("web") or {}
        timeout = float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        method = str(spec.get("method") or "GET").upper()
        try:
            url = str(spec.get("url") or "")
            ref = (spec.get("urlFrom") or {}).get("secretKeyRef")
            if ref:
                url = await context.secret(str(ref["name"]), str(ref["key"]))
            headers = {str(h.get("key")): str(h.get("value")) for h in spec.get("headers") or []}
            credentials = await authenticate(spec, context, headers)
            if credentials is not None:
                token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
                headers["Authorization"] = "Basic " + token
            content: bytes | None = None
            if spec.get("jsonBody") is not None:
                content = json.dumps(spec["jsonBody"]).encode()
                headers.setdefault("Content-Type", "application/json")
            elif spec.get("body"):
                content = str(spec["body"]).encode()
        except ProviderError as exc:
            return error(str(exc))
        where = _describe(url)
        try:
            # One deadline for the whole exchange: httpx's own timeout is per read, and a server that
            # trickles its body one byte at a time would hold the measurement for ever.
            async with asyncio.timeout(timeout):
                status_code, body = await _exchange(spec, method, url, headers, content, timeout)
        except (TimeoutError, httpx.TimeoutException):
            return error(f"{method} {where} timed out after {timeout:g}s")
        except AnswerTooLarge:
            return error(f"the answer of {where} is larger than {MAX_ANSWER_BYTES // 2**20} MiB: ask for less")
        except httpx.InvalidURL:
            return error(f"invalid url {where}")
        except httpx.HTTPError as exc:
            return error(f"{method} {where} failed: {type(exc).__name__}: {exc}")
        metadata = {"statusCode": str(status_code)}
        if not 200 <= status_code < 300:
            return Measurement(
                AnalysisPhase.ERROR,
                message=f"received non 2xx response code: {status_code}",
                metadata=metadata,
                started_at=started,
                finished_at=format_time(dt.datetime.now(dt.UTC)),
            )
        try:
            document = json.loads(body)
        except ValueError:
            snippet = body[:80].decode(errors="replace").replace("\n", " ")
            return error(f"the answer of {where} is not JSON: {snippet!r}")
        try:
            result = json_path(str(spec["jsonPath"]), document) if spec.get("jsonPath") else document
        except ProviderError as exc:
            return error(str(exc))
        return judged(metric, result, started, metadata)


class AnswerTooLarge(Exception):
    """The answer's body is over :data:`MAX_ANSWER_BYTES`."""


async def _exchange(
    spec: Mapping[str, Any], method: str, url: str, headers: dict[str, str], content: bytes | None, timeout: float
) -> tuple[int, bytes]:
    """Send the request; the status code and the body, read as it comes, at most :data:`MAX_ANSWER_BYTES`."""
    async with (
        httpx.AsyncClient(verify=not spec.get("insecure"), timeout=timeout) as client,
        client.stream(method, url, headers=headers, content=content) as response,
    ):
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLarge
            chunks.append(chunk)
        return response.status_code, b"".join(chunks)


def _describe(url: str) -> str:
    """The URL without query string or userinfo (either may hold a credential)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid url)"
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
