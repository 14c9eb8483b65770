"""Blue/green with analysis, end to end with the controller on a sandbox that sends simulated traffic.

Most tests play the analysis controller (the template's metric waits an hour, the test sets each run's
phase through `/status`), so the rollout reacts to that phase only: pre-promotion analysis failing (the
active Service never moves) and, after a retry, passing; post-promotion analysis failing (the active
Service goes back to the old stack) and passing. One test measures a Web metric against an endpoint the
test serves. The last one checks that the simulated traffic of each Service reaches the pods its
selector names, so an analysis of the preview or the active version measures what it claims to."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from bluegreen_helpers import ACTIVE, PREVIEW, bluegreen_manifest, hash_of, selected, services
from scenario_helpers import GROUP, HASH_LABEL, VERSION, Cluster, ControllerProcess
from support import SandboxHandle

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.traffic import parse_text_metrics

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TIMEOUT = 60.0
LATEST = {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
FAILED = 'Metric "check" assessed Failed due to failed (1) > failureLimit (0)'


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's sandbox also sends simulated traffic through every Service."""
    workdir = tmp_path_factory.mktemp("bg-sandbox")
    threaded = ThreadedSandbox(
        kubeconfig_path=workdir / "kubeconfig", default_ready_after=0.2, traffic_rps=200, metrics_port=0
    ).start()
    try:
        yield SandboxHandle(threaded, workdir / "kubeconfig", workdir / "kube-cache")
    finally:
        threaded.stop()


