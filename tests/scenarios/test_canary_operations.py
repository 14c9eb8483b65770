"""Operations and failure modes: a new template mid-canary, progress deadlines, undo, restart,
revision history, workloadRef, scaling through the scale subresource, manual pause, bad specs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import REVISION, given

pytestmark = pytest.mark.kubectl

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
NEVER_READY = {"sandbox.pyrollouts.io/never-ready": "true"}


def test_bad_to_good_update_supersedes_the_canary(cluster: Cluster, controller: ControllerProcess | None) -> None:
    surge: dict[str, Any] = {"maxSurge": 1, "maxUnavailable": 0}
    rollout = given(cluster, "badgood").rollout(rollout_manifest("web", replicas=4, steps=STEPS, **surge))
    rollout.apply().wait_healthy()
    rollout.apply(
        rollout_manifest("web", replicas=4, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, **surge)
    )
    rollout.wait_for("the bad canary to be created", lambda: rollout.sizes().get("nginx:bad") == 1)
    assert rollout.status["phase"] == "Progressing"
    rollout.apply(rollout_manifest("web", replicas=4, steps=STEPS, image="nginx:2", **surge))
    rollout.wait_paused(message="CanaryPauseStep").wait_sizes({"nginx:1": 3, "nginx:2": 1})
    assert rollout.seen["currentStepIndex"] == 1
    assert len(rollout.replicasets()) == 3  # the superseded canary stays, scaled to zero
    rollout.promote_full().wait_healthy().wait_sizes({"nginx:2": 4})


def test_pods_that_never_become_ready_trip_the_progress_deadline(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    spec = {"progressDeadlineSeconds": 2}
    rollout = given(cluster, "deadline").rollout(rollout_manifest("web", replicas=2, steps=STEPS, spec=spec))
    rollout.apply().wait_healthy()
    rollout.apply(
        rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, spec=spec)
    )
    status = rollout.wait_status("the deadline", lambda st: st.get("phase") == "Degraded", timeout=15).seen
    assert status["message"].startswith('ProgressDeadlineExceeded: ReplicaSet "web-')
    assert status["message"].endswith('" has timed out progressing.')
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    rollout.expect_sizes({"nginx:1": 2, "nginx:bad": 1})  # nothing rolled back without progressDeadlineAbort


def test_progress_deadline_abort(cluster: Cluster, controller: ControllerProcess | None) -> None:
    spec = {"progressDeadlineSeconds": 2, "progressDeadlineAbort": True}
    rollout = given(cluster, "deadlineabort").rollout(rollout_manifest("web", replicas=2, steps=STEPS, spec=spec))
    rollout.apply().wait_healthy()
    rollout.apply(
        rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:bad", annotations=NEVER_READY, spec=spec)
    )
    rollout.wait_status("the abort", lambda st: bool(st.get("abort")), timeout=15)
    rollout.wait_sizes({"nginx:1": 2})
    status = rollout.status
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2: ReplicaSet")
    rollout.wait_event("RolloutAborted")


def test_undo_to_a_revision(cluster: Cluster, controller: ControllerProcess | None) -> None:
    rollout = given(cluster, "undo").rollout(rollout_manifest("web", replicas=3, steps=[]))
    first = rollout.apply().wait_healthy().seen["stableRS"]
    for image in ("nginx:2", "nginx:3"):
        rollout.set_image(image)

        def running(i: str = image) -> bool:
            return rollout.sizes() == {i: 3} and rollout.status.get("phase") == "Healthy"

        rollout.wait_for("the new image", running)
    # what `kubectl rollouts undo web --to-revision 1` does: the template of revision 1, our label removed
    rs = next(r for r in rollout.replicasets() if r["metadata"]["annotations"][REVISION] == "1")
    template = rs["spec"]["template"]
    template["metadata"]["labels"].pop("rollouts-pod-template-hash")
    rollout.patch([{"op": "replace", "path": "/spec/template", "value": template}], patch_type="json")
    status = rollout.wait_healthy().wait_sizes({"nginx:1": 3}).seen
    assert status["currentPodHash"] == first
    assert len(rollout.replicasets()) == 3  # no new ReplicaSet: revision 1's came back
    rs = next(r for r in rollout.replicasets() if r["metadata"]["name"] == f"web-{first}")
    assert rs["metadata"]["annotations"][REVISION] == "4"
    assert rollout.live()["metadata"]["annotations"][REVISION] == "4"


def test_restart_recreates_pods_within_max_unavailable(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "restart")
    rollout = namespace.rollout(rollout_manifest("web", replicas=3, steps=[], maxUnavailable=1, maxSurge=0))
    rollout.apply().wait_healthy()
    old = {p["metadata"]["name"] for p in namespace.pods(deleting=True)}
    restart_at = rollout.restart_at(dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1))
    min_ready, live = rollout.wait_restarted(restart_at, 20)
    assert len(live) == 3 and not ({p["metadata"]["name"] for p in live} & old)
    assert min_ready >= 2  # never more than maxUnavailable (1) pods down
    assert len(rollout.replicasets()) == 1
    rollout.wait_healthy()


def test_revision_history_limit_prunes_old_replicasets(cluster: Cluster, controller: ControllerProcess | None) -> None:
    manifest = rollout_manifest("web", replicas=2, steps=[], spec={"revisionHistoryLimit": 1})
    rollout = given(cluster, "history").rollout(manifest).apply().wait_healthy()
    for version in range(2, 6):
        rollout.set_image(f"nginx:{version}")

        def running(v: int = version) -> bool:
            return rollout.sizes() == {f"nginx:{v}": 2} and rollout.status.get("phase") == "Healthy"

        rollout.wait_for("the new image", running)
    rollout.wait_for("old ReplicaSets pruned", lambda: len(rollout.replicasets()) == 2)
    assert sorted(int(r["metadata"]["annotations"][REVISION]) for r in rollout.replicasets()) == [4, 5]


def test_workload_ref_takes_over_a_deployment(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "workload")
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
    namespace.apply(deployment)
    cluster.wait(
        "the deployment",
        lambda: (namespace.deployment("legacy").get("status") or {}).get("availableReplicas") == 3,
    )
    ro = rollout_manifest("legacy", replicas=3, steps=[{"setWeight": 50}, {"pause": {}}])
    del ro["spec"]["template"]
    ro["spec"]["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "legacy",
        "scaleDown": "progressively",
    }
    rollout = namespace.rollout(ro).apply().wait_healthy().wait_sizes({"nginx:1": 3})
    rollout.wait_for("the deployment scaled down", lambda: namespace.deployment("legacy")["spec"]["replicas"] == 0)
    # a change of the Deployment's template is a new version of the Rollout
    namespace.patch(
        "deployment",
        "legacy",
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
        patch_type="json",
    )
    rollout.wait_paused().wait_sizes({"nginx:1": 2, "nginx:2": 2})


def test_scale_subresource_mid_rollout(cluster: Cluster, controller: ControllerProcess | None) -> None:
    rollout = given(cluster, "hpa").rollout(rollout_manifest("web", replicas=4, steps=STEPS))
    rollout.apply().wait_healthy().set_image("nginx:2").wait_paused().wait_sizes({"nginx:1": 3, "nginx:2": 1})
    # what an HPA does: write spec.replicas through /scale
    rollout.scale(8).wait_sizes({"nginx:1": 6, "nginx:2": 2})
    scale = rollout.scale_subresource()
    assert scale["spec"]["replicas"] == 8
    rollout.wait_for(
        "status.replicas through /scale", lambda: rollout.scale_subresource()["status"].get("replicas") == 8
    )
    assert scale["status"]["selector"] == "app=web"
    assert rollout.status["currentStepIndex"] == 1


def test_manual_pause_and_resume(cluster: Cluster, controller: ControllerProcess | None) -> None:
    steps: list[Step] = [{"setWeight": 25}, {"pause": {"duration": 1}}, {"setWeight": 75}, {"pause": {}}]
    rollout = given(cluster, "pause").rollout(rollout_manifest("web", replicas=4, steps=steps))
    rollout.apply().wait_healthy()
    rollout.pause().set_image("nginx:2").wait_paused(message="manually paused")
    rollout.expect_throughout(1.5, lambda: rollout.expect_sizes({"nginx:1": 4}))
    rollout.resume().wait_paused(message="CanaryPauseStep").wait_sizes({"nginx:1": 1, "nginx:2": 3})
    rollout.wait_event("RolloutResumed")


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
    cluster: Cluster, controller: ControllerProcess | None, change: dict[str, Any], field: str
) -> None:
    manifest = rollout_manifest("web", replicas=2, steps=STEPS)
    rollout = given(cluster, "invalid").rollout(manifest, service_manifest("svc", "web")).apply().wait_healthy()
    before = rollout.replicaset_sizes()
    bad = rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:2")
    for key, value in change.items():
        if key == "strategy":
            bad["spec"]["strategy"] = {
                "canary": {**bad["spec"]["strategy"]["canary"], **value["canary"]},
                **{k: v for k, v in value.items() if k != "canary"},
            }
        else:
            bad["spec"][key] = value
    status = rollout.apply(bad).wait_degraded().seen
    assert status["message"].startswith('InvalidSpec: The Rollout "web" is invalid: ' + field + ":"), status["message"]
    invalid = {c["type"]: c for c in status["conditions"]}["InvalidSpec"]
    assert (invalid["status"], invalid["reason"]) == ("True", "InvalidSpec")
    # The Event is written after the status, so it may trail the phase by a moment.
    rollout.wait_for("InvalidSpec event", lambda: any(r == "InvalidSpec" and field in m for r, m in rollout.events()))
    rollout.expect_throughout(0.5, lambda: rollout.expect_replicaset_sizes(before))
    status = rollout.apply(rollout_manifest("web", replicas=2, steps=STEPS, image="nginx:2")).wait_paused().seen
    assert "InvalidSpec" not in {c["type"] for c in status["conditions"]}


def test_set_weight_over_100_is_invalid_spec(cluster: Cluster, controller: ControllerProcess | None) -> None:
    # The schema has no maximum (trafficRouting.maxTrafficWeight may allow more); the controller checks it.
    rollout = given(cluster, "weight").rollout(rollout_manifest("web", steps=[{"setWeight": 120}])).apply()
    status = rollout.wait_status("InvalidSpec", lambda st: st.get("phase") == "Degraded").seen
    assert "spec.strategy.canary.steps[0].setWeight" in status["message"]
    assert "SetWeight needs to be between 0 and 100" in status["message"]
