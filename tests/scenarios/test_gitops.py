"""GitOps with the real controller on the sandbox: Argo CD's health checks (deploy/argocd/*.lua, run with
lupa) and kstatus (what Flux reads) over the Rollouts, AnalysisRuns and Experiments the controller really
produces, and the controller writing nothing a Git manifest sets (no drift for Argo CD or Flux to see)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.experiment import experiment_in, experiment_manifest, experiment_template
from tests.fixtures.gitops import conditions_of, kstatus, lua_health
from tests.fixtures.manifests import API_VERSION, Step, rollout_manifest
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl

STEPS: list[Step] = [{"setWeight": 50}, {"pause": {}}]
NEVER_READY = {"sandbox.pyrollouts.io/never-ready": "true"}
# Annotations the controller may add to a Rollout: its own, under its own prefix (Argo: rollout.argoproj.io/).
CONTROLLER_PREFIX = "rollouts.pyrollouts.io/"


def test_health_and_kstatus_follow_a_canary(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "gitops")
    rollout = namespace.rollout(rollout_manifest("web", replicas=2, steps=STEPS))

    healthy = rollout.apply().wait_healthy().live()
    assert lua_health("Rollout", healthy) == ("Healthy", "Rollout is healthy")
    assert kstatus(healthy) == "Current"
    assert healthy["status"]["observedGeneration"] == healthy["metadata"]["generation"]
    assert conditions_of(healthy)["Ready"] == ("True", "Healthy")
    assert "Reconciling" not in conditions_of(healthy) and "Stalled" not in conditions_of(healthy)
    namespace.kubectl("wait", "--for=condition=Ready", "rollouts.pyrollouts.io/web", "--timeout=10s")

    paused = rollout.set_image("nginx:2").wait_paused().live()
    assert lua_health("Rollout", paused)[0] == "Suspended"
    assert kstatus(paused) == "InProgress"
    assert conditions_of(paused)["Reconciling"] == ("True", "Paused")
    assert conditions_of(paused)["Ready"] == ("False", "Paused")

    degraded = rollout.abort().wait_degraded().live()
    assert lua_health("Rollout", degraded) == ("Degraded", degraded["status"]["message"])
    assert kstatus(degraded) == "Failed"
    assert conditions_of(degraded)["Stalled"] == ("True", "Degraded")
    assert "Reconciling" not in conditions_of(degraded)

    stuck = namespace.rollout(rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:3",
                                               annotations=NEVER_READY))
    progressing = stuck.apply().wait_phase("Progressing").live()
    assert lua_health("Rollout", progressing) == ("Progressing", progressing["status"]["message"])
    assert kstatus(progressing) == "InProgress"
    assert conditions_of(progressing)["Reconciling"] == ("True", "Progressing")
    assert "Stalled" not in conditions_of(progressing)

    unobserved = {**progressing, "metadata": {**progressing["metadata"], "generation": 99}}
    assert lua_health("Rollout", unobserved) == ("Progressing", "Waiting for the controller to observe generation 99")
    assert kstatus(unobserved) == "InProgress"
    no_status = {key: value for key, value in progressing.items() if key != "status"}
    assert lua_health("Rollout", no_status)[0] == "Progressing"


def job_run(name: str, fail: bool = False, delay: str = "") -> dict[str, Any]:
    """An AnalysisRun of one Job metric (the sandbox's Job completes, or fails with the annotation)."""
    annotations = {"sandbox.pyrollouts.io/fail": "true"} if fail else {}
    metric: dict[str, Any] = {
        "name": "smoke",
        "provider": {"job": {"spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": annotations},
            "spec": {"containers": [{"name": "smoke", "image": "busybox"}], "restartPolicy": "Never"},
        }}}},
    }
    if delay:
        metric["initialDelay"] = delay
    return {"apiVersion": API_VERSION, "kind": "AnalysisRun", "metadata": {"name": name}, "spec": {"metrics": [metric]}}


def error_run(name: str) -> dict[str, Any]:
    """An AnalysisRun whose Web metric cannot connect, with no errors allowed: Error at once."""
    metric = {"name": "down", "consecutiveErrorLimit": 0, "provider": {"web": {"url": "http://127.0.0.1:9/"}}}
    return {"apiVersion": API_VERSION, "kind": "AnalysisRun", "metadata": {"name": name}, "spec": {"metrics": [metric]}}


