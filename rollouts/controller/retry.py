"""When and how long the API client waits before trying a request again (tenacity).

A transient answer (429, 5xx, a connection error) is tried again after the server's `Retry-After` when it
sent one (capped), else after an exponential backoff with full jitter, so that many clients refused at
once do not come back at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.wait import wait_base

log = logging.getLogger("pyrollouts.kube")

MAX_BACKOFF = 5.0
# A Retry-After longer than this is cut short: the work queue backs off on its own after a failed pass.
MAX_RETRY_AFTER = 10.0


class RetryAfterOrJitter(wait_base):
    """The server's Retry-After for the failed attempt when it gave one, else full-jitter backoff."""

    def __init__(self, initial: float, retry_after: Callable[[BaseException], float | None]) -> None:
        self._jitter = wait_random_exponential(multiplier=initial, max=MAX_BACKOFF)
        self._retry_after = retry_after

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = self._retry_after(error) if error is not None else None
        if asked is not None:
            return min(max(asked, 0.0), MAX_RETRY_AFTER)
        return float(self._jitter(retry_state))


def _log_retry(retry_state: RetryCallState) -> None:
    outcome, wait = retry_state.outcome, retry_state.next_action
    error = outcome.exception() if outcome is not None else None
    log.debug("%s; retrying in %.2fs", error, wait.sleep if wait is not None else 0.0)


def retrying(
    attempts: int,
    initial: float,
    transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None],
) -> AsyncRetrying:
    """Up to `attempts` tries; the last error is raised as it is."""
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=RetryAfterOrJitter(initial, retry_after),
        retry=retry_if_exception(transient),
        before_sleep=_log_retry,
        reraise=True,
    )
