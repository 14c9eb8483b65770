"""Blue/green with analysis, end to end with the controller on a sandbox that sends simulated traffic.

Most tests play the analysis controller (the template's metric waits an hour, the test sets each run's
phase through `/status`), so the rollout reacts to that phase only: pre-promotion analysis failing (the
active Service never moves) and, after a retry, passing; post-promotion analysis failing (the active
Service goes back to the old stack) and passing. One test measures a Web metric against an endpoint the
test serves. The last one checks that the simulated traffic of each Service reaches the pods its
selector names, so an analysis of the preview or the active version measures what it claims to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rollouts.sandbox.traffic import parse_text_metrics
from tests.fixtures.analysis import HealthHandler, analysis_runs, current_run, serve_health, set_run_phase
from tests.fixtures.bluegreen import (
    ACTIVE,
    PREVIEW,
    bluegreen_manifest,
    hash_of,
    paused_before_promotion,
    selected,
    services,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, held_template, web_template
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox_handle

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TIMEOUT = 60.0
LATEST = {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
FAILED = 'Metric "check" assessed Failed due to failed (1) > failureLimit (0)'


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's sandbox also sends simulated traffic through every Service."""
    with traffic_sandbox_handle(tmp_path_factory.mktemp("bg-sandbox"), traffic_rps=200) as handle:
        yield handle


def template(name: str) -> dict[str, Any]:
    return held_template(name, "check", "hash")


def test_pre_promotion_analysis_failing_then_passing(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgpre")
    analysis = {"templates": [{"templateName": "pre"}], "args": [LATEST]}
    cluster.apply(
        ns,
        template("pre"),
        *services(),
        bluegreen_manifest(prePromotionAnalysis=analysis, abortScaleDownDelaySeconds=1),
    )
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert analysis_runs(cluster, ns) == {}  # nothing to analyse on the first deploy
    blue = hash_of(cluster, ns, "nginx:1")

    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "blueGreen", "prePromotionAnalysisRunStatus", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert name == f"web-{green}-2-pre"
    run = analysis_runs(cluster, ns)[name]
    assert run["metadata"]["labels"] == {HASH_LABEL: green, "rollout-type": "PrePromotion", "app": "web"}
    assert run["spec"]["args"] == [{"name": "hash", "value": green}]
    # analysis runs against the preview stack, which is up and selected by the preview Service only
    assert selected(cluster, ns, PREVIEW) == green and selected(cluster, ns, ACTIVE) == blue
    status = cluster.status(ns, "web")
    assert status["phase"] == "Progressing" and status["message"] == "active service cutover pending"

    set_run_phase(cluster, ns, name, "Failed", FAILED)
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=TIMEOUT)
    assert status["message"] == (
        f"RolloutAborted: Rollout aborted update to revision 2: Pre-promotion analysis phase error/failed: {FAILED}"
    )
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Failed"
    assert selected(cluster, ns, ACTIVE) == blue
    cluster.wait_sizes(ns, "web", {"nginx:1": 2}, timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == blue  # never moved

    # retry: a new run; it passes, and with auto-promotion the switch follows
    cluster.retry(ns, "web")
    second = current_run(cluster, ns, "blueGreen", "prePromotionAnalysisRunStatus", not_name=name, timeout=TIMEOUT)
    assert second == f"{name}.1"
    cluster.wait("the preview stack", lambda: cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2})
    assert selected(cluster, ns, ACTIVE) == blue
    set_run_phase(cluster, ns, second, "Successful")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["stableRS"] == green == selected(cluster, ns, ACTIVE)
    failed = f"PrePromotion Analysis Run '{name}' Status New: 'Failed'"
    assert any(r == "AnalysisRunFailed" and m.startswith(failed) for r, m in cluster.events(ns, "web"))


