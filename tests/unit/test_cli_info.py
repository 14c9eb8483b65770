"""What the plugin derives from the objects: phase, steps, weights (the shared rules in rollouts.model,
over the objects as the API returns them), pod and ReplicaSet status."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.cli import info
from rollouts.model.phase import rollout_phase
from rollouts.model.spec import RolloutSpec
from rollouts.model.steps import current_set_weight, step_text
from tests.fixtures.cli_objects import pod, replicaset, rollout


def test_phase_comes_from_status_when_the_generation_was_observed() -> None:
    ro = rollout(status={"phase": "Healthy", "observedGeneration": "2"})
    assert rollout_phase(ro) == ("Healthy", "")


def test_unobserved_spec_change_is_progressing() -> None:
    ro = rollout(status={"phase": "Healthy", "observedGeneration": 1})
    assert rollout_phase(ro) == ("Progressing", "waiting for rollout spec update to be observed")


def test_promoted_but_not_yet_unpaused_is_progressing() -> None:
    ro = rollout(status={"phase": "Paused", "message": "CanaryPauseStep", "controllerPause": True})
    assert rollout_phase(ro) == ("Progressing", "waiting for rollout to unpause")


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({}, {"conditions": [{"type": "InvalidSpec", "status": "True", "message": "bad"}]},
         ("Degraded", "InvalidSpec: bad")),
        ({}, {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                              "message": "timed out"}]}, ("Degraded", "ProgressDeadlineExceeded: timed out")),
        ({"paused": True}, {}, ("Paused", "manually paused")),
        ({}, {"pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "x"}]}, ("Paused", "CanaryPauseStep")),
        ({}, {"updatedReplicas": 2}, ("Progressing", "more replicas need to be updated")),
        ({}, {"updatedReplicas": 5, "availableReplicas": 4},
         ("Progressing", "updated replicas are still becoming available")),
        ({}, {"updatedReplicas": 5, "availableReplicas": 5, "replicas": 6},
         ("Progressing", "old replicas are pending termination")),
        ({}, {"updatedReplicas": 5, "availableReplicas": 5, "replicas": 5, "stableRS": "a", "currentPodHash": "b"},
         ("Progressing", "waiting for all steps to complete")),
        ({}, {"updatedReplicas": 5, "availableReplicas": 5, "replicas": 5, "stableRS": "a", "currentPodHash": "a"},
         ("Healthy", "")),
    ],
)
def test_client_side_phase_without_status_phase(
    spec: dict[str, Any], status: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert rollout_phase(rollout(spec=spec, status=status)) == expected


@pytest.mark.parametrize(
    ("index", "abort", "weight"),
    [(None, False, 20), (0, False, 20), (1, False, 20), (2, False, 50), (3, False, 50), (4, False, 100),
     (2, True, 0)],
)
def test_set_weight_walks_back_to_the_last_set_weight(index: int | None, abort: bool, weight: int) -> None:
    status: dict[str, Any] = {"abort": abort}
    if index is not None:
        status["currentStepIndex"] = index
    ro = rollout(status=status)
    assert current_set_weight(RolloutSpec.parse(ro), ro["status"]) == weight


def test_step_text() -> None:
    def text(ro: dict[str, Any]) -> str:
        return step_text(RolloutSpec.parse(ro), ro["status"])

    assert text(rollout(status={"currentStepIndex": 2})) == "2/4"
    assert text(rollout(status={})) == ""
    assert text(rollout(steps=[], status={"currentStepIndex": 0})) == ""


def test_replicaset_health() -> None:
    ro = rollout()
    healthy = replicaset(ro, "a", 1, 3)
    assert info.replicaset_health(healthy) == "Healthy"
    assert info.replicaset_health(replicaset(ro, "a", 1, 3, available=1)) == "Progressing"
    assert info.replicaset_health(replicaset(ro, "a", 1, 0)) == "ScaledDown"
    unobserved = replicaset(ro, "a", 1, 3)
    unobserved["metadata"]["generation"] = 2
    assert info.replicaset_health(unobserved) == "Progressing"
    failing = replicaset(ro, "a", 1, 3, available=1)
    failing["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True"}]
    assert info.replicaset_health(failing) == "ReplicaFailure"


def test_pod_status_words_and_icons() -> None:
    rs = replicaset(rollout(), "a", 1, 1)
    assert info.pod_status(pod(rs, "x")) == ("Running", "1/1", 0)
    assert info.pod_status(pod(rs, "x", ready=False, waiting="CrashLoopBackOff", restarts=4)) == (
        "CrashLoopBackOff", "0/1", 4)
    creating = pod(rs, "x", ready=False, waiting="ContainerCreating")
    assert info.pod_status(creating)[0] == "ContainerCreating"
    terminating = pod(rs, "x")
    terminating["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    assert info.pod_status(terminating)[0] == "Terminating"
    init = pod(rs, "x", ready=False)
    init["spec"]["initContainers"] = [{"name": "setup"}]
    init["status"]["initContainerStatuses"] = [{"name": "setup", "state": {"running": {}}}]
    assert info.pod_status(init)[0] == "Init:0/1"
    exited = pod(rs, "x", ready=False)
    exited["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}
    assert info.pod_status(exited)[0] == "ExitCode:3"
    assert [info.pod_icon(s) for s in ("Running", "Pending", "CrashLoopBackOff", "ImagePullBackOff",
                                       "ErrImagePull", "ExitCode:3", "Init:0/1", "Weird")] == \
        ["✔", "◌", "✖", "⚠", "⚠", "✖", "◌", " "]


def test_rollout_tree_only_shows_owned_objects() -> None:
    ro = rollout(status={"stableRS": "a", "currentPodHash": "a"})
    mine = replicaset(ro, "a", 1, 1)
    foreign = replicaset(ro, "b", 1, 1)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "other"
    stray_pod = pod(foreign, "zzz")
    result = info.rollout_info(ro, [mine, foreign], [pod(mine, "x"), stray_pod])
    assert [rs.name for rs in result.replicasets] == ["demo-a"]
    assert [p.name for p in result.replicasets[0].pods] == ["demo-a-x"]


def test_images_merge_tags_when_revisions_share_an_image() -> None:
    ro = rollout(status={"stableRS": "a", "currentPodHash": "b"})
    result = info.rollout_info(ro, [replicaset(ro, "a", 1, 1, image="same"), replicaset(ro, "b", 2, 1, image="same")])
    assert [(i.image, i.tags) for i in info.images(result)] == [("same", ["canary", "stable"])]
