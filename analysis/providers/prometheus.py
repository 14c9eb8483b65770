"""Prometheus metrics through ``prometheus-api-client`` (synchronous: each query runs in a thread).

``address`` (else ``PYROLLOUTS_PROMETHEUS_ADDRESS``), ``query`` or ``rangeQuery{start,end,step}``,
``timeout`` (seconds, default 30, also sent to Prometheus; it bounds the whole measurement: token, request,
headers and body), ``insecure``, ``headers``, and ``authentication.bearerToken.secretKeyRef`` /
``basicAuth{username,password|passwordSecretRef}`` / ``sigv4{region,profile,roleArn}`` (Amazon Managed
Prometheus: requests signed for service ``aps`` by :mod:`analysis.providers.aws`) /
``oauth2{tokenUrl,clientId,clientSecret,scopes}`` (a client-credentials token, :mod:`analysis.providers.oauth2`).
A scalar answer becomes a float, a vector a list of floats (one per series), a matrix a list of every
sample's value; an empty answer is ``[]``. Prometheus warnings go into the measurement's metadata.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import requests
import requests.auth
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analysis.phases import AnalysisPhase
from analysis.providers.aws import AwsIdentity, signed_headers
from analysis.providers.base import (
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    authenticate,
    format_time,
    judged,
)
from analysis.providers.oauth2 import client_credentials_token
from analysis.providers.spec_checks import prometheus_problems
from analysis.spec import SpecError, duration_seconds

__all__ = [
    "ADDRESS_ENV", "DEFAULT_TIMEOUT", "MAX_ANSWER_BYTES", "Answer", "PrometheusProvider", "parse_range_time",
    "run_query", "to_result",
]

ADDRESS_ENV: Final = "PYROLLOUTS_PROMETHEUS_ADDRESS"
DEFAULT_TIMEOUT: Final = 30.0
#: The largest answer read (parsed whole); what is stored of it is capped far lower (:mod:`analysis.caps`).
MAX_ANSWER_BYTES: Final = 16 * 2**20
_GRACE_SECONDS: Final = 1.0
#: The service name Amazon Managed Prometheus requests are signed for.
SIGV4_SERVICE: Final = "aps"
_RELATIVE: Final = re.compile(r"^\s*now\(\)\s*(?:([+-])\s*(\S+))?\s*$")


class _RecordingSession(requests.Session):
    """Keeps the last response: the client returns only ``data.result`` and we also need
    ``resultType``, ``warnings`` and the error body."""

    last: requests.Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.last = super().request(*args, **kwargs)
        return self.last


class SigV4(requests.auth.AuthBase):
    """Signs each request (its final URL and body) with botocore's SigV4 signer."""

    def __init__(self, identity: AwsIdentity) -> None:
        self.identity = identity

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
                   if k.lower() not in ("connection", "user-agent")}
        request.headers.update(signed_headers(self.identity, SIGV4_SERVICE, str(request.method), str(request.url),
                                              headers, body if isinstance(body, bytes) else None))
        return request


@dataclass(frozen=True)
class Answer:
    result_type: str
    result: Any
    warnings: list[str]


class _DeadlineAdapter(HTTPAdapter):
    """Holds every request to one deadline, headers and body: requests' own timeout is per read, and a
    server that trickles its answer one byte at a time would hold the measurement (and a worker thread)
    for ever. The body is read as it comes, at most :data:`MAX_ANSWER_BYTES`."""

    def __init__(self, deadline: float) -> None:
        super().__init__(max_retries=Retry(total=0, raise_on_status=False))
        self.deadline = deadline

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout("the whole request took longer than its timeout")
        return remaining

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: dict[str, str] | None = None,
             ) -> requests.Response:
        response = super().send(request, stream=True, timeout=self._remaining(), verify=verify, cert=cert,
                                proxies=proxies)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                self._remaining()
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise ProviderError(f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB: ask for less")
                chunks.append(chunk)
        finally:
            response.close()
        response._content = b"".join(chunks)
        response._content_consumed = True
        return response


def parse_range_time(text: str, now: dt.datetime, field: str) -> dt.datetime:
    """``now()``, ``now() - 5m``, ``now() + 1h`` or an RFC 3339 time (Argo's rangeQuery start/end)."""
    match = _RELATIVE.match(text)
    if match is not None:
        if match.group(1) is None:
            return now
        seconds = duration_seconds(match.group(2), field) or 0.0
        return now + dt.timedelta(seconds=seconds if match.group(1) == "+" else -seconds)
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f'{field}: expected now(), now() - DURATION or an RFC 3339 time, got "{text}"') from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _float(text: Any) -> float:
    return float(text)


def to_result(result_type: str, result: Any) -> Any:
    """The value conditions see: scalar -> float, vector -> [float], matrix -> [float] (all samples)."""
    if result_type == "scalar":
        return _float(result[1])
    if result_type == "string":
        return str(result[1])
    if result_type == "vector":
        return [_float(series["value"][1]) for series in result]
    if result_type == "matrix":
        return [_float(value[1]) for series in result for value in series.get("values") or []]
    raise ProviderError(f'unexpected Prometheus result type "{result_type}"')


def _error_text(response: requests.Response | None) -> str:
    if response is None:
        return "no answer"
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, Mapping) and body.get("error"):
        return f"HTTP {response.status_code}: {body.get('errorType', 'error')}: {body['error']}"
    if isinstance(body, Mapping) and (body.get("message") or body.get("Message")):  # AWS's error body
        return f"HTTP {response.status_code}: {body.get('message') or body.get('Message')}"
    return f"HTTP {response.status_code}"


