"""scaleDownDelaySeconds on a canary without a traffic router: after the promotion the previous stable
ReplicaSet keeps its pods (the Services already select the new hash) until its scale-down deadline,
the rollout is Healthy meanwhile, `kubectl rollouts get rollout` shows the remaining delay, and a
rollback within the window reuses the kept ReplicaSet."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, rollout_manifest, service_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl

DEADLINE = "rollouts.pyrollouts.io/scale-down-deadline"
DELAY = 12


def deadline_of(rs: dict[str, Any]) -> str | None:
    annotations: dict[str, str] = rs["metadata"].get("annotations") or {}
    return annotations.get(DEADLINE)


def test_previous_stable_is_kept_until_its_deadline(cluster: Cluster, controller: ControllerProcess | None) -> None:
    manifest = rollout_manifest(
        "web",
        replicas=2,
        steps=[{"setWeight": 50}, {"pause": {}}],
        # long enough that the checks below (a slow `get rollout` on a loaded machine) all fall inside it
        scaleDownDelaySeconds=DELAY,
        canaryService="web-canary",
        stableService="web-stable",
    )
    namespace = given(cluster, "sddelay")
    rollout = namespace.rollout(manifest, service_manifest("web-canary", "web"), service_manifest("web-stable", "web"))
    rollout.apply().wait_healthy().set_image("nginx:2").wait_paused("CanaryPauseStep")
    rollout.wait_sizes({"nginx:1": 1, "nginx:2": 1}).promote()

    # promoted: Healthy while the previous stable still runs its pod, with a deadline on it
    status = rollout.wait_healthy().seen
    new_hash = status["currentPodHash"]
    assert status["stableRS"] == new_hash

    def old_with_deadline() -> dict[str, Any] | None:
        rs = rollout.replicaset_of("nginx:1")
        return rs if deadline_of(rs) else None

    old = rollout.wait_for("the scale-down deadline", old_with_deadline)
    assert old["spec"]["replicas"] == 1
    deadline = dt.datetime.fromisoformat(str(deadline_of(old)).replace("Z", "+00:00")).timestamp()
    assert 0 < deadline - time.time() <= DELAY
    rollout.expect_sizes({"nginx:1": 1, "nginx:2": 2})
    for svc in ("web-canary", "web-stable"):
        assert namespace.service(svc)["spec"]["selector"][HASH_LABEL] == new_hash
    assert rollout.status["phase"] == "Healthy"
    shown = Plugin.on_cluster(cluster).ok("get", "rollout", "web", "-n", namespace.name)
    rows = [line for line in shown.splitlines() if old["metadata"]["name"] in line]
    assert any("delay:" in line for line in rows), rows

    # the deadline passes: the controller wakes up by itself and scales the old ReplicaSet to zero
    rollout.wait_sizes({"nginx:2": 2}, timeout=DELAY + 15)
    assert time.time() >= deadline - 0.5, "scaled down before its deadline"
    assert deadline_of(rollout.replicaset_of("nginx:1")) is None
    # the Healthy condition counts every pod, so it turns True only in the pass after the scale-down
    rollout.wait_status(
        "the Healthy condition",
        lambda s: s.get("phase") == "Healthy"
        and {c["type"]: c["status"] for c in s.get("conditions") or []}.get("Healthy") == "True",
    )


def test_rollback_within_the_window_reuses_the_kept_replicaset(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    manifest = rollout_manifest("web", replicas=2, scaleDownDelaySeconds=30, scaleDownDelayRevisionLimit=1)
    rollout = given(cluster, "sdrollback").rollout(manifest)
    first = rollout.apply().wait_healthy().seen["stableRS"]
    rollout.set_image("nginx:2").wait_for(
        "the old ReplicaSet kept with a deadline",
        lambda: rollout.status.get("stableRS") != first and deadline_of(rollout.replicaset_of("nginx:1")),
    )
    rollout.expect_sizes({"nginx:1": 2, "nginx:2": 2})
    old_uid = rollout.replicaset_of("nginx:1")["metadata"]["uid"]

    rollout.set_image("nginx:1")  # back within the window
    rollout.wait_for("the old ReplicaSet stable again", lambda: rollout.status.get("stableRS") == first)
    rollout.wait_healthy()
    rs = rollout.replicaset_of("nginx:1")
    assert rs["metadata"]["uid"] == old_uid and deadline_of(rs) is None
    assert len(rollout.replicasets()) == 2  # no new ReplicaSet
    rollout.wait_for("nginx:2 kept with its own deadline", lambda: deadline_of(rollout.replicaset_of("nginx:2")))
    rollout.expect_sizes({"nginx:1": 2, "nginx:2": 2})
