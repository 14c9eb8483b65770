"""The work queue of a controller loop, and client-go's workqueue metrics about it.

:class:`WorkQueue` runs one reconcile at a time per key (many keys in parallel), coalesces bursts of
events, and wakes a key at the time its reconcile asked for instead of polling. :class:`QueueMetrics`
exposes what Argo Rollouts' queues expose (client-go's ``workqueue_*`` names, labelled by queue name:
``Rollouts``, ``AnalysisRuns``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Key = tuple[str, str]  # (namespace, name)

# client-go's buckets for the queue and work durations: 10 ns to 10 s, by powers of ten.
DURATION_BUCKETS = tuple(10.0**exp for exp in range(-8, 2))


class QueueMetrics(Collector):
    """``workqueue_adds_total``, ``_retries_total``, ``_queue_duration_seconds`` and
    ``_work_duration_seconds`` counted as they happen; ``workqueue_depth``,
    ``_unfinished_work_seconds`` and ``_longest_running_processor_seconds`` read from the queues when
    scraped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queues: dict[str, WorkQueue] = {}
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"], registry=registry)
        self.retries = Counter(
            "workqueue_retries", "Total number of retries handled by workqueue", ["name"], registry=registry
        )
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            ["name"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        registry.register(self)

    def retried(self, queue: str) -> None:
        """A reconcile from `queue` failed and is queued again after a back-off."""
        self.retries.labels(queue).inc()

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. "
            "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the "
            "rate at which this increases.",
            labels=["name"],
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=["name"],
        )
        now = time.monotonic()
        for name, queue in sorted(self.queues.items()):
            running = [now - started for started in queue.processing_since()]
            depth.add_metric([name], queue.depth())
            unfinished.add_metric([name], sum(running))
            longest.add_metric([name], max(running, default=0.0))
        yield from (depth, unfinished, longest)


class WorkQueue:
    """At most one reconcile per key at a time; a key queued while it runs is run once more after.
    With `metrics`, counted under `name` as client-go counts its named queues."""

    def __init__(
        self,
        work: Callable[[Key], Awaitable[float | None]],
        concurrency: int = 16,
        name: str = "",
        metrics: QueueMetrics | None = None,
    ) -> None:
        self._work = work
        self._dirty: set[Key] = set()
        self._queued_at: dict[Key, float] = {}
        self._processing: dict[Key, float] = {}
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self.name = name
        self.metrics = metrics
        if metrics is not None:
            metrics.queues[name] = self

    def depth(self) -> int:
        return len(self._dirty)

    def processing_since(self) -> list[float]:
        """When each reconcile now running started (time.monotonic)."""
        return list(self._processing.values())

    def add(self, key: Key) -> None:
        if key not in self._dirty:
            self._queued_at[key] = time.monotonic()
            if self.metrics is not None:
                self.metrics.adds.labels(self.name).inc()
        self._dirty.add(key)
        if key not in self._running:
            self._running[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"reconcile {key}")

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        existing = self._timers.get(key)
        if existing is not None:
            if existing[0] <= when:
                return
            existing[1].cancel()
        self._timers[key] = (when, loop.call_later(delay, self._fire, key))

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _run(self, key: Key) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                queued_at = self._queued_at.pop(key, time.monotonic())
                async with self._slots:
                    requeue = await self._timed(key, queued_at)
                if requeue is not None:
                    self.add_after(key, requeue)
        finally:
            self._running.pop(key, None)

    async def _timed(self, key: Key, queued_at: float) -> float | None:
        started = self._processing[key] = time.monotonic()
        try:
            return await self._work(key)
        finally:
            del self._processing[key]
            if self.metrics is not None:
                self.metrics.queue_duration.labels(self.name).observe(started - queued_at)
                self.metrics.work_duration.labels(self.name).observe(time.monotonic() - started)

    async def stop(self) -> None:
        """Cancel the timers and the running reconciles and forget the queued keys; add() works after."""
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._dirty.clear()
        self._queued_at.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
