"""`pyrollouts sandbox --tls`: HTTPS with a CA of its own, carried by the kubeconfig it writes. kubectl, the
plugin and the controller verify the server against it; a kubeconfig naming another CA is refused, with the
reason, by all three."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.tls import new_certificate_authority
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import running_controller, runs_own_controllers
from tests.fixtures.manifests import rollout_manifest
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import REPO, poll

pytestmark = [pytest.mark.kubectl, runs_own_controllers]

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's cluster: the sandbox serving HTTPS (the scenario fixtures build on it)."""
    workdir = tmp_path_factory.mktemp("tls-sandbox")
    threaded = ThreadedSandbox(kubeconfig_path=workdir / "kubeconfig", default_ready_after=0.2, tls=True).start()
    try:
        yield SandboxHandle(threaded, workdir / "kubeconfig", workdir / "kube-cache")
    finally:
        threaded.stop()


@pytest.fixture(scope="module")
def wrong_ca_env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The cluster's environment with a kubeconfig that trusts a different CA (same subject, other key)."""
    workdir = tmp_path_factory.mktemp("wrong-ca")
    other_ca, _ = new_certificate_authority(workdir, "other")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other_ca.read_bytes()).decode()
    (workdir / "kubeconfig").write_text(yaml.safe_dump(config))
    return {
        **cluster.env,
        "KUBECONFIG": str(workdir / "kubeconfig"),
        "KUBECACHEDIR": str(workdir / "kube-cache"),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }


def plugin(env: dict[str, str], kubectl_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.environ['PATH'])}"
    return subprocess.run(
        [kubectl_bin, "rollouts", *args], capture_output=True, text=True, env={**env, "PATH": path}, timeout=60
    )


def test_the_kubeconfig_carries_the_ca_and_kubectl_verifies_it(cluster: Cluster) -> None:
    entry = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert entry["server"].startswith("https://127.0.0.1:")
    assert base64.b64decode(entry["certificate-authority-data"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert "insecure-skip-tls-verify" not in entry
    names = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/default" in names


def test_the_plugin_lists_rollouts_over_tls(cluster: Cluster) -> None:
    ns = cluster.new_namespace("tls-list")
    cluster.apply(ns, rollout_manifest("listed", replicas=1))
    result = plugin(cluster.env, cluster.kubectl_bin, "list", "rollouts", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["listed"]


def test_the_controller_reconciles_to_healthy_over_tls(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.new_namespace("tls-web")
    cluster.apply(ns, rollout_manifest("web", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}]))
    # Each controller of this module watches its own namespace: the wrong-CA test's must be the only one there.
    with running_controller(cluster.kubeconfig, cluster.env, tmp_path, ["--namespace", ns]) as controller:

        def healthy() -> dict[str, Any]:
            assert controller.proc is not None
            if controller.proc.poll() is not None:
                pytest.fail(f"the controller exited:\n{controller.logs()}")
            return cluster.wait_phase(ns, "web", "Healthy", timeout=0)

        status = cluster.wait("web to be Healthy", healthy, timeout=60)
    assert status["stableRS"] == status["currentPodHash"]
    assert cluster.sizes(ns, "web") == {"nginx:1": 2}


def test_kubectl_refuses_a_server_the_kubeconfig_ca_did_not_sign(
    cluster: Cluster, wrong_ca_env: dict[str, str]
) -> None:
    result = subprocess.run(
        [cluster.kubectl_bin, "get", "namespaces"], capture_output=True, text=True, env=wrong_ca_env, timeout=60
    )
    assert result.returncode != 0
    assert "x509: certificate signed by unknown authority" in result.stderr


def test_the_plugin_names_the_untrusted_certificate(cluster: Cluster, wrong_ca_env: dict[str, str]) -> None:
    result = plugin(wrong_ca_env, cluster.kubectl_bin, "list", "rollouts")
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith(f"Error: cannot verify the API server at {cluster_server(cluster)}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "not signed by the kubeconfig's certificate authority" in message
    assert "Traceback" not in result.stderr


def test_the_controller_refuses_the_server_in_one_line_and_writes_nothing(
    cluster: Cluster, wrong_ca_env: dict[str, str], tmp_path: Path
) -> None:
    ns = cluster.new_namespace("tls-wrong")
    cluster.apply(ns, rollout_manifest("untouched", replicas=1))
    kubeconfig = Path(wrong_ca_env["KUBECONFIG"])
    with running_controller(kubeconfig, wrong_ca_env, tmp_path, ["--namespace", ns]) as proc:
        assert proc.proc is not None
        code = proc.proc.wait(timeout=30)
        logs = proc.logs()
    assert code == 1, logs
    assert logs.strip() == (
        f"pyrollouts controller: cannot verify the API server at {cluster_server(cluster)}: unable to get local "
        "issuer certificate; its TLS certificate is not signed by the kubeconfig's certificate authority "
        "(certificate-authority / certificate-authority-data)"
    )
    assert not cluster.rollout(ns, "untouched").get("status")
    assert not cluster.replicasets(ns, "untouched")


def test_pyrollouts_sandbox_tls_writes_a_verifying_kubeconfig(cluster: Cluster, tmp_path: Path) -> None:
    """The command line: `pyrollouts sandbox --tls` serves HTTPS and its kubeconfig carries the CA."""
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--tls", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        poll("the sandbox to write its kubeconfig", kubeconfig.exists, timeout=30)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "kube-cache")}
        result = subprocess.run(
            [cluster.kubectl_bin, "get", "--raw", "/version"], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"].startswith("https://")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "sandbox API server at https://127.0.0.1:" in output


def cluster_server(cluster: Cluster) -> str:
    server: str = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return server
