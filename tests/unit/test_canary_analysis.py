"""Analysis in the canary strategy, driven whole in the in-memory world: the `analysis` step, background
analysis, aborts and inconclusive pauses, promote / promote --full / abort, history limits. The test plays
the analysis controller by setting each AnalysisRun's phase; the rollout reacts to that phase only."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollouts.cli.actions import abort_patches, promote_patches, retry_patches
from rollouts.strategy import analysis as ca
from rollouts.strategy.plan import DeleteAnalysisRun, PatchAnalysisRun
from tests.fixtures.judge_outcome import THIN_CANARY, THIN_CANARY_TEXT, end_inconclusive, short_of_traffic
from tests.fixtures.world import World, merge, rollout

FAILED_MESSAGE = 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'


def template(name: str, metric: str = "success-rate", args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "args": args if args is not None else [{"name": "canary-hash"}],
            "metrics": [
                {
                    "name": metric,
                    "interval": "10s",
                    "successCondition": "result[0] >= 0.95",
                    "provider": {"prometheus": {"address": "http://prom:9090", "query": "up{{{args.canary-hash}}}"}},
                }
            ],
        },
    }


LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
STEP_ANALYSIS = {"analysis": {"templates": [{"templateName": "ok"}], "args": [LATEST]}}
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, STEP_ANALYSIS, {"setWeight": 60}, {"pause": {}}]


def world(steps: list[dict[str, Any]] | None = None, **canary: Any) -> World:
    w = World(copy.deepcopy(rollout(steps=steps if steps is not None else STEPS, **canary)))
    w.templates["ok"] = template("ok")
    w.settle()
    assert w.status["phase"] == "Healthy"
    return w


def promote(w: World, **flags: bool) -> None:
    for patch in promote_patches(w.ro, **flags):
        merge(w.ro, patch.body)  # the body names `status` or `spec` itself
        if patch.subresource == "":
            w.ro["metadata"]["generation"] += 1


def abort(w: World) -> None:
    for patch in abort_patches():
        merge(w.ro, patch.body)


def step_run(w: World) -> dict[str, Any]:
    entry = w.status["canary"][ca.STEP_STATUS]
    return w.runs[entry["name"]]


def update(w: World, image: str = "nginx:2") -> str:
    w.set_image(image)
    w.settle()
    return str(w.status["currentPodHash"])


# --------------------------------------------------------------------------- the analysis step


def test_a_sharded_rollouts_runs_carry_its_controller_instance_id() -> None:
    """`--instance-id`: a controller watches only its shard's runs, so they carry the Rollout's id."""
    w = world()
    w.ro["metadata"]["labels"] = {"pyrollouts.io/controller-instance-id": "blue"}
    update(w)
    [run] = w.runs.values()
    assert run["metadata"]["labels"]["pyrollouts.io/controller-instance-id"] == "blue"


def test_step_run_is_created_labelled_owned_with_resolved_args() -> None:
    w = world()
    w.ro["metadata"]["labels"] = {"team": "payments"}
    w.ro["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["args"] = [
        LATEST,
        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
        {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}},
    ]
    w.templates["ok"] = template(
        "ok", args=[{"name": n} for n in ("canary-hash", "stable-hash", "team", "ns", "token")]
    )
    w.ro["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["analysisRunMetadata"] = {
        "labels": {"extra": "yes"},
        "annotations": {"note": "hi"},
    }
    stable = w.status["stableRS"]
    pod_hash = update(w)
    assert w.status["currentStepIndex"] == 1
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1}
    [name] = w.runs
    assert name == f"web-{pod_hash}-2-1"
    run = w.runs[name]
    meta = run["metadata"]
    assert meta["labels"] == {
        "rollouts-pod-template-hash": pod_hash,
        "rollout-type": "Step",
        "step-index": "1",
        "extra": "yes",
        "app": "web",
    }
    assert meta["annotations"] == {"rollouts.pyrollouts.io/revision": "2", "note": "hi"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "pyrollouts.io/v1alpha1",
            "kind": "Rollout",
            "name": "web",
            "uid": "uid-web",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    args = {a["name"]: a.get("value", a.get("valueFrom")) for a in run["spec"]["args"]}
    assert args == {
        "canary-hash": pod_hash,
        "stable-hash": stable,
        "team": "payments",
        "ns": "default",
        "token": {"secretKeyRef": {"name": "prom", "key": "token"}},
    }
    assert run["spec"]["metrics"][0]["name"] == "success-rate"
    assert w.status["canary"][ca.STEP_STATUS] == {"name": name, "status": "Pending"}
    # the step waits for the run: nothing moves, no progress deadline
    assert w.status["phase"] == "Progressing"
    w.now += 3600
    w.settle()
    assert w.status["currentStepIndex"] == 1 and len(w.runs) == 1


def test_a_field_ref_the_rollout_lacks_is_the_runs_error_not_invalid_spec() -> None:
    team = {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}}
    steps = copy.deepcopy(STEPS)
    steps[1]["analysis"]["args"] = [LATEST, team]
    w = World(copy.deepcopy(rollout(steps=steps)))
    w.templates["ok"] = template("ok", args=[{"name": "canary-hash"}, {"name": "team"}])
    w.settle()
    assert w.status["phase"] == "Healthy"  # revision 1 runs no analysis
    update(w)
    assert w.condition("InvalidSpec") is None
    [run] = w.runs.values()
    assert run["metadata"]["annotations"]["analysis.pyrollouts.io/unresolved-args"].startswith(
        "args.team: fieldRef \"metadata.labels['team']\" not found in Rollout \"web\""
    )
    assert team in run["spec"]["args"]


def test_step_successful_goes_to_the_next_step() -> None:
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    w.set_run_phase(name, "Running")
    w.settle()
    assert w.status["canary"][ca.STEP_STATUS] == {"name": name, "status": "Running"}
    assert ("AnalysisRunRunning", f"Step Analysis Run '{name}' Status New: 'Running' Previous: 'Pending'") in w.events
    w.set_run_phase(name, "Successful")
    w.settle()
    assert w.status["currentStepIndex"] == 3
    assert w.status["phase"] == "Paused"
    assert w.by_image() == {"nginx:1": 2, "nginx:2": 3}
    assert ca.STEP_STATUS not in w.status.get("canary", {})
    assert ("RolloutStepCompleted", "Rollout step 2/4 completed (analysis)") in w.events
    assert ("AnalysisRunSuccessful", f"Step Analysis Run '{name}' Status New: 'Successful' Previous: 'Running'") in (
        w.events
    )
    assert w.run_phases() == {name: "Successful"}  # kept, not terminated
    assert "terminate" not in w.runs[name]["spec"]
    promote(w)
    w.settle()
    assert w.status["phase"] == "Healthy"
    assert w.run_phases() == {name: "Successful"}


@pytest.mark.parametrize("phase", ["Failed", "Error"])
def test_step_failed_or_error_aborts(phase: str) -> None:
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    w.set_run_phase(name, "Running")
    w.settle()
    w.set_run_phase(name, phase, FAILED_MESSAGE)
    w.settle()
    status = w.status
    assert status["abort"] is True
    assert status["phase"] == "Degraded"
    expected = f"Rollout aborted update to revision 2: Step-based analysis phase error/failed: {FAILED_MESSAGE}"
    assert status["message"] == f"RolloutAborted: {expected}"
    progressing = w.condition("Progressing")
    assert progressing is not None
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "RolloutAborted",
        expected,
    )
    assert ("RolloutAborted", expected) in w.events
    assert (f"AnalysisRun{phase}", f"Step Analysis Run '{name}' Status New: '{phase}' Previous: 'Running'") in w.events
    assert w.by_image() == {"nginx:1": 5}
    assert status["currentStepIndex"] == 0
    assert ca.STEP_STATUS not in status.get("canary", {})
    assert w.run_phases() == {name: phase}
    # retry: a new run for the step, with the next free name
    for patch in retry_patches():
        merge(w.ro, patch.body)
    w.settle()
    assert w.status["currentStepIndex"] == 1
    assert step_run(w)["metadata"]["name"] == f"{name}.1"
    assert w.status["phase"] == "Progressing"


def test_a_judge_short_of_traffic_says_so_in_the_rollouts_message() -> None:
    """An Inconclusive run whose judge ran out of measurements before its minimum evidence: the Rollout's
    message names the pause reason and the judge's outcome with what is still needed, from the structured
    keys of the metric's newest measurement (`outcome`, `needed`), not from any message."""
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    end_inconclusive(w.runs[name], short_of_traffic(), "reworded by a later version of the judge")
    w.settle()
    assert w.status["phase"] == "Paused"
    assert w.status["message"] == f"InconclusiveAnalysisRun: {THIN_CANARY_TEXT}"
    assert [c["reason"] for c in w.status["pauseConditions"]] == ["InconclusiveAnalysisRun"]


