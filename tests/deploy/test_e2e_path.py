"""The `PYROLLOUTS_E2E=1` path of `make e2e-kind` (scripts/e2e-kind.sh), run here against a sandbox started
on its own with `--authorization rbac --tls` in place of kind: deploy/base and tests/e2e's Prometheus applied,
the controller run with the args of deploy/base's rendered Deployment as its ServiceAccount, then a few
scenario files run with PYROLLOUTS_E2E=1 and KUBECONFIG, as the script runs them, served by that controller."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.controller import FORBIDDEN_IN_LOG, ControllerProcess
from tests.fixtures.rbac import with_token
from tests.fixtures.tools import REPO, poll, require_tool

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

#: A handful of scenario files, bounded in time; kind runs the whole folder.
SCENARIOS = ("tests/scenarios/test_bluegreen.py", "tests/scenarios/test_template_validation.py")


def rendered_controller_args(kubectl: str) -> list[str]:
    """The controller container's args in `kubectl kustomize deploy/base`, where the pod serves /metrics and
    /healthz on its ports made loopback and free ones here (`--X-port=N` becomes `--X-addr=127.0.0.1:0`)."""
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "base")], capture_output=True, text=True, check=True
    ).stdout
    [deployment] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["pyrollouts", "controller"]
    return [re.sub(r"^--(metrics|health)-port=\d+$", r"--\1-addr=127.0.0.1:0", a) for a in container["args"]]


@pytest.fixture(scope="module")
def sandbox_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`pyrollouts sandbox --authorization rbac --tls` in its own process; its admin kubeconfig."""
    workdir = tmp_path_factory.mktemp("sandbox")
    kubeconfig = workdir / "kubeconfig"
    args = ["--kubeconfig", str(kubeconfig), "--authorization", "rbac", "--tls", "--ready-after", "0.1"]
    with open(workdir / "sandbox.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rollouts.main", "sandbox", *args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            poll("the sandbox's kubeconfig", lambda: kubeconfig.exists() or proc.poll() is not None, timeout=30)
            assert proc.poll() is None, (workdir / "sandbox.log").read_text()
            yield kubeconfig
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_scenarios_pass_against_deploy_base_as_its_service_account(
    sandbox_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    admin_env = {**os.environ, "KUBECONFIG": str(sandbox_kubeconfig)}

    def admin(*args: str) -> str:
        return subprocess.run([kubectl, *args], capture_output=True, text=True, check=True, env=admin_env).stdout

    admin("apply", "-k", str(REPO / "deploy" / "base"))
    admin("apply", "-f", str(REPO / "tests" / "e2e" / "prometheus.yaml"))  # the script's Prometheus, as kind gets it
    workdir = tmp_path_factory.mktemp("controller")
    token = admin("create", "token", "pyrollouts", "-n", "pyrollouts").strip()
    sa_kubeconfig = with_token(sandbox_kubeconfig, workdir / "kubeconfig", token, "pyrollouts")
    env = {**os.environ, "POD_NAMESPACE": "pyrollouts", "POD_NAME": "pyrollouts-e2e"}
    controller = ControllerProcess(sa_kubeconfig, env, workdir, rendered_controller_args(kubectl), listen=()).start()
    try:

        def leading() -> str:
            assert controller.proc is not None and controller.proc.poll() is None, controller.logs()
            return admin("get", "leases", "-n", "pyrollouts", "-o", "jsonpath={.items[*].spec.holderIdentity}")

        poll("the controller to hold its Lease (--leader-elect)", leading, timeout=30)
        scenario_env = {**admin_env, "PYROLLOUTS_E2E": "1"}
        scenario_env.pop("PYTEST_XDIST_WORKER", None)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SCENARIOS],
            capture_output=True, text=True, env=scenario_env, cwd=REPO, timeout=600,
        )  # fmt: skip
        assert controller.proc is not None and controller.proc.poll() is None, controller.logs()
        logs = controller.logs()
    finally:
        controller.stop()
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
    assert not FORBIDDEN_IN_LOG.search(logs), logs
