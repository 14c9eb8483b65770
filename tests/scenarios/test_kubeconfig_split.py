"""A kubeconfig split over two files, as kubectl accepts it: KUBECONFIG=a.yaml:b.yaml with the cluster and
the user in a.yaml and the context (and current-context) in b.yaml. The plugin and the controller load
it with the same loader, merged as kubectl merges it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.manifests import rollout_manifest

pytestmark = [pytest.mark.kubectl, runs_own_controllers]

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def split_kubeconfig(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """KUBECONFIG for the cluster with its kubeconfig split in two, and the namespace its context names."""
    flat = yaml.safe_load(cluster.kubectl("config", "view", "--raw", "--flatten", "--minify").stdout)
    namespace = cluster.new_namespace("split")
    for entry in flat["contexts"]:
        entry["context"]["namespace"] = namespace
    workdir = tmp_path_factory.mktemp("split-kubeconfig")
    a, b = workdir / "a.yaml", workdir / "b.yaml"
    header = {"apiVersion": "v1", "kind": "Config"}
    a.write_text(yaml.safe_dump({**header, "clusters": flat["clusters"], "users": flat["users"]}))
    b.write_text(
        yaml.safe_dump({**header, "contexts": flat["contexts"], "current-context": flat["current-context"]})
    )
    return os.pathsep.join((str(a), str(b))), namespace


@pytest.fixture(scope="module")
def split_env(cluster: Cluster, split_kubeconfig: tuple[str, str]) -> dict[str, str]:
    return {**cluster.env, "KUBECONFIG": split_kubeconfig[0], "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def split_controller(
    split_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(None, split_env, tmp_path_factory.mktemp("controller")).start()
    try:
        yield proc
    finally:
        proc.stop()
        if os.environ.get("PYROLLOUTS_SHOW_CONTROLLER_LOGS") == "1":
            print(proc.logs())


def test_plugin_lists_rollouts_of_the_contexts_namespace(
    cluster: Cluster, split_kubeconfig: tuple[str, str], split_env: dict[str, str]
) -> None:
    _, namespace = split_kubeconfig
    cluster.apply(namespace, rollout_manifest("listed", replicas=1))
    result = subprocess.run(
        [cluster.kubectl_bin, "rollouts", "list", "rollouts"], capture_output=True, text=True, env=split_env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["listed"]


def test_controller_reconciles_to_healthy(
    cluster: Cluster, split_kubeconfig: tuple[str, str], split_controller: ControllerProcess
) -> None:
    _, namespace = split_kubeconfig
    cluster.apply(namespace, rollout_manifest("web", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}]))

    def healthy() -> dict[str, Any]:
        assert split_controller.proc is not None
        if split_controller.proc.poll() is not None:
            pytest.fail(f"the controller exited:\n{split_controller.logs()}")
        return cluster.wait_phase(namespace, "web", "Healthy", timeout=0)

    status = cluster.wait("web to be Healthy", healthy, timeout=60)
    assert status["stableRS"] == status["currentPodHash"]
    assert cluster.sizes(namespace, "web") == {"nginx:1": 2}
