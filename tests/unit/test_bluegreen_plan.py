"""The blue/green planner on a tiny in-memory cluster: Services, pauses, previewReplicaCount, scale-down
delays, promotion analysis, abort, metadata, anti-affinity, and the rule that the active Service only
ever selects a fully available ReplicaSet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analysis.outcome import Needs
from rollouts.model import conditions as cs
from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.phase import calculate_phase
from rollouts.model.spec import HASH_LABEL, RolloutSpec
from rollouts.model.timestamps import format_time, parse_time
from rollouts.model.validation import validate_rollout
from rollouts.strategy import bluegreen
from rollouts.strategy.analysis import POST_STATUS, PRE_STATUS
from rollouts.strategy.plan import CreateReplicaSet, Observed, PatchPod, PatchService, Plan
from rollouts.strategy.replicasets import EPHEMERAL_METADATA
from tests.fixtures.judge_outcome import end_inconclusive, short_of_traffic
from tests.fixtures.world import World, rollout

ACTIVE, PREVIEW = "web-active", "web-preview"


def bg_rollout(replicas: int = 3, image: str = "nginx:1", **fields: Any) -> dict[str, Any]:
    ro = rollout(replicas=replicas, image=image)
    ro["spec"]["strategy"] = {"blueGreen": {"activeService": ACTIVE, "previewService": PREVIEW, **fields}}
    return ro


class BlueGreenWorld(World):
    def plan(self) -> Plan:
        return bluegreen.plan(self.observed())

    def step(self) -> Plan:
        plan = self.plan()
        self._check_switches(plan)
        self.apply(plan)
        self.kubelet()
        return plan

    def _check_switches(self, plan: Plan) -> None:
        """The active Service only moves to a ReplicaSet that is fully available as observed."""
        replicas = self.ro["spec"]["replicas"]
        for action in plan.actions:
            if isinstance(action, PatchService) and action.name == ACTIVE:
                target = action.patch["spec"]["selector"][HASH_LABEL]
                rs = self.rs_by_hash(target)
                available = (rs.get("status") or {}).get("availableReplicas") or 0
                assert rs["spec"]["replicas"] == replicas and available >= replicas, f"switch to unready {target}"

    def rs_by_hash(self, pod_hash: str) -> dict[str, Any]:
        return next(r for r in self.rss.values() if r["metadata"]["labels"][HASH_LABEL] == pod_hash)

    def hash_of(self, image: str) -> str:
        for rs in self.rss.values():
            if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
                return str(rs["metadata"]["labels"][HASH_LABEL])
        raise AssertionError(image)

    def rs_of(self, image: str) -> dict[str, Any]:
        return self.rs_by_hash(self.hash_of(image))

    def selected(self, service: str) -> str:
        return str(self.services[service]["spec"]["selector"].get(HASH_LABEL, ""))

    def deadline(self, image: str) -> float | None:
        return parse_time((self.rs_of(image)["metadata"].get("annotations") or {}).get(SCALE_DOWN_DEADLINE))


def deployed(replicas: int = 3, templates: tuple[str, ...] = (), **fields: Any) -> BlueGreenWorld:
    world = BlueGreenWorld(bg_rollout(replicas=replicas, **fields))
    for name in templates:
        world.templates[name] = analysis_template(name)
    for name in (ACTIVE, PREVIEW):
        world.services[name] = {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}}}
    world.settle()
    assert world.status["phase"] == "Healthy", world.status
    world.events.clear()
    return world


def test_first_deploy_points_both_services_at_the_first_version_once_available() -> None:
    world = BlueGreenWorld(bg_rollout())
    for name in (ACTIVE, PREVIEW):
        world.services[name] = {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}}}
    plan = world.step()
    assert [type(a) for a in plan.actions] == [CreateReplicaSet, type(plan.actions[1])]
    blue = world.hash_of("nginx:1")
    world.settle()
    assert world.selected(ACTIVE) == world.selected(PREVIEW) == blue
    status = world.status
    assert status["stableRS"] == blue and status["phase"] == "Healthy"
    assert status["blueGreen"] == {"activeSelector": blue, "previewSelector": blue}
    assert "pauseConditions" not in status
    assert world.condition(cs.HEALTHY)["status"] == "True"  # type: ignore[index]
    assert ("RolloutCompleted", f"Rollout completed update to revision 1 ({blue}): Initial deploy") in world.events
    assert not world.plan().actions  # steady


def test_update_waits_for_promotion_then_switches_and_keeps_the_old_stack_for_the_delay() -> None:
    world = deployed(autoPromotionEnabled=False)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.step()  # creates the new ReplicaSet
    world.step()  # preview follows it at once, before it has pods
    green = world.hash_of("nginx:2")
    assert world.selected(PREVIEW) == green and world.selected(ACTIVE) == blue
    world.settle()
    status = world.status
    assert status["phase"] == "Paused" and status["message"] == cs.PAUSE_BLUE_GREEN
    assert status["controllerPause"] is True
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    assert world.selected(ACTIVE) == blue

    world.now += 10
    world.promote()
    world.step()
    assert world.selected(ACTIVE) == green
    assert ("SwitchService", f"Switched selector for service '{ACTIVE}' from '{blue}' to '{green}'") in world.events
    assert world.deadline("nginx:1") == world.now + 30  # scaleDownDelaySeconds defaults to 30
    world.settle()
    status = world.status
    assert status["phase"] == "Healthy" and status["stableRS"] == green
    assert "pauseConditions" not in status and "controllerPause" not in status
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}  # the old stack still serves stragglers
    plan = world.plan()
    assert plan.requeue_after is not None and 29 <= plan.requeue_after <= 30
    world.now += 31
    world.settle()
    assert world.by_image() == {"nginx:2": 3}
    assert SCALE_DOWN_DEADLINE not in (world.rs_of("nginx:1")["metadata"].get("annotations") or {})


def test_auto_promotion_without_seconds_switches_as_soon_as_the_new_stack_is_available() -> None:
    world = deployed(scaleDownDelaySeconds=0)
    world.set_image("nginx:2")
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")
    assert world.status["phase"] == "Healthy"
    assert world.by_image() == {"nginx:2": 3}  # no delay: scaled down at once


def test_the_active_service_never_moves_to_a_stack_that_is_not_ready() -> None:
    world = deployed()
    blue = world.hash_of("nginx:1")
    world.never_ready.add("nginx:2")
    world.set_image("nginx:2")
    for _ in range(10):
        world.step()
    assert world.selected(ACTIVE) == blue
    assert world.selected(PREVIEW) == world.hash_of("nginx:2")
    status = world.status
    assert status["phase"] == "Progressing"
    assert status["message"] == "active service cutover pending"
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}


def test_an_active_service_that_lost_its_hash_mid_update_goes_back_to_the_stable_stack() -> None:
    world = deployed(autoPromotionEnabled=False)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    world.services[ACTIVE]["spec"]["selector"] = {"app": "web"}  # kubectl apply of the original manifest
    world.settle()
    assert world.selected(ACTIVE) == blue
    assert world.status["stableRS"] == blue
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN


def test_auto_promotion_seconds_pauses_then_resumes_by_itself() -> None:
    world = deployed(autoPromotionSeconds=20)
    world.set_image("nginx:2")
    world.settle()
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN
    plan = world.plan()
    assert plan.requeue_after is not None and 0 < plan.requeue_after <= 20
    world.now += 21
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")
    assert world.status["phase"] == "Healthy"


def test_preview_replica_count_then_full_size_before_the_switch() -> None:
    world = deployed(replicas=4, previewReplicaCount=1, autoPromotionEnabled=False)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 1}
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN
    world.promote()
    world.step()
    assert world.status["blueGreen"][bluegreen.CHECKPOINT] is True
    assert world.selected(ACTIVE) == blue  # not yet: the preview stack is too small
    world.step()
    assert world.by_image() == {"nginx:1": 4, "nginx:2": 4}
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")
    assert bluegreen.CHECKPOINT not in world.status["blueGreen"]
    assert world.status["phase"] == "Healthy"


def test_abort_keeps_the_active_service_and_scales_the_preview_down_after_the_abort_delay() -> None:
    world = deployed(autoPromotionEnabled=False, abortScaleDownDelaySeconds=5)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    world.abort()
    world.step()
    status = world.status
    assert status["phase"] == "Degraded" and status["message"].startswith("RolloutAborted")
    assert world.deadline("nginx:2") == world.now + 5
    world.settle()
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    world.now += 6
    world.settle()
    assert world.by_image() == {"nginx:1": 3}
    assert world.selected(ACTIVE) == blue

    # retry: the new stack comes back, pauses again, and is promoted
    world.retry()
    world.settle()
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    world.promote()
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2") == world.status["stableRS"]


def test_abort_scale_down_delay_zero_keeps_the_preview_stack() -> None:
    world = deployed(autoPromotionEnabled=False, abortScaleDownDelaySeconds=0)
    world.set_image("nginx:2")
    world.settle()
    world.abort()
    world.settle()
    world.now += 3600
    world.settle()
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}


def test_promote_full_skips_the_pause() -> None:
    world = deployed(replicas=2, previewReplicaCount=1, autoPromotionEnabled=False)
    world.set_image("nginx:2")
    world.settle()
    world.promote_full()
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2") == world.status["stableRS"]
    assert world.status["promoteFull"] is False


def test_undo_within_the_scale_down_delay_switches_back_at_once() -> None:
    world = deployed(autoPromotionEnabled=False)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    world.promote()
    world.settle()
    assert world.deadline("nginx:1") is not None
    world.set_image("nginx:1")
    world.settle()
    assert world.selected(ACTIVE) == blue == world.status["stableRS"]
    assert world.status["phase"] == "Healthy"
    assert world.deadline("nginx:1") is None
    assert world.deadline("nginx:2") is not None  # the stack it left is kept for the delay in turn


def test_scale_down_delay_revision_limit() -> None:
    world = deployed(replicas=2, scaleDownDelayRevisionLimit=1, scaleDownDelaySeconds=600)
    for image in ("nginx:2", "nginx:3"):
        world.set_image(image)
        world.settle()
    assert world.by_image() == {"nginx:2": 2, "nginx:3": 2}  # only the newest old stack is kept


def test_a_new_template_during_a_pending_promotion_drops_the_abandoned_preview() -> None:
    world = deployed(autoPromotionEnabled=False)
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    world.set_image("nginx:3")
    world.settle()
    assert world.selected(ACTIVE) == blue
    assert world.selected(PREVIEW) == world.hash_of("nginx:3")
    assert world.by_image() == {"nginx:1": 3, "nginx:3": 3}
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN


def analysis_template(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metrics": [{"name": "check", "provider": {"web": {"url": "http://127.0.0.1:9/"}}}]},
    }


def test_pre_promotion_analysis_failure_aborts_and_the_active_service_never_moves() -> None:
    world = deployed(templates=("pre",), prePromotionAnalysis={"templates": [{"templateName": "pre"}]})
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    green = world.hash_of("nginx:2")
    name = f"web-{green}-2-pre"
    assert list(world.runs) == [name]
    assert world.runs[name]["metadata"]["labels"]["rollout-type"] == "PrePromotion"
    assert world.status["blueGreen"][PRE_STATUS] == {"name": name, "status": "Pending"}
    assert world.selected(ACTIVE) == blue
    world.set_run_phase(name, "Failed", "it broke")
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded"
    assert status["message"].endswith("Pre-promotion analysis phase error/failed: it broke")
    assert world.selected(ACTIVE) == blue
    world.now += 31
    world.settle()
    assert world.by_image() == {"nginx:1": 3}

    # retry: the next run waits for the preview stack to be back, then measures it
    world.retry()
    world.step()
    assert list(world.runs) == [name]
    world.settle()
    assert sorted(world.runs) == [name, f"{name}.1"]
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    assert world.selected(ACTIVE) == blue
    world.set_run_phase(f"{name}.1", "Successful")
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2") == world.status["stableRS"]


def test_pre_promotion_analysis_success_then_pause_then_switch() -> None:
    world = deployed(
        templates=("pre",), prePromotionAnalysis={"templates": [{"templateName": "pre"}]}, autoPromotionEnabled=False
    )
    world.set_image("nginx:2")
    world.settle()
    assert "pauseConditions" not in world.status  # the pause waits for the analysis
    [name] = world.runs
    world.set_run_phase(name, "Successful")
    world.settle()
    assert world.status["message"] == cs.PAUSE_BLUE_GREEN
    world.promote()
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")


def test_post_promotion_analysis_failure_switches_back_to_the_old_stack() -> None:
    world = deployed(
        templates=("post",), postPromotionAnalysis={"templates": [{"templateName": "post"}]}, scaleDownDelaySeconds=60
    )
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    green = world.hash_of("nginx:2")
    assert world.selected(ACTIVE) == green
    assert world.status["stableRS"] == blue
    assert world.status["message"] == "waiting for analysis to complete"
    [name] = world.runs
    assert name == f"web-{green}-2-post"
    world.set_run_phase(name, "Failed", "errors")
    world.step()
    assert world.selected(ACTIVE) == blue  # the old stack is still up: back at once
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert world.deadline("nginx:1") is None


def test_post_promotion_failure_after_the_delay_scales_the_old_stack_up_before_switching_back() -> None:
    world = deployed(
        templates=("post",), postPromotionAnalysis={"templates": [{"templateName": "post"}]}, scaleDownDelaySeconds=5
    )
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    world.now += 6
    world.settle()
    assert world.by_image() == {"nginx:2": 3}  # the delay passed while analysis ran
    [name] = world.runs
    world.set_run_phase(name, "Failed")
    world.never_ready.add("nginx:1")  # the old pods take their time
    for _ in range(3):
        world.step()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")  # keeps serving until the old stack is back
    assert world.by_image() == {"nginx:1": 3, "nginx:2": 3}
    world.never_ready.clear()
    world.settle()
    assert world.selected(ACTIVE) == blue
    world.now += 31
    world.settle()
    assert world.by_image() == {"nginx:1": 3}


def test_promote_full_skips_post_promotion_analysis() -> None:
    world = deployed(
        templates=("post",), postPromotionAnalysis={"templates": [{"templateName": "post"}]}, autoPromotionEnabled=False
    )
    world.set_image("nginx:2")
    world.settle()
    world.promote_full()
    world.settle()
    assert world.runs == {}
    assert world.status["stableRS"] == world.hash_of("nginx:2") == world.selected(ACTIVE)
    assert world.status["phase"] == "Healthy"


def test_post_promotion_success_marks_the_new_stack_stable() -> None:
    world = deployed(templates=("post",), postPromotionAnalysis={"templates": [{"templateName": "post"}]})
    world.set_image("nginx:2")
    world.settle()
    [name] = world.runs
    world.set_run_phase(name, "Successful")
    world.settle()
    assert world.status["stableRS"] == world.hash_of("nginx:2")
    assert world.status["phase"] == "Healthy"


def test_active_and_preview_metadata_follow_the_roles() -> None:
    world = deployed(
        autoPromotionEnabled=False,
        activeMetadata={"labels": {"role": "active"}},
        previewMetadata={"labels": {"role": "preview"}},
    )

    def role(image: str) -> str | None:
        labels: dict[str, str] = world.rs_of(image)["spec"]["template"]["metadata"]["labels"]
        return labels.get("role")

    assert role("nginx:1") == "active"
    world.set_image("nginx:2")
    world.settle()
    assert (role("nginx:1"), role("nginx:2")) == ("active", "preview")
    world.promote()
    world.settle()
    assert (role("nginx:1"), role("nginx:2")) == (None, "active")
    annotation = world.rs_of("nginx:2")["metadata"]["annotations"][EPHEMERAL_METADATA]
    assert json.loads(annotation) == {"labels": {"role": "active"}}


@pytest.mark.parametrize(
    ("anti", "key"),
    [
        ({"requiredDuringSchedulingIgnoredDuringExecution": {}}, "requiredDuringSchedulingIgnoredDuringExecution"),
        (
            {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}},
            "preferredDuringSchedulingIgnoredDuringExecution",
        ),
    ],
)
def test_anti_affinity_against_the_previous_version(anti: dict[str, Any], key: str) -> None:
    world = deployed(antiAffinity=anti)
    assert "affinity" not in world.rs_of("nginx:1")["spec"]["template"]["spec"]
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    [term] = world.rs_of("nginx:2")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][key]
    selector_term = term.get("podAffinityTerm", term)
    assert selector_term["labelSelector"]["matchExpressions"] == [
        {"key": HASH_LABEL, "operator": "In", "values": [blue]}
    ]
    assert selector_term["topologyKey"] == "kubernetes.io/hostname"
    if "weight" in term:
        assert term["weight"] == 40


def test_a_service_of_another_rollout_is_invalid_spec() -> None:
    world = BlueGreenWorld(bg_rollout())
    world.services[ACTIVE] = {
        "metadata": {"name": ACTIVE, "annotations": {"rollouts.pyrollouts.io/managed-by-rollouts": "other"}},
        "spec": {"selector": {"app": "web"}},
    }
    world.services[PREVIEW] = {"metadata": {"name": PREVIEW}, "spec": {"selector": {"app": "web"}}}
    world.step()
    assert world.status["phase"] == "Degraded"
    assert 'spec.strategy.blueGreen.activeService: Invalid value: "web-active"' in world.status["message"]
    assert world.rss == {}


def errors_of(fields: dict[str, Any], services: tuple[str, ...] = (ACTIVE, PREVIEW)) -> list[str]:
    ro = RolloutSpec.parse(bg_rollout(**fields) if fields.get("_raw") is None else fields["_raw"])
    return validate_rollout(ro, ro.template, {name: True for name in services})


def test_validation_names_the_field() -> None:
    assert errors_of({}) == []
    no_active = bg_rollout()
    del no_active["spec"]["strategy"]["blueGreen"]["activeService"]
    [missing] = errors_of({"_raw": no_active})
    assert missing.startswith("spec.strategy.blueGreen.activeService: Required value")
    [same] = errors_of({"previewService": ACTIVE})
    assert same.startswith('spec.strategy.blueGreen.activeService: Invalid value: "web-active"')
    [gone] = errors_of({}, services=(ACTIVE,))
    assert gone == (
        'spec.strategy.blueGreen.previewService: Invalid value: "web-preview": '
        'service "web-preview" not found in namespace "default": create it or fix the name'
    )
    both = bg_rollout()
    both["spec"]["strategy"]["canary"] = {"steps": []}
    assert any("Multiple Strategies can not be listed" in e for e in errors_of({"_raw": both}))
    [anti] = errors_of({"antiAffinity": {}})
    assert anti.startswith("spec.strategy.blueGreen.antiAffinity: Invalid value")
    [unavailable] = errors_of({"maxUnavailable": "lots"})
    assert unavailable.startswith("spec.strategy.blueGreen.maxUnavailable")


def test_phase_messages() -> None:
    ro = RolloutSpec.parse(bg_rollout(replicas=2, postPromotionAnalysis={"templates": []}))
    base = {"updatedReplicas": 2, "availableReplicas": 2, "currentPodHash": "new", "stableRS": "old"}
    assert calculate_phase(ro, {**base, "blueGreen": {"activeSelector": "old"}}) == (
        "Progressing",
        "active service cutover pending",
    )
    assert calculate_phase(ro, {**base, "blueGreen": {"activeSelector": "new"}}) == (
        "Progressing",
        "waiting for analysis to complete",
    )
    done = {"activeSelector": "new", POST_STATUS: {"name": "r", "status": "Successful"}}
    assert calculate_phase(ro, {**base, "blueGreen": done}) == (
        "Progressing",
        "waiting for post-promotion verification to complete",
    )
    assert calculate_phase(ro, {**base, "stableRS": "new", "blueGreen": {"activeSelector": "new"}}) == (
        "Healthy",
        "",
    )


def test_restart_uses_blue_green_max_unavailable() -> None:
    ro = RolloutSpec.parse(bg_rollout(replicas=4, maxUnavailable=2))
    assert ro.max_unavailable() == 2
    assert RolloutSpec.parse(bg_rollout(replicas=4)).max_unavailable() == 1  # 25%


def test_status_counts_the_active_stack() -> None:
    world = deployed(autoPromotionEnabled=False)
    world.set_image("nginx:2")
    world.settle()
    status = world.status
    assert status["availableReplicas"] == 3
    assert status["selector"] == f"app=web,{HASH_LABEL}={world.hash_of('nginx:1')}"
    assert format_time(world.now)  # keeps the import honest


def test_running_pods_take_and_lose_the_role_metadata() -> None:
    world = deployed(
        autoPromotionEnabled=False,
        activeMetadata={"labels": {"role": "active"}},
        previewMetadata={"labels": {"role": "preview"}},
    )
    world.set_image("nginx:2")
    world.settle()
    world.promote()

    def pod(image: str, role: str) -> dict[str, Any]:
        rs = world.rs_of(image)
        return {
            "metadata": {
                "name": f"{rs['metadata']['name']}-x",
                "labels": {"app": "web", HASH_LABEL: rs["metadata"]["labels"][HASH_LABEL], "role": role},
                "ownerReferences": [{"uid": rs["metadata"]["uid"], "controller": True}],
            }
        }

    old_pod, new_pod = pod("nginx:1", "active"), pod("nginx:2", "preview")
    observed = world.observed()  # the pass that switches: nginx:2 becomes active, nginx:1 loses the role
    plan = bluegreen.plan(
        Observed(**{**observed.__dict__, "pods": [old_pod, new_pod]})
    )
    patches = {a.name: a.patch for a in plan.actions if isinstance(a, PatchPod)}
    assert patches == {
        old_pod["metadata"]["name"]: {"metadata": {"labels": {"role": None}}},
        new_pod["metadata"]["name"]: {"metadata": {"labels": {"role": "active"}}},
    }


def test_a_pre_promotion_judge_short_of_traffic_says_so_in_the_rollouts_message() -> None:
    world = deployed(templates=("pre",), prePromotionAnalysis={"templates": [{"templateName": "pre"}]})
    world.set_image("nginx:2")
    world.settle()
    [name] = world.runs
    points = Needs("points", (4, 10), (11, 10), (0, 0), 6, 60.0, 12, 12)
    end_inconclusive(world.runs[name], short_of_traffic(points), "any wording")
    world.settle()
    assert world.status["phase"] == "Paused"
    assert world.status["message"] == (
        "InconclusiveAnalysisRun: too little data after 12 measurements: canary 4/10 and baseline 11/10 points; "
        "about 6 more intervals (6m) at the pace so far, but 0 measurements left of count 12: raise count to at "
        "least 18, or lower minPoints, or give rangeQuery a longer window or a shorter step"
    )


def test_inconclusive_pre_promotion_pauses_and_a_promote_runs_it_again() -> None:
    world = deployed(templates=("pre",), prePromotionAnalysis={"templates": [{"templateName": "pre"}]})
    blue = world.hash_of("nginx:1")
    world.set_image("nginx:2")
    world.settle()
    [name] = world.runs
    world.set_run_phase(name, "Inconclusive")
    world.settle()
    status = world.status
    assert status["phase"] == "Paused" and status["message"] == "InconclusiveAnalysisRun"
    assert world.selected(ACTIVE) == blue
    world.promote()
    world.settle()
    assert sorted(world.runs) == [name, f"{name}.1"]  # Argo: an inconclusive run is run again
    world.set_run_phase(f"{name}.1", "Successful")
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")


def test_a_manual_pause_holds_the_switch() -> None:
    world = deployed()
    blue = world.hash_of("nginx:1")
    world.patch_spec({"paused": True})
    world.set_image("nginx:2")
    world.settle()
    assert world.selected(ACTIVE) == blue
    assert world.status["phase"] == "Paused" and world.status["message"] == "manually paused"
    world.patch_spec({"paused": False})
    world.settle()
    assert world.selected(ACTIVE) == world.hash_of("nginx:2")


def test_progress_deadline_abort_keeps_the_active_service() -> None:
    world = deployed(replicas=2)
    world.patch_spec({"progressDeadlineSeconds": 30, "progressDeadlineAbort": True})
    world.settle()
    blue = world.hash_of("nginx:1")
    world.never_ready.add("nginx:2")
    world.set_image("nginx:2")
    world.settle()
    world.now += 31
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded" and status["abort"] is True
    assert 'ReplicaSet "web-' in status["message"] and "has timed out progressing" in status["message"]
    assert world.selected(ACTIVE) == blue