def test_post_promotion_analysis_failing_switches_back(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgpost")
    analysis = {"templates": [{"templateName": "post"}], "args": [LATEST]}
    cluster.apply(
        ns,
        template("post"),
        *services(),
        bluegreen_manifest(postPromotionAnalysis=analysis, scaleDownDelaySeconds=600, abortScaleDownDelaySeconds=1),
    )
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    blue = hash_of(cluster, ns, "nginx:1")

    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "blueGreen", "postPromotionAnalysisRunStatus", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert name == f"web-{green}-2-post"
    # switched; the old stack keeps its pods within its scale-down delay; not stable yet
    assert selected(cluster, ns, ACTIVE) == green
    status = cluster.wait_phase(ns, "web", "Progressing", message="waiting for analysis to complete", timeout=TIMEOUT)
    assert status["stableRS"] == blue
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}

    set_run_phase(cluster, ns, name, "Failed", FAILED)
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=TIMEOUT)
    assert "Post-promotion analysis phase error/failed" in status["message"]
    cluster.wait("the active Service back on the old stack", lambda: selected(cluster, ns, ACTIVE) == blue)
    cluster.wait_sizes(ns, "web", {"nginx:1": 2}, timeout=TIMEOUT)
    assert cluster.status(ns, "web")["stableRS"] == blue

    # a fixed version: post-promotion analysis passes, the new stack becomes stable
    cluster.set_image(ns, "web", "nginx:3")
    third = current_run(cluster, ns, "blueGreen", "postPromotionAnalysisRunStatus", not_name=name, timeout=TIMEOUT)
    set_run_phase(cluster, ns, third, "Successful")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["stableRS"] == hash_of(cluster, ns, "nginx:3") == selected(cluster, ns, ACTIVE)


@pytest.fixture
def health() -> Iterator[tuple[str, type[HealthHandler]]]:
    with serve_health() as served:
        yield served


def test_pre_promotion_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess, health: tuple[str, type[HealthHandler]]
) -> None:
    url, handler = health
    ns = cluster.new_namespace("bgweb")
    smoke = web_template("smoke", "hash", f"{url}/preview/{{{{args.hash}}}}")
    analysis = {"templates": [{"templateName": "smoke"}], "args": [LATEST]}
    cluster.apply(ns, smoke, *services(), bluegreen_manifest(prePromotionAnalysis=analysis))
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    cluster.set_image(ns, "web", "nginx:2")
    current_run(cluster, ns, "blueGreen", "prePromotionAnalysisRunStatus", timeout=TIMEOUT)
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert status["stableRS"] == green == selected(cluster, ns, ACTIVE)
    assert f"/preview/{green}" in handler.seen
    [run] = analysis_runs(cluster, ns).values()
    assert run["status"]["phase"] == "Successful"


def traffic(sandbox: SandboxHandle, ns: str, service: str, seconds: float = 1.5) -> dict[str, float]:
    """Requests the simulated clients of `service` sent per pod-template hash over `seconds`."""
    url = sandbox.threaded.metrics_url
    assert url is not None

    def per_hash() -> dict[str, float]:
        samples = parse_text_metrics(httpx.get(url, timeout=5).text)
        out: dict[str, float] = {}
        for (name, labels), value in samples.items():
            found = dict(labels)
            if name != "http_requests_total" or found.get("namespace") != ns or found.get("service") != service:
                continue
            pod_hash = found.get("rollouts_pod_template_hash", "")
            out[pod_hash] = out.get(pod_hash, 0.0) + value
        return out

    before = per_hash()
    time.sleep(seconds)
    after = per_hash()
    return {h: after[h] - before.get(h, 0.0) for h in after if after[h] - before.get(h, 0.0) > 0}


def test_simulated_traffic_follows_the_active_and_preview_services(
    cluster: Cluster, controller: ControllerProcess, sandbox: SandboxHandle
) -> None:
    ns = cluster.new_namespace("bgtraffic")
    blue = paused_before_promotion(cluster, ns, TIMEOUT, scaleDownDelaySeconds=600)
    green = hash_of(cluster, ns, "nginx:2")
    assert set(cluster.wait("active traffic", lambda: traffic(sandbox, ns, ACTIVE))) == {blue}
    assert set(cluster.wait("preview traffic", lambda: traffic(sandbox, ns, PREVIEW))) == {green}

    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    # the old stack still runs (scale-down delay) but no longer gets the active Service's requests
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
    cluster.wait("active traffic on the new stack only", lambda: set(traffic(sandbox, ns, ACTIVE)) == {green})
