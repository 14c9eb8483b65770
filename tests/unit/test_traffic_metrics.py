"""The simulated traffic's metrics: text exposition, the strict reader, and the generator's arithmetic
(driven tick by tick on a store with the simulated workloads, no HTTP)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from rollouts.sandbox.store import Store
from rollouts.sandbox.traffic import (
    BUCKETS,
    RequestMetrics,
    TrafficGenerator,
    parse_text_metrics,
    series_value,
)
from rollouts.sandbox.workloads import Workloads
from tests.fixtures.manifests import sandbox_replicaset

TARGET = ("default", "web", "web-abc-x1", "abc")


def test_render_counters_and_cumulative_histogram() -> None:
    metrics = RequestMetrics()
    metrics.observe(TARGET, "200", np.array([0.001, 0.005, 0.0051, 0.3, 20.0]))
    metrics.observe(TARGET, "500", np.array([0.01]))
    text = metrics.render()
    lines = text.splitlines()
    labels = 'namespace="default",service="web",pod="web-abc-x1",rollouts_pod_template_hash="abc"'
    assert lines[:4] == [
        "# HELP http_requests_total Requests answered by the sandbox's simulated pods.",
        "# TYPE http_requests_total counter",
        f'http_requests_total{{{labels},code="200"}} 5',
        f'http_requests_total{{{labels},code="500"}} 1',
    ]
    assert "# TYPE http_request_duration_seconds histogram" in lines
    ok = [line for line in lines if line.startswith("http_request_duration_seconds") and 'code="200"' in line]
    assert ok == [
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.005"}} 2',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.01"}} 3',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.025"}} 3',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.05"}} 3',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.1"}} 3',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.25"}} 3',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="0.5"}} 4',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="1.0"}} 4',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="2.5"}} 4',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="5.0"}} 4',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="10.0"}} 4',
        f'http_request_duration_seconds_bucket{{{labels},code="200",le="+Inf"}} 5',
        f'http_request_duration_seconds_sum{{{labels},code="200"}} {0.001 + 0.005 + 0.0051 + 0.3 + 20.0!r}',
        f'http_request_duration_seconds_count{{{labels},code="200"}} 5',
    ]
    assert text.endswith("\n")
    samples = parse_text_metrics(text)
    assert series_value(samples, "http_requests_total", rollouts_pod_template_hash="abc") == 6
    assert series_value(samples, "http_request_duration_seconds_bucket", code="500", le="0.01") == 1
    assert len(samples) == 2 + 2 * (len(BUCKETS) + 3)


def test_a_pod_gets_both_codes_at_zero_and_label_values_are_escaped() -> None:
    metrics = RequestMetrics()
    metrics.observe(("ns", 'we"b\\', "p\n1", ""), "200", np.array([]))
    samples = parse_text_metrics(metrics.render())
    assert series_value(samples, "http_requests_total", service='we"b\\', pod="p\n1", code="200") == 0
    assert series_value(samples, "http_requests_total", code="500") == 0
    assert ("http_requests_total", (("code", "500"), ("namespace", "ns"), ("pod", "p\n1"),
                                    ("rollouts_pod_template_hash", ""), ("service", 'we"b\\'))) in samples


def test_series_of_gone_pods_are_dropped() -> None:
    metrics = RequestMetrics()
    metrics.observe(TARGET, "200", np.array([0.01]))
    metrics.observe(("default", "web", "other", "def"), "200", np.array([0.01]))
    metrics.retain([("default", "other")])
    assert metrics.requests(pod="web-abc-x1") == 0
    assert metrics.requests(pod="other") == 1


@pytest.mark.parametrize(
    "bad",
    [
        "x 1\n",  # no TYPE
        "# TYPE x counter\nx{a=\"1\"} one\n",
        "# TYPE x counter\nx{a=\"1\",a=\"2\"} 1\n",
        "# TYPE x counter\nx{a=1} 1\n",
        "# TYPE x counter\nx 1\nx 2\n",
        "# TYPE x counter\nx 1",
        "# TYPE x cheese\nx 1\n",
        "# TYPE x counter\nx{a=\"1\"}1\n",
    ],
)
def test_the_reader_is_strict(bad: str) -> None:
    with pytest.raises((ValueError, IndexError, KeyError)):
        parse_text_metrics(bad)


# ---------------------------------------------------------------- the generator on a store


def replicaset(name: str, version: str, replicas: int, **annotations: str) -> dict[str, Any]:
    return sandbox_replicaset(name, "web", version, replicas, **annotations)


async def _cluster(*sets: dict[str, Any]) -> tuple[Store, Workloads]:
    store = Store()
    workloads = Workloads(store, default_ready_after=0.0)
    workloads.start(asyncio.get_running_loop())
    reg = store.registry
    services, rsets = reg.by_key("/services"), reg.by_key("apps/replicasets")
    assert services is not None and rsets is not None
    store.create(services, "default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    for rs in sets:
        store.create(rsets, "default", rs)
    for _ in range(100):
        await asyncio.sleep(0.01)
        endpoints = store.find(reg.by_key("/endpoints"), "default", "web")  # type: ignore[arg-type]
        want = sum(rs["spec"]["replicas"] for rs in sets)
        if endpoints and sum(len(s.get("addresses", [])) for s in endpoints["subsets"]) == want:
            return store, workloads
    raise AssertionError("endpoints never became ready")


def test_requests_follow_ready_pods_and_annotations() -> None:
    async def scenario() -> RequestMetrics:
        store, workloads = await _cluster(
            replicaset("web-stable", "stable", 2),
            replicaset("web-canary", "canary", 1, error_rate="0.2", latency_ms="120", latency_jitter_ms="10"),
        )
        generator = TrafficGenerator(store, rps=1000, seed=7)
        sent = sum(generator.tick(0.1) for _ in range(30))  # 3 s of traffic
        assert sent == 3000
        workloads.stop()
        return generator.metrics

    metrics = asyncio.run(scenario())
    total = metrics.requests(service="web")
    canary = metrics.requests(rollouts_pod_template_hash="canary")
    assert total == 3000
    assert canary / total == pytest.approx(1 / 3, abs=0.04)
    assert metrics.requests(rollouts_pod_template_hash="canary", code="500") / canary == pytest.approx(0.2, abs=0.04)
    assert metrics.requests(rollouts_pod_template_hash="stable", code="500") == 0
    samples = parse_text_metrics(metrics.render())
    seconds = "http_request_duration_seconds_sum"
    mean_canary = series_value(samples, seconds, rollouts_pod_template_hash="canary") / canary
    mean_stable = series_value(samples, seconds, rollouts_pod_template_hash="stable") / (total - canary)
    assert mean_canary == pytest.approx(0.120, abs=0.005)
    assert mean_stable == pytest.approx(0.010)  # no jitter: exactly the default 10 ms
    assert series_value(samples, "http_request_duration_seconds_bucket", rollouts_pod_template_hash="stable",
                        le="0.01") == total - canary


def test_fractions_carry_over_and_no_endpoints_no_requests() -> None:
    async def scenario() -> None:
        store, workloads = await _cluster(replicaset("web-stable", "stable", 1))
        generator = TrafficGenerator(store, rps=7, seed=1)
        assert sum(generator.tick(0.1) for _ in range(100)) in (69, 70)  # 10 s at 7/s, float steps
        rsets = store.registry.by_key("apps/replicasets")
        assert rsets is not None
        store.delete(rsets, "default", "web-stable")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not store.objects(store.registry.by_key("/pods")):  # type: ignore[arg-type]
                break
        assert generator.tick(10.0) == 0
        assert generator.metrics.series == {}  # the gone pod's series are dropped
        workloads.stop()

    asyncio.run(scenario())


def test_latency_is_clipped_at_zero() -> None:
    async def scenario() -> RequestMetrics:
        store, workloads = await _cluster(replicaset("web-fast", "fast", 1, latency_ms="0", latency_jitter_ms="5"))
        generator = TrafficGenerator(store, rps=2000, seed=3)
        generator.tick(1.0)
        workloads.stop()
        return generator.metrics

    metrics = asyncio.run(scenario())
    (target,) = metrics.series
    ok = metrics.series[target]["200"]
    # max(0, N(0, 5 ms)): half the requests take 0 s, the mean is 5 ms / sqrt(2 pi)
    assert ok.count == 2000
    assert ok.total_seconds / ok.count == pytest.approx(0.005 / math.sqrt(2 * math.pi), rel=0.1)
    assert ok.buckets[0] / ok.count == pytest.approx(0.5 + 0.3413, abs=0.04)  # <= 5 ms: below one sigma

