"""`pyrollouts controller --metrics-addr / --health-addr` (host:port) beside the older --metrics-port /
--health-port: where /metrics and /healthz are served, and one clear line when the address is taken."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, runs_own_controllers]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 someone else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def controller(cluster: Cluster, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollouts.main", "controller", "--kubeconfig", str(cluster.kubeconfig), *flags],
        capture_output=True,
        text=True,
        env=cluster.env,
        cwd=REPO,
        timeout=60,
    )


def get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_metrics_and_health_on_the_given_addresses(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    metrics_port, health_port = free_port(), free_port()
    proc = ControllerProcess(
        cluster.kubeconfig,
        cluster.env,
        tmp_path_factory.mktemp("listen"),
        listen=["--metrics-addr", f"127.0.0.1:{metrics_port}", "--health-addr", f"127.0.0.1:{health_port}"],
    ).start()
    try:
        assert cluster.wait("/healthz", lambda: get(health_port, "/healthz")) == "ok\n"
        text = cluster.wait("/metrics", lambda: get(metrics_port, "/metrics"))
        assert 'workqueue_depth{name="Rollouts"}' in text
    finally:
        proc.stop()


@pytest.mark.parametrize("flag", ["--metrics-addr", "--health-addr"])
def test_an_address_in_use_is_one_line_naming_the_flag(cluster: Cluster, taken_port: int, flag: str) -> None:
    other = "--health-addr" if flag == "--metrics-addr" else "--metrics-addr"
    result = controller(cluster, flag, f"127.0.0.1:{taken_port}", other, "127.0.0.1:0")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"pyrollouts controller: {flag}: cannot listen on 127.0.0.1:{taken_port}: address already in use"
    assert "Traceback" not in result.stderr


def test_the_port_flags_still_work_and_are_named_too(cluster: Cluster, taken_port: int) -> None:
    result = controller(cluster, "--metrics-port", "0", "--health-port", str(taken_port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"pyrollouts controller: --health-port: cannot listen on 0.0.0.0:{taken_port}: address already in use"
    )
    assert "Traceback" not in result.stderr


def test_addresses_that_are_not_host_port_are_refused(cluster: Cluster) -> None:
    result = controller(cluster, "--metrics-addr", "8090")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pyrollouts controller: '8090' is not host:port (e.g. :8090 or 127.0.0.1:8090), or 0 for off"
    )
    both = controller(cluster, "--metrics-addr", ":8090", "--metrics-port", "8090")
    assert both.returncode == 2
    assert "argument --metrics-port: not allowed with argument --metrics-addr" in both.stderr
