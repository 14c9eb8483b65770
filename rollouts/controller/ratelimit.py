"""The client-side request limit (`--qps`, `--burst`): a token bucket, as client-go's flowcontrol.

`burst` requests may go at once; after that one more every 1/`qps` seconds. A request that finds the
bucket empty takes a token in advance and waits for it (tokens go negative), so waiting requests leave in
the order they came. `qps` 0 turns the limit off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if qps < 0 or burst < 1:
            raise ValueError(f"a request limit needs qps >= 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self.waited = 0.0  # seconds requests spent waiting for a token, in all

    def reserve(self) -> float:
        """Take a token; how long to wait before using it (0: at once)."""
        if self.qps == 0:
            return 0.0
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.qps)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self.waited += delay
            await asyncio.sleep(delay)
