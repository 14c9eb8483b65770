"""Scenario fixtures: a cluster (the sandbox, or KUBECONFIG with PYROLLOUTS_E2E=1) with our CRDs, and the
controller running as a subprocess (with PYROLLOUTS_E2E=1: the cluster's own, installed from deploy/base)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller
from tests.fixtures.tools import REPO


def in_cluster_controller() -> bool:
    """PYROLLOUTS_E2E=1: the cluster at KUBECONFIG runs the controller (`make e2e-kind`)."""
    return os.environ.get("PYROLLOUTS_E2E") == "1"


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    kubectl = request.getfixturevalue("kubectl")  # skips (or fails, in CI) without kubectl
    if in_cluster_controller():
        kubeconfig = Path(os.environ["KUBECONFIG"])
        env = dict(os.environ)
    else:
        handle = request.getfixturevalue("sandbox")
        kubeconfig, env = handle.kubeconfig, handle.env()
    c = Cluster(kubeconfig, kubectl.binary, env)
    c.kubectl("apply", "-f", str(REPO / "crds"))
    c.wait(
        "the Rollout CRD to be served",
        lambda: c.kubectl("get", "rollouts", "-A", check=False).returncode == 0,
        timeout=30,
    )
    return c


@pytest.fixture(scope="module")
def controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess | None]:
    """The controller serving the scenarios: a subprocess, or None when the cluster runs its own (a second
    controller without the Lease would act on the same Rollouts)."""
    if in_cluster_controller():
        yield None
        return
    log_dir = tmp_path_factory.mktemp("controller")
    with running_controller(cluster.kubeconfig, cluster.env, log_dir, kill_at_end=True) as proc:
        yield proc