def test_analysisrun_health_over_real_runs(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "gitopsar")
    namespace.apply(job_run("passes"), job_run("fails", fail=True), job_run("waits", delay="1h"), error_run("errs"))
    wanted = {"passes": "Successful", "fails": "Failed", "waits": "Running", "errs": "Error"}

    def settled() -> dict[str, dict[str, Any]] | None:
        runs = namespace.analysis_runs()
        phases = {name: (runs.get(name) or {}).get("status", {}).get("phase") for name in wanted}
        assert phases == wanted, phases
        return runs

    runs = cluster.wait("the four runs to reach their phases", settled, 30, 0.1)
    assert lua_health("AnalysisRun", runs["passes"])[0] == "Healthy"
    assert lua_health("AnalysisRun", runs["fails"]) == ("Degraded", runs["fails"]["status"]["message"])
    assert lua_health("AnalysisRun", runs["errs"]) == ("Degraded", runs["errs"]["status"]["message"])
    assert lua_health("AnalysisRun", runs["waits"])[0] == "Progressing"
    inconclusive = {**runs["waits"], "status": {**runs["waits"]["status"], "phase": "Inconclusive"}}
    assert lua_health("AnalysisRun", inconclusive)[0] == "Suspended"
    assert lua_health("AnalysisRun", {"metadata": {"name": "new"}})[0] == "Progressing"


def test_experiment_health_over_real_experiments(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "gitopsexp")
    timed = experiment_manifest("timed", [experiment_template("a")], duration="1s", scaleDownDelaySeconds=0)
    endless = experiment_manifest("endless", [experiment_template("b")])
    never_ready = experiment_template("c", annotations=NEVER_READY)
    stuck = experiment_manifest("stuck", [never_ready], progressDeadlineSeconds=2, scaleDownDelaySeconds=0)
    bad = experiment_template("d")
    bad["selector"] = {"matchLabels": {"app": "other"}}
    handles = {name: experiment_in(namespace, manifest) for name, manifest in (
        ("timed", timed), ("endless", endless), ("stuck", stuck), ("invalid", experiment_manifest("invalid", [bad]))
    )}
    for handle in handles.values():
        handle.apply()
    handles["timed"].wait_phase("Successful")
    handles["endless"].wait_phase("Running")
    handles["stuck"].wait_phase("Failed")
    handles["invalid"].wait_phase("Error")
    live = {name: handle.object for name, handle in handles.items()}
    assert lua_health("Experiment", live["timed"])[0] == "Healthy"
    assert lua_health("Experiment", live["endless"])[0] == "Progressing"
    assert lua_health("Experiment", live["stuck"]) == ("Degraded", live["stuck"]["status"]["message"])
    assert lua_health("Experiment", live["invalid"]) == ("Degraded", live["invalid"]["status"]["message"])
    inconclusive = {**live["endless"], "status": {**live["endless"]["status"], "phase": "Inconclusive"}}
    assert lua_health("Experiment", inconclusive)[0] == "Suspended"
    assert lua_health("Experiment", {"kind": "Experiment", "metadata": {"name": "new"}}) == (
        "Progressing",
        "Waiting for the controller to start the experiment",
    )


def git_fields(manifest: Any, live: Any, path: str = "") -> list[str]:
    """Paths where `live` differs from what the Git `manifest` sets (fields the manifest leaves out are the
    server's or the controller's, as Argo CD's diff and Flux's dry-run apply treat them)."""
    if isinstance(manifest, dict):
        if not isinstance(live, dict):
            return [path]
        return [p for key, value in manifest.items() for p in git_fields(value, live.get(key), f"{path}.{key}")]
    if isinstance(manifest, list):
        if not isinstance(live, list) or len(live) != len(manifest):
            return [path]
        pairs = enumerate(zip(manifest, live, strict=True))
        return [p for n, (m, v) in pairs for p in git_fields(m, v, f"{path}[{n}]")]
    return [] if manifest == live else [path]


def test_the_controller_writes_no_field_a_git_manifest_sets(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "gitopsdrift")
    labels_and_notes = {"labels": {"team": "shop"}, "annotations": {"owner": "shop@example.com"}}
    v1 = rollout_manifest("web", replicas=3, steps=[{"setWeight": 34}, {"pause": {"duration": "1s"}}],
                          metadata=labels_and_notes)
    rollout = namespace.rollout(v1)
    rollout.apply().wait_healthy()
    v2 = rollout_manifest("web", replicas=3, steps=[{"setWeight": 34}, {"pause": {"duration": "1s"}}],
                          image="nginx:2", metadata=labels_and_notes)
    namespace.apply(v2)
    before = rollout.live()
    after = rollout.wait_healthy().wait_sizes({"nginx:2": 3}).live()
    assert after["status"]["stableRS"] == after["status"]["currentPodHash"]  # the whole canary ran

    assert git_fields(v2, after) == []
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    added = set(after["metadata"]["annotations"]) - set(before["metadata"]["annotations"])
    changed = {k for k, v in before["metadata"]["annotations"].items() if after["metadata"]["annotations"].get(k) != v}
    assert all(key.startswith(CONTROLLER_PREFIX) for key in added | changed), (added, changed)
    for key in ("finalizers", "ownerReferences"):
        assert not after["metadata"].get(key), key
