"""scaleDownDelaySeconds on a canary without a traffic router: after the promotion the previous stable
ReplicaSet keeps its pods (the Services already select the new hash) until its scale-down deadline,
the rollout is Healthy meanwhile, `kubectl rollouts get rollout` shows the remaining delay, and a
rollback within the window reuses the kept ReplicaSet."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import HASH_LABEL, rollout_manifest, service_manifest
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl

DEADLINE = "rollouts.pyrollouts.io/scale-down-deadline"


def by_image(cluster: Cluster, ns: str, image: str) -> dict[str, Any]:
    return next(
        rs for rs in cluster.replicasets(ns, "web") if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image
    )


def deadline_of(rs: dict[str, Any]) -> str | None:
    annotations: dict[str, str] = rs["metadata"].get("annotations") or {}
    return annotations.get(DEADLINE)


def plugin(cluster: Cluster, *args: str) -> str:
    """`kubectl rollouts ARGS` through kubectl's plugin mechanism (the venv's bin first on PATH)."""
    venv_bin = REPO / ".venv" / "bin"
    bin_dir = venv_bin if (venv_bin / "kubectl-rollouts").exists() else Path(sys.executable).parent
    env = {**cluster.env, "PATH": f"{bin_dir}{os.pathsep}{cluster.env.get('PATH', os.environ.get('PATH', ''))}"}
    result = subprocess.run(
        [cluster.kubectl_bin, "rollouts", *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, f"kubectl rollouts {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_previous_stable_is_kept_until_its_deadline(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("sddelay")
    cluster.apply(
        ns,
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web",
            replicas=2,
            steps=[{"setWeight": 50}, {"pause": {}}],
            scaleDownDelaySeconds=3,
            canaryService="web-canary",
            stableService="web-stable",
        ),
    )
    cluster.wait_phase(ns, "web", "Healthy")
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait_phase(ns, "web", "Paused", message="CanaryPauseStep")
    cluster.wait_sizes(ns, "web", {"nginx:1": 1, "nginx:2": 1})
    cluster.promote(ns, "web")

    # promoted: Healthy while the previous stable still runs its pod, with a deadline on it
    status = cluster.wait_phase(ns, "web", "Healthy")
    new_hash = status["currentPodHash"]
    assert status["stableRS"] == new_hash
    def old_with_deadline() -> dict[str, Any] | None:
        rs = by_image(cluster, ns, "nginx:1")
        return rs if deadline_of(rs) else None

    old = cluster.wait("the scale-down deadline", old_with_deadline)
    assert old["spec"]["replicas"] == 1
    deadline = dt.datetime.fromisoformat(str(deadline_of(old)).replace("Z", "+00:00")).timestamp()
    assert 0 < deadline - time.time() <= 3
    assert cluster.sizes(ns, "web") == {"nginx:1": 1, "nginx:2": 2}
    for svc in ("web-canary", "web-stable"):
        assert cluster.service(ns, svc)["spec"]["selector"][HASH_LABEL] == new_hash
    assert cluster.status(ns, "web")["phase"] == "Healthy"
    rows = [
        line
        for line in plugin(cluster, "get", "rollout", "web", "-n", ns).splitlines()
        if old["metadata"]["name"] in line
    ]
    assert any("delay:" in line for line in rows), rows

    # the deadline passes: the controller wakes up by itself and scales the old ReplicaSet to zero
    cluster.wait_sizes(ns, "web", {"nginx:2": 2}, timeout=15)
    assert time.time() >= deadline - 0.5, "scaled down before its deadline"
    assert deadline_of(by_image(cluster, ns, "nginx:1")) is None
    status = cluster.wait_phase(ns, "web", "Healthy")
    assert {c["type"]: c["status"] for c in status["conditions"]}["Healthy"] == "True"


def test_rollback_within_the_window_reuses_the_kept_replicaset(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.new_namespace("sdrollback")
    cluster.apply(ns, rollout_manifest("web", replicas=2, scaleDownDelaySeconds=30, scaleDownDelayRevisionLimit=1))
    first = cluster.wait_phase(ns, "web", "Healthy")["stableRS"]
    cluster.set_image(ns, "web", "nginx:2")
    cluster.wait(
        "the old ReplicaSet kept with a deadline",
        lambda: cluster.status(ns, "web").get("stableRS") != first and deadline_of(by_image(cluster, ns, "nginx:1")),
    )
    assert cluster.sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
    old_uid = by_image(cluster, ns, "nginx:1")["metadata"]["uid"]

    cluster.set_image(ns, "web", "nginx:1")  # back within the window
    cluster.wait("the old ReplicaSet stable again", lambda: cluster.status(ns, "web").get("stableRS") == first)
    cluster.wait_phase(ns, "web", "Healthy")
    rs = by_image(cluster, ns, "nginx:1")
    assert rs["metadata"]["uid"] == old_uid and deadline_of(rs) is None
    assert len(cluster.replicasets(ns, "web")) == 2  # no new ReplicaSet
    cluster.wait("nginx:2 kept with its own deadline", lambda: deadline_of(by_image(cluster, ns, "nginx:2")))
    assert cluster.sizes(ns, "web") == {"nginx:1": 2, "nginx:2": 2}
