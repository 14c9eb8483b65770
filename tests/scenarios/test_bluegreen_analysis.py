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
from tests.fixtures.bluegreen import ACTIVE, PREVIEW, bluegreen_manifest, paused_before_promotion, services
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.health import HealthHandler, serve_health
from tests.fixtures.manifests import HASH_LABEL, held_template, web_template
from tests.fixtures.rollout import given
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


def test_pre_promotion_analysis_failing_then_passing(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgpre")
    analysis = {"templates": [{"templateName": "pre"}], "args": [LATEST]}
    manifest = bluegreen_manifest(prePromotionAnalysis=analysis, abortScaleDownDelaySeconds=1)
    rollout = namespace.rollout(manifest, template("pre"), *services())
    rollout.apply().wait_healthy(timeout=TIMEOUT)
    assert namespace.analysis_runs() == {}  # nothing to analyse on the first deploy
    blue = rollout.hash_of("nginx:1")

    name = rollout.set_image("nginx:2").current_run("blueGreen", "prePromotionAnalysisRunStatus", timeout=TIMEOUT)
    green = rollout.hash_of("nginx:2")
    assert name == f"web-{green}-2-pre"
    run = namespace.analysis_runs()[name]
    assert run["metadata"]["labels"] == {HASH_LABEL: green, "rollout-type": "PrePromotion", "app": "web"}
    assert run["spec"]["args"] == [{"name": "hash", "value": green}]
    # analysis runs against the preview stack, which is up and selected by the preview Service only
    assert namespace.selected(PREVIEW) == green and namespace.selected(ACTIVE) == blue
    status = rollout.status
    assert status["phase"] == "Progressing" and status["message"] == "active service cutover pending"

    namespace.set_run_phase(name, "Failed", FAILED)
    status = rollout.wait_degraded(timeout=TIMEOUT).seen
    assert status["message"] == (
        f"RolloutAborted: Rollout aborted update to revision 2: Pre-promotion analysis phase error/failed: {FAILED}"
    )
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Failed"
    assert namespace.selected(ACTIVE) == blue
    rollout.wait_sizes({"nginx:1": 2}, timeout=TIMEOUT)
    assert namespace.selected(ACTIVE) == blue  # never moved

    # retry: a new run; it passes, and with auto-promotion the switch follows
    second = rollout.retry().current_run(
        "blueGreen", "prePromotionAnalysisRunStatus", not_name=name, timeout=TIMEOUT
    )
    assert second == f"{name}.1"
    rollout.wait_for("the preview stack", lambda: rollout.ready_sizes() == {"nginx:1": 2, "nginx:2": 2})
    assert namespace.selected(ACTIVE) == blue
    namespace.set_run_phase(second, "Successful")
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert status["stableRS"] == green == namespace.selected(ACTIVE)
    failed = f"PrePromotion Analysis Run '{name}' Status New: 'Failed'"
    rollout.wait_event("AnalysisRunFailed", lambda m: m.startswith(failed))


def test_post_promotion_analysis_failing_switches_back(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgpost")
    analysis = {"templates": [{"templateName": "post"}], "args": [LATEST]}
    manifest = bluegreen_manifest(
        postPromotionAnalysis=analysis, scaleDownDelaySeconds=600, abortScaleDownDelaySeconds=1
    )
    rollout = namespace.rollout(manifest, template("post"), *services())
    rollout.apply().wait_healthy(timeout=TIMEOUT)
    blue = rollout.hash_of("nginx:1")

    name = rollout.set_image("nginx:2").current_run("blueGreen", "postPromotionAnalysisRunStatus", timeout=TIMEOUT)
    green = rollout.hash_of("nginx:2")
    assert name == f"web-{green}-2-post"
    # switched; the old stack keeps its pods within its scale-down delay; not stable yet
    assert namespace.selected(ACTIVE) == green
    status = rollout.wait_phase("Progressing", message="waiting for analysis to complete", timeout=TIMEOUT).seen
    assert status["stableRS"] == blue
    rollout.expect_ready_sizes({"nginx:1": 2, "nginx:2": 2})

    namespace.set_run_phase(name, "Failed", FAILED)
    status = rollout.wait_degraded(timeout=TIMEOUT).seen
    assert "Post-promotion analysis phase error/failed" in status["message"]
    rollout.wait_for("the active Service back on the old stack", lambda: namespace.selected(ACTIVE) == blue)
    rollout.wait_sizes({"nginx:1": 2}, timeout=TIMEOUT)
    assert rollout.status["stableRS"] == blue

    # a fixed version: post-promotion analysis passes, the new stack becomes stable
    third = rollout.set_image("nginx:3").current_run(
        "blueGreen", "postPromotionAnalysisRunStatus", not_name=name, timeout=TIMEOUT
    )
    namespace.set_run_phase(third, "Successful")
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert status["stableRS"] == rollout.hash_of("nginx:3") == namespace.selected(ACTIVE)


@pytest.fixture
def health() -> Iterator[tuple[str, type[HealthHandler]]]:
    with serve_health() as served:
        yield served


def test_pre_promotion_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess | None, health: tuple[str, type[HealthHandler]]
) -> None:
    url, handler = health
    namespace = given(cluster, "bgweb")
    smoke = web_template("smoke", "hash", f"{url}/preview/{{{{args.hash}}}}")
    analysis = {"templates": [{"templateName": "smoke"}], "args": [LATEST]}
    rollout = namespace.rollout(bluegreen_manifest(prePromotionAnalysis=analysis), smoke, *services())
    rollout.apply().wait_healthy(timeout=TIMEOUT)
    rollout.set_image("nginx:2").current_run("blueGreen", "prePromotionAnalysisRunStatus", timeout=TIMEOUT)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    green = rollout.hash_of("nginx:2")
    assert status["stableRS"] == green == namespace.selected(ACTIVE)
    assert f"/preview/{green}" in handler.seen
    [run] = namespace.analysis_runs().values()
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
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle
) -> None:
    namespace = given(cluster, "bgtraffic")
    ns = namespace.name
    rollout, blue = paused_before_promotion(namespace, TIMEOUT, scaleDownDelaySeconds=600)
    green = rollout.hash_of("nginx:2")
    assert set(rollout.wait_for("active traffic", lambda: traffic(sandbox, ns, ACTIVE))) == {blue}
    assert set(rollout.wait_for("preview traffic", lambda: traffic(sandbox, ns, PREVIEW))) == {green}

    rollout.promote().wait_healthy(timeout=TIMEOUT)
    # the old stack still runs (scale-down delay) but no longer gets the active Service's requests
    rollout.expect_ready_sizes({"nginx:1": 2, "nginx:2": 2})
    rollout.wait_for("active traffic on the new stack only", lambda: set(traffic(sandbox, ns, ACTIVE)) == {green})
