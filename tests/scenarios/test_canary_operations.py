"""Operations and failure modes: a new template mid-canary, progress deadlines, undo, restart,
revision history, workloadRef, scaling through the scale subresource, manual pause, bad specs."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, wait_restarted
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import rollout_manifest, service_manifest

pytestmark = pytest.mark.kubectl

STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
NEVER_READY = {"sandbox.pyrollouts.io/never-ready": "true"}


def test_bad_to_good_update_supersedes_the_canary(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("badgood")
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS, maxSurge=1, maxUnavailable=0))
    cluster.wait_phase(ns, "web", "Healthy")
    bad = rollout_manifest(
        "web", replicas=4, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, maxSurge=1, maxUnavailable=0
    )
    cluster.apply(ns, bad)
    cluster.wait("the bad canary to be created", lambda: cluster.sizes(ns, "web").get("nginx:bad") == 1)
    assert cluster.status(ns, "web")["phase"] == "Progressing"
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS, image="nginx:2", maxSurge=1, maxUnavailable=0))
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.wait_sizes(ns, "web", {"nginx:1": 3, "nginx:2": 1})
    assert status["currentStepIndex"] == 1
    assert len(cluster.replicasets(ns, "web")) == 3  # the superseded canary stays, scaled to zero
    cluster.promote_full(ns, "web")
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.wait_sizes(ns, "web", {"nginx:2": 4})


def test_pods_that_never_become_ready_trip_the_progress_deadline(
    cluster: Cluster, controller: ControllerProcess
) -> None:
    ns = cluster.new_namespace("deadline")
    spec = {"progressDeadlineSeconds": 2}
    cluster.apply(ns, rollout_manifest("web", replicas=2, steps=STEPS, spec=spec))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.apply(
        ns, rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, spec=spec)
    )
    status = cluster.wait(
        "the deadline", lambda: (st := cluster.status(ns, "web")).get("phase") == "Degraded" and st, timeout=15
    )
    assert status["message"].startswith('ProgressDeadlineExceeded: ReplicaSet "web-')
    assert status["message"].endswith('" has timed out progressing.')
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cluster.sizes(ns, "web") == {
        "nginx:1": 2,
        "nginx:bad": 1,
    }  # nothing rolled back without progressDeadlineAbort


def test_progress_deadline_abort(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("deadlineabort")
    spec = {"progressDeadlineSeconds": 2, "progressDeadlineAbort": True}
    cluster.apply(ns, rollout_manifest("web", replicas=2, steps=STEPS, spec=spec))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.apply(
        ns, rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, spec=spec)
    )
    status = cluster.wait("the abort", lambda: (st := cluster.status(ns, "web")).get("abort") and st, timeout=15)
    cluster.wait_sizes(ns, "web", {"nginx:1": 2})
    status = cluster.status(ns, "web")
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2: ReplicaSet")
    assert any(r == "RolloutAborted" for r, _ in cluster.events(ns, "web"))


def test_undo_to_a_revision(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("undo")
    cluster.apply(ns, rollout_manifest("web", replicas=3, steps=[]))
    first = cluster.wait_phase(ns, "web", "Healthy")["stableRS"]
    for image in ("nginx:2", "nginx:3"):
        cluster.set_image(ns, "web", image)

        def running(i: str = image) -> bool:
            return cluster.sizes(ns, "web") == {i: 3} and cluster.status(ns, "web").get("phase") == "Healthy"

        cluster.wait("the new image", running)
    # what `kubectl rollouts undo web --to-revision 1` does: the template of revision 1, our label removed
    rs = next(
        r
        for r in cluster.replicasets(ns, "web")
        if r["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"] == "1"
    )
    template = rs["spec"]["template"]
    template["metadata"]["labels"].pop("rollouts-pod-template-hash")
    cluster.patch(
        ns,
        "web",
        [{"op": "replace", "path": "/spec/template", "value": template}],
        patch_type="json",
    )
    status = cluster.wait_phase(ns, "web", "Healthy")
    cluster.wait_sizes(ns, "web", {"nginx:1": 3})
    assert status["currentPodHash"] == first
    assert len(cluster.replicasets(ns, "web")) == 3  # no new ReplicaSet: revision 1's came back
    rs = next(r for r in cluster.replicasets(ns, "web") if r["metadata"]["name"] == f"web-{first}")
    assert rs["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"] == "4"
    assert cluster.rollout(ns, "web")["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"] == "4"


def test_restart_recreates_pods_within_max_unavailable(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("restart")
    cluster.apply(ns, rollout_manifest("web", replicas=3, steps=[], maxUnavailable=1, maxSurge=0))
    cluster.wait_phase(ns, "web", "Healthy")
    old = {p["metadata"]["name"] for p in cluster.pods(ns, deleting=True)}
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    restart_at = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.patch(ns, "web", {"spec": {"restartAt": restart_at}})
    min_ready, live = wait_restarted(cluster, ns, restart_at, 20)
    assert len(live) == 3 and not ({p["metadata"]["name"] for p in live} & old)
    assert min_ready >= 2  # never more than maxUnavailable (1) pods down
    assert len(cluster.replicasets(ns, "web")) == 1
    cluster.wait_phase(ns, "web", "Healthy")


def test_revision_history_limit_prunes_old_replicasets(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("history")
    cluster.apply(ns, rollout_manifest("web", replicas=2, steps=[], spec={"revisionHistoryLimit": 1}))
    cluster.wait_phase(ns, "web", "Healthy")
    for version in range(2, 6):
        cluster.set_image(ns, "web", f"nginx:{version}")

        def running(v: int = version) -> bool:
            return cluster.sizes(ns, "web") == {f"nginx:{v}": 2} and cluster.status(ns, "web").get("phase") == "Healthy"

        cluster.wait("the new image", running)
    cluster.wait("old ReplicaSets pruned", lambda: len(cluster.replicasets(ns, "web")) == 2)
    revisions = sorted(
        int(r["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"]) for r in cluster.replicasets(ns, "web")
    )
    assert revisions == [4, 5]


def test_workload_ref_takes_over_a_deployment(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("workload")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "legacy"}},
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
            },
        },
    }
    cluster.apply(ns, deployment)
    cluster.wait(
        "the deployment",
        lambda: (cluster.deployment(ns, "legacy").get("status") or {}).get("availableReplicas") == 3,
    )
    ro = rollout_manifest("legacy", replicas=3, steps=[{"setWeight": 50}, {"pause": {}}])
    del ro["spec"]["template"]
    ro["spec"]["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "legacy",
        "scaleDown": "progressively",
    }
    cluster.apply(ns, ro)
    cluster.wait_phase(ns, "legacy", "Healthy")
    cluster.wait_sizes(ns, "legacy", {"nginx:1": 3})
    cluster.wait("the deployment scaled down", lambda: cluster.deployment(ns, "legacy")["spec"]["replicas"] == 0)
    # a change of the Deployment's template is a new version of the Rollout
    cluster.patch(
        ns,
        "legacy",
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
        kind="deployment",
        patch_type="json",
    )
    cluster.wait_phase(ns, "legacy", "Paused")
    cluster.wait_sizes(ns, "legacy", {"nginx:1": 2, "nginx:2": 2})


def test_scale_subresource_mid_rollout(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("hpa")
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused")
    cluster.wait_sizes(ns, "web", {"nginx:1": 3, "nginx:2": 1})
    # what an HPA does: write spec.replicas through /scale
    cluster.kubectl("scale", "rollout", "web", "-n", ns, "--replicas=8")
    cluster.wait_sizes(ns, "web", {"nginx:1": 6, "nginx:2": 2})
    scale = json.loads(
        cluster.kubectl("get", "--raw", f"/apis/pyrollouts.io/v1alpha1/namespaces/{ns}/rollouts/web/scale").stdout
    )
    assert scale["spec"]["replicas"] == 8
    cluster.wait(
        "status.replicas through /scale",
        lambda: (
            json.loads(
                cluster.kubectl(
                    "get", "--raw", f"/apis/pyrollouts.io/v1alpha1/namespaces/{ns}/rollouts/web/scale"
                ).stdout
            )["status"].get("replicas")
            == 8
        ),
    )
    assert scale["status"]["selector"] == "app=web"
    assert cluster.status(ns, "web")["currentStepIndex"] == 1


def test_manual_pause_and_resume(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("pause")
    cluster.apply(
        ns,
        rollout_manifest(
            "web", replicas=4, steps=[{"setWeight": 25}, {"pause": {"duration": 1}}, {"setWeight": 75}, {"pause": {}}]
        ),
    )
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.patch(ns, "web", {"spec": {"paused": True}})
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="manually paused")
    time.sleep(1.5)
    assert cluster.sizes(ns, "web") == {"nginx:1": 4}
    cluster.patch(ns, "web", {"spec": {"paused": False}})
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.wait_sizes(ns, "web", {"nginx:1": 1, "nginx:2": 3})
    assert any(r == "RolloutResumed" for r, _ in cluster.events(ns, "web"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strategy": {"canary": {"steps": [], "maxSurge": 0, "maxUnavailable": 0}}}, "spec.strategy.canary.maxSurge"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 10, "pause": {}}]}}}, "spec.strategy.canary.steps[0]"),
        (
            {"strategy": {"canary": {"canaryService": "svc", "stableService": "svc"}}},
            "spec.strategy.canary.stableService",
        ),
        ({"strategy": {"canary": {"canaryService": "missing"}}}, "spec.strategy.canary.canaryService"),
        ({"strategy": {"canary": {}, "blueGreen": {"activeService": "svc"}}}, "spec.strategy"),
        ({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels"),
    ],
)
def test_invalid_spec_touches_nothing_and_recovers(
    cluster: Cluster, controller: ControllerProcess, change: dict[str, Any], field: str
) -> None:
    ns = cluster.new_namespace("invalid")
    cluster.apply(ns, service_manifest("svc", "web"), rollout_manifest("web", replicas=2, steps=STEPS))
    cluster.wait_phase(ns, "web", "Healthy")
    before = {r["metadata"]["name"]: r["spec"]["replicas"] for r in cluster.replicasets(ns, "web")}
    bad = rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:2")
    for key, value in change.items():
        if key == "strategy":
            bad["spec"]["strategy"] = {
                "canary": {**bad["spec"]["strategy"]["canary"], **value["canary"]},
                **{k: v for k, v in value.items() if k != "canary"},
            }
        else:
            bad["spec"][key] = value
    cluster.apply(ns, bad)
    status = cluster.wait_phase(ns, "web", "Degraded")
    assert status["message"].startswith('InvalidSpec: The Rollout "web" is invalid: ' + field + ":"), status["message"]
    invalid = {c["type"]: c for c in status["conditions"]}["InvalidSpec"]
    assert (invalid["status"], invalid["reason"]) == ("True", "InvalidSpec")
    # The Event is written after the status, so it may trail the phase by a moment.
    cluster.wait(
        "InvalidSpec event", lambda: any(r == "InvalidSpec" and field in m for r, m in cluster.events(ns, "web"))
    )
    time.sleep(0.5)
    assert {r["metadata"]["name"]: r["spec"]["replicas"] for r in cluster.replicasets(ns, "web")} == before
    cluster.apply(ns, rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:2"))
    status = cluster.wait_phase(ns, "web", "Paused")
    assert "InvalidSpec" not in {c["type"] for c in status["conditions"]}


def test_set_weight_over_100_is_invalid_spec(cluster: Cluster, controller: ControllerProcess) -> None:
    # The schema has no maximum (trafficRouting.maxTrafficWeight may allow more); the controller checks it.
    ns = cluster.new_namespace("weight")
    cluster.apply(ns, rollout_manifest("web", steps=[{"setWeight": 120}]))
    status = cluster.wait("InvalidSpec", lambda: (st := cluster.status(ns, "web")).get("phase") == "Degraded" and st)
    assert "spec.strategy.canary.steps[0].setWeight" in status["message"]
    assert "SetWeight needs to be between 0 and 100" in status["message"]
