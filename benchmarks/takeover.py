"""Leader election takeover on the sandbox (not a test; run it by hand):

    .venv/bin/python -m benchmarks.takeover [--kills 20] [--terms 10]

Three `pyrollouts controller --leader-elect` subprocesses with client-go's default timing (lease 15 s,
renew deadline 10 s, retry 2 s). Each round finds the holder of the Lease, kills it (SIGKILL, or SIGTERM
for a hand-over), and polls the Lease every 20 ms until another candidate holds it; the killed candidate
is started again so that three are always running. Prints median and max per signal.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx

from benchmarks.harness import sandbox_kubeconfig

REPO = Path(__file__).resolve().parents[1]
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/default/leases/pyrollouts-controller-lock"


class Candidate:
    """One controller subprocess in the election, logging to its own file."""

    def __init__(self, kubeconfig: Path, log_dir: Path, index: int) -> None:
        self.kubeconfig, self.log_dir, self.index = kubeconfig, log_dir, index
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / "unused"
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"candidate-{self.index}-{self.starts}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in reap()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rollouts.main", "controller", "--kubeconfig", str(self.kubeconfig),
             "--leader-elect", "--leader-election-namespace", "default", "--metrics-port", "0", "--health-port", "0"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ}, cwd=REPO,
        )

    def identity(self) -> str | None:
        found = re.search(r"leader election: (\S+) on Lease", self.log_path.read_text(errors="replace"))
        return found.group(1) if found else None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def reap(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_for(what: str, check: object, timeout: float, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check() if callable(check) else None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def holder(http: httpx.Client) -> str:
    resp = http.get(LEASE_PATH)
    return str(resp.json()["spec"].get("holderIdentity") or "") if resp.status_code == 200 else ""


def one_round(http: httpx.Client, candidates: list[Candidate], sig: int) -> float:
    """Kill the holder with `sig`; seconds until another candidate holds the Lease."""
    for c in candidates:
        wait_for("every candidate to join the election", c.identity, timeout=60)
    ids = {c.identity(): c for c in candidates}
    current = str(wait_for("a holder", lambda: (h := holder(http)) in ids and h, timeout=60))
    victim = ids[current]
    victim.signal(sig)
    killed = time.monotonic()
    wait_for("another holder", lambda: (h := holder(http)) in ids and h != current, timeout=60)
    took = time.monotonic() - killed
    victim.reap()
    victim.start()
    return took


@contextmanager
def election(kubeconfig: Path) -> Iterator[list[Candidate]]:
    with tempfile.TemporaryDirectory() as logs, ExitStack() as stack:
        candidates = [Candidate(kubeconfig, Path(logs), i) for i in range(3)]
        for c in candidates:
            stack.callback(c.reap)
            c.start()
        yield candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILL rounds (default 20)")
    parser.add_argument("--terms", type=int, default=10, help="SIGTERM rounds (default 10)")
    args = parser.parse_args()
    with sandbox_kubeconfig() as (kubeconfig, server):
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        subprocess.run(["kubectl", "apply", "-f", str(REPO / "crds")], check=True, env=env, capture_output=True)
        with httpx.Client(base_url=server, timeout=10) as http, election(kubeconfig) as candidates:
            rounds = [("SIGKILL", signal.SIGKILL, args.kills), ("SIGTERM", signal.SIGTERM, args.terms)]
            results: dict[str, list[float]] = {}
            for name, sig, count in rounds:
                for i in range(count):
                    took = one_round(http, candidates, sig)
                    results.setdefault(name, []).append(took)
                    print(f"{name} {i + 1}/{count}: another controller holds the Lease after {took:.2f} s", flush=True)
    print("\n| holder stopped by | rounds | median | max |\n|---|---|---|---|")
    for name, times in results.items():
        print(f"| {name} | {len(times)} | {statistics.median(times):.2f} s | {max(times):.2f} s |")


if __name__ == "__main__":
    main()
