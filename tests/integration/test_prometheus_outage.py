"""Prometheus stopped in the middle of an `analysis` step (issue 4): the controller subprocess measures a
healthy canary's error rate through a real Prometheus scraping the sandbox's simulated traffic. Once a
measurement is Successful, Prometheus is stopped: the following measurements are Error and name the
unreachable Prometheus; the run stays Running and the rollout waits at the step while the consecutive
errors are within `consecutiveErrorLimit`; one more error makes the run Error and aborts the rollout.
Prometheus restarted (same port) before the limit: the run recovers and the rollout is promoted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer
from tests.fixtures.controller import prometheus_env, running_controller
from tests.fixtures.manifests import analysis_step_rollout, service_manifest
from tests.fixtures.sandbox import ROLLOUTS_API as API
from tests.fixtures.sandbox import RolloutsApi, traffic_sandbox_with_crds
from tests.fixtures.tools import deadline_after
from tests.fixtures.tools import poll as wait

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
StartPrometheus = Callable[..., PrometheusServer]  # the fixtures of tests/integration/conftest.py

METRIC = "error-rate"
LIMIT = 2  # consecutiveErrorLimit
RECOVER_LIMIT = 4


def template(count: int, limit: int) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": METRIC},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [
                {
                    "name": METRIC,
                    "interval": "1s",
                    "count": count,
                    "failureLimit": 0,
                    "consecutiveErrorLimit": limit,
                    "successCondition": "len(result) == 0 || result[0] <= 0.05",
                    "provider": {
                        "prometheus": {
                            "query": (
                                'sum(rate(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",'
                                'code=~"5.."}[10s])) / sum(rate(http_requests_total'
                                '{rollouts_pod_template_hash="{{args.canary-hash}}"}[10s]))'
                            )
                        }
                    },
                }
            ],
        },
    }


def rollout(name: str, image: str) -> dict[str, Any]:
    args = [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    return analysis_step_rollout(name, METRIC, args, {"sandbox.pyrollouts.io/error-rate": "0"}, image=image)


class Env(RolloutsApi):
    """The sandbox's API in one namespace, with the Prometheus the controller subprocess uses."""

    def __init__(self, client: httpx.Client, ns: str, prometheus: PrometheusServer) -> None:
        super().__init__(client, ns)
        self.prometheus = prometheus

    def set_image(self, name: str, image: str) -> None:
        self.patch_rollout(name, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}])

    def start_canary(self, name: str, count: int, limit: int) -> str:
        """A Healthy first version, then a new image: the name of the analysis step's run."""
        self.create(f"{API}/{self.ns}/analysistemplates", template(count, limit))
        self.create(f"/api/v1/namespaces/{self.ns}/services", service_manifest(name))
        self.create(f"{API}/{self.ns}/rollouts", rollout(name, "app:1"))
        wait("the first version to be Healthy", lambda: self.status(name).get("phase") == "Healthy", 15)
        self.set_image(name, "app:2")
        return wait("the analysis step's AnalysisRun", lambda: self.step_run(name), 15)


def metric_result(run: dict[str, Any]) -> dict[str, Any]:
    for result in (run.get("status") or {}).get("metricResults") or []:
        if result.get("name") == METRIC:
            return dict(result)
    return {}


