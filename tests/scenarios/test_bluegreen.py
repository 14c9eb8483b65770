"""Blue/green on the sandbox through manifests and `kubectl rollouts`: first deploy, an update that comes
up behind the preview Service, a manual promote, the switch, and the old stack scaled down after its
delay; autoPromotionSeconds; previewReplicaCount; abort and retry; promote --full; a new template while
a promotion is pending; bad input."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import yaml

from tests.fixtures.bluegreen import ACTIVE, DEADLINE, PREVIEW, bluegreen_manifest, paused_before_promotion, services
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, service_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TIMEOUT = 60.0


def plugin(cluster: Cluster, *args: str) -> str:
    return Plugin.on_cluster(cluster).ok(*args)


def test_first_deploy_then_manual_promotion(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bg")
    ns = namespace.name
    # The delay outlasts a slow `get rollout` on a loaded machine, which must still see the old stack kept.
    rollout = namespace.rollout(bluegreen_manifest(autoPromotionEnabled=False, scaleDownDelaySeconds=15), *services())
    status = rollout.apply().wait_healthy(timeout=TIMEOUT).seen
    blue = rollout.hash_of("nginx:1")
    assert status["stableRS"] == blue
    assert status["blueGreen"]["activeSelector"] == blue
    assert status["blueGreen"]["previewSelector"] == blue
    assert namespace.selected(ACTIVE) == blue and namespace.selected(PREVIEW) == blue

    status = rollout.set_image("nginx:2").wait_paused("BlueGreenPause", timeout=TIMEOUT).seen
    green = rollout.hash_of("nginx:2")
    # the new stack is up behind the preview Service; users still reach the old one
    assert namespace.selected(PREVIEW) == green
    assert namespace.selected(ACTIVE) == blue
    assert status["blueGreen"] == {"activeSelector": blue, "previewSelector": green}
    rollout.expect_ready_sizes({"nginx:1": 2, "nginx:2": 2})
    shown = plugin(cluster, "get", "rollout", "web", "-n", ns)
    assert "BlueGreenPause" in shown and "active" in shown and "preview" in shown

    plugin(cluster, "promote", "web", "-n", ns)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert status["stableRS"] == green
    assert namespace.selected(ACTIVE) == green
    # the old stack keeps serving until its scale-down deadline, then goes
    old = rollout.wait_for(
        "the scale-down deadline",
        lambda: (
            (rs := rollout.replicaset_of("nginx:1")) and DEADLINE in (rs["metadata"].get("annotations") or {}) and rs
        ),
        timeout=TIMEOUT,
    )
    assert old["spec"]["replicas"] == 2
    assert "delay:" in plugin(cluster, "get", "rollout", "web", "-n", ns)
    rollout.wait_sizes({"nginx:2": 2}, timeout=TIMEOUT)
    events = rollout.wait_for("the events", lambda: (r := rollout.reasons()) and "RolloutCompleted" in r and r)
    assert events.count("SwitchService") >= 3  # preview and active on first deploy, preview, active


def test_auto_promotion_seconds(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgauto")
    rollout = namespace.rollout(bluegreen_manifest(autoPromotionSeconds=2, scaleDownDelaySeconds=1), *services())
    rollout.apply().wait_healthy(timeout=TIMEOUT).set_image("nginx:2").wait_paused("BlueGreenPause", timeout=TIMEOUT)
    assert namespace.selected(ACTIVE) == rollout.hash_of("nginx:1")
    # nobody promotes: the pause ends by itself
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert namespace.selected(ACTIVE) == status["currentPodHash"] == rollout.hash_of("nginx:2")


def test_preview_replica_count(cluster: Cluster, controller: ControllerProcess | None) -> None:
    manifest = bluegreen_manifest(
        replicas=3,
        previewReplicaCount=1,
        autoPromotionEnabled=False,
        scaleDownDelaySeconds=1,
        activeMetadata={"labels": {"role": "active"}},
        previewMetadata={"labels": {"role": "preview"}},
    )
    namespace = given(cluster, "bgprev")
    rollout = namespace.rollout(manifest, *services())
    rollout.apply().wait_healthy(timeout=TIMEOUT).set_image("nginx:2").wait_paused("BlueGreenPause", timeout=TIMEOUT)
    rollout.expect_ready_sizes({"nginx:1": 3, "nginx:2": 1})
    blue, green = rollout.hash_of("nginx:1"), rollout.hash_of("nginx:2")
    rollout.wait_for("role labels on the pods", lambda: roles(namespace) == {blue: {"active"}, green: {"preview"}})
    # scaled to full first, switched only then
    status = rollout.promote().wait_healthy(timeout=TIMEOUT).seen
    assert namespace.selected(ACTIVE) == status["currentPodHash"]
    rollout.wait_sizes({"nginx:2": 3}, timeout=TIMEOUT)
    # the running pods of the new version took the active role
    rollout.wait_for("the active role moved", lambda: roles(namespace) == {green: {"active"}})


def roles(namespace: Namespace) -> dict[str, set[str | None]]:
    """The `role` label of the live pods, per pod-template hash."""
    out: dict[str, set[str | None]] = {}
    for pod in namespace.pods(label_selector="app=web"):
        labels = pod["metadata"]["labels"]
        out.setdefault(labels[HASH_LABEL], set()).add(labels.get("role"))
    return out


def test_abort_and_retry(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgabort")
    ns = namespace.name
    rollout, blue = paused_before_promotion(namespace, TIMEOUT, abortScaleDownDelaySeconds=1, scaleDownDelaySeconds=1)
    plugin(cluster, "abort", "web", "-n", ns)
    status = rollout.wait_degraded(timeout=TIMEOUT).seen
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2")
    assert namespace.selected(ACTIVE) == blue
    # the preview stack goes after abortScaleDownDelaySeconds
    rollout.wait_sizes({"nginx:1": 2}, timeout=TIMEOUT)

    plugin(cluster, "retry", "rollout", "web", "-n", ns)
    rollout.wait_paused("BlueGreenPause", timeout=TIMEOUT).expect_ready_sizes({"nginx:1": 2, "nginx:2": 2})
    assert namespace.selected(ACTIVE) == blue
    plugin(cluster, "promote", "web", "-n", ns)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert namespace.selected(ACTIVE) == status["stableRS"] == rollout.hash_of("nginx:2")


def test_promote_full_and_undo(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgfull")
    ns = namespace.name
    rollout, blue = paused_before_promotion(namespace, TIMEOUT, scaleDownDelaySeconds=30)
    plugin(cluster, "promote", "web", "--full", "-n", ns)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    green = rollout.hash_of("nginx:2")
    assert namespace.selected(ACTIVE) == status["stableRS"] == green
    # undo within the scale-down delay: the kept stack takes over again at once, no pause
    plugin(cluster, "undo", "web", "-n", ns)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert status["currentPodHash"] == blue
    assert namespace.selected(ACTIVE) == status["stableRS"] == blue


def test_new_template_during_pending_promotion(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgnew")
    rollout, blue = paused_before_promotion(namespace, TIMEOUT, scaleDownDelaySeconds=1)
    status = rollout.set_image("nginx:3").wait_paused("BlueGreenPause", timeout=TIMEOUT).seen
    third = rollout.hash_of("nginx:3")
    assert status["currentPodHash"] == third
    assert namespace.selected(PREVIEW) == third
    assert namespace.selected(ACTIVE) == blue
    # the abandoned preview stack goes at once (it never served users); the active one stays
    rollout.wait_sizes({"nginx:1": 2, "nginx:3": 2}, timeout=TIMEOUT)
    rollout.promote().wait_healthy(timeout=TIMEOUT)
    assert namespace.selected(ACTIVE) == third


def test_bad_input_is_invalid_spec_and_touches_nothing(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgbad")
    rollout = namespace.rollout(bluegreen_manifest(), service_manifest(ACTIVE, "web"))  # no preview Service
    status = rollout.apply().wait_degraded(timeout=TIMEOUT).seen
    assert (
        'spec.strategy.blueGreen.previewService: Invalid value: "web-preview": service "web-preview" not found'
        in (status["message"])
    )
    assert rollout.replicasets() == []
    assert namespace.selected(ACTIVE) == ""

    same = bluegreen_manifest(name="same")
    same["spec"]["strategy"]["blueGreen"]["previewService"] = ACTIVE
    status = namespace.rollout(same).apply().wait_degraded(timeout=TIMEOUT).seen
    assert "spec.strategy.blueGreen.activeService" in status["message"]
    assert "two different services are required" in status["message"]

    both = bluegreen_manifest(name="both")
    both["spec"]["strategy"]["canary"] = {"steps": []}
    status = namespace.rollout(both).apply().wait_degraded(timeout=TIMEOUT).seen
    assert "Multiple Strategies can not be listed" in status["message"]

    missing = bluegreen_manifest(name="missing")
    del missing["spec"]["strategy"]["blueGreen"]["activeService"]
    refused = namespace.apply(missing, check=False)  # the CRD schema requires it
    assert refused.returncode != 0 and "activeService" in refused.stderr


def test_the_example_manifest(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgexample")
    ns = namespace.name
    docs = list(yaml.safe_load_all((REPO / "examples" / "blue-green.yaml").read_text()))
    for doc in docs:  # the example's pods take 3 s to be ready; the test's need not
        if doc["kind"] == "Rollout":
            doc["spec"]["template"]["metadata"]["annotations"]["sandbox.pyrollouts.io/ready-after"] = "0.2s"
    namespace.apply(*docs)  # in the example's order
    rollout = namespace.rollout_named("bluegreen")
    blue = rollout.wait_healthy(timeout=TIMEOUT).seen["stableRS"]
    # the pre-promotion Job runs against the one-pod preview stack, then the rollout waits for a promote
    status = rollout.set_image("nginx:1.27").wait_paused("BlueGreenPause", timeout=TIMEOUT).seen
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Successful"
    rollout.expect_ready_sizes({"nginx:1.25": 3, "nginx:1.27": 1})
    assert namespace.selected("bluegreen-active") == blue
    plugin(cluster, "promote", "bluegreen", "-n", ns)
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    assert namespace.selected("bluegreen-active") == status["stableRS"] != blue


def test_restart_within_max_unavailable(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "bgrestart")
    ns = namespace.name
    rollout = namespace.rollout(bluegreen_manifest(replicas=3, maxUnavailable=1), *services())
    status = rollout.apply().wait_healthy(timeout=TIMEOUT).seen
    first = namespace.pods(deleting=True)
    old = {p["metadata"]["name"] for p in first}
    # restartAt has whole seconds: pods created in its second count as restarted already
    newest = max(dt.datetime.fromisoformat(p["metadata"]["creationTimestamp"]).timestamp() for p in first)
    rollout.wait_for("the pods' second to pass", lambda: time.time() >= newest + 1.0, timeout=5)
    plugin(cluster, "restart", "web", "-n", ns)
    restart_at = rollout.live()["spec"]["restartAt"]
    min_ready, live = rollout.wait_restarted(restart_at, TIMEOUT)
    assert len(live) == 3 and not ({p["metadata"]["name"] for p in live} & old)
    assert min_ready >= 2  # never more than maxUnavailable (1) pods down
    assert namespace.selected(ACTIVE) == status["stableRS"]
    rollout.wait_healthy(timeout=TIMEOUT)
