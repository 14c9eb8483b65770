"""Sharding as Argo's `--instance-id`: a controller with an id handles only the Rollouts and AnalysisRuns labelled
`pyrollouts.io/controller-instance-id: <id>`, one without an id only the unlabelled ones, and each id
elects its own leader on its own Lease."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.manifests import GROUP, VERSION, rollout_manifest
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.scenarios.test_leader_election import LEASE, holder, identity

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

INSTANCE_ID = "pyrollouts.io/controller-instance-id"


@contextmanager
def shard(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, ns: str, instance_id: str | None
) -> Iterator[ControllerProcess]:
    flags = ["--leader-elect", "--leader-election-namespace", ns, "--namespace", ns]
    proc = ControllerProcess(
        cluster.kubeconfig,
        cluster.env,
        tmp_path_factory.mktemp(f"shard-{instance_id or 'none'}"),
        extra=[*flags, *(["--instance-id", instance_id] if instance_id else [])],
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def labelled(namespace: Namespace, name: str, instance_id: str | None) -> RolloutHandle:
    labels = {INSTANCE_ID: instance_id} if instance_id else {}
    manifest = rollout_manifest(name, replicas=2, metadata={"labels": labels})
    return namespace.rollout(manifest).apply()


def analysis_run(namespace: Namespace, name: str, instance_id: str | None) -> None:
    """A run of one Web metric (its endpoint refuses connections: any controller that takes the run
    writes its status, whatever the measurement)."""
    metric = {"name": "up", "provider": {"web": {"url": "http://127.0.0.1:9/", "jsonPath": "{$.ok}"}}}
    labels = {INSTANCE_ID: instance_id} if instance_id else {}
    namespace.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AnalysisRun",
            "metadata": {"name": name, "labels": labels},
            "spec": {"metrics": [metric]},
        }
    )


def run_status(namespace: Namespace, name: str) -> dict[str, Any]:
    run = namespace.custom_object(GROUP, VERSION, "analysisruns", name) or {}
    status: dict[str, Any] = run.get("status") or {}
    return status


def untouched(rollout: RolloutHandle) -> None:
    assert not rollout.live().get("status"), f"{rollout.name} was reconciled by another shard"
    assert not rollout.replicasets()


def test_two_instances_each_progress_only_their_own_rollout(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = given(cluster, "shards")
    ns = namespace.name
    blue, green = labelled(namespace, "blue", "blue"), labelled(namespace, "green", "green")
    for run in ("blue", "green", "plain"):
        analysis_run(namespace, f"run-{run}", None if run == "plain" else run)

    def other_shards_untouched() -> None:
        untouched(green)
        assert run_status(namespace, "run-green") == {} and run_status(namespace, "run-plain") == {}

    with shard(cluster, tmp_path_factory, ns, "blue") as blue_controller:
        blue.wait_healthy(timeout=30)
        cluster.wait("the blue run to be measured", lambda: run_status(namespace, "run-blue").get("phase"))
        green.expect_throughout(2.0, other_shards_untouched)
        with shard(cluster, tmp_path_factory, ns, "green") as green_controller:
            green.wait_healthy(timeout=30)
            cluster.wait("the green run to be measured", lambda: run_status(namespace, "run-green").get("phase"))
            assert run_status(namespace, "run-plain") == {}
            plain = labelled(namespace, "plain", None)
            plain.expect_throughout(2.0, lambda: untouched(plain))
            # One Lease per instance id, each held by its own controller.
            assert holder(cluster, ns, f"{LEASE}-blue") == identity(blue_controller)
            assert holder(cluster, ns, f"{LEASE}-green") == identity(green_controller)
            assert holder(cluster, ns, LEASE) == ""
            # Each keeps to its shard while the other's Rollout changes.
            blue.set_image("nginx:2").wait_healthy(timeout=30)
            assert green.sizes() == {"nginx:1": 2}
        with shard(cluster, tmp_path_factory, ns, None):
            plain.wait_healthy(timeout=30)
            cluster.wait("the unlabelled run to be measured", lambda: run_status(namespace, "run-plain").get("phase"))
    assert blue.sizes() == {"nginx:2": 2} and green.sizes() == {"nginx:1": 2}
