"""Helpers shared by the test folders (imported as `support`; pytest puts tests/ on sys.path).

When PYROLLOUTS_REQUIRE_KUBECTL=1 / PYROLLOUTS_REQUIRE_PROMETHEUS=1 (as in CI), a missing tool fails
the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class Kubectl:
    binary: str
    handle: SandboxHandle

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args], input=input, capture_output=True, text=True, env=self.handle.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


def sandbox_replicaset(name: str, app: str, version: str, replicas: int, **annotations: str) -> dict[str, Any]:
    """A ReplicaSet of the sandbox, its pod template annotated `sandbox.pyrollouts.io/<key>` (`_` -> `-`)."""
    labels = {"app": app, "rollouts-pod-template-hash": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {f"sandbox.pyrollouts.io/{k.replace('_', '-')}": v for k, v in annotations.items()},
                },
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
