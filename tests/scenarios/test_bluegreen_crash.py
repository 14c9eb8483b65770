"""Crash safety of blue/green: kill the controller (SIGKILL) at every stage of an update and start a new
one. At every moment the active Service selects ready pods only (a fully available stack), the preview
Service never selects anything but the old or the newest version, and the rollout ends exactly as the same
update does without crashes (run beside it, under a controller of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bluegreen import ACTIVE, PREVIEW, bluegreen_manifest, services
from tests.fixtures.cluster import Cluster, pod_ready, settled
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.crash import CrashDrill, Milestone, with_and_without_crashes
from tests.fixtures.manifests import HASH_LABEL
from tests.fixtures.rollout import Namespace, RolloutHandle

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

REPLICAS = 3


def manifests(image: str) -> list[dict[str, Any]]:
    rollout = bluegreen_manifest(
        replicas=REPLICAS,
        image=image,
        previewReplicaCount=1,
        autoPromotionEnabled=False,
        scaleDownDelaySeconds=2,
    )
    return [*services(), rollout]


def check_invariants(rollout: RolloutHandle, first_hash: str) -> None:
    namespace = rollout.namespace
    active = namespace.selected(ACTIVE)
    assert active, "the active Service lost its pod-template hash"
    pods = namespace.pods(label_selector=f"app=web,{HASH_LABEL}={active}", deleting=True)
    assert len(pods) >= REPLICAS, f"the active Service selects {len(pods)} pods"
    assert all(pod_ready(p) for p in pods), "the active Service selects a pod that is not ready"
    # The preview Service moves before the status names the new hash (writes go before the status), so
    # compare with the ReplicaSets read after it, not with status.currentPodHash.
    preview = namespace.selected(PREVIEW)
    rss = rollout.replicasets()
    assert preview in {first_hash} | {r["metadata"]["labels"][HASH_LABEL] for r in rss}, preview
    assert len(rss) <= 2, [r["metadata"]["name"] for r in rss]


def state(rollout: RolloutHandle) -> tuple[Any, ...]:
    status = rollout.status
    return (
        status.get("phase"),
        tuple(sorted(rollout.sizes().items())),
        tuple(sorted(rollout.ready_sizes().items())),
        bool(status.get("pauseConditions")),
        rollout.namespace.selected(ACTIVE),
        rollout.namespace.selected(PREVIEW),
    )


def normalized(rollout: RolloutHandle) -> dict[str, Any]:
    status = rollout.status
    # The Paused condition is written by the pass after the pause: a promote that lands before that pass
    # (the test promotes as soon as it sees the pause, crash or not) leaves none. Timing, not state.
    conditions = sorted(
        (c["type"], c["status"], c["reason"], c["message"])
        for c in status.get("conditions") or []
        if c["type"] != "Paused"
    )
    keep = {k: v for k, v in status.items() if k not in ("conditions", "pauseConditions")}
    rss = sorted((r["metadata"]["name"], r["spec"]["replicas"]) for r in rollout.replicasets())
    return {"status": keep, "conditions": conditions, "replicasets": rss}


def run_update(
    namespace: Namespace, controller: ControllerProcess, crash: bool
) -> tuple[RolloutHandle, dict[str, Any]]:
    rollout = namespace.rollout(manifests("nginx:1")[-1], *services())
    first = rollout.apply().wait_healthy(timeout=60).seen["stableRS"]
    rollout.wait_for("the active Service on the first version", lambda: namespace.selected(ACTIVE) == first)
    namespace.apply(*manifests("nginx:2"))

    def status() -> dict[str, Any]:
        return rollout.status

    def paused_for_promotion() -> bool:
        return status().get("phase") == "Paused" and bool(status().get("pauseConditions"))

    def done() -> bool:
        return (
            status().get("phase") == "Healthy"
            and status().get("stableRS") != first
            and rollout.sizes() == {"nginx:2": REPLICAS}
            and rollout.ready_sizes() == {"nginx:2": REPLICAS}
        )

    drill = CrashDrill(controller, crash, lambda: check_invariants(rollout, first), lambda: state(rollout))
    drill.run(
        [
            Milestone("the preview stack up", lambda: rollout.sizes().get("nginx:2", 0) > 0),
            # promoted while no controller runs
            Milestone("the pause before promotion", paused_for_promotion, while_down=rollout.promote),
            Milestone("the new stack at full size", lambda: rollout.sizes().get("nginx:2", 0) == REPLICAS),
            Milestone("the active Service switched", lambda: namespace.selected(ACTIVE) not in ("", first)),
            Milestone("the promotion", lambda: status().get("stableRS") not in (None, first)),
            Milestone("the old stack scaled down", lambda: rollout.sizes().get("nginx:1", 0) == 0),
        ],
        done,
        timeout=120,
    )
    return rollout, settled(lambda: normalized(rollout), REPLICAS)


def test_crash_at_every_stage_keeps_the_active_service_on_ready_pods(cluster: Cluster, tmp_path: Path) -> None:
    compared = with_and_without_crashes(cluster, tmp_path, "bg", run_update)
    (_, reference), (rollout, crashed) = compared.reference, compared.crashed
    assert crashed == reference
    created = [m for r, m in rollout.events() if r == "NewReplicaSetCreated"]
    assert len(created) == 2, created
