"""`kubectl rollouts …` for scenario tests: kubectl finds `kubectl-rollouts` on PATH (the venv's bin first)
and runs it against the scenario cluster. Nothing here imports the plugin or the controller."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.cluster import REPO, Cluster

VENV_BIN = (
    REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "kubectl-rollouts").exists() else Path(sys.executable).parent
)


class Plugin:
    """Runs `kubectl rollouts ARGS` through kubectl's plugin mechanism against `cluster`."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        path = cluster.env.get("PATH", os.environ.get("PATH", ""))
        self.env = {**cluster.env, "PATH": f"{VENV_BIN}{os.pathsep}{path}", "TERM": "dumb"}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.cluster.kubectl_bin, "rollouts", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.cluster.kubectl_bin, "rollouts", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def ok(self, *args: str, timeout: float = 60) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, (
            f"kubectl rollouts {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result.stdout


def squeeze(line: str) -> str:
    """A table row with runs of blanks made one blank, trailing blanks removed."""
    return re.sub(r"\s+", " ", line).strip()


def header_and_tree(text: str) -> tuple[list[str], list[str]]:
    """`get rollout` output split into its header lines and its (squeezed) tree rows."""
    header, _, tree = text.partition("\n\n")
    return header.splitlines(), [squeeze(line) for line in tree.splitlines() if line.strip()]
