"""`pyrollouts sandbox` as a user runs it: a foreground process that writes a kubeconfig once the API
answers, serves kubectl, and exits 0 promptly on SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fixtures.tools import REPO, deadline_after, load_factor, require_tool


def _start(kubeconfig: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--kubeconfig", str(kubeconfig), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_file(proc: subprocess.Popen[str], path: Path, timeout: float = 20.0) -> str:
    deadline = deadline_after(timeout)
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"sandbox exited with {proc.returncode}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} not written within {timeout}s")
        time.sleep(0.05)
    config = yaml.safe_load(path.read_text())
    server: str = config["clusters"][0]["cluster"]["server"]
    return server


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5 * load_factor(), "the sandbox took too long to stop"
    return proc.returncode, out, err


@pytest.mark.kubectl
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sandbox_command_serves_kubectl_and_stops_on_signal(
    tmp_path: Path, processes: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    kubeconfig = tmp_path / "tmp" / "kc"
    proc = _start(kubeconfig)
    processes.append(proc)
    server = _wait_for_file(proc, kubeconfig)
    # Written only once the API answers: the very first request succeeds.
    assert httpx.get(f"{server}/version", timeout=5).json()["gitVersion"].startswith("v1.")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
    got = subprocess.run([kubectl, "get", "namespaces", "-o", "name"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["namespace/default", "namespace/kube-system"]
    created = subprocess.run([kubectl, "apply", "-f", str(REPO / "crds" / "rollouts.yaml")], env=env,
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    # An open watch must not keep the server from stopping.
    watch = subprocess.Popen([kubectl, "get", "pods", "-w"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        code, out, err = _stop(proc, sig)
    finally:
        watch.kill()
        watch.wait(timeout=10)
    assert code == 0, err
    assert f"kubeconfig written to {kubeconfig}" in out
    assert "sandbox stopping" in out
    assert "Traceback" not in err


def test_sandbox_command_uses_the_requested_port(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kc"
    proc = _start(kubeconfig, "--port", str(port))
    processes.append(proc)
    assert _wait_for_file(proc, kubeconfig) == f"http://127.0.0.1:{port}"
    assert httpx.get(f"http://127.0.0.1:{port}/api", timeout=5).json()["kind"] == "APIVersions"

    # A second sandbox on the same port fails clearly and writes no kubeconfig.
    other = tmp_path / "other-kc"
    clash = _start(other, "--port", str(port))
    processes.append(clash)
    _out, err = clash.communicate(timeout=20)
    assert clash.returncode != 0
    assert str(port) in err and "Traceback" not in err
    assert not other.exists()
    code, _out, _err = _stop(proc, signal.SIGTERM)
    assert code == 0
