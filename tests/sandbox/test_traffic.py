"""Simulated traffic through the sandbox as clients see it: objects created with the official client,
requests split by ready pods with per-version error rates, `/metrics` served and strictly parseable, and
the `pyrollouts sandbox --traffic-rps/--metrics-port` flags."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import free_port
from rollouts.sandbox.traffic import CONTENT_TYPE, parse_text_metrics, series_value
from tests.fixtures.kube import api_client, request_body
from tests.fixtures.manifests import sandbox_replicaset
from tests.fixtures.tools import REPO, deadline_after

NS = "default"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


@pytest.fixture(scope="module")
def traffic_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    workdir = tmp_path_factory.mktemp("traffic")
    with ThreadedSandbox(workdir / "kubeconfig", default_ready_after=0.1, traffic_rps=1000, metrics_port=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def k8s(traffic_sandbox: ThreadedSandbox) -> Iterator[kubernetes.client.ApiClient]:
    assert traffic_sandbox.kubeconfig_path is not None
    with api_client(traffic_sandbox.kubeconfig_path) as client:
        yield client


def scrape(sb: ThreadedSandbox) -> Samples:
    assert sb.metrics_url is not None
    response = httpx.get(sb.metrics_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse_text_metrics(response.text)


def requests(samples: Samples, **labels: str) -> float:
    return series_value(samples, "http_requests_total", **labels)


def steady(sb: ThreadedSandbox, ready: Callable[[Samples], bool], seconds: float = 2.0) -> tuple[Samples, Samples]:
    """Wait until `ready(samples)`, then two scrapes `seconds` apart: the traffic in between."""
    deadline = deadline_after(15)
    while not ready(first := scrape(sb)):
        assert time.monotonic() < deadline, "the traffic never reached the expected pods"
        time.sleep(0.1)
    time.sleep(seconds)
    return first, scrape(sb)


def delta(before: Samples, after: Samples, **labels: str) -> float:
    return requests(after, **labels) - requests(before, **labels)


@pytest.mark.slow
def test_requests_split_by_ready_pods_with_each_versions_error_rate(
    traffic_sandbox: ThreadedSandbox, k8s: kubernetes.client.ApiClient
) -> None:
    core, apps = kubernetes.client.CoreV1Api(k8s), kubernetes.client.AppsV1Api(k8s)
    core.create_namespaced_service(NS, request_body(service("split", "split")))
    apps.create_namespaced_replica_set(NS, request_body(sandbox_replicaset("split-stable", "split", "stable1", 2)))
    apps.create_namespaced_replica_set(
        NS, request_body(sandbox_replicaset("split-canary", "split", "canary1", 1, error_rate="0.2"))
    )

    def all_pods(want: int) -> Callable[[Samples], bool]:
        # every ready pod has its series (at zero at least) once it got a request
        return lambda s: len({dict(k[1])["pod"] for k in s if dict(k[1]).get("service") == "split"}) == want

    before, after = steady(traffic_sandbox, all_pods(3))
    total = delta(before, after, service="split")
    canary = delta(before, after, service="split", rollouts_pod_template_hash="canary1")
    assert 1400 < total < 3000  # about 1000/s for 2 s (plus the scrapes' own time)
    assert canary / total == pytest.approx(1 / 3, abs=0.05)
    canary_errors = delta(before, after, service="split", rollouts_pod_template_hash="canary1", code="500")
    assert canary_errors / canary == pytest.approx(0.2, abs=0.05)
    assert delta(before, after, rollouts_pod_template_hash="stable1", code="500") == 0
    assert requests(after, rollouts_pod_template_hash="stable1", code="500") == 0  # present, at zero
    assert {dict(k[1])["namespace"] for k in after if k[0] == "http_requests_total"} == {NS}

    # A bigger canary gets a bigger share: 3 canary pods, 2 stable -> 3/5.
    apps.patch_namespaced_replica_set_scale("split-canary", NS, {"spec": {"replicas": 3}})
    before, after = steady(traffic_sandbox, all_pods(5))
    share = delta(before, after, service="split", rollouts_pod_template_hash="canary1") / delta(
        before, after, service="split"
    )
    assert share == pytest.approx(3 / 5, abs=0.05)

    # Pods that go away take their series with them.
    apps.delete_namespaced_replica_set("split-canary", NS, propagation_policy="Background")
    deadline = deadline_after(10)
    while requests(scrape(traffic_sandbox), rollouts_pod_template_hash="canary1") > 0:
        assert time.monotonic() < deadline, "the deleted canary's series stayed"
        time.sleep(0.1)
    core.delete_namespaced_service("split", NS)
    apps.delete_namespaced_replica_set("split-stable", NS, propagation_policy="Background")


def test_latency_histogram_follows_the_annotations(
    traffic_sandbox: ThreadedSandbox, k8s: kubernetes.client.ApiClient
) -> None:
    core, apps = kubernetes.client.CoreV1Api(k8s), kubernetes.client.AppsV1Api(k8s)
    core.create_namespaced_service(NS, request_body(service("slow", "slow")))
    apps.create_namespaced_replica_set(
        NS, request_body(sandbox_replicaset("slow-v1", "slow", "slowv1", 1, latency_ms="120", latency_jitter_ms="5"))
    )
    before, after = steady(traffic_sandbox, lambda s: requests(s, service="slow") > 0, seconds=1.0)

    def hist(samples: Samples, suffix: str, **labels: str) -> float:
        return series_value(samples, f"http_request_duration_seconds_{suffix}", service="slow", **labels)

    count = hist(after, "count") - hist(before, "count")
    assert count > 500
    assert (hist(after, "sum") - hist(before, "sum")) / count == pytest.approx(0.120, abs=0.01)
    # normal(120 ms, 5 ms): all but ~3e-5 in (0.1, 0.25] (with 10 ms, 2.3% fall below 0.1 s and a 3% bound
    # fails in about one run in twenty)
    in_bucket = (hist(after, "bucket", le="0.25") - hist(after, "bucket", le="0.1")) - (
        hist(before, "bucket", le="0.25") - hist(before, "bucket", le="0.1")
    )
    assert in_bucket / count > 0.97
    assert hist(after, "bucket", le="+Inf") == hist(after, "count")
    core.delete_namespaced_service("slow", NS)
    apps.delete_namespaced_replica_set("slow-v1", NS, propagation_policy="Background")


def test_services_without_ready_endpoints_get_no_traffic(
    traffic_sandbox: ThreadedSandbox, k8s: kubernetes.client.ApiClient
) -> None:
    core, apps = kubernetes.client.CoreV1Api(k8s), kubernetes.client.AppsV1Api(k8s)
    core.create_namespaced_service(NS, request_body(service("dark", "dark")))
    apps.create_namespaced_replica_set(
        NS, request_body(sandbox_replicaset("dark-v1", "dark", "darkv1", 2, never_ready="true"))
    )
    time.sleep(1.0)
    assert requests(scrape(traffic_sandbox), service="dark") == 0
    assert not any(dict(k[1]).get("service") == "dark" for k in scrape(traffic_sandbox))
    core.delete_namespaced_service("dark", NS)
    apps.delete_namespaced_replica_set("dark-v1", NS, propagation_policy="Background")


def test_sandbox_command_traffic_flags(tmp_path: Path) -> None:
    kubeconfig, port = tmp_path / "kc", free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rollouts.main",
            "sandbox",
            "--kubeconfig",
            str(kubeconfig),
            "--traffic-rps",
            "50",
            "--metrics-port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.fullmatch(
            rf"simulated traffic: 50 requests/s per Service; metrics at http://127\.0\.0\.1:{port}/metrics\n", line
        ), line
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert parse_text_metrics(response.text) == {}  # no Services yet: no series
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_sandbox_command_rejects_negative_rates(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--kubeconfig", str(tmp_path / "kc"), "--traffic-rps", "-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--traffic-rps must be 0 or more" in result.stderr
    assert not (tmp_path / "kc").exists()


def test_traffic_rate_can_change_while_running(tmp_path: Path) -> None:
    with (
        ThreadedSandbox(tmp_path / "kc", default_ready_after=0.05, metrics_port=0) as sb,
        api_client(tmp_path / "kc") as client,
    ):
        kubernetes.client.CoreV1Api(client).create_namespaced_service(NS, request_body(service("idle", "idle")))
        kubernetes.client.AppsV1Api(client).create_namespaced_replica_set(
            NS, request_body(sandbox_replicaset("idle-v1", "idle", "v1", 1))
        )
        time.sleep(0.8)
        assert requests(scrape(sb), service="idle") == 0  # served, but no traffic at rate 0
        sb.set_traffic_rps(500)
        before, after = steady(sb, lambda s: requests(s, service="idle") > 0, seconds=1.0)
        assert 300 < delta(before, after, service="idle") < 900
        sb.set_traffic_rps(0)
        time.sleep(0.3)
        paused = scrape(sb)
        time.sleep(0.5)
        assert requests(scrape(sb), service="idle") == requests(paused, service="idle")
