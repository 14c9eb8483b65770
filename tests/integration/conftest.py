"""A real Prometheus server for the integration tests (Debian's `prometheus` package).

`start_prometheus(targets=[...], backfill_files=[...], promtool=promtool_binary)` starts one on a free
loopback port, scraping the targets every second and serving the backfilled blocks, and stops it after
the test. The `prometheus_binary` / `promtool_binary` fixtures (tests/conftest.py) skip the test when a
binary is missing, or fail it when PYROLLOUTS_REQUIRE_PROMETHEUS=1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer

StartPrometheus = Callable[..., PrometheusServer]


def _starter(binary: str, workdir: Path, servers: list[PrometheusServer]) -> StartPrometheus:
    def start(
        targets: Sequence[str] = (), backfill_files: Sequence[Path] = (), **options: Any
    ) -> PrometheusServer:
        server = PrometheusServer(
            workdir / f"prometheus-{len(servers)}",
            targets=targets,
            binary=binary,
            backfill_files=backfill_files,
            **options,
        )
        servers.append(server)
        return server.start()

    return start


@pytest.fixture
def start_prometheus(prometheus_binary: str, tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start Prometheus servers for one test; all are stopped (SIGTERM, then SIGKILL) afterwards."""
    servers: list[PrometheusServer] = []
    try:
        yield _starter(prometheus_binary, tmp_path, servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def start_module_prometheus(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartPrometheus]:
    """The same, shared by a module's tests (a scraping Prometheus needs ~5 s before its first scrape)."""
    servers: list[PrometheusServer] = []
    try:
        yield _starter(prometheus_binary, tmp_path_factory.mktemp("prometheus"), servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def traffic_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    """A sandbox sending 600 simulated requests/s to each Service, its /metrics at `.metrics_url`."""
    workdir = tmp_path_factory.mktemp("traffic-sandbox")
    with ThreadedSandbox(workdir / "kubeconfig", default_ready_after=0.1, traffic_rps=600, metrics_port=0) as sb:
        yield sb
