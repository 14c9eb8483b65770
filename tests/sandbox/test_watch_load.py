"""The sandbox stays responsive under 500 watch streams while a large object fans out to all of them.

The figures (time to deliver, GET latency meanwhile) are measured by benchmarks/watch_load.py; this
test holds only a deadline generous enough for a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

import aiohttp
import pytest

from rollouts.sandbox.cluster import ThreadedSandbox

pytestmark = pytest.mark.slow

WATCHES = 500
OBJECT_BYTES = 1024 * 1024
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
GET_DEADLINE = 30.0  # seconds; an idle machine answers in well under one (BENCHMARKS.md)
DELIVERY_DEADLINE = 240.0


async def read_until_event(session: aiohttp.ClientSession, url: str, name: bytes, connected: asyncio.Event) -> None:
    """Drain one watch stream until the event naming `name` has arrived whole."""
    found = False
    tail = b""
    async with session.get(url) as resp:
        assert resp.status == 200
        connected.set()
        async for chunk in resp.content.iter_any():
            found = found or name in tail + chunk
            if found and b"\n" in chunk:
                return
            tail = chunk[-len(name) :]
    raise AssertionError("the watch ended before the large object arrived")


async def fan_out_and_probe(base: str) -> float:
    """Open the watches, write the large object, and return how long a GET took meanwhile."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=DELIVERY_DEADLINE)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        async with session.get(base + CONFIGMAPS) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        url = f"{base}{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=600"
        connected = [asyncio.Event() for _ in range(WATCHES)]
        watches = [asyncio.create_task(read_until_event(session, url, b"large-one", e)) for e in connected]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), DELIVERY_DEADLINE)
        body = {"metadata": {"name": "large-one"}, "data": {"blob": "x" * OBJECT_BYTES}}
        async with session.post(base + CONFIGMAPS, json=body) as resp:
            assert resp.status == 201, await resp.text()
        start = time.monotonic()
        async with session.get(f"{base}/api/v1/namespaces/default") as resp:
            assert resp.status == 200
        answered = time.monotonic() - start
        await asyncio.wait_for(asyncio.gather(*watches), DELIVERY_DEADLINE)
    return answered


def enough_file_descriptors() -> None:
    """Both ends of 500 streams live in this process: raise a soft limit of 1,024 (a common default)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * WATCHES + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def test_a_get_is_answered_while_a_large_object_fans_out_to_500_watches(tmp_path: Path) -> None:
    enough_file_descriptors()
    with ThreadedSandbox(tmp_path / "kubeconfig") as sandbox:
        answered = asyncio.run(fan_out_and_probe(sandbox.url))
        assert answered < GET_DEADLINE, f"a GET took {answered:.1f}s while 500 watches were served"
        # The server is still whole afterwards.
        assert asyncio.run(_healthz(sandbox.url)) == "ok"


async def _healthz(base: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(base + "/healthz") as resp:
        return await resp.text()