def test_a_score_short_of_traffic_names_each_short_metric_in_the_rollouts_message() -> None:
    """A judge score that ended undecided at its final count: its measurement has the outcome, and each
    short metric's needs in its `metric.<name>` entry; the Rollout names those metrics, not the decided."""
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    metadata = {
        "outcome": "TooLittleTraffic",
        "metric.errors": json.dumps({"decision": "nodata", "label": "Nodata", "needed": THIN_CANARY.to_dict()}),
        "metric.latency": json.dumps({"decision": "pass", "label": "Pass", "estimate": "1.01"}),
    }
    end_inconclusive(w.runs[name], metadata, "MARGINAL: ...")
    w.settle()
    figures = THIN_CANARY_TEXT.removeprefix("too little traffic after 5 measurements: ")
    assert w.status["message"] == f"InconclusiveAnalysisRun: too little traffic after 5 measurements: errors: {figures}"


def test_a_non_judge_metric_that_words_a_shortfall_leaves_the_rollouts_message_alone() -> None:
    """A user's own metric whose message (and metadata) read like the judge's outcome: not a judge metric,
    so the Rollout's message is Argo's, the pause reason alone."""
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    end_inconclusive(w.runs[name], short_of_traffic(), THIN_CANARY_TEXT, judge=False)
    w.settle()
    assert w.status["phase"] == "Paused"
    assert w.status["message"] == "InconclusiveAnalysisRun"
    assert THIN_CANARY_TEXT in w.status["canary"][ca.STEP_STATUS]["message"]  # Argo's status field as it was


