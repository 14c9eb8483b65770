"""Analysis in a canary, end to end with the controller: the `analysis` step and background analysis.

The test plays the analysis controller: it sets each AnalysisRun's phase through the `/status` subresource
(a completed phase, which an analysis controller leaves alone), and the rollout reacts to that phase only.
The template's metric waits an hour before its first measurement, so nothing else decides the phase.
The last test is end to end: the controller's analysis controller measures a Web metric against a fake
endpoint served by the test on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scenario_helpers import GROUP, HASH_LABEL, VERSION, Cluster, ControllerProcess, rollout_manifest

pytestmark = pytest.mark.kubectl

FAILED = 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}


def template(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [
                {
                    "name": "success-rate",
                    "initialDelay": "1h",
                    "successCondition": "result == 'ok'",
                    "provider": {"web": {"url": "http://127.0.0.1:9/{{args.canary-hash}}"}},
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


def current_run(cluster: Cluster, ns: str, key: str) -> str:
    def check() -> str | None:
        entry = (cluster.status(ns, "web").get("canary") or {}).get(key)
        return str(entry["name"]) if entry else None

    return cluster.wait(f"status.canary.{key}", check)


def test_analysis_step_successful_failed_and_inconclusive(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("analysis-step")
    steps = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "ok"}], "args": [LATEST]}},
        {"pause": {}},
    ]
    cluster.apply(ns, template("ok"), rollout_manifest("web", replicas=4, steps=steps))
    cluster.wait_phase(ns, "web", "Healthy")
    assert runs(cluster, ns) == {}

    # Successful: the step completes, the rollout goes on to the pause step
    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "currentStepAnalysisRunStatus")
    status = cluster.status(ns, "web")
    pod_hash = status["currentPodHash"]
    assert name == f"web-{pod_hash}-2-1"
    run = runs(cluster, ns)[name]
    assert run["metadata"]["labels"] == {
        HASH_LABEL: pod_hash,
        "rollout-type": "Step",
        "step-index": "1",
        "app": "web",
    }
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Rollout", "web", True)
    assert run["spec"]["args"] == [{"name": "canary-hash", "value": pod_hash}]
    assert status["currentStepIndex"] == 1
    set_phase(cluster, ns, name, "Successful")
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert status["currentStepIndex"] == 2
    assert "currentStepAnalysisRunStatus" not in (status.get("canary") or {})
    assert ("RolloutStepCompleted", "Rollout step 2/3 completed (analysis)") in cluster.events(ns, "web")
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")

    # Inconclusive: paused until promoted; the plugin's promote skips the analysis step
    cluster.set_image(ns, "web", "nginx:3")
    name = current_run(cluster, ns, "currentStepAnalysisRunStatus")
    set_phase(cluster, ns, name, "Inconclusive", 'Metric "success-rate" assessed Inconclusive due to inconclusive (1)')
    status = cluster.wait_phase(ns, "web", "Paused", message="InconclusiveAnalysisRun")
    assert status["controllerPause"] is True
    assert cluster.sizes(ns, "web") == {"nginx:2": 3, "nginx:3": 1}
    cluster.patch(
        ns,
        "web",
        {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 2}},
        status=True,
    )
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert status["currentStepIndex"] == 2
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")

    # Failed: the rollout aborts with the run's message and goes back to the stable version
    cluster.set_image(ns, "web", "nginx:4")
    name = current_run(cluster, ns, "currentStepAnalysisRunStatus")
    set_phase(cluster, ns, name, "Failed", FAILED)
    expected = f"Rollout aborted update to revision 4: Step-based analysis phase error/failed: {FAILED}"
    status = cluster.wait_phase(ns, "web", "Degraded", message=f"RolloutAborted: {expected}")
    cluster.wait_sizes(ns, "web", {"nginx:3": 4})
    events = cluster.events(ns, "web")
    assert ("RolloutAborted", expected) in events
    assert any(reason == "AnalysisRunFailed" for reason, _ in events)
    assert len(runs(cluster, ns)) == 3


def test_background_analysis_and_missing_template(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("analysis-bg")
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    analysis = {"templates": [{"templateName": "ok"}], "args": [LATEST], "startingStep": 2}
    cluster.apply(ns, template("ok"), rollout_manifest("web", replicas=4, steps=steps, analysis=analysis))
    cluster.wait_phase(ns, "web", "Healthy")

    # started at startingStep, terminated when the rollout completes
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert runs(cluster, ns) == {}
    cluster.promote(ns, "web")
    name = current_run(cluster, ns, "currentBackgroundAnalysisRunStatus")
    assert runs(cluster, ns)[name]["metadata"]["labels"]["rollout-type"] == "Background"
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.wait("the background run terminated", lambda: runs(cluster, ns)[name]["spec"].get("terminate") is True)

    # failing mid-rollout aborts
    cluster.set_image(ns, "web", "nginx:3")
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.promote(ns, "web")
    name = current_run(cluster, ns, "currentBackgroundAnalysisRunStatus")
    set_phase(cluster, ns, name, "Error", FAILED)
    expected = f"Rollout aborted update to revision 3: Background analysis phase error/failed: {FAILED}"
    cluster.wait_phase(ns, "web", "Degraded", message=f"RolloutAborted: {expected}")
    cluster.wait_sizes(ns, "web", {"nginx:2": 4})

    # a template that does not exist: InvalidSpec naming it; nothing running is touched
    before = cluster.sizes(ns, "web")
    cluster.patch(
        ns, "web", {"spec": {"strategy": {"canary": {"analysis": {"templates": [{"templateName": "nope"}]}}}}}
    )
    cluster.wait_phase(ns, "web", "Degraded", timeout=20)
    cluster.wait(
        "InvalidSpec naming the template",
        lambda: any(
            c["type"] == "InvalidSpec" and "AnalysisTemplate 'nope' not found" in c["message"]
            for c in cluster.status(ns, "web").get("conditions") or []
        ),
    )
    assert cluster.sizes(ns, "web") == before


class _Health(BaseHTTPRequestHandler):
    healthy = True
    seen: list[str] = []

    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = json.dumps({"ok": type(self).healthy}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"healthy": True, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess, health: tuple[str, type[_Health]]
) -> None:
    url, handler = health
    ns = cluster.new_namespace("analysis-web")
    web_template = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "health"},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [
                {
                    "name": "up",
                    "interval": "1s",
                    "count": 2,
                    "successCondition": "result == true",
                    "provider": {"web": {"url": f"{url}/health/{{{{args.canary-hash}}}}", "jsonPath": "{$.ok}"}},
                }
            ],
        },
    }
    steps = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "health"}], "args": [LATEST]}}]
    cluster.apply(ns, web_template, rollout_manifest("web", replicas=4, steps=steps))
    cluster.wait_phase(ns, "web", "Healthy")

    cluster.set_image(ns, "web", "nginx:2")
    current_run(cluster, ns, "currentStepAnalysisRunStatus")
    good = cluster.wait_phase(ns, "web", "Healthy", timeout=30)["currentPodHash"]
    assert cluster.sizes(ns, "web") == {"nginx:2": 4}
    assert f"/health/{good}" in handler.seen
    [run] = runs(cluster, ns).values()
    assert run["status"]["phase"] == "Successful"
    assert any(reason == "AnalysisRunSuccessful" for reason, _ in cluster.events(ns, "web"))

    handler.healthy = False
    cluster.set_image(ns, "web", "nginx:3")
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=30)
    message = status["message"]
    assert message.startswith(
        "RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase error/failed: "
        'Metric "up" assessed Failed due to failed'
    ), message
    cluster.wait_sizes(ns, "web", {"nginx:2": 4})
