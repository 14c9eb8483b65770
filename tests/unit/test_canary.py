"""The pure canary planner, driven through whole rollouts in an in-memory world."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.revisions import REVISION
from rollouts.model.spec import RolloutSpec
from rollouts.strategy.plan import CreateReplicaSet, PatchReplicaSet, PatchService
from rollouts.strategy.replicas import approximate_weighted_counts, basic_canary_counts
from rollouts.strategy.replicasets import ReplicaSetView
from tests.fixtures.world import World, rollout

STEPS: list[dict[str, Any]] = [
    {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}, {"setWeight": 80}
]


def rs_view(name: str, replicas: int, available: int | None = None) -> ReplicaSetView:
    return ReplicaSetView(
        name=name,
        uid=name,
        pod_hash=name,
        replicas=replicas,
        status_replicas=replicas,
        ready=replicas if available is None else available,
        available=replicas if available is None else available,
        revision=1,
        annotations={},
        created="",
        generation=1,
        observed_generation=1,
        deleting=False,
    )


# Cases from Argo Rollouts' TestCalculateReplicaCountsForCanary (utils/replicaset/canary_test.go) without
# traffic routing: (replicas, setWeight, maxSurge, maxUnavailable, promoteFull,
#                   stable spec, stable available, canary spec, canary available, expected canary, expected stable)
ArgoCase = tuple[int, int, int | str, int | str, bool, int, int, int, int, int, int]
ARGO_CASES: list[ArgoCase] = [
    (10, 100, 3, 0, False, 7, 8, 6, 3, 6, 7),
    (10, 20, 2, 0, False, 10, 10, 0, 0, 2, 10),
    (10, 20, "20%", 0, False, 10, 10, 0, 0, 2, 10),
    (10, 20, "20%", 0, False, 10, 10, 2, 2, 2, 8),
    (10, 30, 2, 0, False, 10, 10, 0, 0, 2, 10),
    (10, 20, 0, 2, False, 10, 10, 0, 0, 0, 8),
    (10, 20, 0, "20%", False, 10, 10, 0, 0, 0, 8),
    (10, 30, 0, 2, False, 10, 10, 0, 0, 0, 8),
    (10, 50, 2, 1, False, 10, 10, 0, 0, 2, 9),
    (10, 0, 1, 1, False, 10, 10, 1, 1, 0, 10),
    (10, 100, 1, 1, False, 1, 1, 10, 10, 10, 0),
    (1, 20, 1, 0, False, 1, 1, 0, 0, 1, 1),
    (1, 90, 1, 0, False, 1, 1, 0, 0, 1, 1),
    (1, 49, 0, 1, False, 1, 1, 0, 0, 0, 1),
    (1, 51, 0, 1, False, 1, 1, 0, 0, 0, 0),
    (1, 51, 0, 1, False, 0, 0, 0, 0, 1, 0),
    (10, 30, 0, 3, False, 8, 5, 4, 4, 3, 7),
    (10, 100, 1, 0, False, 10, 2, 10, 8, 9, 2),
    (10, 5, 0, 1, False, 10, 10, 0, 0, 0, 9),
    (10, 5, 0, 1, False, 9, 9, 0, 0, 1, 9),
    (10, 10, "0%", "0%", False, 10, 10, 0, 0, 0, 9),
    (4, 100, 1, 0, False, 4, 1, 0, 0, 1, 4),
    (3, 99, 0, 2, False, 3, 3, 0, 0, 0, 1),
    (3, 99, 0, 2, False, 1, 1, 0, 0, 2, 1),
    (4, 0, 1, 0, False, 0, 0, 4, 4, 4, 1),
    (4, 0, 1, 0, False, 1, 0, 4, 4, 4, 1),
    (4, 0, 1, 0, False, 1, 1, 4, 4, 3, 1),
    (4, 1, 4, 4, True, 4, 4, 0, 0, 4, 0),
    (4, 1, 3, 0, True, 4, 4, 0, 0, 3, 4),
]


@pytest.mark.parametrize("case", ARGO_CASES)
def test_basic_canary_counts_match_argo(case: ArgoCase) -> None:
    replicas, weight, surge, unavailable, full, s_spec, s_avail, c_spec, c_avail, want_canary, want_stable = case
    spec = RolloutSpec.parse(rollout(replicas=replicas, maxSurge=surge, maxUnavailable=unavailable))
    desired_new, desired_stable = approximate_weighted_counts(
        spec.replicas,
        100 if full else weight,
        100,
        spec.max_surge(),
    )
    new = rs_view("new", c_spec, c_avail)
    stable = rs_view("stable", s_spec, s_avail)
    got = basic_canary_counts(
        spec.replicas, desired_new, desired_stable, spec.max_surge(), spec.max_unavailable(), new, stable, []
    )
    assert got == (want_canary, want_stable)


def test_weighted_counts_round_ties_up_and_never_to_zero() -> None:
    assert approximate_weighted_counts(3, 50, 100, 0) == (2, 1)
    assert approximate_weighted_counts(5, 1, 100, 0) == (1, 4)
    assert approximate_weighted_counts(5, 100, 100, 0) == (5, 0)
    assert approximate_weighted_counts(5, 0, 100, 0) == (0, 5)
    assert approximate_weighted_counts(0, 50, 100, 1) == (0, 0)


def test_first_deploy_goes_straight_to_full_size() -> None:
    world = World(rollout(steps=STEPS))
    plan = world.step()
    assert [type(a) for a in plan.actions] == [CreateReplicaSet, PatchRolloutMetadata_type()]
    world.settle()
    status = world.status
    assert world.by_image() == {"nginx:1": 5}
    assert status["phase"] == "Healthy"
    assert status["stableRS"] == status["currentPodHash"]
    assert status["currentStepIndex"] == len(STEPS)
    assert status["availableReplicas"] == 5
    reasons = [r for r, _ in world.events]
    assert reasons[:2] == ["NewReplicaSetCreated", "RolloutUpdated"]
    assert "RolloutCompleted" in reasons
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Progressing": "True",
        "Available": "True",
        "Healthy": "True",
        "Completed": "True",
        "Ready": "True",  # kstatus (Flux) beside Argo's
    }
    assert world.condition("Progressing")["reason"] == "NewReplicaSetAvailable"  # type: ignore[index]


def PatchRolloutMetadata_type() -> type:
    from rollouts.strategy.plan import PatchRolloutMetadata

    return PatchRolloutMetadata


def deployed(steps: list[dict[str, Any]] = STEPS, **kw: Any) -> World:
    world = World(rollout(steps=steps, **kw))
    world.settle()
    assert world.status["phase"] == "Healthy"
    world.events.clear()
    return world


def test_canary_steps_size_replicasets_and_pause() -> None:
    world = deployed(maxSurge="25%", maxUnavailable=0)
    world.set_image("nginx:2")
    world.settle()
    # step 0 setWeight 20 done, now paused at step 1
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    status = world.status
    assert status["currentStepIndex"] == 1
    assert status["phase"] == "Paused"
    assert status["message"] == "CanaryPauseStep"
    assert status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    assert status["controllerPause"] is True
    assert world.condition("Paused")["status"] == "True"  # type: ignore[index]
    assert status["canary"]["weights"]["canary"]["weight"] == 20
    # promote: the plugin clears the pause conditions
    world.promote()
    world.settle()
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}  # 50% of 5: Argo uses one surge pod to hit 50%
    assert world.status["currentStepIndex"] == 3
    assert world.status["message"] == "CanaryPauseStep"
    # the timed pause advances by itself once its time is up
    world.now += 29
    world.settle()
    assert world.status["currentStepIndex"] == 3
    world.now += 2
    world.settle()
    assert world.by_image() == {"nginx:2": 5}
    status = world.status
    assert status["phase"] == "Healthy"
    assert status["stableRS"] == status["currentPodHash"]
    reasons = [r for r, _ in world.events]
    assert reasons.count("RolloutStepCompleted") == 5
    assert "RolloutPaused" in reasons and "RolloutResumed" in reasons and "RolloutCompleted" in reasons
    messages = [m for r, m in world.events if r == "RolloutStepCompleted"]
    assert messages[0] == "Rollout step 1/5 completed (setWeight: 20)"
    assert messages[3] == "Rollout step 4/5 completed (pause: 30s)"


def test_timed_pause_asks_to_be_woken_at_its_deadline() -> None:
    world = deployed(steps=[{"setWeight": 40}, {"pause": {"duration": "1m"}}])
    world.set_image("nginx:2")
    world.settle()
    assert world.status["currentStepIndex"] == 1
    plan = world.plan()
    assert plan.requeue_after is not None and 59 <= plan.requeue_after <= 60


def test_promote_full_skips_the_remaining_steps() -> None:
    world = deployed()
    world.set_image("nginx:2")
    world.settle()
    world.promote_full()
    world.settle()
    assert world.by_image() == {"nginx:2": 5}
    assert world.status["phase"] == "Healthy"
    assert "promoteFull" not in world.status or world.status["promoteFull"] is False
    assert any(m.endswith("Full promotion requested") for r, m in world.events if r == "RolloutCompleted")


def test_skip_step_by_setting_the_index() -> None:
    world = deployed()
    world.set_image("nginx:2")
    world.settle()
    world.skip_to_step(2)
    world.settle()
    assert world.status["currentStepIndex"] == 3
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}


def test_abort_then_retry() -> None:
    world = deployed()
    world.set_image("nginx:2")
    world.settle()
    world.abort()
    world.settle()
    status = world.status
    assert world.by_image() == {"nginx:1": 5}
    assert status["phase"] == "Degraded"
    assert status["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert status["abort"] is True and status["abortedAt"]
    assert status["currentStepIndex"] == 0
    assert world.condition("Progressing")["reason"] == "RolloutAborted"  # type: ignore[index]
    assert ("RolloutAborted", "Rollout aborted update to revision 2") in world.events
    world.retry()
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    assert world.status["phase"] == "Paused"


def test_abort_keeps_canary_for_abort_scale_down_delay() -> None:
    world = deployed(abortScaleDownDelaySeconds=10, maxSurge=1, maxUnavailable=0)
    world.set_image("nginx:2")
    world.settle()
    world.abort()
    world.settle()
    assert world.by_image() == {"nginx:1": 5, "nginx:2": 1}
    canary_rs = next(r for r in world.rss.values() if "nginx:2" in str(r["spec"]["template"]))
    assert SCALE_DOWN_DEADLINE in canary_rs["metadata"]["annotations"]
    plan = world.plan()
    assert plan.requeue_after is not None and plan.requeue_after <= 10
    world.now += 11
    world.settle()
    assert world.by_image() == {"nginx:1": 5}


def test_new_template_during_canary_supersedes_it() -> None:
    world = deployed()
    world.never_ready.add("nginx:bad")
    world.set_image("nginx:bad")
    for _ in range(10):
        world.step()
    assert world.status["currentStepIndex"] == 0
    world.set_image("nginx:2")
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    assert world.status["currentStepIndex"] == 1


def test_progress_deadline_and_abort() -> None:
    world = deployed(steps=[{"setWeight": 20}, {"pause": {}}])
    world.ro["spec"]["progressDeadlineSeconds"] = 30
    world.ro["spec"]["progressDeadlineAbort"] = True
    world.never_ready.add("nginx:bad")
    world.set_image("nginx:bad")
    world.settle()
    assert world.status["phase"] == "Progressing"
    world.now += 31
    world.settle()
    status = world.status
    assert status["abort"] is True
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2")
    assert world.by_image().get("nginx:1") == 5


def test_progress_deadline_without_abort_is_degraded() -> None:
    world = deployed(steps=[{"setWeight": 20}, {"pause": {}}])
    world.ro["spec"]["progressDeadlineSeconds"] = 30
    world.never_ready.add("nginx:bad")
    world.set_image("nginx:bad")
    world.settle()
    world.now += 31
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("ProgressDeadlineExceeded: ReplicaSet")
    assert status["message"].endswith("has timed out progressing.")


def test_undo_to_stable_skips_steps() -> None:
    world = deployed()
    first = world.status["stableRS"]
    world.set_image("nginx:2")
    world.settle()
    world.set_image("nginx:1")
    world.settle()
    assert world.status["currentPodHash"] == first
    assert world.by_image() == {"nginx:1": 5}
    assert ("SkipSteps", "Rollback to stable ReplicaSets") in world.events
    rs = world.rss[f"web-{first}"]
    assert rs["metadata"]["annotations"][REVISION] == "3"


def test_revision_history_limit_prunes_old_replicasets() -> None:
    world = deployed(steps=[])
    world.ro["spec"]["revisionHistoryLimit"] = 1
    for version in range(2, 6):
        world.set_image(f"nginx:{version}")
        world.settle()
    assert len(world.rss) == 2
    assert world.by_image() == {"nginx:5": 5}


def test_services_follow_stable_and_canary() -> None:
    def svc(name: str) -> dict[str, object]:
        return {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}}}

    world = World(rollout(steps=STEPS, canaryService="web-canary", stableService="web-stable"))
    world.services = {"web-canary": svc("web-canary"), "web-stable": svc("web-stable")}
    world.settle()
    first = world.status["stableRS"]
    assert world.services["web-stable"]["spec"]["selector"]["rollouts-pod-template-hash"] == first
    assert world.services["web-canary"]["spec"]["selector"]["rollouts-pod-template-hash"] == first
    world.set_image("nginx:2")
    world.settle()
    canary_hash = world.status["currentPodHash"]
    assert world.services["web-canary"]["spec"]["selector"]["rollouts-pod-template-hash"] == canary_hash
    assert world.services["web-stable"]["spec"]["selector"]["rollouts-pod-template-hash"] == first
    world.abort()
    plan = world.plan()
    # traffic goes back before anything is scaled down
    kinds = [type(a) for a in plan.actions]
    assert kinds[0] is PatchService
    world.settle()
    assert world.services["web-canary"]["spec"]["selector"]["rollouts-pod-template-hash"] == first


def test_invalid_specs_name_the_field_and_touch_nothing() -> None:
    world = deployed()
    before = {n: r["spec"]["replicas"] for n, r in world.rss.items()}
    world.patch_spec({"strategy": {"canary": {"maxSurge": 0, "maxUnavailable": 0}}})
    world.set_image("nginx:2")
    plan = world.step()
    assert not plan.actions
    assert {n: r["spec"]["replicas"] for n, r in world.rss.items()} == before
    status = world.status
    assert status["phase"] == "Degraded"
    assert "spec.strategy.canary.maxSurge" in status["message"]
    assert status["message"].startswith('InvalidSpec: The Rollout "web" is invalid: ')
    assert world.events[-1][0] == "InvalidSpec"
    # fixing the spec recovers it
    world.patch_spec({"strategy": {"canary": {"maxSurge": 1}}})
    world.settle()
    assert world.condition("InvalidSpec") is None
    assert world.status["phase"] == "Paused"


def test_second_pass_changes_nothing() -> None:
    world = deployed()
    world.set_image("nginx:2")
    world.settle()
    plan = world.plan()
    assert not plan.actions
    assert plan.status == world.status
    assert not plan.events


def test_ephemeral_metadata_is_injected_and_removed() -> None:
    world = deployed(
        canaryMetadata={"labels": {"role": "canary"}},
        stableMetadata={"labels": {"role": "stable"}},
    )
    first = next(iter(world.rss.values()))
    assert first["spec"]["template"]["metadata"]["labels"]["role"] == "stable"
    world.set_image("nginx:2")
    world.settle()
    labels = {
        r["spec"]["template"]["spec"]["containers"][0]["image"]: r["spec"]["template"]["metadata"]["labels"]["role"]
        for r in world.rss.values()
    }
    assert labels == {"nginx:1": "stable", "nginx:2": "canary"}
    world.promote_full()
    world.settle()
    rs2 = next(r for r in world.rss.values() if "nginx:2" in str(r["spec"]["template"]))
    assert rs2["spec"]["template"]["metadata"]["labels"]["role"] == "stable"


def test_workload_ref_scales_the_deployment_down_progressively() -> None:
    ro = rollout(steps=[{"setWeight": 50}, {"pause": {}}])
    del ro["spec"]["template"]
    ro["spec"]["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "scaleDown": "progressively",
    }
    world = World(ro)
    world.deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "x"}]}},
        },
    }
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert world.deployment["spec"]["replicas"] == 0
    assert world.by_image() == {"x": 5}


def test_restart_deletes_pods_in_batches() -> None:
    from rollouts.strategy.canary import plan
    from rollouts.strategy.plan import DeletePod, Observed

    world = deployed(maxUnavailable=1, maxSurge=0)
    rs = next(iter(world.rss.values()))
    pods = [
        {
            "metadata": {
                "name": f"p{i}",
                "creationTimestamp": "2023-01-01T00:00:00Z",
                "ownerReferences": [{"uid": rs["metadata"]["uid"], "controller": True}],
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        for i in range(5)
    ]
    world.ro["spec"]["restartAt"] = "2023-11-14T00:00:00Z"
    observed = world.observed()
    got = plan(Observed(observed.rollout, observed.replicasets, observed.services, observed.now, pods=pods))
    assert [a.name for a in got.actions if isinstance(a, DeletePod)] == ["p0"]
    assert got.status is not None and got.status["phase"] == "Progressing"
    assert got.status["message"] == "rollout is restarting"


def test_collision_bumps_collision_count() -> None:
    world = deployed()
    rs = next(iter(world.rss.values()))
    rs["metadata"]["annotations"]["rollouts.pyrollouts.io/template-digest"] = "something-else"
    plan = world.plan()
    assert plan.status is not None and plan.status["collisionCount"] == 1


def test_scale_actions_carry_argo_event_messages() -> None:
    world = deployed(maxSurge="25%", maxUnavailable=0)
    world.set_image("nginx:2")
    world.step()  # creates the ReplicaSet
    world.step()  # records the new version (resets the steps)
    plan = world.step()
    scale = [a for a in plan.actions if isinstance(a, PatchReplicaSet)]
    assert scale and scale[0].patch == {"spec": {"replicas": 1}}
    assert any(r == "ScalingReplicaSet" and m.startswith("Scaled up ReplicaSet web-") for r, m in world.events)


def test_rollout_phase_for_clients() -> None:
    from rollouts.model.phase import rollout_phase

    world = deployed()
    assert rollout_phase(world.ro) == ("Healthy", "")
    world.set_image("nginx:2")
    assert rollout_phase(world.ro) == ("Progressing", "waiting for rollout spec update to be observed")
    world.settle()
    assert rollout_phase(world.ro) == ("Paused", "CanaryPauseStep")
    world.promote()
    assert rollout_phase(world.ro) == ("Progressing", "waiting for rollout to unpause")
