"""Shared fixtures: a sandbox cluster per test module, and real-tool helpers that skip or fail.

When PYROLLOUTS_REQUIRE_KUBECTL=1 / PYROLLOUTS_REQUIRE_PROMETHEUS=1 (as in CI), a missing tool fails
the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rollouts.sandbox.cluster import ThreadedSandbox

REPO = Path(__file__).resolve().parent.parent


def require_tool(name: str, env_flag: str) -> str:
    """Path of a tool; skip when it is missing, or fail when `env_flag` demands it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get(env_flag) == "1":
            pytest.fail(f"{name} is not on PATH but {env_flag}=1 requires the {name} tests to run")
        pytest.skip(f"{name} is not on PATH (set {env_flag}=1 to make this a failure)")
    return path


@dataclass
class SandboxHandle:
    threaded: ThreadedSandbox
    kubeconfig: Path
    cache_dir: Path

    @property
    def url(self) -> str:
        return self.threaded.url

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (kubectl, the plugin, the controller) aimed at this sandbox."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.cache_dir)}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A fresh sandbox cluster on a free loopback port, stopped after the module's tests."""
    workdir = tmp_path_factory.mktemp("sandbox")
    threaded = ThreadedSandbox(kubeconfig_path=workdir / "kubeconfig", default_ready_after=0.2).start()
    try:
        yield SandboxHandle(threaded, workdir / "kubeconfig", workdir / "kube-cache")
    finally:
        threaded.stop()


@dataclass
class Kubectl:
    binary: str
    handle: SandboxHandle

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.binary, *args], input=input, capture_output=True, text=True,
                                env=self.handle.env(), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


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
