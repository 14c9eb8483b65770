"""The patches each plugin verb sends, as `kubectl argo rollouts` sends them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rollouts.cli import actions
from rollouts.cli.actions import JSON_PATCH, MERGE, ActionError, Patch
from tests.fixtures.cli_objects import NOW, paused_canary, replicaset, rollout


def canary_at(index: int | None, **status: Any) -> dict[str, Any]:
    body = {"currentPodHash": "new", "stableRS": "old", **status}
    if index is not None:
        body["currentStepIndex"] = index
    return rollout(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}], status=body)


def status_patch(body: dict[str, Any]) -> Patch:
    return Patch({"status": body}, MERGE, "status")


# --------------------------------------------------------------------------- promote


def test_promote_paused_at_a_step_clears_pause_conditions_only() -> None:
    ro, _, _, _ = paused_canary()
    assert actions.promote_patches(ro) == [status_patch({"pauseConditions": None})]


def test_promote_manually_paused_unpauses_spec_after_status() -> None:
    ro = canary_at(1, pauseConditions=[{"reason": "CanaryPauseStep", "startTime": "2024-05-01T00:00:00Z"}])
    ro["spec"]["paused"] = True
    assert actions.promote_patches(ro) == [
        status_patch({"pauseConditions": None}),
        Patch({"spec": {"paused": False}}),
    ]


def test_promote_not_paused_skips_the_current_step() -> None:
    assert actions.promote_patches(canary_at(0)) == [status_patch({"pauseConditions": None, "currentStepIndex": 1})]
    # no index yet counts as step 0
    assert actions.promote_patches(canary_at(None)) == [
        status_patch({"pauseConditions": None, "currentStepIndex": 1})
    ]


def test_promote_never_goes_past_the_last_step() -> None:
    assert actions.promote_patches(canary_at(3)) == [status_patch({"pauseConditions": None, "currentStepIndex": 3})]


def test_promote_canary_without_steps_or_bluegreen_sends_nothing_unless_paused() -> None:
    no_steps = rollout(steps=[], status={"currentPodHash": "a", "stableRS": "b"})
    assert actions.promote_patches(no_steps) == []
    bluegreen = rollout(spec={"strategy": {"blueGreen": {"activeService": "a"}}},
                        status={"pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2024-05-01T00:00:00Z"}]})
    assert actions.promote_patches(bluegreen) == [status_patch({"pauseConditions": None})]


def test_promote_inconclusive_analysis_clears_controller_pause_and_skips() -> None:
    ro = canary_at(
        2,
        pauseConditions=[{"reason": "AnalysisRunInconclusive", "startTime": "2024-05-01T00:00:00Z"}],
        controllerPause=True,
        canary={"currentStepAnalysisRunStatus": {"name": "run", "status": "Inconclusive"}},
    )
    assert actions.promote_patches(ro) == [
        status_patch({"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3})
    ]


def test_promote_full() -> None:
    assert actions.promote_patches(canary_at(1), full=True) == [status_patch({"promoteFull": True})]
    paused = canary_at(1)
    paused["spec"]["paused"] = True
    assert actions.promote_patches(paused, full=True) == [
        status_patch({"promoteFull": True}),
        Patch({"spec": {"paused": False}}),
    ]
    # already fully promoted: nothing to do
    assert actions.promote_patches(canary_at(3, currentPodHash="old"), full=True) == []


def test_promote_deprecated_skip_flags() -> None:
    assert actions.promote_patches(canary_at(1), skip_current_step=True) == [status_patch({"currentStepIndex": 2})]
    assert actions.promote_patches(canary_at(0), skip_all_steps=True) == [status_patch({"currentStepIndex": 3})]


@pytest.mark.parametrize(
    ("kwargs", "ro", "message"),
    [
        ({"skip_current_step": True, "skip_all_steps": True}, canary_at(1), actions.BOTH_SKIP_FLAGS),
        ({"full": True, "skip_current_step": True}, canary_at(1), actions.FULL_WITH_SKIP),
        ({"full": True, "skip_all_steps": True}, canary_at(1), actions.FULL_WITH_SKIP),
        ({"skip_current_step": True}, rollout(spec={"strategy": {"blueGreen": {"activeService": "a"}}}),
         actions.SKIP_WITH_BLUEGREEN),
        ({"skip_all_steps": True}, rollout(steps=[]), actions.SKIP_WITHOUT_STEPS),
    ],
)
def test_promote_refuses_conflicting_flags(kwargs: dict[str, bool], ro: dict[str, Any], message: str) -> None:
    with pytest.raises(ActionError, match=message):
        actions.promote_patches(ro, **kwargs)


# --------------------------------------------------------------------------- abort, retry, pause, restart


def test_abort_retry_pause() -> None:
    assert actions.abort_patches() == [status_patch({"abort": True})]
    assert actions.retry_patches() == [status_patch({"abort": False})]
    assert actions.pause_patches() == [Patch({"spec": {"paused": True}})]


def test_restart_at_now_or_later_in_utc_seconds_rounded_up() -> None:
    # a pod created at 12:00:00.2 shows creationTimestamp 12:00:00: restartAt must be after it
    moment = NOW + dt.timedelta(microseconds=700_000)
    assert actions.restart_patches(moment) == [Patch({"spec": {"restartAt": "2024-05-01T12:00:01Z"}})]
    assert actions.restart_patches(moment, 90) == [Patch({"spec": {"restartAt": "2024-05-01T12:01:31Z"}})]
    assert actions.restart_patches(NOW, 90) == [Patch({"spec": {"restartAt": "2024-05-01T12:01:30Z"}})]
    other_zone = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert actions.restart_patches(other_zone)[0].body == {"spec": {"restartAt": "2024-05-01T12:00:00Z"}}


# --------------------------------------------------------------------------- undo


def history() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ro = rollout(image="nginx:1.26")
    sets = [
        replicaset(ro, "ccc333", 3, 5, image="nginx:1.26"),
        replicaset(ro, "aaa111", 1, 0, image="nginx:1.24"),
        replicaset(ro, "bbb222", 2, 0, image="nginx:1.25"),
    ]
    return ro, sets


def template_for(image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "web", "image": image}]}}


def test_undo_goes_to_the_previous_revision_without_the_hash_label() -> None:
    ro, sets = history()
    plan = actions.undo_plan(ro, sets)
    assert plan.revision == 2
    assert plan.patch == Patch(
        [{"op": "replace", "path": "/spec/template", "value": template_for("nginx:1.25")}], JSON_PATCH
    )


def test_undo_to_a_given_revision() -> None:
    ro, sets = history()
    plan = actions.undo_plan(ro, sets, to_revision=1)
    assert plan.patch is not None and plan.patch.body[0]["value"] == template_for("nginx:1.24")


def test_undo_skips_when_the_template_already_matches() -> None:
    ro, sets = history()
    plan = actions.undo_plan(ro, sets, to_revision=3)
    assert plan.patch is None
    assert plan.message == "skipped rollback (current template already matches revision 3)"


def test_undo_errors_name_what_is_missing() -> None:
    ro, sets = history()
    with pytest.raises(ActionError, match=r"unable to find specified revision 7 .*revisions present: 1, 2, 3"):
        actions.undo_plan(ro, sets, to_revision=7)
    with pytest.raises(ActionError, match='no revision found for rollout "demo"'):
        actions.undo_plan(ro, sets[:1])


def test_undo_ignores_replicasets_the_rollout_does_not_control() -> None:
    ro, sets = history()
    sets[2]["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert actions.undo_plan(ro, sets).revision == 1


def test_undo_reads_argo_revision_annotation_too() -> None:
    ro, sets = history()
    for rs in sets:
        annotations = rs["metadata"]["annotations"]
        annotations["rollout.argoproj.io/revision"] = annotations.pop("rollouts.pyrollouts.io/revision")
    assert actions.undo_plan(ro, sets).revision == 2


def test_undo_workload_ref_compares_with_the_workload_template() -> None:
    ro, sets = history()
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}
    assert actions.undo_plan(ro, sets, current_template=template_for("nginx:1.25")).patch is None
    assert actions.undo_plan(ro, sets, current_template=template_for("nginx:1.26")).patch is not None


# --------------------------------------------------------------------------- set image


def with_containers() -> dict[str, Any]:
    ro = rollout()
    ro["spec"]["template"]["spec"] = {
        "initContainers": [{"name": "init", "image": "busybox:1"}],
        "containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:1"}],
    }
    return ro


def test_set_image_of_one_container_tests_its_name() -> None:
    patch = actions.set_image_patch(with_containers(), "sidecar", "envoy:2")
    assert patch == Patch(
        [
            {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "sidecar"},
            {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "envoy:2"},
        ],
        JSON_PATCH,
    )


def test_set_image_of_an_init_container() -> None:
    patch = actions.set_image_patch(with_containers(), "init", "busybox:2")
    replace = {"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": "busybox:2"}
    assert patch.body[1] == replace


def test_set_image_star_sets_every_container() -> None:
    patch = actions.set_image_patch(with_containers(), "*", "all:1")
    assert [op["path"] for op in patch.body if op["op"] == "replace"] == [
        "/spec/template/spec/initContainers/0/image",
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/containers/1/image",
    ]


def test_set_image_unknown_container_lists_the_known_ones() -> None:
    with pytest.raises(ActionError, match=r'unable to find container named "db" \(containers: init, web, sidecar\)'):
        actions.set_image_patch(with_containers(), "db", "postgres:16")


@pytest.mark.parametrize("text", ["web", "=img", "web=", "a=b=c"])
def test_image_assignment_needs_exactly_one_equals(text: str) -> None:
    with pytest.raises(ValueError, match="CONTAINER=IMAGE"):
        actions.parse_image_assignment(text)