def measurements(run: dict[str, Any]) -> list[dict[str, Any]]:
    return list(metric_result(run).get("measurements") or [])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    """Simulated traffic (200 requests/s per Service) and the CRDs."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with traffic_sandbox_with_crds(tmp_path_factory.mktemp("outage-sandbox"), traffic_rps=200) as sb:
        yield sb


@pytest.fixture
def env(
    sandbox: ThreadedSandbox, start_prometheus: StartPrometheus, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Env]:
    """A Prometheus scraping the sandbox and a controller subprocess using it; both stopped afterwards."""
    assert sandbox.kubeconfig_path is not None and sandbox.metrics_url is not None
    prometheus = start_prometheus(targets=[sandbox.metrics_url])
    ns = f"outage-{request.node.name.removeprefix('test_')[:30].replace('_', '-')}"
    with (
        running_controller(sandbox.kubeconfig_path, prometheus_env(sandbox.kubeconfig_path, prometheus.url), tmp_path),
        httpx.Client(base_url=sandbox.url, timeout=10) as client,
    ):
        env = Env(client, ns, prometheus)
        env.new_namespace()
        yield env


def wait_for_success_then_stop(env: Env, run_name: str) -> int:
    """Stop Prometheus once the run has a Successful measurement of the canary's scraped error rate (0, not
    the empty answer before the first scrapes); the number of measurements then."""
    before = wait(
        "a Successful measurement with an error rate of 0",
        lambda: (lambda ms: ms if any(m.get("phase") == "Successful" and m.get("value") == "[0]" for m in ms)
                 else None)(measurements(env.run(run_name))),
        25,
        interval=0.05,
    )
    env.prometheus.stop()
    assert env.run(run_name)["status"]["phase"] == "Running"
    return len(before)


def test_prometheus_stopped_errors_then_abort_after_the_limit(env: Env) -> None:
    run_name = env.start_canary("outage", count=12, limit=LIMIT)
    wait_for_success_then_stop(env, run_name)

    # Until the limit is exceeded: snapshots of the rollout (read first), then the run. A rollout seen
    # aborted before a run still Running within the limit is the bug this test is after.
    seen: list[tuple[str, bool, int, str, int]] = []  # rollout: phase, abort, step; run: phase, consecutiveError
    deadline = deadline_after(20)
    while True:
        st = env.status("outage")
        run = env.run(run_name)
        result = metric_result(run)
        consecutive = int(result.get("consecutiveError") or 0)
        seen.append((str(st.get("phase")), bool(st.get("abort")), int(st.get("currentStepIndex") or 0),
                     str(run["status"].get("phase")), consecutive))
        if run["status"].get("phase") != "Running":
            break
        assert time.monotonic() < deadline, f"the run stayed Running: {seen[-3:]}"
        time.sleep(0.05)
    within = [s for s in seen if s[4] <= LIMIT]
    assert {s[4] for s in within} >= {1, LIMIT}, f"never saw 1 and {LIMIT} consecutive errors: {seen}"
    for snapshot in within:  # waiting at the analysis step (index 1), not aborted
        rollout_phase, aborted, step, run_phase, _ = snapshot
        assert run_phase == "Running" and rollout_phase in ("Paused", "Progressing"), snapshot
        assert step == 1 and not aborted, snapshot

    # The limit exceeded: the run is Error, every measurement since the outage is Error naming Prometheus.
    run = env.run(run_name)
    assert run["status"]["phase"] == "Error", run["status"]
    result = metric_result(run)
    assert result["phase"] == "Error" and result["consecutiveError"] == LIMIT + 1, result
    errors = [m for m in result["measurements"] if m["phase"] == "Error"]
    assert len(errors) == LIMIT + 1
    last_success = max(i for i, m in enumerate(result["measurements"]) if m["phase"] == "Successful")
    assert result["measurements"][last_success + 1 :] == errors  # nothing but errors after the outage
    for m in errors:
        assert f"cannot reach Prometheus at {env.prometheus.url}" in m["message"], m
    assert f"consecutiveErrors ({LIMIT + 1}) > consecutiveErrorLimit ({LIMIT})" in run["status"]["message"]

    # ... and the rollout is aborted, its message naming the metric.
    st = env.wait_phase("outage", "Degraded", 10)
    assert st.get("abort") is True
    assert st["message"].startswith("RolloutAborted"), st["message"]
    assert f'Metric "{METRIC}" assessed Error' in st["message"], st["message"]
    conditions = {c["type"]: c for c in st.get("conditions") or []}
    assert conditions["Progressing"]["reason"] == "RolloutAborted", conditions


def test_prometheus_restarted_within_the_limit_recovers_and_promotes(env: Env) -> None:
    # A limit of 4 leaves room for Prometheus's restart (its WAL replay) at one measurement a second.
    run_name = env.start_canary("recover", count=8, limit=RECOVER_LIMIT)
    wait_for_success_then_stop(env, run_name)

    first_error = wait(
        "an Error measurement",
        lambda: (lambda r: r if metric_result(r).get("consecutiveError") == 1 else None)(env.run(run_name)),
        10,
        interval=0.05,
    )
    assert "cannot reach Prometheus at" in measurements(first_error)[-1]["message"]
    env.prometheus.start()  # same port, same data: the controller's address stays right
    assert env.rollout("recover")["status"].get("phase") in ("Paused", "Progressing")

    run = wait(
        "the run to complete",
        lambda: (lambda r: r if r["status"].get("phase") != "Running" else None)(env.run(run_name)),
        20,
    )
    result = metric_result(run)
    assert run["status"]["phase"] == "Successful", run["status"]
    assert 1 <= result["error"] <= RECOVER_LIMIT and result["consecutiveError"] == 0, result
    assert result["measurements"][-1]["phase"] == "Successful"
    st = env.wait_promoted("recover", 15)
    assert not st.get("abort")
