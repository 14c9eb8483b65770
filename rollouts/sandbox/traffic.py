"""Simulated traffic: clients send requests to every routing object and every other Service with ready
endpoints, and /metrics shows them.

`TrafficGenerator` runs as an asyncio task on the sandbox's event loop (no threads). Every tick it sends
`rps * elapsed` requests (fractions carry over to the next tick) to each routing object — canary
Ingress pairs, VirtualServices, TrafficSplits, HTTPRoutes, GRPCRoutes — which spread them over pods as
the router says (`routing`), and to each Service no routing object covers, spread over its pods by
`traffic_split.split` (or any `Splitter`). Each pod answers by its annotations: a 5xx with
probability `sandbox.pyrollouts.io/error-rate`, after `latency-ms` ± `latency-jitter-ms` (normal,
clipped at 0). The results go to `RequestMetrics`:

    http_requests_total{namespace,service,pod,rollouts_pod_template_hash,code}          counter
    http_request_duration_seconds_bucket/_sum/_count{..same labels.., le}               histogram

Both codes ("200" and "500") exist from a pod's first request on, so an error ratio is 0, not absent,
for a healthy version. Series of pods that no longer exist are dropped (Prometheus marks them stale).
`MetricsServer` serves the text exposition format on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from rollouts.sandbox import routing, routing_gateways
from rollouts.sandbox.resources import ResourceType
from rollouts.sandbox.selectors import matches_labels, selector_from_label_selector
from rollouts.sandbox.store import Store
from rollouts.sandbox.traffic_split import Pod, Splitter, pod_behaviour, pod_template_hash, ready_pods, split

log = logging.getLogger("pyrollouts.sandbox.traffic")

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LABEL_NAMES = ("namespace", "service", "pod", "rollouts_pod_template_hash", "code")
CODES = ("200", "500")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"

# (namespace, service, pod, hash) — one version of one pod behind one Service
Target = tuple[str, str, str, str]


@dataclass
class Series:
    """One label set: a request count, plus the histogram (per-bucket counts, not cumulative; the last
    entry is +Inf) and the sum of latencies."""

    count: int = 0
    total_seconds: float = 0.0
    buckets: list[int] = field(default_factory=list)


class RequestMetrics:
    """The counters and histograms of the simulated requests, and their text exposition."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.bucket_bounds = np.asarray(buckets, dtype=float)
        self.buckets = buckets
        self.series: dict[Target, dict[str, Series]] = {}

    def observe(self, target: Target, code: str, latencies: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        """Record requests answered with `code`, one latency (seconds) each. Creates every code's series
        for the target on first sight, at zero."""
        codes = self.series.get(target)
        if codes is None:
            codes = self.series[target] = {c: self._new_series() for c in CODES}
        series = codes.get(code)
        if series is None:
            series = codes[code] = self._new_series()
        if latencies.size == 0:
            return
        series.count += int(latencies.size)
        series.total_seconds += float(latencies.sum())
        # bucket i holds latencies in (bound[i-1], bound[i]]: `le` is inclusive
        index = np.searchsorted(self.bucket_bounds, latencies, side="left")
        counts = np.bincount(index, minlength=len(self.buckets) + 1)
        for i, n in enumerate(counts.tolist()):
            series.buckets[i] += int(n)

    def _new_series(self) -> Series:
        return Series(buckets=[0] * (len(self.buckets) + 1))

    def retain(self, alive: Iterable[tuple[str, str]]) -> None:
        """Drop the series of pods not in `alive` ((namespace, pod) pairs)."""
        keep = set(alive)
        for target in [t for t in self.series if (t[0], t[2]) not in keep]:
            del self.series[target]

    def requests(self, **labels: str) -> int:
        """Total requests over the series whose labels match `labels` (for tests and the demo)."""
        total = 0
        for target, codes in self.series.items():
            for code, series in codes.items():
                values = dict(zip(LABEL_NAMES, (*target, code), strict=True))
                if all(values.get(k) == v for k, v in labels.items()):
                    total += series.count
        return total

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            f"# HELP {REQUESTS} Requests answered by the sandbox's simulated pods.",
            f"# TYPE {REQUESTS} counter",
        ]
        ordered = [(t, code, s) for t in sorted(self.series) for code, s in sorted(self.series[t].items())]
        for target, code, series in ordered:
            lines.append(f"{REQUESTS}{{{_labels(target, code)}}} {series.count}")
        lines += [
            f"# HELP {DURATION} Latency of the requests answered by the sandbox's simulated pods.",
            f"# TYPE {DURATION} histogram",
        ]
        for target, code, series in ordered:
            labels = _labels(target, code)
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), series.buckets, strict=True):
                cumulative += n
                lines.append(f'{DURATION}_bucket{{{labels},le="{_float(bound)}"}} {cumulative}')
            lines.append(f"{DURATION}_sum{{{labels}}} {_float(series.total_seconds)}")
            lines.append(f"{DURATION}_count{{{labels}}} {series.count}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(target: Target, code: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in zip(LABEL_NAMES, (*target, code), strict=True))


def _float(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class TrafficGenerator:
    """`rps` requests per second to each Service with ready endpoints, as an asyncio task.

    `tick(elapsed)` does one step synchronously (the task calls it every `interval` seconds with the time
    that really passed); tests may call it directly on a store nobody else touches. `rps` may change
    while the task runs (0 pauses the traffic).
    """

    def __init__(
        self,
        store: Store,
        rps: float,
        interval: float = 0.1,
        seed: int | None = 1,
        splitter: Splitter = split,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.store = store
        self.rps = float(rps)
        self.interval = interval
        self.splitter = splitter
        self.metrics = metrics if metrics is not None else RequestMetrics()
        self.rng = np.random.default_rng(seed)
        self._carry: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        reg = store.registry
        self._pods = _rtype(reg.by_key("/pods"))
        self._services = _rtype(reg.by_key("/services"))
        self._endpoints = _rtype(reg.by_key("/endpoints"))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-traffic")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            now = loop.time()
            if self.rps <= 0:
                last = now
                continue
            try:
                self.tick(min(now - last, 5.0))
            except Exception:  # a bad object must not end the traffic for everyone
                log.exception("simulated traffic tick failed")
            last = now

    def _routing_objects(self, key: str) -> list[dict[str, Any]]:
        rtype = self.store.registry.by_key(key)  # CRDs come and go: looked up on every tick
        return self.store.objects(rtype) if rtype is not None else []

    def tick(self, elapsed: float) -> int:
        """Send `rps * elapsed` requests (plus the carried fraction) to each routing object and each
        Service no routing object covers; the number sent (including requests no pod answered)."""
        pods_by_ns: dict[str, dict[str, Pod]] = {}
        for pod in self.store.objects(self._pods):
            meta = pod["metadata"]
            pods_by_ns.setdefault(meta.get("namespace", ""), {})[meta["name"]] = pod
        self.metrics.retain((ns, name) for ns, pods in pods_by_ns.items() for name in pods)
        services = {
            (s["metadata"].get("namespace", ""), s["metadata"]["name"]): s for s in self.store.objects(self._services)
        }
        entries = routing.routing_entries(
            virtual_services=self._routing_objects("networking.istio.io/virtualservices"),
            destination_rules=self._routing_objects("networking.istio.io/destinationrules"),
            gateway_routes=[
                *self._routing_objects("gateway.networking.k8s.io/httproutes"),
                *self._routing_objects("gateway.networking.k8s.io/grpcroutes"),
            ],
            traffic_splits=self._routing_objects("split.smi-spec.io/trafficsplits"),
            ingresses=self._routing_objects("networking.k8s.io/ingresses"),
            traefik_services=self._routing_objects("traefik.io/traefikservices"),
            service_exists=lambda ns, name: (ns, name) in services,
        )
        entries += routing_gateways.gateway_entries(
            apisix_routes=self._routing_objects("apisix.apache.org/apisixroutes"),
            mappings=self._routing_objects("getambassador.io/mappings"),
            mesh_services=self._routing_objects("appmesh.k8s.aws/virtualservices"),
            mesh_routers=self._routing_objects("appmesh.k8s.aws/virtualrouters"),
            mesh_nodes=self._routing_objects("appmesh.k8s.aws/virtualnodes"),
        )
        ready_cache: dict[tuple[str, str], list[Pod]] = {}

        def ready(namespace: str, name: str, labels: Mapping[str, str]) -> list[Pod]:
            key = (namespace, name)
            if key not in ready_cache:
                service = services.get(key)
                ready_cache[key] = (
                    ready_pods(
                        service, self.store.find(self._endpoints, namespace, name), pods_by_ns.get(namespace, {})
                    )
                    if service is not None
                    else []
                )
            if not labels:
                return ready_cache[key]
            wanted = selector_from_label_selector({"matchLabels": dict(labels)})
            return [p for p in ready_cache[key] if matches_labels(wanted, (p.get("metadata") or {}).get("labels"))]

        sent = 0
        seen: set[tuple[str, str]] = set()
        covered: set[tuple[str, str]] = set()
        for entry in entries:
            covered |= entry.covered
            plain, plain_lost = routing.pod_shares(entry.plain, ready)
            header, header_lost = routing.pod_shares(entry.with_header, ready) if entry.header_fraction else ([], 0.0)
            if not plain and not header:
                continue
            key = ("", entry.key)
            seen.add(key)
            count = self._due(key, elapsed)
            with_header = int(self.rng.binomial(count, entry.header_fraction)) if entry.header_fraction else 0
            self._send(entry.service_label, plain, count - with_header, plain_lost)
            self._send(entry.service_label, header, with_header, header_lost)
            sent += count
        for (namespace, name), service in services.items():
            if (namespace, name) in covered:
                continue
            endpoints = self.store.find(self._endpoints, namespace, name)
            weights = [(p, w) for p, w in self.splitter(service, endpoints, pods_by_ns.get(namespace, {})) if w > 0]
            if not weights:
                continue
            key = (namespace, name)
            seen.add(key)
            count = self._due(key, elapsed)
            self._send(name, weights, count)
            sent += count
        for key in [k for k in self._carry if k not in seen]:
            del self._carry[key]
        return sent

    def _due(self, key: tuple[str, str], elapsed: float) -> int:
        due = self.rps * max(elapsed, 0.0) + self._carry.get(key, 0.0)
        count = int(due)
        self._carry[key] = due - count
        return count

    def _send(self, service: str, weights: list[tuple[Pod, float]], count: int, lost: float = 0.0) -> None:
        """Spread `count` requests over pods by weight; the `lost` share reaches no pod (not recorded)."""
        total = sum(w for _, w in weights) + lost
        if count <= 0 or not weights or total <= 0:
            return
        per_pod = self.rng.multinomial(count, [w / total for _, w in weights] + [lost / total])
        for (pod, _), n in zip(weights, per_pod.tolist()[:-1], strict=True):
            behaviour = pod_behaviour(pod)
            namespace = str(pod["metadata"].get("namespace", ""))
            target = (namespace, service, str(pod["metadata"]["name"]), pod_template_hash(pod))
            latencies = self.rng.normal(behaviour.latency_seconds, behaviour.jitter_seconds, int(n))
            np.clip(latencies, 0.0, None, out=latencies)
            errors = int(self.rng.binomial(int(n), behaviour.error_rate)) if n else 0
            self.metrics.observe(target, "500", latencies[:errors])
            self.metrics.observe(target, "200", latencies[errors:])


class MetricsServer:
    """`/metrics` for a real Prometheus to scrape, on its own port (0: a free one)."""

    def __init__(self, metrics: RequestMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def _handle(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("sandbox traffic metrics at %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _rtype(rtype: ResourceType | None) -> ResourceType:
    assert rtype is not None
    return rtype


def parse_text_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A strict reader of the text format this module writes (and Prometheus reads): sample name and
    sorted labels -> value. Raises ValueError on any line it cannot read. For tests and the demo."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    types: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                raise ValueError(f"line {number}: bad comment {line!r}")
            if parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError(f"line {number}: bad TYPE {line!r}")
                types[parts[2]] = parts[3]
            continue
        name, labels, rest = _sample(line, number)
        family = next((f for f in types if name == f or (name.startswith(f + "_") and types[f] == "histogram")), None)
        if family is None:
            raise ValueError(f"line {number}: sample {name!r} before its TYPE")
        try:
            value = float(rest.replace("+Inf", "inf").replace("-Inf", "-inf"))
        except ValueError:
            raise ValueError(f"line {number}: bad value {rest!r}") from None
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ValueError(f"line {number}: duplicate sample {line!r}")
        samples[key] = value
    if text and not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    return samples


def _sample(line: str, number: int) -> tuple[str, dict[str, str], str]:
    i = 0
    while i < len(line) and (line[i].isalnum() or line[i] in "_:"):
        i += 1
    name = line[:i]
    if not name or name[0].isdigit():
        raise ValueError(f"line {number}: bad metric name in {line!r}")
    labels: dict[str, str] = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while line[i] != "}":
            j = line.index("=", i)
            key = line[i:j]
            if not key.replace("_", "a").isalnum() or line[j + 1] != '"':
                raise ValueError(f"line {number}: bad label in {line!r}")
            k = j + 2
            value = []
            while line[k] != '"':
                if line[k] == "\\":
                    k += 1
                    value.append({"n": "\n", "\\": "\\", '"': '"'}[line[k]])
                else:
                    value.append(line[k])
                k += 1
            if key in labels:
                raise ValueError(f"line {number}: duplicate label {key!r}")
            labels[key] = "".join(value)
            i = k + 1
            if line[i] == ",":
                i += 1
        i += 1
    if i >= len(line) or line[i] != " ":
        raise ValueError(f"line {number}: expected a space before the value in {line!r}")
    return name, labels, line[i + 1 :]


def series_value(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


__all__ = [
    "BUCKETS",
    "CONTENT_TYPE",
    "MetricsServer",
    "RequestMetrics",
    "TrafficGenerator",
    "parse_text_metrics",
    "series_value",
]
