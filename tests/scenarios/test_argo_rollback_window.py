"""Argo's `rollbackWindow: {revisions: N}`: going back to a version stable within the last N releases skips
the steps and the analysis (that version has run in production already); further back, or forward, the
steps run as usual."""

from __future__ import annotations

import time

import pytest

from rollouts.model.timestamps import parse_time
from tests.fixtures.bluegreen import ACTIVE, bluegreen_manifest, services
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step, held_template, rollout_manifest
from tests.fixtures.rollout import RolloutHandle, given

pytestmark = pytest.mark.kubectl

LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
STEPS: list[Step] = [
    {"setWeight": 25},
    {"analysis": {"templates": [{"templateName": "held"}], "args": [LATEST]}},
    {"pause": {}},
]
SKIPPED = ("SkipSteps", "Rollback to active ReplicaSets within RollbackWindow")


def release(rollout: RolloutHandle, image: str) -> RolloutHandle:
    """A new image once the clock has left the second the newest ReplicaSet was created in (creation
    times, whole seconds as Kubernetes keeps them, tell a rollback from a release)."""
    newest = max(parse_time(rs["metadata"]["creationTimestamp"]) or 0.0 for rs in rollout.replicasets())
    rollout.wait_for("the next second", lambda: time.time() >= newest + 1, 5)
    return rollout.set_image(image)


def release_through_steps(rollout: RolloutHandle, image: str, run_phase: str = "Successful") -> None:
    name = release(rollout, image).current_run("canary", "currentStepAnalysisRunStatus")
    rollout.namespace.set_run_phase(name, run_phase)
    rollout.wait_paused(timeout=30).promote().wait_healthy(timeout=30)


def test_rollback_within_the_window_skips_steps_and_analysis(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "rollback-window")
    manifest = rollout_manifest("web", replicas=4, steps=STEPS, spec={"rollbackWindow": {"revisions": 1}})
    rollout = namespace.rollout(manifest, held_template("held", "up", "canary-hash")).apply().wait_healthy()
    release_through_steps(rollout, "nginx:2")
    release_through_steps(rollout, "nginx:3")
    runs = len(namespace.analysis_runs())

    # nginx:2 was stable one release ago: straight back, no step, no analysis
    previous = rollout.hash_of("nginx:2")
    release(rollout, "nginx:2").wait_status("the rollback", lambda st: st.get("currentPodHash") == previous)
    rollout.wait_healthy(timeout=30).wait_sizes({"nginx:2": 4}, timeout=30)
    rollout.wait_event(*SKIPPED)
    assert len(namespace.analysis_runs()) == runs
    assert not any(r == "RolloutPaused" for r, _ in rollout.events()[-6:])

    # forward again to nginx:3 (created after nginx:2): the steps run
    name = release(rollout, "nginx:3").current_run("canary", "currentStepAnalysisRunStatus")
    namespace.set_run_phase(name, "Successful")
    rollout.wait_paused(timeout=30).promote().wait_healthy(timeout=30)

    # nginx:1: nginx:2 was created in between, so it is outside a window of 1: the steps run
    name = release(rollout, "nginx:1").current_run("canary", "currentStepAnalysisRunStatus")
    assert rollout.status["currentStepIndex"] == 1
    namespace.set_run_phase(name, "Successful")
    rollout.wait_paused(timeout=30).promote().wait_healthy(timeout=30)
    assert rollout.events().count(SKIPPED) == 1


def test_blue_green_rollback_within_the_window_is_promoted_at_once(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "rollback-window-bg")
    manifest = bluegreen_manifest(autoPromotionEnabled=False, scaleDownDelaySeconds=0)
    manifest["spec"]["rollbackWindow"] = {"revisions": 1}
    rollout = namespace.rollout(manifest, *services()).apply().wait_healthy(timeout=30)
    for image in ("nginx:2", "nginx:3"):
        release(rollout, image).wait_paused("BlueGreenPause", timeout=30).promote().wait_healthy(timeout=30)
        rollout.wait_sizes({image: 2}, timeout=30)

    # nginx:2, stable one release ago: no pause before the switch
    previous = rollout.hash_of("nginx:2")
    release(rollout, "nginx:2").wait_for("the switch", lambda: namespace.selected(ACTIVE) == previous, 30)
    rollout.wait_healthy(timeout=30)
    assert not any(m == "Rollout is paused (BlueGreenPause)" for _, m in rollout.events()[-8:])

    # forward to nginx:3 (a release: it waits for its promotion), then nginx:1, outside the window: waits too
    release(rollout, "nginx:3").wait_paused("BlueGreenPause", timeout=30).promote().wait_healthy(timeout=30)
    release(rollout, "nginx:1").wait_paused("BlueGreenPause", timeout=30)