def run_query(
    address: str,
    headers: dict[str, str],
    auth: tuple[str, str] | requests.auth.AuthBase | None,
    insecure: bool,
    timeout: float,
    query: str,
    window: tuple[dt.datetime, dt.datetime, str] | None,
    at: dt.datetime | None = None,
) -> Answer:
    """One query, blocking: runs in a worker thread. ``window``: a range query; else an instant query,
    evaluated at ``at`` when given (Prometheus's ``time`` parameter), else at Prometheus's now."""
    deadline = time.monotonic() + timeout
    session = _RecordingSession()
    session.verify = not insecure
    prom = PrometheusConnect(
        url=address.rstrip("/"),
        headers=headers or None,
        disable_ssl=insecure,
        retry=Retry(total=0, raise_on_status=False),
        auth=auth,
        session=session,
        timeout=timeout,
    )
    session.mount(prom.url, _DeadlineAdapter(deadline))  # replaces the client's adapter for that address
    params = {"timeout": f"{timeout:g}s"}
    if at is not None and window is None:
        params["time"] = f"{at.timestamp():.3f}"
    try:
        if window is None:
            prom.custom_query(query, params=params)
        else:
            prom.custom_query_range(query, window[0], window[1], window[2], params=params)
    except PrometheusApiClientException:
        raise ProviderError(f"query failed: {_error_text(session.last)}") from None
    except requests.Timeout:
        raise ProviderError(f"query timed out after {timeout:g}s (Prometheus at {address})") from None
    except requests.RequestException as exc:
        raise ProviderError(f"cannot reach Prometheus at {address}: {type(exc).__name__}") from None
    finally:
        prom.close()
    response = session.last
    try:
        body = response.json() if response is not None else {}
        data = body["data"]
        return Answer(str(data["resultType"]), data["result"], [str(w) for w in body.get("warnings") or []])
    except (ValueError, KeyError, TypeError):
        raise ProviderError("Prometheus answered with something that is not a query result") from None


async def _authorization(spec: Mapping[str, Any], context: Context, headers: dict[str, str], timeout: float,
                         ) -> tuple[str, str] | requests.auth.AuthBase | None:
    """``authentication``: bearer and oauth2 tokens go into ``headers``; basic credentials or the SigV4
    signer are returned for the request."""
    auth = (spec.get("authentication") or {})
    if auth.get("oauth2"):
        try:
            async with asyncio.timeout(timeout):
                token = await client_credentials_token(auth["oauth2"], context, bool(spec.get("insecure")))
        except TimeoutError:
            raise ProviderError(f"oauth2: no token from {auth['oauth2'].get('tokenUrl')} within {timeout:g}s") from None
        headers["Authorization"] = f"Bearer {token}"
    if auth.get("sigv4") is not None:
        return SigV4(AwsIdentity.from_spec(auth["sigv4"] or {}, "authentication.sigv4"))
    return await authenticate(spec, context, headers)


class PrometheusProvider(ImmediateProvider):
    kind = "prometheus"
    spec_problems = staticmethod(prometheus_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)

        def error(message: str, metadata: Mapping[str, str] | None = None) -> Measurement:
            return Measurement(
                AnalysisPhase.ERROR,
                message=message,
                metadata=dict(metadata or {}),
                started_at=started,
                finished_at=format_time(dt.datetime.now(dt.UTC)),
            )

        spec = (metric.get("provider") or {}).get("prometheus") or {}
        address = str(spec.get("address") or os.environ.get(ADDRESS_ENV) or "")
        if not address:
            return error(f"no Prometheus address: set provider.prometheus.address or {ADDRESS_ENV}")
        headers = {str(h.get("key")): str(h.get("value")) for h in spec.get("headers") or []}
        timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        query = str(spec.get("query") or "")
        window: tuple[dt.datetime, dt.datetime, str] | None = None
        deadline = time.monotonic() + timeout
        try:
            auth = await _authorization(spec, context, headers, timeout)
            # An oauth2 token took part of the measurement's time: the query gets what is left.
            uses_token = bool((spec.get("authentication") or {}).get("oauth2"))
            remaining = max(deadline - time.monotonic(), 0.001) if uses_token else timeout
            if spec.get("rangeQuery"):
                rq = spec["rangeQuery"]
                window = (
                    parse_range_time(str(rq.get("start") or "now()"), context.now, "rangeQuery.start"),
                    parse_range_time(str(rq.get("end") or "now()"), context.now, "rangeQuery.end"),
                    str(rq.get("step") or "1m"),
                )
            # The thread keeps its own deadline; this one returns the measurement even if a read
            # started just before the deadline blocks for a while longer.
            insecure = bool(spec.get("insecure"))
            answer = await asyncio.wait_for(
                asyncio.to_thread(run_query, address, headers, auth, insecure, remaining, query, window),
                remaining + _GRACE_SECONDS,
            )
            result = to_result(answer.result_type, answer.result)
        except (ProviderError, SpecError) as exc:
            return error(str(exc))
        except TimeoutError:
            return error(f"query timed out after {timeout:g}s (Prometheus at {address})")
        except ValueError as exc:
            return error(f"cannot read a sample value: {exc}")
        metadata = {"resultType": answer.result_type}
        if answer.warnings:
            metadata["warnings"] = "; ".join(answer.warnings)
        return judged(metric, result, started, metadata)
