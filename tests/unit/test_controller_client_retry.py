"""The controller's API client under a failing server: it sends a request again after 429/5xx (after the
server's Retry-After when given), gives up with the last answer, never retries a conflict, holds writes
when asked, and takes a token of its request limit for every attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from tenacity import RetryCallState

from rollouts.controller import client as client_module
from rollouts.controller import retry as retry_policy
from rollouts.controller.client import ApiError, Client, WritesHeld
from rollouts.controller.kubeconfig import Connection
from rollouts.controller.ratelimit import TokenBucket
from rollouts.controller.retry import MAX_RETRY_AFTER, RetryAfterOrJitter

Answer = tuple[int, dict[str, Any], dict[str, str]]


def status(code: int, reason: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


TOO_MANY: Answer = (429, status(429, "TooManyRequests", retryAfterSeconds=0), {"Retry-After": "0"})
UNAVAILABLE: Answer = (503, status(503, "ServiceUnavailable"), {})
CONFLICT: Answer = (409, status(409, "Conflict"), {})
OK: Answer = (200, {"kind": "ConfigMap", "metadata": {"name": "x"}}, {})


def send(answers: list[Answer], method: str = "GET", **client: Any) -> tuple[Any, int]:
    """One request against a server giving `answers` in turn (the last one again and again)."""
    served: list[Answer] = []
    script: Iterator[Answer] = iter(answers)

    async def handler(request: web.Request) -> web.Response:
        answer = next(script, answers[-1])
        served.append(answer)
        return web.json_response(answer[1], status=answer[0], headers=answer[2])

    async def scenario() -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with Client(Connection(server=url), backoff=0.001, **client) as api:
                body: dict[str, Any] | None = {} if method != "GET" else None
                return await api.request(method, "/api/v1/namespaces/ns/configmaps/x", body=body)
        except ApiError as exc:
            return exc
        finally:
            await runner.cleanup()

    return asyncio.run(scenario()), len(served)


def test_busy_and_failing_answers_are_sent_again_until_one_succeeds() -> None:
    result, served = send([TOO_MANY, UNAVAILABLE, TOO_MANY, OK])
    assert result["metadata"]["name"] == "x" and served == 4


def test_after_the_last_retry_the_servers_answer_is_the_error() -> None:
    result, served = send([UNAVAILABLE], retries=2)
    assert isinstance(result, ApiError) and (result.status, result.reason) == (503, "ServiceUnavailable")
    assert served == 3


def test_a_conflict_is_not_sent_again_the_caller_reads_and_plans_again() -> None:
    result, served = send([CONFLICT, OK], method="PATCH")
    assert isinstance(result, ApiError) and result.conflict and served == 1


def test_writes_held_are_refused_before_they_are_sent() -> None:
    result, served = send([OK], method="PATCH", writes_held=lambda: True)
    assert isinstance(result, WritesHeld) and served == 0
    read, served = send([OK], writes_held=lambda: True)
    assert read["metadata"]["name"] == "x" and served == 1


def test_every_attempt_takes_a_token_of_the_limit() -> None:
    limit = TokenBucket(qps=1, burst=3, clock=lambda: 0.0)  # time stands still: no token comes back
    result, served = send([UNAVAILABLE, OK], limit=limit)
    assert result["metadata"]["name"] == "x" and served == 2
    assert limit.reserve() == 0.0  # the third and last token of the burst
    assert limit.reserve() == 1.0  # the next one waits a second


def wait_after(error: BaseException, attempt: int = 1) -> float:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return RetryAfterOrJitter(0.1, lambda e: e.retry_after if isinstance(e, ApiError) else None)(state)


def test_retry_after_is_honoured_and_capped_else_the_backoff_is_jittered() -> None:
    assert wait_after(ApiError(429, "TooManyRequests", "", retry_after=3)) == 3
    assert wait_after(ApiError(429, "TooManyRequests", "", retry_after=3600)) == MAX_RETRY_AFTER
    waits = {wait_after(ApiError(503, "ServiceUnavailable", ""), attempt=4) for _ in range(20)}
    assert len(waits) > 1 and all(0 <= w <= 0.1 * 2**4 for w in waits)


def test_the_token_bucket_lets_a_burst_through_then_spaces_requests_by_qps() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [round(bucket.reserve(), 3) for _ in range(2)] == [0.1, 0.2]
    now[0] = 1.0  # a second later the bucket is full again (the two taken in advance paid back)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert TokenBucket(qps=0, burst=1).reserve() == 0.0
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(qps=1, burst=0)


def test_a_request_answered_at_once_never_sets_up_the_retry_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first try goes without tenacity (its set-up per request was costly at scale); retries still use it."""
    loops: list[int] = []
    real = retry_policy.retrying

    def counted(*args: Any) -> Any:
        loops.append(1)
        return real(*args)

    monkeypatch.setattr(client_module, "retrying", counted)
    result, served = send([OK])
    assert result["metadata"]["name"] == "x" and served == 1 and loops == []
    result, served = send([UNAVAILABLE, OK])
    assert result["metadata"]["name"] == "x" and served == 2 and loops == [1]  # one try in the loop, not two
