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

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.health import HealthHandler, serve_health
from tests.fixtures.manifests import HASH_LABEL, Step, held_template, rollout_manifest, web_template
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl

FAILED = 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}


def template(name: str) -> dict[str, Any]:
    return held_template(name, "success-rate", "canary-hash")


def test_analysis_step_successful_failed_and_inconclusive(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "analysis-step")
    steps: list[Step] = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "ok"}], "args": [LATEST]}},
        {"pause": {}},
    ]
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps), template("ok"))
    rollout.apply().wait_healthy()
    assert namespace.analysis_runs() == {}

    # Successful: the step completes, the rollout goes on to the pause step
    name = rollout.set_image("nginx:2").current_run("canary", "currentStepAnalysisRunStatus")
    status = rollout.status
    pod_hash = status["currentPodHash"]
    assert name == f"web-{pod_hash}-2-1"
    run = namespace.analysis_runs()[name]
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
    namespace.set_run_phase(name, "Successful")
    status = rollout.wait_paused("CanaryPauseStep", step=2).seen
    assert "currentStepAnalysisRunStatus" not in (status.get("canary") or {})
    rollout.wait_event("RolloutStepCompleted", "Rollout step 2/3 completed (analysis)")
    rollout.promote().wait_healthy()

    # Inconclusive: paused until promoted; the plugin's promote skips the analysis step
    name = rollout.set_image("nginx:3").current_run("canary", "currentStepAnalysisRunStatus")
    namespace.set_run_phase(name, "Inconclusive", 'Metric "success-rate" assessed Inconclusive due to inconclusive (1)')
    status = rollout.wait_paused("InconclusiveAnalysisRun").seen
    assert status["controllerPause"] is True
    rollout.expect_sizes({"nginx:2": 3, "nginx:3": 1})
    rollout.patch({"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 2}}, status=True)
    rollout.wait_paused("CanaryPauseStep", step=2).promote().wait_healthy()

    # Failed: the rollout aborts with the run's message and goes back to the stable version
    name = rollout.set_image("nginx:4").current_run("canary", "currentStepAnalysisRunStatus")
    namespace.set_run_phase(name, "Failed", FAILED)
    expected = f"Rollout aborted update to revision 4: Step-based analysis phase error/failed: {FAILED}"
    rollout.wait_degraded(f"RolloutAborted: {expected}").wait_sizes({"nginx:3": 4})
    rollout.wait_event("RolloutAborted", expected)
    rollout.wait_event("AnalysisRunFailed")
    assert len(namespace.analysis_runs()) == 3


def test_a_metric_that_words_a_judge_outcome_leaves_the_rollouts_message_alone(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    """A user's own metric (a web provider, not the judge) whose Inconclusive message reads like the judge's
    "too little traffic after ..." outcome: the paused Rollout's message is Argo's, the pause reason alone;
    only the judge's structured outcome changes it (tests/integration/test_judge_scenario.py)."""
    namespace = given(cluster, "analysis-words")
    steps: list[Step] = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "ok"}], "args": [LATEST]}}]
    rollout = namespace.rollout(rollout_manifest("web", replicas=2, steps=steps), template("ok"))
    rollout.apply().wait_healthy()
    name = rollout.set_image("nginx:2").current_run("canary", "currentStepAnalysisRunStatus")
    words = "too little traffic after 5 measurements: canary 4/500 and baseline 9/500 requests; about 9 more intervals"
    namespace.set_run_phase(name, "Inconclusive", f'Metric "success-rate" assessed Inconclusive due to x: "{words}"')
    status = rollout.wait_paused("InconclusiveAnalysisRun").seen
    assert words in status["canary"]["currentStepAnalysisRunStatus"]["message"], status  # Argo's field, as it was


def test_background_analysis_and_missing_template(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "analysis-bg")
    steps: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    analysis = {"templates": [{"templateName": "ok"}], "args": [LATEST], "startingStep": 2}
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps, analysis=analysis), template("ok"))
    rollout.apply().wait_healthy()

    # started at startingStep, terminated when the rollout completes
    rollout.set_image("nginx:2").wait_paused("CanaryPauseStep")
    assert namespace.analysis_runs() == {}
    name = rollout.promote().current_run("canary", "currentBackgroundAnalysisRunStatus")
    assert namespace.analysis_runs()[name]["metadata"]["labels"]["rollout-type"] == "Background"
    rollout.wait_paused("CanaryPauseStep").promote().wait_healthy()
    rollout.wait_for(
        "the background run terminated", lambda: namespace.analysis_runs()[name]["spec"].get("terminate") is True
    )

    # failing mid-rollout aborts
    rollout.set_image("nginx:3").wait_paused("CanaryPauseStep")
    name = rollout.promote().current_run("canary", "currentBackgroundAnalysisRunStatus")
    namespace.set_run_phase(name, "Error", FAILED)
    expected = f"Rollout aborted update to revision 3: Background analysis phase error/failed: {FAILED}"
    rollout.wait_degraded(f"RolloutAborted: {expected}").wait_sizes({"nginx:2": 4})

    # a template that does not exist: InvalidSpec naming it; nothing running is touched
    before = rollout.sizes()
    rollout.patch({"spec": {"strategy": {"canary": {"analysis": {"templates": [{"templateName": "nope"}]}}}}})
    rollout.wait_degraded(timeout=20)
    rollout.wait_for(
        "InvalidSpec naming the template",
        lambda: any(
            c["type"] == "InvalidSpec" and "AnalysisTemplate 'nope' not found" in c["message"]
            for c in rollout.status.get("conditions") or []
        ),
    )
    rollout.expect_sizes(before)


@pytest.fixture
def health() -> Iterator[tuple[str, type[HealthHandler]]]:
    with serve_health() as served:
        yield served


def test_web_metric_end_to_end(
    cluster: Cluster, controller: ControllerProcess | None, health: tuple[str, type[HealthHandler]]
) -> None:
    url, handler = health
    namespace = given(cluster, "analysis-web")
    health_template = web_template("health", "canary-hash", f"{url}/health/{{{{args.canary-hash}}}}")
    steps: list[Step] = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "health"}], "args": [LATEST]}},
    ]
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps), health_template)
    rollout.apply().wait_healthy()

    rollout.set_image("nginx:2").current_run("canary", "currentStepAnalysisRunStatus")
    good = rollout.wait_healthy(timeout=30).seen["currentPodHash"]
    rollout.expect_sizes({"nginx:2": 4})
    assert f"/health/{good}" in handler.seen
    [run] = namespace.analysis_runs().values()
    assert run["status"]["phase"] == "Successful"
    rollout.wait_event("AnalysisRunSuccessful")

    handler.healthy = False
    status = rollout.set_image("nginx:3").wait_degraded(timeout=30).seen
    message = status["message"]
    assert message.startswith(
        "RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase error/failed: "
        'Metric "up" assessed Failed due to failed'
    ), message
    rollout.wait_sizes({"nginx:2": 4})
