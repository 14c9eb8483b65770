"""Blue/green on the sandbox through manifests and `kubectl rollouts`: first deploy, an update that comes
up behind the preview Service, a manual promote, the switch, and the old stack scaled down after its
delay; autoPromotionSeconds; previewReplicaCount; abort and retry; promote --full; a new template while
a promotion is pending; bad input."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import yaml

from tests.fixtures.bluegreen import (
    ACTIVE,
    DEADLINE,
    PREVIEW,
    bluegreen_manifest,
    hash_of,
    paused_before_promotion,
    reasons,
    replicaset_of,
    selected,
    services,
)
from tests.fixtures.cluster import Cluster, wait_restarted
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, service_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TIMEOUT = 60.0


def plugin(cluster: Cluster, *args: str) -> str:
    return Plugin(cluster).ok(*args)


def test_first_deploy_then_manual_promotion(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bg")
    cluster.apply(ns, *services(), bluegreen_manifest(autoPromotionEnabled=False, scaleDownDelaySeconds=3))
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    blue = hash_of(cluster, ns, "nginx:1")
    assert status["stableRS"] == blue
    assert status["blueGreen"]["activeSelector"] == blue
    assert status["blueGreen"]["previewSelector"] == blue
    assert selected(cluster, ns, ACTIVE) == blue and selected(cluster, ns, PREVIEW) == blue

    cluster.set_image(ns, "web", "nginx:2")
    status = cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    # the new stack is up behind the preview Service; users still reach the old one
    assert selected(cluster, ns, PREVIEW) == green
    assert selected(cluster, ns, ACTIVE) == blue
    assert status["blueGreen"] == {"activeSelector": blue, "previewSelector": green}
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
    shown = plugin(cluster, "get", "rollout", "web", "-n", ns)
    assert "BlueGreenPause" in shown and "active" in shown and "preview" in shown

    plugin(cluster, "promote", "web", "-n", ns)
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["stableRS"] == green
    assert selected(cluster, ns, ACTIVE) == green
    # the old stack keeps serving until its scale-down deadline, then goes
    old = cluster.wait(
        "the scale-down deadline",
        lambda: (
            (rs := replicaset_of(cluster, ns, "nginx:1"))
            and DEADLINE in (rs["metadata"].get("annotations") or {})
            and rs
        ),
        timeout=TIMEOUT,
    )
    assert old["spec"]["replicas"] == 2
    assert "delay:" in plugin(cluster, "get", "rollout", "web", "-n", ns)
    cluster.wait_sizes(ns, "web", {"nginx:2": 2}, timeout=TIMEOUT)
    events = cluster.wait("the events", lambda: (r := reasons(cluster, ns)) and "RolloutCompleted" in r and r)
    assert events.count("SwitchService") >= 3  # preview and active on first deploy, preview, active


def test_auto_promotion_seconds(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgauto")
    cluster.apply(ns, *services(), bluegreen_manifest(autoPromotionSeconds=2, scaleDownDelaySeconds=1))
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == hash_of(cluster, ns, "nginx:1")
    # nobody promotes: the pause ends by itself
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == status["currentPodHash"] == hash_of(cluster, ns, "nginx:2")


def test_preview_replica_count(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgprev")
    cluster.apply(
        ns,
        *services(),
        bluegreen_manifest(
            replicas=3,
            previewReplicaCount=1,
            autoPromotionEnabled=False,
            scaleDownDelaySeconds=1,
            activeMetadata={"labels": {"role": "active"}},
            previewMetadata={"labels": {"role": "preview"}},
        ),
    )
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 3, "nginx:2": 1}
    blue, green = hash_of(cluster, ns, "nginx:1"), hash_of(cluster, ns, "nginx:2")
    cluster.wait("role labels on the pods", lambda: roles(cluster, ns) == {blue: {"active"}, green: {"preview"}})
    cluster.promote(ns, "web")
    # scaled to full first, switched only then
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == status["currentPodHash"]
    cluster.wait_sizes(ns, "web", {"nginx:2": 3}, timeout=TIMEOUT)
    # the running pods of the new version took the active role
    cluster.wait("the active role moved", lambda: roles(cluster, ns) == {green: {"active"}})


def roles(cluster: Cluster, ns: str) -> dict[str, set[str | None]]:
    """The `role` label of the live pods, per pod-template hash."""
    out: dict[str, set[str | None]] = {}
    for pod in cluster.pods(ns, label_selector="app=web"):
        labels = pod["metadata"]["labels"]
        out.setdefault(labels[HASH_LABEL], set()).add(labels.get("role"))
    return out


def test_abort_and_retry(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgabort")
    blue = paused_before_promotion(cluster, ns, TIMEOUT, abortScaleDownDelaySeconds=1, scaleDownDelaySeconds=1)
    plugin(cluster, "abort", "web", "-n", ns)
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=TIMEOUT)
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2")
    assert selected(cluster, ns, ACTIVE) == blue
    # the preview stack goes after abortScaleDownDelaySeconds
    cluster.wait_sizes(ns, "web", {"nginx:1": 2}, timeout=TIMEOUT)

    plugin(cluster, "retry", "rollout", "web", "-n", ns)
    cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    assert cluster.ready_sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
    assert selected(cluster, ns, ACTIVE) == blue
    plugin(cluster, "promote", "web", "-n", ns)
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == status["stableRS"] == hash_of(cluster, ns, "nginx:2")


def test_promote_full_and_undo(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgfull")
    blue = paused_before_promotion(cluster, ns, TIMEOUT, scaleDownDelaySeconds=30)
    plugin(cluster, "promote", "web", "--full", "-n", ns)
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    green = hash_of(cluster, ns, "nginx:2")
    assert selected(cluster, ns, ACTIVE) == status["stableRS"] == green
    # undo within the scale-down delay: the kept stack takes over again at once, no pause
    plugin(cluster, "undo", "web", "-n", ns)
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert status["currentPodHash"] == blue
    assert selected(cluster, ns, ACTIVE) == status["stableRS"] == blue


def test_new_template_during_pending_promotion(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgnew")
    blue = paused_before_promotion(cluster, ns, TIMEOUT, scaleDownDelaySeconds=1)
    cluster.set_image(ns, "web", "nginx:3")
    status = cluster.wait_phase(ns, "web", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    third = hash_of(cluster, ns, "nginx:3")
    assert status["currentPodHash"] == third
    assert selected(cluster, ns, PREVIEW) == third
    assert selected(cluster, ns, ACTIVE) == blue
    # the abandoned preview stack goes at once (it never served users); the active one stays
    cluster.wait_sizes(ns, "web", {"nginx:1": 2, "nginx:3": 2}, timeout=TIMEOUT)
    cluster.promote(ns, "web")
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    assert selected(cluster, ns, ACTIVE) == third


def test_bad_input_is_invalid_spec_and_touches_nothing(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgbad")
    cluster.apply(ns, service_manifest(ACTIVE, "web"), bluegreen_manifest())  # no preview Service
    status = cluster.wait_phase(ns, "web", "Degraded", timeout=TIMEOUT)
    assert (
        'spec.strategy.blueGreen.previewService: Invalid value: "web-preview": service "web-preview" not found'
        in (status["message"])
    )
    assert cluster.replicasets(ns, "web") == []
    assert selected(cluster, ns, ACTIVE) == ""

    same = bluegreen_manifest(name="same")
    same["spec"]["strategy"]["blueGreen"]["previewService"] = ACTIVE
    cluster.apply(ns, same)
    status = cluster.wait_phase(ns, "same", "Degraded", timeout=TIMEOUT)
    assert "spec.strategy.blueGreen.activeService" in status["message"]
    assert "two different services are required" in status["message"]

    both = bluegreen_manifest(name="both")
    both["spec"]["strategy"]["canary"] = {"steps": []}
    cluster.apply(ns, both)
    status = cluster.wait_phase(ns, "both", "Degraded", timeout=TIMEOUT)
    assert "Multiple Strategies can not be listed" in status["message"]

    missing = bluegreen_manifest(name="missing")
    del missing["spec"]["strategy"]["blueGreen"]["activeService"]
    refused = cluster.apply(ns, missing, check=False)  # the CRD schema requires it
    assert refused.returncode != 0 and "activeService" in refused.stderr


def test_the_example_manifest(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgexample")
    docs = list(yaml.safe_load_all((REPO / "examples" / "blue-green.yaml").read_text()))
    for doc in docs:  # the example's pods take 3 s to be ready; the test's need not
        if doc["kind"] == "Rollout":
            doc["spec"]["template"]["metadata"]["annotations"]["sandbox.pyrollouts.io/ready-after"] = "0.2s"
    cluster.apply(ns, *docs)
    status = cluster.wait_phase(ns, "bluegreen", "Healthy", timeout=TIMEOUT)
    blue = status["stableRS"]
    cluster.set_image(ns, "bluegreen", "nginx:1.27")
    # the pre-promotion Job runs against the one-pod preview stack, then the rollout waits for a promote
    status = cluster.wait_phase(ns, "bluegreen", "Paused", message="BlueGreenPause", timeout=TIMEOUT)
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Successful"
    assert cluster.ready_sizes(ns, "bluegreen") == {"nginx:1.25": 3, "nginx:1.27": 1}
    assert selected(cluster, ns, "bluegreen-active") == blue
    plugin(cluster, "promote", "bluegreen", "-n", ns)
    status = cluster.wait_phase(ns, "bluegreen", "Healthy", timeout=TIMEOUT)
    assert selected(cluster, ns, "bluegreen-active") == status["stableRS"] != blue


def test_restart_within_max_unavailable(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("bgrestart")
    cluster.apply(ns, *services(), bluegreen_manifest(replicas=3, maxUnavailable=1))
    status = cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
    first = cluster.pods(ns, deleting=True)
    old = {p["metadata"]["name"] for p in first}
    # restartAt has whole seconds: pods created in its second count as restarted already
    newest = max(dt.datetime.fromisoformat(p["metadata"]["creationTimestamp"]).timestamp() for p in first)
    cluster.wait("the pods' second to pass", lambda: time.time() >= newest + 1.0, timeout=5)
    plugin(cluster, "restart", "web", "-n", ns)
    restart_at = cluster.rollout(ns, "web")["spec"]["restartAt"]
    min_ready, live = wait_restarted(cluster, ns, restart_at, TIMEOUT)
    assert len(live) == 3 and not ({p["metadata"]["name"] for p in live} & old)
    assert min_ready >= 2  # never more than maxUnavailable (1) pods down
    assert selected(cluster, ns, ACTIVE) == status["stableRS"]
    cluster.wait_phase(ns, "web", "Healthy", timeout=TIMEOUT)
