"""Crash safety: kill the controller (SIGKILL) at every step of a canary (and at other changes the poll
sees) and start a new one. The rollout must end exactly as the same update does without crashes (run
beside it, under a controller of its own): no extra ReplicaSet, no Service pointed at a version it should
not see, the same final status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, settled
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.crash import CrashDrill, canary_milestones, with_and_without_crashes
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import REVISION, Namespace, RolloutHandle

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

STEPS: list[Step] = [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}
]


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web",
            replicas=4,
            steps=STEPS,
            image=image,
            maxSurge=1,
            maxUnavailable=0,
            canaryService="web-canary",
            stableService="web-stable",
        ),
    ]


def normalized(rollout: RolloutHandle) -> dict[str, Any]:
    """What must not depend on crashes: status without timestamps, ReplicaSets, Service selectors."""
    status = rollout.status
    conditions = sorted((c["type"], c["status"], c["reason"], c["message"]) for c in status.get("conditions") or [])
    keep = {k: v for k, v in status.items() if k not in ("conditions", "abortedAt", "pauseConditions")}
    rss = sorted(
        (r["metadata"]["name"], r["spec"]["replicas"], r["metadata"]["annotations"][REVISION])
        for r in rollout.replicasets()
    )
    selectors = {s: rollout.namespace.service(s)["spec"]["selector"] for s in ("web-canary", "web-stable")}
    return {"status": keep, "conditions": conditions, "replicasets": rss, "selectors": selectors}


def state(rollout: RolloutHandle) -> tuple[Any, ...]:
    status = rollout.status
    return (*rollout.progress(), bool(status.get("pauseConditions")))


def check_invariants(rollout: RolloutHandle, first_hash: str) -> None:
    rss = rollout.replicasets()
    assert len(rss) <= 2, [r["metadata"]["name"] for r in rss]
    status = rollout.status
    stable_selector = rollout.namespace.service("web-stable")["spec"]["selector"].get(HASH_LABEL)
    if status.get("stableRS") == first_hash:
        assert stable_selector == first_hash, "stable Service moved to the canary before promotion"
    total = sum(r["spec"]["replicas"] for r in rss)
    assert total <= 5, f"more than replicas + maxSurge pods asked for: {total}"


def unmoved(rollout: RolloutHandle, sizes: tuple[Any, ...]) -> Callable[[], None]:
    """A check that the Rollout's sizes are still `sizes` (while no controller runs)."""

    def check() -> None:
        assert state(rollout)[2] == sizes, "something scaled while the controller was down"

    return check


def run_canary(
    namespace: Namespace, controller: ControllerProcess, crash: bool
) -> tuple[RolloutHandle, dict[str, Any]]:
    rollout = namespace.rollout_of(manifests("nginx:1"))
    first = rollout.apply().wait_healthy().seen["stableRS"]
    rollout.wait_for(
        "services on the stable hash",
        lambda: namespace.service("web-stable")["spec"]["selector"].get(HASH_LABEL) == first,
    )
    namespace.apply(*manifests("nginx:2"))

    def status() -> dict[str, Any]:
        return rollout.status

    def nothing_scales() -> None:
        rollout.expect_throughout(0.1, unmoved(rollout, state(rollout)[2]))

    def done() -> bool:
        return (
            status().get("phase") == "Healthy"
            and status().get("stableRS") != first
            and rollout.sizes() == {"nginx:2": 4}
            and rollout.ready_sizes() == {"nginx:2": 4}
        )

    drill = CrashDrill(
        controller, crash, lambda: check_invariants(rollout, first), lambda: state(rollout), nothing_scales
    )
    drill.run(
        canary_milestones(rollout, first, len(STEPS), manual_pause=1),
        done,
        timeout=90,
    )
    return rollout, settled(lambda: normalized(rollout), 4)


def test_crash_at_every_step_ends_as_without_crashes(cluster: Cluster, tmp_path: Path) -> None:
    compared = with_and_without_crashes(cluster, tmp_path, "", run_canary)
    (_, reference), (rollout, crashed) = compared.reference, compared.crashed
    assert crashed == reference
    assert compared.crash_controller.starts >= 8  # one start, and one after each of the 7 milestones
    events = rollout.events()
    created = [m for r, m in events if r == "NewReplicaSetCreated"]
    assert len(created) == 2, created
