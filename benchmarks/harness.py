"""Start a `pyrollouts sandbox` subprocess for a benchmark and stop it afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


@contextmanager
def sandbox_kubeconfig(ready_after: float = 0.2) -> Iterator[tuple[Path, str]]:
    """Yield the kubeconfig and URL of a sandbox running in its own process (so load and server do not
    share a GIL)."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc = subprocess.Popen(
            [sys.executable, "-m", "rollouts.main", "sandbox", "--kubeconfig", str(kubeconfig),
             "--ready-after", str(ready_after)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
        )
        try:
            deadline = time.monotonic() + 30
            while not kubeconfig.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start")
                time.sleep(0.05)
            config = yaml.safe_load(kubeconfig.read_text())
            yield kubeconfig, str(config["clusters"][0]["cluster"]["server"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def sandbox_process(ready_after: float = 0.2) -> Iterator[str]:
    """Yield the URL of a sandbox running in its own process."""
    with sandbox_kubeconfig(ready_after) as (_, server):
        yield server
