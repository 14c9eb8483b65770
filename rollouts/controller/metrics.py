"""The controller's own ``/metrics`` (Prometheus text format) and ``/healthz``.

Small on purpose: counters and a histogram kept in dicts, rendered on request."""

from __future__ import annotations

import logging
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
            "# HELP pyrollouts_rollout_phase The phase of each Rollout (1 for the current phase).",
            "# TYPE pyrollouts_rollout_phase gauge",
        ]
        for ns, name, phase in sorted(self.phases()):
            lines.append(f"pyrollouts_rollout_phase{_labels([('namespace', ns), ('name', name), ('phase', phase)])} 1")
        return "\n".join(lines) + "\n"


async def serve(port: int, routes: dict[str, Callable[[], tuple[int, str]]], host: str = "0.0.0.0") -> web.AppRunner:
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
    await web.TCPSite(runner, host, port).start()
    log.info("serving %s on %s:%d", ", ".join(routes), host, port)
    return runner