def test_step_inconclusive_pauses_then_promote_continues() -> None:
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    w.set_run_phase(name, "Inconclusive", 'Metric "success-rate" assessed Inconclusive due to inconclusive (1) > 0')
    w.settle()
    status = w.status
    assert status["phase"] == "Paused"
    assert status["message"] == "InconclusiveAnalysisRun"
    assert status["controllerPause"] is True
    assert [c["reason"] for c in status["pauseConditions"]] == ["InconclusiveAnalysisRun"]
    assert status["canary"][ca.STEP_STATUS]["status"] == "Inconclusive"
    assert status["currentStepIndex"] == 1
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1}
    assert ("RolloutPaused", "Rollout is paused (InconclusiveAnalysisRun)") in w.events
    promote(w)  # Argo's plugin: clears the pause and controllerPause, and skips the analysis step
    w.settle()
    assert w.status["currentStepIndex"] == 3
    assert w.status["phase"] == "Paused" and w.status["message"] == "CanaryPauseStep"
    assert w.by_image() == {"nginx:1": 2, "nginx:2": 3}
    assert len(w.runs) == 1


def test_promote_while_the_step_runs_terminates_it_and_moves_on() -> None:
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    w.set_run_phase(name, "Running")
    w.settle()
    promote(w)
    plan = w.step()
    assert PatchAnalysisRun(name, {"spec": {"terminate": True}}) in plan.actions
    w.settle()
    assert w.runs[name]["spec"]["terminate"] is True
    assert w.status["currentStepIndex"] == 3


def test_promote_full_and_abort_terminate_the_step_run() -> None:
    for finish in ("full", "abort"):
        w = world()
        update(w)
        name = step_run(w)["metadata"]["name"]
        w.set_run_phase(name, "Running")
        w.settle()
        if finish == "full":
            promote(w, full=True)
        else:
            abort(w)
        w.settle()
        assert w.runs[name]["spec"]["terminate"] is True, finish
        assert ca.STEP_STATUS not in w.status.get("canary", {})
        assert w.status["phase"] == ("Healthy" if finish == "full" else "Degraded")


def test_new_template_mid_analysis_terminates_the_old_run() -> None:
    w = world()
    update(w)
    old = step_run(w)["metadata"]["name"]
    w.set_run_phase(old, "Running")
    w.settle()
    pod_hash = update(w, "nginx:3")
    assert w.runs[old]["spec"]["terminate"] is True
    assert w.status["currentStepIndex"] == 1
    new = step_run(w)["metadata"]["name"]
    assert new == f"web-{pod_hash}-3-1"


# --------------------------------------------------------------------------- background analysis


def background(starting_step: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"templates": [{"templateName": "ok"}], "args": [LATEST]}
    if starting_step is not None:
        spec["startingStep"] = starting_step
    return spec


BG_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}, {"setWeight": 80}]


