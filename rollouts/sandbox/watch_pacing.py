"""Large watch writes take turns with the rest of the server.

An event wakes every watch that sees it in the same pass of the event loop; with 500 watches and a
1.5 MB object, writing them all in that one pass kept every other request waiting for seconds. A
large write first waits for its turn: one per pass, so the loop polls its sockets (and answers a GET)
between two of them. The turn is held only for that hand-over, never while a slow client drains.
"""

from __future__ import annotations

import asyncio

LARGE_WRITE = 64 * 1024  # bytes; smaller writes go at once, as before


class WriteTurns:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def wait(self, size: int) -> None:
        """Return when a write of `size` bytes may go out (at once when it is small)."""
        if size < LARGE_WRITE:
            return
        async with self._lock:
            # Give the loop one pass (its sockets are polled) before the next large write starts.
            await asyncio.sleep(0)
