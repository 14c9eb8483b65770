"""Canary rollouts end to end: first deploy, setWeight and pause steps with exact ReplicaSet sizes,
promote, timed pauses, Service selectors, abort and retry."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import REVISION, given

pytestmark = pytest.mark.kubectl

STEPS: list[Step] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]
SERVICES = (service_manifest("web-canary", "web"), service_manifest("web-stable", "web"))


def test_first_deploy_goes_to_full_size(cluster: Cluster, controller: ControllerProcess | None) -> None:
    rollout = given(cluster, "first").rollout(rollout_manifest("web", replicas=4, steps=STEPS))
    status = rollout.apply().wait_healthy().seen
    rollout.expect_sizes({"nginx:1": 4})
    assert status["stableRS"] == status["currentPodHash"]
    assert status["currentStepIndex"] == len(STEPS)
    assert status["availableReplicas"] == status["updatedReplicas"] == status["replicas"] == 4
    assert "message" not in status
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Progressing": ("True", "NewReplicaSetAvailable"),
        "Available": ("True", "AvailableReason"),
        "Healthy": ("True", "RolloutHealthy"),
        "Completed": ("True", "RolloutCompleted"),
        "Ready": ("True", "Healthy"),  # kstatus (Flux) beside Argo's
    }
    [rs] = rollout.replicasets()
    pod_hash = status["currentPodHash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"][HASH_LABEL] == pod_hash
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rollout.live()["metadata"]["annotations"][REVISION] == "1"
    reasons = rollout.reasons()
    for reason in ("NewReplicaSetCreated", "ScalingReplicaSet", "RolloutCompleted"):
        assert reason in reasons
    # kopf leaves no trace on our objects
    ro = rollout.live()
    assert not [k for k in ro["metadata"].get("annotations", {}) if "kopf" in k]
    assert not ro["metadata"].get("finalizers")


def test_canary_steps_with_exact_sizes_promote_and_timed_pause(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    manifest = rollout_manifest(
        "web",
        replicas=4,
        steps=STEPS,
        maxSurge=1,
        maxUnavailable=0,
        canaryService="web-canary",
        stableService="web-stable",
    )
    namespace = given(cluster, "steps")
    rollout = namespace.rollout(manifest, *SERVICES)
    first = rollout.apply().wait_healthy().seen["stableRS"]
    rollout.wait_for(
        "services pointed at the stable hash",
        lambda: all(
            namespace.service(s)["spec"]["selector"].get(HASH_LABEL) == first for s in ("web-canary", "web-stable")
        ),
    )
    managed = namespace.service("web-stable")["metadata"]["annotations"]
    assert managed["rollouts.pyrollouts.io/managed-by-rollouts"] == "web"

    status = rollout.set_image("nginx:2").wait_paused(message="CanaryPauseStep", step=1).seen
    rollout.expect_sizes({"nginx:1": 3, "nginx:2": 1})
    assert status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    assert status["canary"]["weights"]["canary"]["weight"] == 25
    canary_hash = status["currentPodHash"]
    assert namespace.service("web-canary")["spec"]["selector"][HASH_LABEL] == canary_hash
    assert namespace.service("web-stable")["spec"]["selector"][HASH_LABEL] == first
    rollout.wait_for(
        "the Paused condition",
        lambda: any(c["type"] == "Paused" and c["status"] == "True" for c in rollout.status["conditions"]),
    )

    # setWeight 50, then the 1s pause passes by itself, then setWeight 75, then promotion
    status = rollout.promote().wait_healthy(timeout=30, step=len(STEPS)).seen
    rollout.expect_sizes({"nginx:2": 4})
    assert status["stableRS"] == canary_hash
    for svc in ("web-canary", "web-stable"):
        assert namespace.service(svc)["spec"]["selector"][HASH_LABEL] == canary_hash
    events = rollout.events()
    completed = [m for r, m in events if r == "RolloutStepCompleted"]
    assert completed[-5:] == [
        "Rollout step 1/5 completed (setWeight: 25)",
        "Rollout step 2/5 completed (pause)",
        "Rollout step 3/5 completed (setWeight: 50)",
        "Rollout step 4/5 completed (pause: 1s)",
        "Rollout step 5/5 completed (setWeight: 75)",
    ]
    reasons = [r for r, _ in events]
    for reason in ("RolloutPaused", "RolloutResumed", "RolloutCompleted", "SwitchService"):
        assert reason in reasons, reasons

    # deleting the Rollout gives the Services back
    rollout.delete().wait_for(
        "the hash to leave the service selectors",
        lambda: all(HASH_LABEL not in namespace.service(s)["spec"]["selector"] for s in ("web-canary", "web-stable")),
    )


def test_sizes_at_each_step(cluster: Cluster, controller: ControllerProcess | None) -> None:
    """10 replicas, maxSurge 2, maxUnavailable 0, paused after every weight: sizes as Argo computes them."""
    steps: list[Step] = [
        {"setWeight": 10},
        {"pause": {}},
        {"setWeight": 35},
        {"pause": {}},
        {"setWeight": 90},
        {"pause": {}},
    ]
    manifest = rollout_manifest("web", replicas=10, steps=steps, maxSurge=2, maxUnavailable=0)
    rollout = given(cluster, "sizes").rollout(manifest).apply().wait_healthy()
    rollout.set_image("nginx:2")
    for index, expected in (
        (1, {"nginx:1": 9, "nginx:2": 1}),
        (3, {"nginx:1": 7, "nginx:2": 4}),
        (5, {"nginx:1": 1, "nginx:2": 9}),
    ):
        rollout.wait_paused(message="CanaryPauseStep", step=index).wait_sizes(expected).promote()

        def past(status: dict[str, Any], i: int = index) -> bool:
            return bool(status.get("currentStepIndex", 0) > i)

        rollout.wait_status(f"step index past {index}", past)
    rollout.wait_healthy().wait_sizes({"nginx:2": 10})


def test_promote_full(cluster: Cluster, controller: ControllerProcess | None) -> None:
    rollout = given(cluster, "full").rollout(rollout_manifest("web", replicas=4, steps=STEPS))
    rollout.apply().wait_healthy().set_image("nginx:2").wait_paused()
    status = rollout.promote_full().wait_healthy().seen
    rollout.expect_sizes({"nginx:2": 4})
    assert not status.get("promoteFull")
    rollout.wait_event("RolloutCompleted", lambda m: m.endswith(": Full promotion requested"))


def test_skip_current_step(cluster: Cluster, controller: ControllerProcess | None) -> None:
    steps: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    rollout = given(cluster, "skip").rollout(rollout_manifest("web", replicas=4, steps=steps))
    rollout.apply().wait_healthy().set_image("nginx:2").wait_paused()
    rollout.skip_to_step(2)  # promote without a pause to clear
    status = rollout.wait_status(
        "the next pause", lambda st: st.get("currentStepIndex") == 3 and st.get("phase") == "Paused"
    ).seen
    assert status["currentStepIndex"] == 3
    rollout.wait_sizes({"nginx:1": 2, "nginx:2": 2})


def test_abort_then_retry(cluster: Cluster, controller: ControllerProcess | None) -> None:
    manifest = rollout_manifest("web", replicas=4, steps=STEPS, canaryService="web-canary", stableService="web-stable")
    namespace = given(cluster, "abort")
    rollout = namespace.rollout(manifest, *SERVICES)
    first = rollout.apply().wait_healthy().seen["stableRS"]
    rollout.set_image("nginx:2").wait_paused()
    rollout.abort().wait_degraded(message="RolloutAborted: Rollout aborted update to revision 2")
    rollout.wait_sizes({"nginx:1": 4})
    status = rollout.status
    assert status["abort"] is True and status["abortedAt"]
    assert status["currentStepIndex"] == 0
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "RolloutAborted")
    assert namespace.service("web-canary")["spec"]["selector"][HASH_LABEL] == first
    rollout.wait_event("RolloutAborted", "Rollout aborted update to revision 2")

    status = rollout.retry().wait_paused(message="CanaryPauseStep").seen
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})
    assert not status.get("abort")
    assert namespace.service("web-canary")["spec"]["selector"][HASH_LABEL] == status["currentPodHash"]


def test_abort_scales_canary_down_after_abort_scale_down_delay(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    manifest = rollout_manifest("web", replicas=4, steps=STEPS, abortScaleDownDelaySeconds=3)
    rollout = given(cluster, "abortdelay").rollout(manifest)
    rollout.apply().wait_healthy().set_image("nginx:2").wait_paused()
    rollout.abort().wait_sizes({"nginx:1": 4, "nginx:2": 1})

    def canary_deadline() -> str | None:
        # The sizes may already match before the controller has handled the abort; the deadline comes with it.
        canary = next(rs for rs in rollout.replicasets() if "nginx:2" in str(rs["spec"]["template"]))
        annotations = canary["metadata"].get("annotations") or {}
        return annotations.get("rollouts.pyrollouts.io/scale-down-deadline") or (
            "scaled down" if canary["spec"].get("replicas") == 0 else None
        )

    assert rollout.wait_for(f"{rollout.ns}/web canary scale-down deadline", canary_deadline) != "scaled down"
    rollout.wait_sizes({"nginx:1": 4}, timeout=10)
    assert rollout.status["phase"] == "Degraded"


@runs_own_controllers
def test_namespaced_controller_serves_metrics_and_health(
    cluster: Cluster, controller: ControllerProcess | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A controller limited to one namespace, with its /metrics and /healthz on."""
    import socket
    import urllib.request

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    namespace = given(cluster, "scoped")
    ns = namespace.name
    metrics_port, health_port = free_port(), free_port()
    scoped = ControllerProcess(
        cluster.kubeconfig,
        cluster.env,
        tmp_path_factory.mktemp("scoped"),
        extra=["--namespace", ns, "--metrics-port", str(metrics_port), "--health-port", str(health_port)],
    )
    assert controller is not None  # runs_own_controllers: the sandbox's run
    controller.stop()  # one controller per Rollout: the module's controller watches every namespace
    scoped.start()
    try:

        def get(port: int, path: str) -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                    return str(resp.read().decode())
            except OSError:
                return None

        assert cluster.wait("/healthz", lambda: get(health_port, "/healthz")) == "ok\n"
        rollout = namespace.rollout(rollout_manifest("web", replicas=2)).apply().wait_healthy()
        info = f'rollout_info{{name="web",namespace="{ns}",phase="Completed",strategy="canary",traffic_router=""}} 1.0'
        text = rollout.wait_for(
            "reconcile metrics",
            lambda: (
                (t := get(metrics_port, "/metrics"))
                and f'rollout_reconcile_count{{name="web",namespace="{ns}"}}' in t
                and info in t
                and t
            ),
        )
        assert re.search(r'controller_clientset_k8s_request_total\{[^}]*verb="Patch"\}', text)
        assert 'verb="Get"' not in text and 'verb="List"' not in text, text  # reads come from the watch caches
    finally:
        scoped.stop()
        controller.start()
