"""Canary rollouts end to end: first deploy, setWeight and pause steps with exact ReplicaSet sizes,
promote, timed pauses, Service selectors, abort and retry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, rollout_manifest, service_manifest

pytestmark = pytest.mark.kubectl

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]


def test_first_deploy_goes_to_full_size(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("first")
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS))
    status = cluster.wait_phase(ns, "web", "Healthy")
    assert cluster.sizes(ns, "web") == {"nginx:1": 4}
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
    }
    [rs] = cluster.replicasets(ns, "web")
    pod_hash = status["currentPodHash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"][HASH_LABEL] == pod_hash
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"] == "1"
    assert cluster.rollout(ns, "web")["metadata"]["annotations"]["rollouts.pyrollouts.io/revision"] == "1"
    reasons = [r for r, _ in cluster.events(ns, "web")]
    for reason in ("NewReplicaSetCreated", "ScalingReplicaSet", "RolloutCompleted"):
        assert reason in reasons
    # kopf leaves no trace on our objects
    ro = cluster.rollout(ns, "web")
    assert not [k for k in ro["metadata"].get("annotations", {}) if "kopf" in k]
    assert not ro["metadata"].get("finalizers")


def test_canary_steps_with_exact_sizes_promote_and_timed_pause(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("steps")
    cluster.apply(
        ns,
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web",
            replicas=4,
            steps=STEPS,
            maxSurge=1,
            maxUnavailable=0,
            canaryService="web-canary",
            stableService="web-stable",
        ),
    )
    first = cluster.wait_phase(ns, "web", "Healthy")["stableRS"]
    cluster.wait(
        "services pointed at the stable hash",
        lambda: all(
            cluster.service(ns, s)["spec"]["selector"].get(HASH_LABEL) == first for s in ("web-canary", "web-stable")
        ),
    )
    managed = cluster.service(ns, "web-stable")["metadata"]["annotations"]
    assert managed["rollouts.pyrollouts.io/managed-by-rollouts"] == "web"

    cluster.set_image(ns, "web", "nginx:2")
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    assert cluster.sizes(ns, "web") == {"nginx:1": 3, "nginx:2": 1}
    assert status["currentStepIndex"] == 1
    assert status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    assert status["canary"]["weights"]["canary"]["weight"] == 25
    canary_hash = status["currentPodHash"]
    assert cluster.service(ns, "web-canary")["spec"]["selector"][HASH_LABEL] == canary_hash
    assert cluster.service(ns, "web-stable")["spec"]["selector"][HASH_LABEL] == first
    cluster.wait(
        "the Paused condition",
        lambda: any(c["type"] == "Paused" and c["status"] == "True" for c in cluster.status(ns, "web")["conditions"]),
    )

    cluster.promote(ns, "web")
    # setWeight 50, then the 1s pause passes by itself, then setWeight 75, then promotion
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=30)
    assert cluster.sizes(ns, "web") == {"nginx:2": 4}
    assert status["stableRS"] == canary_hash
    assert status["currentStepIndex"] == len(STEPS)
    for svc in ("web-canary", "web-stable"):
        assert cluster.service(ns, svc)["spec"]["selector"][HASH_LABEL] == canary_hash
    events = cluster.events(ns, "web")
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
    cluster.kubectl("delete", "rollout", "web", "-n", ns)
    cluster.wait(
        "the hash to leave the service selectors",
        lambda: all(HASH_LABEL not in cluster.service(ns, s)["spec"]["selector"] for s in ("web-canary", "web-stable")),
    )


def test_sizes_at_each_step(cluster: Cluster, controller: ControllerProcess) -> None:
    """10 replicas, maxSurge 2, maxUnavailable 0, paused after every weight: sizes as Argo computes them."""
    ns = cluster.new_namespace("sizes")
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"pause": {}},
        {"setWeight": 35},
        {"pause": {}},
        {"setWeight": 90},
        {"pause": {}},
    ]
    cluster.apply(ns, rollout_manifest("web", replicas=10, steps=steps, maxSurge=2, maxUnavailable=0))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    for index, expected in (
        (1, {"nginx:1": 9, "nginx:2": 1}),
        (3, {"nginx:1": 7, "nginx:2": 4}),
        (5, {"nginx:1": 1, "nginx:2": 9}),
    ):
        status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
        assert status["currentStepIndex"] == index
        cluster.wait_sizes(ns, "web", expected)
        cluster.promote(ns, "web")

        def past(i: int = index) -> bool:
            return bool(cluster.status(ns, "web").get("currentStepIndex", 0) > i)

        cluster.wait(f"step index past {index}", past)
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.wait_sizes(ns, "web", {"nginx:2": 10})


def test_promote_full(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("full")
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused")
    cluster.promote_full(ns, "web")
    status = cluster.wait_phase(ns, "web", "Healthy")
    assert cluster.sizes(ns, "web") == {"nginx:2": 4}
    assert not status.get("promoteFull")
    assert any(
        m.endswith(": Full promotion requested") for r, m in cluster.events(ns, "web") if r == "RolloutCompleted"
    )


def test_skip_current_step(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("skip")
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=steps))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused")
    cluster.patch(ns, "web", {"status": {"currentStepIndex": 2}}, status=True)  # promote without a pause to clear
    status = cluster.wait(
        "the next pause",
        lambda: (st := cluster.status(ns, "web")).get("currentStepIndex") == 3 and st.get("phase") == "Paused" and st,
    )
    assert status["currentStepIndex"] == 3
    cluster.wait_sizes(ns, "web", {"nginx:1": 2, "nginx:2": 2})


def test_abort_then_retry(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("abort")
    cluster.apply(
        ns,
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest("web", replicas=4, steps=STEPS, canaryService="web-canary", stableService="web-stable"),
    )
    first = cluster.wait_phase(ns, "web", "Healthy")["stableRS"]
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused")
    cluster.abort(ns, "web")
    status = cluster.wait_phase(ns, "web", "Degraded", message="RolloutAborted: Rollout aborted update to revision 2")
    cluster.wait_sizes(ns, "web", {"nginx:1": 4})
    status = cluster.status(ns, "web")
    assert status["abort"] is True and status["abortedAt"]
    assert status["currentStepIndex"] == 0
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "RolloutAborted")
    assert cluster.service(ns, "web-canary")["spec"]["selector"][HASH_LABEL] == first
    assert ("RolloutAborted", "Rollout aborted update to revision 2") in cluster.events(ns, "web")

    cluster.retry(ns, "web")
    status = cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.wait_sizes(ns, "web", {"nginx:1": 3, "nginx:2": 1})
    assert not status.get("abort")
    assert cluster.service(ns, "web-canary")["spec"]["selector"][HASH_LABEL] == status["currentPodHash"]


def test_abort_scales_canary_down_after_abort_scale_down_delay(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("abortdelay")
    cluster.apply(ns, rollout_manifest("web", replicas=4, steps=STEPS, abortScaleDownDelaySeconds=3))
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused")
    cluster.abort(ns, "web")
    cluster.wait_sizes(ns, "web", {"nginx:1": 4, "nginx:2": 1})

    def canary_deadline() -> str | None:
        # The sizes may already match before the controller has handled the abort; the deadline comes with it.
        canary = next(rs for rs in cluster.replicasets(ns, "web") if "nginx:2" in str(rs["spec"]["template"]))
        annotations = canary["metadata"].get("annotations") or {}
        return annotations.get("rollouts.pyrollouts.io/scale-down-deadline") or (
            "scaled down" if canary["spec"].get("replicas") == 0 else None
        )

    assert cluster.wait(f"{ns}/web canary scale-down deadline", canary_deadline) != "scaled down"
    cluster.wait_sizes(ns, "web", {"nginx:1": 4}, timeout=10)
    assert cluster.status(ns, "web")["phase"] == "Degraded"


def test_namespaced_controller_serves_metrics_and_health(
    cluster: Cluster, controller: ControllerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A controller limited to one namespace, with its /metrics and /healthz on."""
    import socket
    import urllib.request

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    ns = cluster.new_namespace("scoped")
    metrics_port, health_port = free_port(), free_port()
    scoped = ControllerProcess(
        cluster.kubeconfig,
        cluster.env,
        tmp_path_factory.mktemp("scoped"),
        extra=["--namespace", ns, "--metrics-port", str(metrics_port), "--health-port", str(health_port)],
    )
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
        cluster.apply(ns, rollout_manifest("web", replicas=2))
        cluster.wait_phase(ns, "web", "Healthy")
        text = cluster.wait(
            "reconcile metrics",
            lambda: (
                (t := get(metrics_port, "/metrics"))
                and f'pyrollouts_reconcile_total{{namespace="{ns}",result="success"}}' in t
                and t
            ),
        )
        assert f'pyrollouts_rollout_phase{{namespace="{ns}",name="web",phase="Healthy"}} 1' in text
        assert 'pyrollouts_api_requests_total{verb="PATCH"}' in text
        assert 'verb="GET"' not in text, text  # reads come from the watch caches
    finally:
        scoped.stop()
        controller.start()
