"""The controller's own ``/metrics`` (Prometheus text format) and ``/healthz``.

Small on purpose: counters and a histogram kept in dicts, rendered on request."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger("pyrollouts.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    items = [f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs]
    return "{" + ",".join(items) + "}" if items else ""


@dataclass
class Metrics:
    reconciles: Counter[tuple[str, str]] = field(default_factory=Counter)  # (namespace, result)
    duration_buckets: Counter[float] = field(default_factory=Counter)
    duration_sum: float = 0.0
    duration_count: int = 0
    writes: int = 0
    queue_depth: Callable[[], int] = lambda: 0
    api_requests: Callable[[], dict[str, int]] = dict
    phases: Callable[[], list[tuple[str, str, str]]] = list  # (namespace, name, phase)
    leading: Callable[[], bool] = lambda: True

    def observe_reconcile(self, namespace: str, result: str, seconds: float, writes: int) -> None:
        self.reconciles[(namespace, result)] += 1
        self.duration_sum += seconds
        self.duration_count += 1
        self.writes += writes
        for bound in BUCKETS:
            if seconds <= bound:
                self.duration_buckets[bound] += 1

    def render(self) -> str:
        lines = [
            "# HELP pyrollouts_reconcile_total Rollout reconciles, by namespace and result.",
            "# TYPE pyrollouts_reconcile_total counter",
        ]
        for (ns, result), n in sorted(self.reconciles.items()):
            lines.append(f"pyrollouts_reconcile_total{_labels([('namespace', ns), ('result', result)])} {n}")
        lines += [
            "# HELP pyrollouts_reconcile_duration_seconds Time to reconcile one Rollout.",
            "# TYPE pyrollouts_reconcile_duration_seconds histogram",
        ]
        for bound in BUCKETS:
            lines.append(f'pyrollouts_reconcile_duration_seconds_bucket{{le="{bound}"}} {self.duration_buckets[bound]}')
        lines.append(f'pyrollouts_reconcile_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
        lines.append(f"pyrollouts_reconcile_duration_seconds_sum {self.duration_sum:.6f}")
        lines.append(f"pyrollouts_reconcile_duration_seconds_count {self.duration_count}")
        lines += [
            "# HELP pyrollouts_api_requests_total Requests the controller made to the API server (watches excluded).",
            "# TYPE pyrollouts_api_requests_total counter",
        ]
        for verb, n in sorted(self.api_requests().items()):
            lines.append(f"pyrollouts_api_requests_total{_labels([('verb', verb)])} {n}")
        lines += [
            "# HELP pyrollouts_workqueue_depth Rollouts waiting to be reconciled.",
            "# TYPE pyrollouts_workqueue_depth gauge",
            f"pyrollouts_workqueue_depth {self.queue_depth()}",
            "# HELP pyrollouts_leader 1 while this controller may write (holds the Lease, or runs without election).",
            "# TYPE pyrollouts_leader gauge",
            f"pyrollouts_leader {int(self.leading())}",
            "# HELP pyrollouts_rollout_phase The phase of each Rollout (1 for the current phase).",
            "# TYPE pyrollouts_rollout_phase gauge",
        ]
        for ns, name, phase in sorted(self.phases()):
            lines.append(f"pyrollouts_rollout_phase{_labels([('namespace', ns), ('name', name), ('phase', phase)])} 1")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Listen:
    """A host:port to serve on, and the flag that asked for it (named when the port is taken)."""

    host: str
    port: int
    flag: str

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class ListenError(Exception):
    """The address cannot be served (in use, not ours): one line naming the flag."""


def parse_listen(text: str, flag: str) -> Listen | None:
    """``host:port``, ``:port`` (all IPv4 interfaces) or ``[v6]:port``; ``0`` turns the server off.
    Port 0 takes a free port (logged). Raises ValueError with what is wrong."""
    if text == "0":
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port (e.g. :8090 or 127.0.0.1:8090), or 0 for off")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8090")
    return Listen(host or "0.0.0.0", int(port), flag)


async def serve(listen: Listen, routes: dict[str, Callable[[], tuple[int, str]]]) -> web.AppRunner:
    """Serve each path with a function returning (status, text)."""

    def handler(make: Callable[[], tuple[int, str]]) -> Callable[[web.Request], object]:
        async def handle(_request: web.Request) -> web.Response:
            status, text = make()
            return web.Response(status=status, text=text, content_type="text/plain")

        return handle

    app = web.Application()
    for path, make in routes.items():
        app.router.add_get(path, handler(make))  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, listen.host, listen.port).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ListenError(f"{listen.flag}: cannot listen on {listen}: {reason}") from None
    bound = ", ".join(f"{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple))
    log.info("serving %s on %s", ", ".join(routes), bound or listen)
    return runner
