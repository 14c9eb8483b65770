"""A set of Argo Rollouts' own end-to-end scenarios (argo-rollouts test/e2e: functional, canary, blue/green,
analysis and experiment suites), in their spirit and in our scenario DSL. The sandbox's pod annotations
stand in for Argo's bad images (`never-ready`: pods that never pass readiness) and failing Jobs (`fail`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.bluegreen import bluegreen_manifest, services
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.experiment import ExperimentHandle, experiment_in, experiment_manifest, experiment_template
from tests.fixtures.manifests import READY_AFTER, Step, rollout_manifest
from tests.fixtures.rollout import given

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

NEVER_READY = {"sandbox.pyrollouts.io/never-ready": "true"}
STEPS: list[Step] = [{"setWeight": 50}, {"pause": {}}]
DEADLINE = {"progressDeadlineSeconds": 3}


def canary(image: str, bad: bool = False, steps: list[Step] = STEPS) -> dict[str, Any]:
    return rollout_manifest("web", 2, steps, image, annotations=NEVER_READY if bad else None, spec=DEADLINE)


def test_bad_to_good_update(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """functional TestRolloutBadToGoodUpdate: a version whose pods never get ready passes its deadline; the
    next, good one goes through as usual and the bad ReplicaSet ends at zero."""
    rollout = given(cluster, "argo-bad-good").rollout(canary("nginx:1")).apply().wait_healthy()
    rollout.apply(canary("nginx:bad", bad=True))
    rollout.wait_status("the deadline", lambda st: st.get("phase") == "Degraded", timeout=30)
    assert rollout.seen["message"].startswith("ProgressDeadlineExceeded")
    rollout.apply(canary("nginx:2")).wait_paused("CanaryPauseStep", step=1, timeout=30)
    rollout.wait_sizes({"nginx:1": 1, "nginx:2": 1})
    rollout.promote().wait_healthy(timeout=30).wait_sizes({"nginx:2": 2})
    assert rollout.replicaset_sizes()[rollout.replicaset_of("nginx:bad")["metadata"]["name"]] == 0


def test_bad_to_bad_update(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """functional TestRolloutBadToBadUpdate: a first version that never gets ready is Degraded; a second bad
    one progresses again, then passes its deadline too, with one surge pod next to the first's four."""

    def bad(image: str) -> dict[str, Any]:
        manifest = rollout_manifest("web", 4, [], image, annotations=NEVER_READY, spec=DEADLINE)
        manifest["spec"]["strategy"]["canary"].update(maxSurge=1, maxUnavailable=0)
        return manifest

    rollout = given(cluster, "argo-bad-bad").rollout(bad("nginx:bad1")).apply()
    first = rollout.wait_status("the first deadline", lambda st: st.get("phase") == "Degraded", 30).seen
    rollout.apply(bad("nginx:bad2"))
    rollout.wait_status(
        "the second version's deadline",
        lambda st: st.get("phase") == "Degraded" and st.get("currentPodHash") != first["currentPodHash"],
        timeout=30,
    )
    assert rollout.seen["message"].startswith("ProgressDeadlineExceeded")
    assert rollout.sizes() == {"nginx:bad1": 4, "nginx:bad2": 1}


def test_canary_with_spec_pause(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """canary TestCanaryWithSpecPause: `spec.paused` holds the update before its first step; unpausing
    lets the steps run."""
    steps: list[Step] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
    rollout = given(cluster, "argo-spec-pause").rollout(canary("nginx:1", steps=steps)).apply().wait_healthy()
    held = canary("nginx:2", steps=steps)
    held["spec"]["paused"] = True
    rollout.apply(held).wait_status("paused", lambda st: st.get("phase") == "Paused", timeout=30)
    rollout.expect_sizes({"nginx:1": 2})
    rollout.apply(canary("nginx:2", steps=steps)).wait_healthy(timeout=30).wait_sizes({"nginx:2": 2})


def test_blue_green_preview_replica_count(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """bluegreen TestBlueGreenPreviewReplicaCount: the new version runs `previewReplicaCount` pods until
    the promotion, then all of them."""
    manifest = bluegreen_manifest(replicas=3, autoPromotionEnabled=False, previewReplicaCount=1)
    rollout = given(cluster, "argo-preview").rollout(manifest, *services()).apply().wait_healthy()
    rollout.set_image("nginx:2").wait_paused("BlueGreenPause", timeout=30)
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})
    rollout.promote().wait_healthy(timeout=30)
    assert rollout.sizes()["nginx:2"] == 3


def job_template(name: str, fail: bool) -> dict[str, Any]:
    annotations = {READY_AFTER: "0.2s", **({"sandbox.pyrollouts.io/fail": "true"} if fail else {})}
    job = {"backoffLimit": 0, "template": {
        "metadata": {"annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "check", "image": "busybox", "args": ["true"]}]},
    }}  # fmt: skip
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [{"name": name, "provider": {"job": {"spec": job}}}]},
    }


def test_canary_fail_inline_multiple_analysis(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """analysis TestCanaryFailInlineMultipleAnalysis: an analysis step with two templates, one of whose Jobs
    fails, aborts the update back to the stable."""
    steps: list[Step] = [
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "passes"}, {"templateName": "fails"}]}},
    ]
    namespace = given(cluster, "argo-multi-analysis")
    rollout = namespace.rollout(
        canary("nginx:1", steps=steps), job_template("passes", False), job_template("fails", True)
    )
    rollout.apply().wait_healthy()
    rollout.apply(canary("nginx:2", steps=steps))
    rollout.wait_status("the abort", lambda st: st.get("abort") is True, timeout=60)
    assert rollout.seen["phase"] == "Degraded" and 'Metric "fails" assessed Failed' in rollout.seen["message"]
    rollout.wait_sizes({"nginx:1": 2}, timeout=30)


def test_experiment_with_service_and_scale_down_delay(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """experiment TestExperimentWithServiceAndScaleDownDelay: a template with `service: {}` gets a Service
    while it runs; after the duration its pods stay for `scaleDownDelaySeconds`, then go with the Service."""
    namespace = given(cluster, "argo-exp-service")
    template = {**experiment_template("canary"), "service": {}}
    manifest = experiment_manifest("exp", [template], duration="2s", scaleDownDelaySeconds=3)
    exp: ExperimentHandle = experiment_in(namespace, manifest).apply().wait_phase("Running")
    service = exp.template_status("canary")["serviceName"]
    assert namespace.service(service)["spec"]["selector"]["version"] == "canary"
    exp.wait_phase("Successful", timeout=30)
    assert exp.replicaset("canary")["spec"]["replicas"] == 1  # kept for the scale-down delay
    exp.wait_replicas("canary", 0, timeout=30)
    namespace.cluster.wait(
        f"Service {service} to go",
        lambda: namespace.kubectl("get", "service", service, check=False).returncode != 0,
        30,
    )
