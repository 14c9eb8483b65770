"""Shared fixtures: a sandbox cluster per test module, and real-tool helpers that skip or fail.

When PYROLLOUTS_REQUIRE_KUBECTL=1 / PYROLLOUTS_REQUIRE_PROMETHEUS=1 / PYROLLOUTS_REQUIRE_GRAPHITE=1 (as in
CI), a missing tool fails the test instead of skipping it. The helpers themselves live in `tests/fixtures/`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from tests.fixtures.ordering import file_order
from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import require_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first, whole files kept together (tests/fixtures/ordering.py). With `--dist loadfile`
    (and xdist's reordering by test count turned off in pyproject's addopts) a worker that frees up takes
    the next file in this order, so the run ends on short unit-test files rather than on a crash scenario
    that started late."""
    order = file_order([(item.nodeid, {mark.name for mark in item.iter_markers()}) for item in items])
    items[:] = [items[i] for i in order]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A fresh sandbox cluster on a free loopback port, stopped after the module's tests."""
    workdir = tmp_path_factory.mktemp("sandbox")
    threaded = ThreadedSandbox(kubeconfig_path=workdir / "kubeconfig", default_ready_after=0.05).start()
    try:
        yield SandboxHandle(threaded, workdir / "kubeconfig", workdir / "kube-cache")
    finally:
        threaded.stop()


@pytest.fixture(scope="module")
def kubectl(sandbox: SandboxHandle) -> Kubectl:
    return Kubectl(require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL"), sandbox)


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Debian's prometheus (tests/integration start it through rollouts.sandbox.prometheus)."""
    return require_tool("prometheus", "PYROLLOUTS_REQUIRE_PROMETHEUS")


@pytest.fixture(scope="session")
def promtool_binary() -> str:
    return require_tool("promtool", "PYROLLOUTS_REQUIRE_PROMETHEUS")


@pytest.fixture(scope="session")
def carbon_cache_binary() -> str:
    """Debian's graphite-carbon (with graphite-web: tests/fixtures/graphite.py starts both)."""
    require_tool("graphite-manage", "PYROLLOUTS_REQUIRE_GRAPHITE")  # graphite-web, whose render API we query
    return require_tool("carbon-cache", "PYROLLOUTS_REQUIRE_GRAPHITE")