def held_template(name: str) -> dict[str, Any]:
    """A template whose metric never measures within a test: the test decides the run's phase."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "hash"}],
            "metrics": [
                {
                    "name": "check",
                    "initialDelay": "1h",
                    "successCondition": "result == 'ok'",
                    "provider": {"web": {"url": "http://127.0.0.1:9/{{args.hash}}"}},
                }
            ],
        },
    }


def runs(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, ns, "analysisruns")["items"]
    return {r["metadata"]["name"]: r for r in items}


def set_phase(cluster: Cluster, ns: str, name: str, phase: str, message: str = "") -> None:
    status: dict[str, Any] = {"phase": phase}
    if message:
        status["message"] = message
    cluster.patch(ns, name, {"status": status}, status=True, kind="analysisrun")


def current_run(cluster: Cluster, ns: str, key: str, not_name: str = "") -> str:
    def check() -> str | None:
        entry = (cluster.status(ns, "web").get("blueGreen") or {}).get(key)
        return str(entry["name"]) if entry and entry["name"] != not_name else None

    return cluster.wait(f"status.blueGreen.{key}", check, timeout=TIMEOUT)


def test_pre_promotion_analysis_failing_then_passing(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgpre")
    analysis = {"templates": [{"templateName": "pre"}], "args": [LATEST]}
    cluster.apply(
        ns,
        held_template("pre"),
        *services(),
        bluegreen_manifest(prePromotionAnalysis=analysis, abortScaleDownDelaySeconds=1),
    )
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert runs(cluster, ns) == {}  # nothing to analyse on the first deploy
    blue = hash_of(cluster, ns, "nginx:1")

    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "prePromotionAnalysisRunStatus")
    green = hash_of(cluster, ns, "nginx:2")
    assert name == f"web-{green}-2-pre"
    run = runs(cluster, ns)[name]
    assert run["metadata"]["labels"] == {HASH_LABEL: green, "rollout-type": "PrePromotion", "app": "web"}
    assert run["spec"]["args"] == [{"name": "hash", "value": green}]
    # analysis runs against the preview stack, which is up and selected by the preview Service only
    assert selected(cluster, ns, PREVIEW) == green and selected(cluster, ns, ACTIVE) == blue
    status = cluster.status(ns, "web")
    assert status["phase"] == "Progressing" and status["message"] == "active service cutover pending"

    set_phase(cluster, ns, name, "Failed", FAILED)
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
    second = current_run(cluster, ns, "prePromotionAnalysisRunStatus", not_name=name)
    assert second == f"{name}.1"
    cluster.wait("the preview stack", lambda: cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2})
    assert selected(cluster, ns, ACTIVE) == blue
    set_phase(cluster, ns, second, "Successful")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["stableRS"] == green == selected(cluster, ns, ACTIVE)
    failed = f"PrePromotion Analysis Run '{name}' Status New: 'Failed'"
    assert any(r == "AnalysisRunFailed" and m.startswith(failed) for r, m in cluster.events(ns, "web"))


def test_post_promotion_analysis_failing_switches_back(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgpost")
    analysis = {"templates": [{"templateName": "post"}], "args": [LATEST]}
    cluster.apply(
        ns,
        held_template("post"),
        *services(),
        bluegreen_manifest(postPromotionAnalysis=analysis, scaleDownDelaySeconds=600, abortScaleDownDelaySeconds=1),
    )
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    blue = hash_of(cluster, ns, "nginx:1")

    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "postPromotionAnalysisRunStatus")
    green = hash_of(cluster, ns, "nginx:2")
    assert name == f"web-{green}-2-post"
    # switched; the old stack keeps its pods within its scale-down delay; not stable yet
    assert selected(cluster, ns, ACTIVE) == green
    status = cluster.wait_phase(ns, "web", "Progressing", message="waiting for analysis to complete", timeout=TIMEOUT)
    assert status["stableRS"] == blue
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}

    set_phase(cluster, ns, name, "Failed", FAILED)
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=TIMEOUT)
    assert "Post-promotion analysis phase error/failed" in status["message"]
    cluster.wait("the active Service back on the old stack", lambda: selected(cluster, ns, ACTIVE) == blue)
    cluster.wait_sizes(ns, "web", {"nginx:1": 2}, timeout=TIMEOUT)
    assert cluster.status(ns, "web")["stableRS"] == blue

    # a fixed version: post-promotion analysis passes, the new stack becomes stable
    cluster.set_image(ns, "web", "nginx:3")
    third = current_run(cluster, ns, "postPromotionAnalysisRunStatus", not_name=name)
    set_phase(cluster, ns, third, "Successful")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["stableRS"] == hash_of(cluster, ns, "nginx:3") == selected(cluster, ns, ACTIVE)


class _Health(BaseHTTPRequestHandler):
    seen: list[str]

    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_pre_promotion_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess, health: tuple[str, type[_Health]]
) -> None:
    url, handler = health
    ns = cluster.new_namespace("bgweb")
    template = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke"},
        "spec": {
            "args": [{"name": "hash"}],
            "metrics": [
                {
                    "name": "up",
                    "interval": "1s",
                    "count": 2,
                    "successCondition": "result == true",
                    "provider": {"web": {"url": f"{url}/preview/{{{{args.hash}}}}", "jsonPath": "{$.ok}"}},
                }
            ],
        },
    }
    analysis = {"templates": [{"templateName": "smoke"}], "args": [LATEST]}
    cluster.apply(ns, template, *services(), bluegreen_manifest(prePromotionAnalysis=analysis))
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    cluster.set_image(ns, "web", "nginx:2")
    current_run(cluster, ns, "prePromotionAnalysisRunStatus")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert status["stableRS"] == green == selected(cluster, ns, ACTIVE)
    assert f"/preview/{green}" in handler.seen
    [run] = runs(cluster, ns).values()
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
    cluster.apply(ns, *services(), bluegreen_manifest(autoPromotionEnabled=False, scaleDownDelaySeconds=600))
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    blue = hash_of(cluster, ns, "nginx:1")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert set(cluster.wait("active traffic", lambda: traffic(sandbox, ns, ACTIVE))) == {blue}
    assert set(cluster.wait("preview traffic", lambda: traffic(sandbox, ns, PREVIEW))) == {green}

    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    # the old stack still runs (scale-down delay) but no longer gets the active Service's requests
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
    cluster.wait("active traffic on the new stack only", lambda: set(traffic(sandbox, ns, ACTIVE)) == {green})
