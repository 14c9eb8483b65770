"""Sandbox responsiveness under many watches: N watch streams on ConfigMaps, one large ConfigMap
written, then how long until every stream has it and how long GETs take meanwhile.

    .venv/bin/python -m benchmarks.watch_load [--watchers 500] [--sizes 100000,1000000,1500000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

import aiohttp

from benchmarks.harness import sandbox_process

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def _drain_watch(session: aiohttp.ClientSession, url: str, name: str, connected: asyncio.Event,
                       seen: list[float]) -> None:
    """Read a watch stream until the event naming `name` has arrived whole (its closing newline)."""
    wanted = name.encode()
    found = False
    tail = b""
    async with session.get(url) as resp:
        connected.set()
        async for chunk in resp.content.iter_any():
            found = found or wanted in tail + chunk
            if found and b"\n" in chunk:
                seen.append(time.monotonic())
                return
            tail = chunk[-len(wanted):]


async def _probe(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        async with session.get(url) as resp:
            await resp.read()
        latencies.append(time.monotonic() - start)
        await asyncio.sleep(0.02)


async def _one_size(base: str, watchers: int, size: int) -> tuple[float, float, float, int]:
    """(seconds until every watch had the object, median GET s, max GET s, GETs answered meanwhile)."""
    name = f"large-{size}"
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(base + CONFIGMAPS) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        url = f"{base}{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=300"
        seen: list[float] = []
        events = [asyncio.Event() for _ in range(watchers)]
        tasks = [asyncio.create_task(_drain_watch(session, url, name, e, seen)) for e in events]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=120)
        latencies: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(_probe(session, f"{base}/api/v1/namespaces/default", stop, latencies))
        start = time.monotonic()
        body = {"metadata": {"name": name}, "data": {"blob": "x" * size}}
        async with session.post(base + CONFIGMAPS, json=body) as resp:
            assert resp.status == 201, await resp.text()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
        delivered = max(seen) - start
        stop.set()
        await probe
    return delivered, statistics.median(latencies), max(latencies), len(latencies)


async def run(watchers: int, sizes: list[int]) -> None:
    rows = []
    with sandbox_process() as base:
        for size in sizes:
            rows.append((size, *await _one_size(base, watchers, size)))
    print(f"machine: {platform.machine()}, python {platform.python_version()}, {watchers} watches on ConfigMaps")
    print("| object size | every watch has it | GET during the fan-out: median / max (count) |")
    print("|---|---|---|")
    for size, delivered, median, worst, count in rows:
        print(f"| {size / 1e6:.1f} MB | {delivered:.2f} s | {median * 1000:.1f} ms / {worst * 1000:.0f} ms ({count}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watchers", type=int, default=500)
    parser.add_argument("--sizes", default="100000,1000000,1500000")
    args = parser.parse_args()
    asyncio.run(run(args.watchers, [int(s) for s in args.sizes.split(",")]))


if __name__ == "__main__":
    main()
