"""The overlays applied to the RBAC sandbox: deploy/namespaced runs a canary in its own namespace, with no
403 and no hand on other namespaces; deploy/monitoring installs next to the Prometheus Operator's CRDs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.test_install_rbac import deployment_flags
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import FORBIDDEN_IN_LOG, running_controller
from tests.fixtures.manifests import READY_AFTER, rollout_manifest
from tests.fixtures.rbac import rbac_sandbox_handle, with_token
from tests.fixtures.rollout import Namespace
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import REPO, require_tool

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

FAST = {READY_AFTER: "0.1s"}


@pytest.fixture
def rbac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHandle, Cluster]]:
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    with rbac_sandbox_handle(tmp_path_factory.mktemp("rbac"), ready_after=0.1) as handle:
        yield handle, Cluster(handle.kubeconfig, kubectl, handle.env())


def namespaced_flags(namespace: str) -> list[str]:
    """deploy/namespaced's controller flags, with `$(POD_NAMESPACE)` expanded as the kubelet does."""
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "namespaced")], capture_output=True, text=True, check=True
    ).stdout
    [deployment] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    extra = [a.replace("$(POD_NAMESPACE)", namespace) for a in args if a.startswith("--namespace")]
    return [*deployment_flags(), *extra]


def test_namespaced_install_serves_its_namespace_only(
    rbac: tuple[SandboxHandle, Cluster], tmp_path_factory: pytest.TempPathFactory
) -> None:
    handle, cluster = rbac
    cluster.kubectl("apply", "-k", str(REPO / "deploy" / "namespaced"))
    workdir = tmp_path_factory.mktemp("controller")
    token = cluster.kubectl("create", "token", "pyrollouts", "-n", "pyrollouts").stdout.strip()
    kubeconfig = with_token(handle.kubeconfig, workdir / "kubeconfig", token, "pyrollouts")
    env = {**os.environ, "POD_NAMESPACE": "pyrollouts", "POD_NAME": "pyrollouts-test"}
    cluster.kubectl("create", "namespace", "elsewhere")
    manifest: dict[str, Any] = rollout_manifest("web", 2, [{"setWeight": 50}, {"pause": {}}], annotations=FAST)
    with running_controller(kubeconfig, env, workdir, namespaced_flags("pyrollouts")) as controller:
        mine = Namespace(cluster, "pyrollouts").rollout(manifest)
        mine.apply().wait_healthy(timeout=30)
        mine.set_image("nginx:2").wait_paused(timeout=30)
        mine.promote().wait_healthy(timeout=30)
        other = Namespace(cluster, "elsewhere").rollout(manifest)
        other.apply()
        mine.set_image("nginx:3").wait_paused(timeout=30)  # served meanwhile: the other one was seen
        assert other.replicasets() == [] and "phase" not in other.status
        assert handle.threaded.sandbox is not None and handle.threaded.sandbox.api.denial_count == 0
        logs = controller.logs()
    assert not FORBIDDEN_IN_LOG.search(logs), logs


def test_monitoring_overlay_applies_next_to_the_operators_crds(rbac: tuple[SandboxHandle, Cluster]) -> None:
    _, cluster = rbac
    cluster.kubectl("apply", "-f", str(REPO / "examples" / "crds" / "prometheus-operator.yaml"))
    cluster.wait(
        "the ServiceMonitor kind to be served",
        lambda: cluster.kubectl("get", "servicemonitors", "-A", check=False).returncode == 0,
        timeout=30,
    )
    cluster.kubectl("apply", "-k", str(REPO / "deploy" / "monitoring"))
    names = cluster.kubectl("get", "servicemonitors,prometheusrules", "-n", "pyrollouts", "-o", "name").stdout.split()
    assert names == [
        "servicemonitor.monitoring.coreos.com/pyrollouts",
        "prometheusrule.monitoring.coreos.com/pyrollouts",
    ]
