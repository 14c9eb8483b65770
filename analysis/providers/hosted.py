"""What the providers of hosted metric services (Datadog, New Relic, Wavefront, SkyWalking) share: one
HTTP exchange held to a total deadline with a capped answer, the reading of its JSON and status code,
and the namespace the controller runs in (where Argo looks for the services' credential Secrets)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from analysis.phases import AnalysisPhase
from analysis.providers.base import Measurement, ProviderError, format_time

__all__ = [
    "CONTROLLER_NAMESPACE_ENV",
    "DEFAULT_CONTROLLER_NAMESPACE",
    "MAX_ANSWER_BYTES",
    "Answer",
    "controller_namespace",
    "error_measurement",
    "exchange",
    "json_answer",
]

#: Where the controller runs, as Argo reads it: the downward API's ``POD_NAMESPACE``, else the service
#: account's namespace file, else the namespace ``deploy/base`` installs into.
CONTROLLER_NAMESPACE_ENV: Final = "POD_NAMESPACE"
DEFAULT_CONTROLLER_NAMESPACE: Final = "pyrollouts"
_SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: The largest answer read (parsed whole); what is stored of it is capped far lower (:mod:`analysis.caps`).
MAX_ANSWER_BYTES: Final = 16 * 2**20
_SNIPPET_CHARS: Final = 300


def controller_namespace() -> str:
    if os.environ.get(CONTROLLER_NAMESPACE_ENV):
        return os.environ[CONTROLLER_NAMESPACE_ENV]
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or DEFAULT_CONTROLLER_NAMESPACE
    except OSError:
        return DEFAULT_CONTROLLER_NAMESPACE


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def snippet(self) -> str:
        """The start of the body, for an error message (the service's own error text)."""
        return self.body[:_SNIPPET_CHARS].decode(errors="replace").replace("\n", " ").strip()


def error_measurement(started: str, message: str, metadata: Mapping[str, str] | None = None) -> Measurement:
    return Measurement(
        AnalysisPhase.ERROR,
        message=message,
        metadata=dict(metadata or {}),
        started_at=started,
        finished_at=format_time(dt.datetime.now(dt.UTC)),
    )


async def exchange(
    service: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
) -> Answer:
    """One request to ``service`` (named in errors), its JSON ``body`` if any; the whole exchange, headers
    and body, within ``timeout`` seconds (httpx's own timeout is per read: a server trickling its answer
    would hold the measurement for ever). ProviderError says what failed, never with the query string."""
    content = json.dumps(body).encode() if body is not None else None
    where = _describe(url)
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout) as client:
            request = client.build_request(method, url, headers=dict(headers), params=params, content=content)
            response = await client.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise ProviderError(
                            f"the answer of {service} at {where} is larger than {MAX_ANSWER_BYTES // 2**20} MiB: "
                            "ask for less"
                        )
                    chunks.append(chunk)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise ProviderError(f"{service} at {where} did not answer within {timeout:g}s") from None
    except httpx.InvalidURL:
        raise ProviderError(f"invalid {service} address {where}") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach {service} at {where}: {type(exc).__name__}") from None
    return Answer(response.status_code, b"".join(chunks), dict(response.headers))


def json_answer(service: str, answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        raise ProviderError(f"{service} answered with something that is not JSON: {answer.snippet()!r}") from None


def _describe(url: str) -> str:
    """The URL without query string or userinfo (either may hold a credential)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid url)"
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
