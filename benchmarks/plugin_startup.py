"""The plugin's start-up: `kubectl rollouts version --client` (no cluster) and `version`, and
`kubectl rollouts get rollout` against `kubectl get rollout` on an idle sandbox (its own process).

    .venv/bin/python -m benchmarks.plugin_startup [--runs 15]

Each figure is the median wall time of `--runs` runs of the whole command (interpreter start included),
after one unmeasured run; the goals (issue 18): `version --client` under 300 ms, `get rollout` at most
3x `kubectl get rollout`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import sandbox_kubeconfig
from rollouts import schema

ROLLOUT = {
    "apiVersion": "pyrollouts.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
    },
}


def median_seconds(command: Sequence[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """The median wall time and the median CPU time (user + system; less sensitive to other load) of
    `command` (which must succeed), after one warm-up run."""
    walls, cpus = [], []
    for attempt in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if attempt:
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH")
    bin_dir = Path(sys.executable).parent
    plugin = str(bin_dir / "kubectl-rollouts")
    with sandbox_kubeconfig() as (kubeconfig, _server), tempfile.TemporaryDirectory() as pycache:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        # An installed plugin runs from bytecode pip compiled; a development checkout (editable install)
        # with PYTHONDONTWRITEBYTECODE would compile every module on every run. The warm-up run writes it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
        for crd in schema.load_crds():
            subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(crd), text=True, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(ROLLOUT), text=True, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        results = {
            "kubectl-rollouts version --client": median_seconds([plugin, "version", "--client"], env, args.runs),
            "kubectl-rollouts version": median_seconds([plugin, "version"], env, args.runs),
            "kubectl rollouts get rollout web": median_seconds([kubectl, "rollouts", "get", "rollout", "web"], env,
                                                               args.runs),
            "kubectl get rollout web": median_seconds([kubectl, "get", "rollout", "web"], env, args.runs),
        }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {load}, median of {args.runs} runs")
    print(f"{'command':40s} {'wall':>9s} {'CPU':>9s}")
    for name, (wall, cpu) in results.items():
        print(f"{name:40s} {wall * 1000:6.0f} ms {cpu * 1000:6.0f} ms")
    plugin_get, kubectl_get = results["kubectl rollouts get rollout web"], results["kubectl get rollout web"]
    wall_ratio, cpu_ratio = plugin_get[0] / kubectl_get[0], plugin_get[1] / kubectl_get[1]
    print(f"{'get rollout: plugin / kubectl':40s} {wall_ratio:8.2f}x {cpu_ratio:8.2f}x")


if __name__ == "__main__":
    main()
