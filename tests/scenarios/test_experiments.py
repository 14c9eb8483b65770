"""Experiments on the sandbox with the controller: templates as ReplicaSets, Services, analyses, the phases.

The analyses use a template whose metric waits an hour before measuring: the test plays the analysis
controller and writes each run's completed phase, so the experiment reacts to that phase only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.experiment import ExperimentHandle, experiment_in, experiment_manifest, experiment_template
from tests.fixtures.manifests import HASH_LABEL, held_template, rollout_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import RolloutHandle, given
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl

HELD = held_template("held", "compare", "canary-hash")
FAILED = 'Metric "compare" assessed Failed'


def analysis(name: str, required: bool = False) -> dict[str, object]:
    return {
        "name": name,
        "templateName": "held",
        "requiredForCompletion": required,
        "args": [{"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"}],
    }


def test_a_timed_experiment_runs_its_templates_and_analysis_then_scales_down(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "exp-timed")
    canary = experiment_template("canary")
    canary["service"] = {}
    manifest = experiment_manifest(
        "ab",
        [experiment_template("baseline", replicas=2), canary],
        duration="3s",
        scaleDownDelaySeconds=1,
        analyses=[analysis("compare")],
    )
    exp = experiment_in(namespace, manifest).apply(HELD)

    exp.wait_phase("Running")
    status = exp.seen
    assert status["availableAt"]
    baseline, canary_status = exp.template_status("baseline"), exp.template_status("canary")
    assert (baseline["status"], baseline["availableReplicas"]) == ("Running", 2)
    assert (canary_status["status"], canary_status["serviceName"]) == ("Running", "ab-canary")
    assert baseline["podTemplateHash"] != canary_status["podTemplateHash"]
    rs = exp.replicaset("canary")
    owner = rs["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Experiment", "ab", True)
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == canary_status["podTemplateHash"]
    assert namespace.selected("ab-canary") == canary_status["podTemplateHash"]
    run = namespace.analysis_runs()[exp.run_of("compare")]
    assert run["metadata"]["name"] == "ab-compare"
    assert run["spec"]["args"] == [{"name": "canary-hash", "value": canary_status["podTemplateHash"]}]

    # The duration passes: Successful, the unfinished run terminated, the Service gone, then the pods
    exp.wait_phase("Successful", message="duration")
    assert {t["status"] for t in exp.seen["templateStatuses"]} == {"Successful"}
    assert namespace.analysis_runs()["ab-compare"]["spec"]["terminate"] is True

    def services() -> list[str]:
        return namespace.kubectl("get", "services", "-o", "name").stdout.split()

    cluster.wait("the experiment's Service to go", lambda: "service/ab-canary" not in services())
    exp.wait_replicas("baseline", 0).wait_replicas("canary", 0)
    kubectl_get = namespace.kubectl("get", "exp", "ab").stdout
    assert "Successful" in kubectl_get.splitlines()[1]


def test_analyses_decide_an_experiment_without_duration(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "exp-analysis")
    namespace.apply(HELD)
    templates = [experiment_template("baseline"), experiment_template("canary")]
    spec = {"analyses": [analysis("required", required=True), analysis("watch")], "scaleDownDelaySeconds": 0}

    passing = experiment_in(namespace, experiment_manifest("pass", templates, **spec)).apply()
    failing = experiment_in(namespace, experiment_manifest("fail", templates, **spec)).apply()
    passing.wait_phase("Running")
    cluster.wait("both runs of pass", lambda: len(passing.wait_phase("Running").seen.get("analysisRuns") or []) == 2)
    namespace.set_run_phase("pass-required", "Successful")
    passing.wait_phase("Successful", message="required for completion").wait_replicas("canary", 0)
    assert namespace.analysis_runs()["pass-watch"]["spec"]["terminate"] is True

    failing.wait_phase("Running")
    cluster.wait("the runs of fail", lambda: "fail-watch" in namespace.analysis_runs())
    namespace.set_run_phase("fail-watch", "Failed", 'Metric "compare" assessed Failed')
    failing.wait_phase("Failed", message="Analysis watch (fail-watch) is Failed")
    failing.wait_replicas("baseline", 0)


def test_terminate_invalid_spec_and_progress_deadline(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "exp-end")
    endless = experiment_in(
        namespace, experiment_manifest("endless", [experiment_template("a")], scaleDownDelaySeconds=0)
    ).apply()
    endless.wait_phase("Running")
    endless.patch({"spec": {"terminate": True}}).wait_phase("Successful", message="terminated")
    endless.wait_replicas("a", 0)
    # Retried (the status cleared, as `retry experiment` does) after terminate is taken back: it runs again
    endless.patch({"spec": {"terminate": False}}).patch({"status": None}, status=True)
    endless.wait_phase("Running").wait_replicas("a", 1)

    bad = experiment_template("b")
    bad["selector"] = {"matchLabels": {"app": "other"}}
    invalid = experiment_in(namespace, experiment_manifest("invalid", [bad])).apply()
    invalid.wait_phase("Error", message="spec.templates[0].selector")

    stuck = experiment_template("c", annotations={"sandbox.pyrollouts.io/never-ready": "true"})
    slow = experiment_in(namespace, experiment_manifest("slow", [stuck], progressDeadlineSeconds=2)).apply()
    slow.wait_phase("Failed", message="progressDeadlineSeconds")
    assert slow.template_status("c")["status"] == "Failed"


def current_experiment(rollout: RolloutHandle, revision: int = 2) -> str:
    """The Experiment of the Rollout's current step, once it is revision `revision`'s."""

    def check(status: dict[str, Any]) -> bool:
        name = str((status.get("canary") or {}).get("currentExperiment") or "")
        return name.endswith(f"-{revision}-0")

    return str(rollout.wait_status(f"revision {revision}'s experiment", check).seen["canary"]["currentExperiment"])


def step_rollout() -> dict[str, object]:
    """A Rollout whose first step runs the stable and the canary version side by side with a required analysis."""
    experiment = {
        "templates": [{"name": "baseline", "specRef": "stable"}, {"name": "canary", "specRef": "canary"}],
        "analyses": [analysis("compare", required=True)],
        "scaleDownDelaySeconds": 0,
    }
    return rollout_manifest("web", replicas=2, steps=[{"experiment": experiment}, {"pause": {}}])


def test_the_experiment_step_waits_for_its_experiment_and_aborts_when_it_fails(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "exp-step")
    rollout = namespace.rollout(step_rollout(), HELD)
    rollout.apply().wait_healthy()

    # Successful: the step completes, the Rollout goes on to its pause
    rollout.set_image("nginx:2")
    name = current_experiment(rollout)
    assert name == f"web-{rollout.status['currentPodHash']}-2-0"
    exp = ExperimentHandle(namespace, name).wait_phase("Running")
    owner = exp.object["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Rollout", "web", True)
    images = {
        t: exp.replicaset(t)["spec"]["template"]["spec"]["containers"][0]["image"] for t in ("baseline", "canary")
    }
    assert images == {"baseline": "nginx:1", "canary": "nginx:2"}
    run = exp.run_of("compare")
    canary_hash = exp.template_status("canary")["podTemplateHash"]
    assert namespace.analysis_runs()[run]["spec"]["args"] == [{"name": "canary-hash", "value": canary_hash}]
    namespace.set_run_phase(run, "Successful")
    exp.wait_phase("Successful")
    rollout.wait_paused("CanaryPauseStep", step=1)
    tree = Plugin.on_cluster(cluster).ok("get", "rollout", "web", "-n", namespace.name)
    assert any(
        f"Σ {name}" in line and line.split()[-4:-1] == ["Experiment", "✔", "Successful"] for line in tree.splitlines()
    ), tree
    rollout.promote().wait_healthy()
    exp.wait_replicas("canary", 0)

    # Failed: the update is aborted with the experiment's message
    rollout.set_image("nginx:3")
    exp = ExperimentHandle(namespace, current_experiment(rollout, revision=3))
    exp.wait_phase("Running")
    namespace.set_run_phase(exp.run_of("compare"), "Failed", FAILED)
    said = f"Analysis compare ({exp.name}-compare) is Failed: {FAILED}"
    aborted = f"Rollout aborted update to revision 3: Experiment '{exp.name}' ended Failed: {said}"
    rollout.wait_degraded(f"RolloutAborted: {aborted}")
    rollout.wait_sizes({"nginx:2": 2})
    exp.wait_replicas("canary", 0)

    # Moving on: a Rollout that skips the step terminates its experiment
    rollout.set_image("nginx:4")
    exp = ExperimentHandle(namespace, current_experiment(rollout, revision=4))
    exp.wait_phase("Running")
    rollout.skip_to_step(1)  # as `kubectl rollouts promote` does at a step that is not a pause
    exp.wait_phase("Successful", message="terminated")
    rollout.wait_paused("CanaryPauseStep", step=1).promote().wait_healthy()


def test_the_experiment_examples(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "exp-examples")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "experiment.yaml"))
    exp = ExperimentHandle(namespace, "nginx-ab").wait_phase("Running")
    assert exp.template_status("candidate")["serviceName"] == "nginx-ab-candidate"
    exp.wait_phase("Successful", timeout=60)
    assert [r["phase"] for r in exp.seen["analysisRuns"]] == ["Successful"]

    namespace.kubectl("apply", "-f", str(REPO / "examples" / "canary-with-experiment.yaml"))
    rollout = namespace.rollout_named("canary-experiment").wait_healthy()
    rollout.set_image("nginx:1.27")
    name = current_experiment(rollout)
    rollout.wait_healthy(timeout=90)
    assert ExperimentHandle(namespace, name).wait_phase("Successful").seen["analysisRuns"][0]["phase"] == "Successful"


def test_the_plugin_gets_lists_terminates_and_retries_experiments(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "exp-plugin")
    plugin = Plugin.on_cluster(cluster)
    canary = experiment_template("canary")
    canary["service"] = {"name": "canary-preview"}
    manifest = experiment_manifest("ab", [experiment_template("baseline"), canary], scaleDownDelaySeconds=0)
    exp = experiment_in(namespace, manifest).apply().wait_phase("Running")

    shown = plugin.ok("get", "experiment", "ab", "-n", namespace.name)
    assert shown.splitlines()[2].startswith("Status:") and shown.splitlines()[2].endswith(" Running"), shown
    assert "nginx:baseline (baseline)" in shown and "nginx:canary (canary)" in shown
    assert "ab-canary" in shown and "service canary-preview" in shown and "1/1 available" in shown
    listed = plugin.ok("list", "experiments", "-n", namespace.name).splitlines()
    assert listed[0].split() == ["NAME", "STATUS", "DURATION", "AGE"]
    assert listed[1].split()[:3] == ["ab", "Running", "-"]

    assert plugin.ok("terminate", "experiment", "ab", "-n", namespace.name).strip() == "experiment 'ab' terminated"
    exp.wait_phase("Successful", message="terminated").wait_replicas("canary", 0)
    assert "Successful" in plugin.ok("get", "exp", "ab", "-n", namespace.name).splitlines()[2]

    exp.patch({"spec": {"terminate": False}})
    assert plugin.ok("retry", "experiment", "ab", "-n", namespace.name).strip() == "experiment 'ab' restarted"
    exp.wait_phase("Running").wait_replicas("canary", 1)
    missing = plugin.run("get", "experiment", "nope", "-n", namespace.name)
    assert missing.returncode != 0 and "nope" in missing.stderr