def test_background_starts_at_starting_step_and_is_terminated_on_completion() -> None:
    w = world(steps=BG_STEPS, analysis=background(starting_step=2))
    assert not w.runs  # never for the first deploy
    pod_hash = update(w)
    assert w.status["currentStepIndex"] == 1
    assert not w.runs  # before startingStep
    promote(w)
    w.settle()
    assert w.status["currentStepIndex"] == 3
    [name] = w.runs
    assert name == f"web-{pod_hash}-2"
    run = w.runs[name]
    assert run["metadata"]["labels"]["rollout-type"] == "Background"
    assert "step-index" not in run["metadata"]["labels"]
    assert w.status["canary"][ca.BACKGROUND_STATUS] == {"name": name, "status": "Pending"}
    w.set_run_phase(name, "Running")
    promote(w)
    w.settle()
    assert w.status["phase"] == "Healthy"
    assert w.runs[name]["spec"]["terminate"] is True
    assert ca.BACKGROUND_STATUS not in w.status.get("canary", {})


def test_background_failing_mid_rollout_aborts() -> None:
    w = world(steps=BG_STEPS, analysis=background())
    update(w)
    [name] = w.runs
    w.set_run_phase(name, "Running")
    w.settle()
    promote(w)
    w.settle()
    assert w.status["currentStepIndex"] == 3
    w.set_run_phase(name, "Failed", FAILED_MESSAGE)
    w.settle()
    expected = f"Rollout aborted update to revision 2: Background analysis phase error/failed: {FAILED_MESSAGE}"
    assert w.status["phase"] == "Degraded"
    assert w.status["message"] == f"RolloutAborted: {expected}"
    assert w.by_image() == {"nginx:1": 5}
    assert ca.BACKGROUND_STATUS not in w.status.get("canary", {})


def test_background_inconclusive_pauses_and_promote_starts_a_new_run() -> None:
    w = world(analysis=background())
    update(w)
    step = w.status["canary"][ca.STEP_STATUS]["name"]
    name = w.status["canary"][ca.BACKGROUND_STATUS]["name"]
    w.set_run_phase(step, "Running")
    w.set_run_phase(name, "Inconclusive")
    w.settle()
    assert w.status["phase"] == "Paused" and w.status["message"] == "InconclusiveAnalysisRun"
    assert [c["reason"] for c in w.status["pauseConditions"]] == ["InconclusiveAnalysisRun"]
    assert w.status["controllerPause"] is True
    sizes = w.by_image()
    promote(w)  # clears the pause conditions; controllerPause stays, so the controller starts a new run
    assert w.status["controllerPause"] is True
    w.settle()
    assert sorted(w.runs) == sorted([step, name, f"{name}.1"])
    assert w.status["canary"][ca.BACKGROUND_STATUS] == {"name": f"{name}.1", "status": "Pending"}
    assert w.status["canary"][ca.STEP_STATUS] == {"name": step, "status": "Running"}  # the step run goes on
    assert w.by_image() == sizes
    assert w.status["phase"] == "Progressing"
    assert "pauseConditions" not in w.status and "controllerPause" not in w.status


def test_background_inconclusive_at_a_pause_step() -> None:
    w = world(steps=BG_STEPS, analysis=background())
    update(w)
    [name] = w.runs
    w.set_run_phase(name, "Inconclusive")
    w.settle()
    # Argo lists the pause reasons in the order they came; the phase message is the first
    assert [c["reason"] for c in w.status["pauseConditions"]] == ["CanaryPauseStep", "InconclusiveAnalysisRun"]
    assert w.status["message"] == "CanaryPauseStep"


def test_step_and_background_together_abort_on_either() -> None:
    w = world(analysis=background())
    update(w)
    assert {r["metadata"]["labels"]["rollout-type"] for r in w.runs.values()} == {"Step", "Background"}
    bg = w.status["canary"][ca.BACKGROUND_STATUS]["name"]
    step = w.status["canary"][ca.STEP_STATUS]["name"]
    w.set_run_phase(
        bg, "Error", 'Metric "success-rate" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4)'
    )
    w.set_run_phase(step, "Running")
    w.settle()
    assert w.status["phase"] == "Degraded"
    assert w.runs[step]["spec"]["terminate"] is True  # the step run is cancelled by the abort
    assert "terminate" not in w.runs[bg]["spec"]  # already complete


# --------------------------------------------------------------------------- templates and history


def test_missing_template_is_invalid_spec_and_touches_nothing() -> None:
    w = world()
    update(w)
    name = step_run(w)["metadata"]["name"]
    w.set_run_phase(name, "Running")
    w.settle()
    before = (dict(w.rss), w.run_phases())
    w.patch_spec({"strategy": {"canary": {"analysis": {"templates": [{"templateName": "gone"}]}}}})
    plan = w.step()
    assert not plan.actions
    cond = w.condition("InvalidSpec")
    assert cond is not None
    assert cond["message"] == (
        'The Rollout "web" is invalid: spec.strategy.canary.analysis.templates: Invalid value: "gone": '
        "AnalysisTemplate 'gone' not found"
    )
    assert w.status["phase"] == "Degraded"
    assert (dict(w.rss), w.run_phases()) == before
    w.templates["gone"] = template("gone", metric="latency")
    w.patch_spec({"strategy": {"canary": {"analysis": {"args": [LATEST]}}}})
    w.settle()
    assert w.condition("InvalidSpec") is None
    assert len(w.runs) == 2  # the background run started


