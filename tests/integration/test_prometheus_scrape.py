"""A real Prometheus scraping the sandbox's simulated traffic, and serving backfilled blocks: the PromQL
an AnalysisTemplate uses gives the error ratio and latency quantiles the pod annotations ask for."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import kubernetes
import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer, Sample, counter_series, write_openmetrics
from tests.fixtures.kube import api_client, request_body
from tests.fixtures.manifests import sandbox_replicaset

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
StartPrometheus = Callable[..., PrometheusServer]  # the fixtures of tests/integration/conftest.py

NS = "default"
HASH = "rollouts_pod_template_hash"
ERROR_RATIO = (
    'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[10s])) by (rollouts_pod_template_hash)'
    ' / sum(rate(http_requests_total{{service="{svc}"}}[10s])) by (rollouts_pod_template_hash)'
)
P50 = (
    'histogram_quantile(0.5, sum(rate(http_request_duration_seconds_bucket{{service="{svc}"}}[10s]))'
    " by (le, rollouts_pod_template_hash))"
)


@pytest.fixture(scope="module")
def scraping(traffic_sandbox: ThreadedSandbox, start_module_prometheus: StartPrometheus) -> PrometheusServer:
    """Stable (2 pods, no errors, 10 ms) and canary (1 pod, 20 % errors, 120 ± 10 ms) behind Service `web`,
    scraped every second until `rate(...[10s])` has several samples for both."""
    assert traffic_sandbox.kubeconfig_path is not None and traffic_sandbox.metrics_url is not None
    with api_client(traffic_sandbox.kubeconfig_path) as api:
        kubernetes.client.CoreV1Api(api).create_namespaced_service(
            NS,
            request_body({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
        apps = kubernetes.client.AppsV1Api(api)
        apps.create_namespaced_replica_set(NS, request_body(sandbox_replicaset("web-stable", "web", "stable1", 2)))
        apps.create_namespaced_replica_set(
            NS,
            request_body(
                sandbox_replicaset(
                    "web-canary", "web", "canary1", 1, error_rate="0.2", latency_ms="120", latency_jitter_ms="10"
                )
            ),
        )
    prometheus = start_module_prometheus(targets=[traffic_sandbox.metrics_url])
    prometheus.wait_for(
        'count_over_time(http_requests_total{service="web",code="200"}[10s])',
        lambda result: len(result) == 3 and all(float(r["value"][1]) >= 5 for r in result),
        timeout=30,
    )
    return prometheus


def test_the_sandbox_is_scraped(scraping: PrometheusServer, traffic_sandbox: ThreadedSandbox) -> None:
    (target,) = scraping.targets_health()
    assert target["health"] == "up", target["lastError"]
    assert target["scrapeUrl"] == traffic_sandbox.metrics_url
    pods = scraping.query_by('count(http_requests_total{service="web"}) by (pod)', "pod")
    assert len(pods) == 3 and set(pods.values()) == {2.0}  # each pod: code 200 and code 500


def test_error_ratio_per_version(scraping: PrometheusServer) -> None:
    ratio = scraping.query_by(ERROR_RATIO.format(svc="web"), HASH)
    assert set(ratio) == {"stable1", "canary1"}
    assert ratio["stable1"] == 0.0  # present and zero, not absent
    assert ratio["canary1"] == pytest.approx(0.2, abs=0.06)
    # [5s]: a window the scraped history covers fully (rate divides by the window, not by the data's span)
    rate = scraping.query_by('sum(rate(http_requests_total{service="web"}[5s])) by (rollouts_pod_template_hash)', HASH)
    assert rate["canary1"] / (rate["canary1"] + rate["stable1"]) == pytest.approx(1 / 3, abs=0.06)
    assert rate["canary1"] + rate["stable1"] == pytest.approx(600, rel=0.15)


def test_latency_quantiles_per_version(scraping: PrometheusServer) -> None:
    p50 = scraping.query_by(P50.format(svc="web"), HASH)
    # histogram_quantile interpolates inside the bucket: (0.1, 0.25] for 120 ms, (0.005, 0.01] for 10 ms
    assert 0.1 < p50["canary1"] <= 0.25
    assert 0.005 < p50["stable1"] <= 0.01
    mean = scraping.query_by(
        'sum(rate(http_request_duration_seconds_sum{service="web"}[10s])) by (rollouts_pod_template_hash)'
        ' / sum(rate(http_request_duration_seconds_count{service="web"}[10s])) by (rollouts_pod_template_hash)',
        HASH,
    )
    assert mean["canary1"] == pytest.approx(0.120, abs=0.01)
    assert mean["stable1"] == pytest.approx(0.010, abs=0.001)


def test_backfilled_blocks_are_queryable(
    tmp_path: Path, start_prometheus: StartPrometheus, promtool_binary: str
) -> None:
    """Counters for the last 50 minutes, written as OpenMetrics and turned into blocks by promtool before
    Prometheus starts: range and instant queries over that past return them."""
    now = time.time()
    start, end = now - 50 * 60, now - 60
    samples: list[Sample] = []
    for version, rps, errors in (("stable1", 10.0, 0.0), ("canary1", 5.0, 0.5)):
        labels = {"namespace": NS, "service": "web", HASH: version}
        samples += counter_series("http_requests_total", {**labels, "code": "200"}, rps - errors, start, end, 15)
        samples += counter_series("http_requests_total", {**labels, "code": "500"}, errors, start, end, 15)
    path = write_openmetrics(tmp_path / "history.om", samples, {"http_requests": "counter"})
    assert path.read_text().endswith("# EOF\n")

    prometheus = start_prometheus(backfill_files=[path], promtool=promtool_binary)
    assert any(p.is_dir() and (p / "meta.json").exists() for p in prometheus.data_dir.iterdir())
    at = now - 10 * 60
    ratio = prometheus.query_by(ERROR_RATIO.format(svc="web").replace("[10s]", "[5m]"), HASH, at=at)
    assert ratio == pytest.approx({"stable1": 0.0, "canary1": 0.1})
    matrix = prometheus.query_range(
        'sum(rate(http_requests_total{service="web"}[1m])) by (rollouts_pod_template_hash)', start + 120, end, 60
    )
    by_version = {r["metric"][HASH]: [float(v) for _, v in r["values"]] for r in matrix}
    assert len(by_version["stable1"]) >= 40
    assert by_version["stable1"] == pytest.approx([10.0] * len(by_version["stable1"]))
    assert by_version["canary1"] == pytest.approx([5.0] * len(by_version["canary1"]))
    # The oldest sample survives the server's 1 h retention and is where we put it.
    first = prometheus.query('http_requests_total{rollouts_pod_template_hash="stable1",code="200"}', at=start + 1)
    assert [float(r["value"][1]) for r in first] == [0.0]
