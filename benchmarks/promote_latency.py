"""Figures for the controller on the sandbox (not a test; run it by hand):

    .venv/bin/python -m benchmarks.promote_latency [--promotions 100]

1. Time from `promote` (the status patch clearing pauseConditions) to the next step's ReplicaSet
   scale, seen on a watch of the ReplicaSets: median and p99 over N promotions.
2. API requests the controller makes per canary step (from one promote to the next pause), as
   counted by the sandbox at GET /sandbox/requests, minus the benchmark's own single PATCH.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.harness import Watch

REPO = Path(__file__).resolve().parents[1]
NS = "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--promotions", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pyrollouts-bench-"))
    kubeconfig = tmp / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--kubeconfig", str(kubeconfig), "--ready-after", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    controller: subprocess.Popen[bytes] | None = None
    stack = contextlib.ExitStack()
    try:
        while not kubeconfig.exists():
            time.sleep(0.05)
        base = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        subprocess.run(["kubectl", "apply", "-f", str(REPO / "crds")], env=env, check=True, capture_output=True)
        subprocess.run(["kubectl", "create", "namespace", NS], env=env, check=True, capture_output=True)
        time.sleep(0.5)
        steps: list[dict[str, Any]] = []
        for i in range(args.promotions):
            steps += [{"setWeight": 10 if i % 2 == 0 else 20}, {"pause": {}}]
        rollout = {
            "apiVersion": "pyrollouts.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "bench", "namespace": NS},
            "spec": {
                "replicas": args.replicas,
                "selector": {"matchLabels": {"app": "bench"}},
                "template": {
                    "metadata": {"labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
                },
                "strategy": {"canary": {"maxSurge": 1, "maxUnavailable": 0, "steps": steps}},
            },
        }
        http = httpx.Client(base_url=base, timeout=30)
        http.post(f"/apis/pyrollouts.io/v1alpha1/namespaces/{NS}/rollouts", json=rollout).raise_for_status()
        rollouts = Watch(base, f"/apis/pyrollouts.io/v1alpha1/namespaces/{NS}/rollouts")
        rss = Watch(base, f"/apis/apps/v1/namespaces/{NS}/replicasets")
        rollouts.start()
        rss.start()
        log_file = stack.enter_context((tmp / "controller.log").open("wb"))
        controller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rollouts.main",
                "controller",
                "--kubeconfig",
                str(kubeconfig),
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )

        def status(w: Watch) -> dict[str, Any]:
            return dict((w.latest.get("bench") or {}).get("status") or {})

        rollouts.wait(lambda w: status(w).get("phase") == "Healthy", timeout=60)
        http.patch(
            f"/apis/pyrollouts.io/v1alpha1/namespaces/{NS}/rollouts/bench",
            json=[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
            headers={"Content-Type": "application/json-patch+json"},
        ).raise_for_status()

        def paused_at(index: int) -> Any:
            def check(w: Watch) -> bool:
                st = status(w)
                return st.get("currentStepIndex") == index and bool(st.get("pauseConditions"))

            return check

        def settled(w: Watch) -> bool:
            return all(
                (rs.get("status") or {}).get("availableReplicas", 0) == rs["spec"]["replicas"]
                and (rs.get("status") or {}).get("replicas", 0) == rs["spec"]["replicas"]
                for rs in w.latest.values()
            )

        latencies: list[float] = []
        per_step: list[Counter[str]] = []
        for i in range(args.promotions):
            rollouts.wait(paused_at(2 * i + 1), timeout=60)
            rss.wait(settled, timeout=60)
            time.sleep(0.05)
            before = Counter(http.get("/sandbox/requests").json())
            sizes = {n: rs["spec"]["replicas"] for n, rs in rss.latest.items()}
            mark = len(rss.events)
            t0 = time.monotonic()
            http.patch(
                f"/apis/pyrollouts.io/v1alpha1/namespaces/{NS}/rollouts/bench/status",
                json={"status": {"pauseConditions": None}},
                headers={"Content-Type": "application/merge-patch+json"},
            ).raise_for_status()

            def scaled(w: Watch, mark: int = mark, sizes: dict[str, int] = sizes) -> float | None:
                for when, _, obj in w.events[mark:]:
                    name = obj["metadata"]["name"]
                    if name in sizes and obj["spec"]["replicas"] != sizes[name]:
                        return when
                return None

            latencies.append(rss.wait(scaled) - t0)
            if i + 1 < args.promotions:
                rollouts.wait(paused_at(2 * i + 3), timeout=60)
                rss.wait(settled, timeout=60)
                time.sleep(0.2)
                after = Counter(http.get("/sandbox/requests").json())
                delta = after - before
                delta["PATCH /apis/pyrollouts.io/v1alpha1"] -= 1  # our promote
                delta["GET /sandbox/requests"] -= 1
                per_step.append(+delta)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(
            f"promote -> next ReplicaSet scale over {len(latencies)} promotions: "
            f"median {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        totals: Counter[str] = Counter()
        for c in per_step:
            totals.update(c)
        n = len(per_step)
        writes = sum(v for k, v in totals.items() if not k.startswith("GET"))
        reads = sum(v for k, v in totals.items() if k.startswith("GET"))
        print(
            f"API requests per canary step (promote -> next pause, mean over {n} steps): "
            f"{writes / n:.2f} writes, {reads / n:.2f} reads"
        )
        for key, value in sorted(totals.items()):
            print(f"  {key}: {value / n:.2f}")
        return 0
    finally:
        if controller is not None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=20)
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=20)
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
