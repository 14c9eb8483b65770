"""Sandbox request throughput (GET and PATCH per second) and watch fan-out (events/s to N watchers).

    .venv/bin/python -m benchmarks.sandbox_throughput [--seconds 5] [--concurrency 16] [--watchers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time

import aiohttp

from benchmarks.harness import sandbox_process

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def _hammer(session: aiohttp.ClientSession, url: str, method: str, seconds: float, concurrency: int) -> float:
    """Requests per second over `seconds` with `concurrency` requests in flight."""
    done = 0
    errors = 0
    stop_at = time.monotonic() + seconds
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}

    async def worker(index: int) -> None:
        nonlocal done, errors
        counter = 0
        while time.monotonic() < stop_at:
            counter += 1
            body = json.dumps({"data": {f"k{index}": str(counter)}}) if method == "PATCH" else None
            async with session.request(method, url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status >= 300:
                    errors += 1
                done += 1

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    if errors:
        raise RuntimeError(f"{errors} {method} requests failed")
    return done / (time.monotonic() - start)


async def _fan_out(session: aiohttp.ClientSession, base: str, watchers: int, writes: int) -> tuple[float, int]:
    """Open `watchers` watches, make `writes` changes, return (events delivered per second, events)."""
    async with session.get(base + CONFIGMAPS) as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    received = 0
    expected = watchers * writes
    finished = asyncio.Event()

    async def watch() -> None:
        nonlocal received
        url = f"{base}{CONFIGMAPS}?watch=true&resourceVersion={rv}&labelSelector=fanout%3Dyes&timeoutSeconds=120"
        async with session.get(url) as resp:
            async for _line in resp.content:
                received += 1
                if received >= expected:
                    finished.set()
                    return
                if finished.is_set():
                    return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await asyncio.sleep(1.0)  # let every watch connect before the first write
    start = time.monotonic()
    for n in range(writes):
        body = {"metadata": {"name": f"fan-{n}", "labels": {"fanout": "yes"}}, "data": {"n": str(n)}}
        async with session.post(base + CONFIGMAPS, json=body) as resp:
            await resp.read()
    await asyncio.wait_for(finished.wait(), timeout=120)
    elapsed = time.monotonic() - start
    for task in tasks:
        task.cancel()
    return received / elapsed, received


async def run(seconds: float, concurrency: int, watchers: int, writes: int) -> None:
    with sandbox_process() as base:
        connector = aiohttp.TCPConnector(limit=concurrency + watchers + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(base + CONFIGMAPS, json={"metadata": {"name": "bench"}, "data": {}}) as resp:
                assert resp.status == 201, await resp.text()
            target = f"{base}{CONFIGMAPS}/bench"
            get_rps = await _hammer(session, target, "GET", seconds, concurrency)
            patch_rps = await _hammer(session, target, "PATCH", seconds, concurrency)
            fan_rate, events = await _fan_out(session, base, watchers, writes)
    print(f"machine: {platform.machine()}, python {platform.python_version()}, "
          f"{seconds:g}s per measurement, {concurrency} requests in flight")
    print("| measurement | result |")
    print("|---|---|")
    print(f"| GET one ConfigMap | {get_rps:,.0f} requests/s |")
    print(f"| PATCH (merge) one ConfigMap | {patch_rps:,.0f} requests/s |")
    print(f"| watch fan-out: {writes} creates to {watchers} watchers | {fan_rate:,.0f} events/s ({events} events) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.concurrency, args.watchers, args.writes))


if __name__ == "__main__":
    main()
