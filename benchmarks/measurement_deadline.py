"""How long a measurement against a trickling server takes, against its timeout (issue 16 item 3), and
what a 10 MB answer costs: the time to judge it and the size of what is stored.

    python -m benchmarks.measurement_deadline

A local server (127.0.0.1, a free port) sends its headers, then one byte a second; the web and the
Prometheus provider measure it with timeouts of 1, 2 and 5 s. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from analysis.providers.base import Context, Measurement, ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider

BIG = json.dumps({"data": {"ok": True, "items": ["x" * 90] * 105_000}}).encode()  # about 10 MB


@contextmanager
def trickling_server() -> Iterator[str]:
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_GET(self) -> None:
            big = self.path.startswith("/big")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BIG) if big else 10**9))
            self.end_headers()
            try:
                if big:
                    self.wfile.write(BIG)
                    return
                while not stopping.wait(1.0):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def _context() -> Context:
    async def no_secrets(name: str, key: str) -> str:
        raise ProviderError("no secrets here")

    return Context(run={"metadata": {"name": "bench"}}, namespace="bench", now=dt.datetime.now(dt.UTC), args={},
                   read_secret=no_secrets)


def _timed(metric: dict[str, Any], provider: WebProvider | PrometheusProvider) -> tuple[float, Measurement]:
    started = time.perf_counter()
    measured = asyncio.run(provider.measure(metric, _context()))
    return time.perf_counter() - started, measured


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rows: list[tuple[str, str]] = []
    with trickling_server() as url:
        for timeout in (1, 2, 5):
            web = {"name": "m", "provider": {"web": {"url": f"{url}/trickle", "timeoutSeconds": timeout}}}
            took, _ = _timed(web, WebProvider())
            rows.append((f"web, trickling server, timeoutSeconds {timeout}", f"{took:.2f} s"))
            prom = {"name": "m", "provider": {"prometheus": {"address": url, "query": "up", "timeout": timeout}}}
            took, _ = _timed(prom, PrometheusProvider())
            rows.append((f"prometheus, trickling server, timeout {timeout}", f"{took:.2f} s"))
        big = {"name": "m", "successCondition": "len(result.data.items) > 0",
               "provider": {"web": {"url": f"{url}/big", "timeoutSeconds": 30}}}
        took, measured = _timed(big, WebProvider())
        stored = len(json.dumps(measured.to_status()))
        answer = f"web, {len(BIG) / 1e6:.1f} MB answer: measure and judge"
        rows.append((answer, f"{took:.2f} s ({measured.phase.value})"))
        rows.append(("web, that answer's stored measurement", f"{stored:,} bytes"))
    width = max(len(name) for name, _ in rows)
    print(f"| {'measurement'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