def test_missing_cluster_template_and_nested_template() -> None:
    step = {"analysis": {"templates": [{"templateName": "c", "clusterScope": True}], "args": [LATEST]}}
    w = World(copy.deepcopy(rollout(steps=[step])))
    w.settle()
    cond = w.condition("InvalidSpec")
    assert cond is not None and "ClusterAnalysisTemplate 'c' not found" in cond["message"]
    outer = template("outer")
    outer["spec"] = {"templates": [{"templateName": "inner"}]}
    w.cluster_templates["c"] = {**outer, "kind": "ClusterAnalysisTemplate"}
    w.settle()
    cond = w.condition("InvalidSpec")
    assert cond is not None
    assert cond["message"].endswith("spec.templates: Invalid value: \"inner\": AnalysisTemplate 'inner' not found")
    w.templates["inner"] = template("inner")
    w.settle()
    assert w.condition("InvalidSpec") is None


def test_history_limits_delete_the_oldest_runs() -> None:
    w = world(steps=[{"setWeight": 20}, STEP_ANALYSIS, {"setWeight": 60}])
    w.ro["spec"]["analysis"] = {"successfulRunHistoryLimit": 2, "unsuccessfulRunHistoryLimit": 1}
    w.ro["spec"]["revisionHistoryLimit"] = 10
    names = []
    for version in range(2, 6):
        w.now += 10
        update(w, f"nginx:{version}")
        name = step_run(w)["metadata"]["name"]
        names.append(name)
        w.set_run_phase(name, "Successful" if version != 3 else "Failed")
        w.settle()
        if version == 3:
            for patch in retry_patches():
                merge(w.ro, patch.body)
            w.settle()
            retry_name = step_run(w)["metadata"]["name"]
            w.set_run_phase(retry_name, "Failed")
            w.settle()
            names.append(retry_name)
    # Successful: v2, v4, v5 -> the newest two stay; Failed: v3, v3 retry -> the newest stays
    assert sorted(w.runs) == sorted([names[3], names[4], names[2]])


def test_runs_of_a_deleted_replicaset_are_deleted() -> None:
    w = world(steps=[STEP_ANALYSIS])
    w.ro["spec"]["revisionHistoryLimit"] = 0
    update(w)
    first = step_run(w)["metadata"]["name"]
    w.set_run_phase(first, "Successful")
    w.settle()
    assert w.status["phase"] == "Healthy"
    update(w, "nginx:3")
    plan_runs = set(w.runs)
    # the ReplicaSet of nginx:1 is gone (history limit 0); the run of nginx:2 stays while its RS exists
    assert first in plan_runs
    second = step_run(w)["metadata"]["name"]
    w.set_run_phase(second, "Successful")
    w.settle()
    assert first not in w.runs  # nginx:2's ReplicaSet was cleaned up once nginx:3 became stable
    assert second in w.runs


def test_runs_to_delete_keeps_running_runs() -> None:
    def run(name: str, phase: str, created: float, pod_hash: str | None = "h") -> ca.RunView:
        labels = {"rollouts-pod-template-hash": pod_hash} if pod_hash else {}
        return ca.RunView(name, "u-" + name, phase, "", labels, created, False, False, {})

    runs = [
        run("a", "Successful", 1),
        run("b", "Successful", 2),
        run("c", "Running", 3),
        run("d", "Failed", 4),
        run("e", "Inconclusive", 5),
        run("f", "Successful", 6, pod_hash=None),
        run("g", "Successful", 7, pod_hash="gone"),
        run("h", "Successful", 8, pod_hash="deleting"),
    ]
    delete = ca.runs_to_delete(runs, {"h": False, "deleting": True}, 1, 1)
    assert sorted(r.name for r in delete) == ["a", "d", "f", "g", "h"]


def test_delete_actions_name_the_uid() -> None:
    w = world(steps=[STEP_ANALYSIS])
    w.ro["spec"]["analysis"] = {"successfulRunHistoryLimit": 0}
    update(w)
    name = step_run(w)["metadata"]["name"]
    uid = w.runs[name]["metadata"]["uid"]
    w.set_run_phase(name, "Successful")
    w.step()
    plan = w.step()
    assert DeleteAnalysisRun(name, uid) in plan.actions
