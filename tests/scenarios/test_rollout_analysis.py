"""Analysis in a canary, end to end with the controller: the `analysis` step and background analysis.

The test plays the analysis controller: it sets each AnalysisRun's phase through the `/status` subresource
(a completed phase, which an analysis controller leaves alone), and the rollout reacts to that phase only.
The template's metric waits an hour before its first measurement, so nothing else decides the phase.
The last test is end to end: the controller's analysis controller measures a Web metric against a fake
endpoint served by the test on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.analysis import HealthHandler, analysis_runs, current_run, serve_health, set_run_phase
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, held_template, rollout_manifest, web_template

pytestmark = pytest.mark.kubectl

FAILED = 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}


def template(name: str) -> dict[str, Any]:
    return held_template(name, "success-rate", "canary-hash")


def test_analysis_step_successful_failed_and_inconclusive(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("analysis-step")
    steps: list[dict[str, Any]] = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "ok"}], "args": [LATEST]}},
        {"pause": {}},
    ]
    cluster.apply(ns, template("ok"), rollout_manifest("web", replicas=4, steps=steps))
    cluster.wait_phase(ns, "web", "Healthy")
    assert analysis_runs(cluster, ns) == {}

    # Successful: the step completes, the rollout goes on to the pause step
    cluster.set_image(ns, "web", "nginx:2")
    name = current_run(cluster, ns, "canary", "currentStepAnalysisRunStatus")
    status = cluster.status(ns, "web")
    pod_hash = status["currentPodHash"]
    assert name == f"web-{pod_hash}-2-1"
    run = analysis_runs(cluster, ns)[name]
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
    set_run_phase(cluster, ns, name, "Successful")
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert status["currentStepIndex"] == 2
    assert "currentStepAnalysisRunStatus" not in (status.get("canary") or {})
    assert ("RolloutStepCompleted", "Rollout step 2/3 completed (analysis)") in cluster.events(ns, "web")
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")

    # Inconclusive: paused until promoted; the plugin's promote skips the analysis step
    cluster.set_image(ns, "web", "nginx:3")
    name = current_run(cluster, ns, "canary", "currentStepAnalysisRunStatus")
    set_run_phase(
        cluster, ns, name, "Inconclusive", 'Metric "success-rate" assessed Inconclusive due to inconclusive (1)'
    )
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
    name = current_run(cluster, ns, "canary", "currentStepAnalysisRunStatus")
    set_run_phase(cluster, ns, name, "Failed", FAILED)
    expected = f"Rollout aborted update to revision 4: Step-based analysis phase error/failed: {FAILED}"
    status = cluster.wait_phase(ns, "web", "Degraded", message=f"RolloutAborted: {expected}")
    cluster.wait_sizes(ns, "web", {"nginx:3": 4})
    events = cluster.events(ns, "web")
    assert ("RolloutAborted", expected) in events
    assert any(reason == "AnalysisRunFailed" for reason, _ in events)
    assert len(analysis_runs(cluster, ns)) == 3


def test_background_analysis_and_missing_template(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("analysis-bg")
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    analysis = {"templates": [{"templateName": "ok"}], "args": [LATEST], "startingStep": 2}
    cluster.apply(ns, template("ok"), rollout_manifest("web", replicas=4, steps=steps, analysis=analysis))
    cluster.wait_phase(ns, "web", "Healthy")

    # started at startingStep, terminated when the rollout completes
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert analysis_runs(cluster, ns) == {}
    cluster.promote(ns, "web")
    name = current_run(cluster, ns, "canary", "currentBackgroundAnalysisRunStatus")
    assert analysis_runs(cluster, ns)[name]["metadata"]["labels"]["rollout-type"] == "Background"
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.promote(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.wait(
        "the background run terminated", lambda: analysis_runs(cluster, ns)[name]["spec"].get("terminate") is True
    )

    # failing mid-rollout aborts
    cluster.set_image(ns, "web", "nginx:3")
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.promote(ns, "web")
    name = current_run(cluster, ns, "canary", "currentBackgroundAnalysisRunStatus")
    set_run_phase(cluster, ns, name, "Error", FAILED)
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


@pytest.fixture
def health() -> Iterator[tuple[str, type[HealthHandler]]]:
    with serve_health() as served:
        yield served


def test_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess, health: tuple[str, type[HealthHandler]]
) -> None:
    url, handler = health
    ns = cluster.new_namespace("analysis-web")
    health_template = web_template("health", "canary-hash", f"{url}/health/{{{{args.canary-hash}}}}")
    steps: list[dict[str, Any]] = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "health"}], "args": [LATEST]}},
    ]
    cluster.apply(ns, health_template, rollout_manifest("web", replicas=4, steps=steps))
    cluster.wait_phase(ns, "web", "Healthy")

    cluster.set_image(ns, "web", "nginx:2")
    current_run(cluster, ns, "canary", "currentStepAnalysisRunStatus")
    good = cluster.wait_phase(ns, "web", "Healthy", timeout=30)["currentPodHash"]
    assert cluster.sizes(ns, "web") == {"nginx:2": 4}
    assert f"/health/{good}" in handler.seen
    [run] = analysis_runs(cluster, ns).values()
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
