"""Experiments on the sandbox with the controller: templates as ReplicaSets, Services, analyses, the phases.

The analyses use a template whose metric waits an hour before measuring: the test plays the analysis
controller and writes each run's completed phase, so the experiment reacts to that phase only."""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.experiment import experiment_in, experiment_manifest, experiment_template
from tests.fixtures.manifests import HASH_LABEL, held_template
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl

HELD = held_template("held", "compare", "canary-hash")


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
    endless = experiment_in(namespace, experiment_manifest("endless", [experiment_template("a")])).apply()
    endless.wait_phase("Running")
    endless.patch({"spec": {"terminate": True}}).wait_phase("Successful", message="terminated")

    bad = experiment_template("b")
    bad["selector"] = {"matchLabels": {"app": "other"}}
    invalid = experiment_in(namespace, experiment_manifest("invalid", [bad])).apply()
    invalid.wait_phase("Error", message="spec.templates[0].selector")

    stuck = experiment_template("c", annotations={"sandbox.pyrollouts.io/never-ready": "true"})
    slow = experiment_in(namespace, experiment_manifest("slow", [stuck], progressDeadlineSeconds=2)).apply()
    slow.wait_phase("Failed", message="progressDeadlineSeconds")
    assert slow.template_status("c")["status"] == "Failed"
