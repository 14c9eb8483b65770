"""The plugin's start-up: `kubectl rollouts version --client` (no cluster) and `version`, and
`kubectl rollouts get rollout` against `kubectl get rollout` on an idle sandbox (its own process).

    .venv/bin/python -m benchmarks.plugin_startup [--runs 15]

Each figure is the median wall time of `--runs` runs of the whole command (interpreter start included),
after one unmeasured run; the goals (issue 18): `version --client` under 300 ms, `get rollout` at most
3x `kubectl get rollout`. The plugin is measured twice: from this checkout's editable install, and as
users get it, from a wheel pip installs into a fresh virtualenv (no editable-install finder; pip compiles
the bytecode), which finds the other dependencies in this interpreter's environment; the wheel once more
with the kubeconfig written as JSON (read without importing PyYAML: what the YAML parser costs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

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


def installed_plugin_bin(workdir: Path) -> Path:
    """The bin directory of a fresh virtualenv holding pyrollouts installed from a wheel of this checkout."""
    repo = Path(__file__).resolve().parent.parent
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(workdir), str(repo)], check=True)
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel = next(workdir.glob("pyrollouts-*.whl"))
    # pip --python: the scripts' shebang is the new environment's interpreter, as for a user's install.
    install = ["install", "--no-deps", "--ignore-installed", str(wheel)]
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), *install], check=True)
    target = next((venv / "lib").glob("python*/site-packages"))
    # The dependencies come from this environment: a path line, not a site dir, so its .pth files (the
    # editable finder among them) are not run.
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH")
    bin_dir = Path(sys.executable).parent
    plugin = str(bin_dir / "kubectl-rollouts")
    with sandbox_kubeconfig() as (kubeconfig, _server), tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        # An installed plugin runs from bytecode pip compiled; a development checkout (editable install)
        # with PYTHONDONTWRITEBYTECODE would compile every module on every run. The warm-up run writes it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        for crd in schema.load_crds():
            subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(crd), text=True, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(ROLLOUT), text=True, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        installed_bin = installed_plugin_bin(Path(tmp) / "wheel")
        installed_env = {**env, "PATH": f"{installed_bin}{os.pathsep}{os.environ['PATH']}"}
        installed_env.pop("PYTHONPYCACHEPREFIX")
        # The same cluster in a JSON kubeconfig, which the plugin reads without importing PyYAML.
        json_kubeconfig = Path(tmp) / "kubeconfig.json"
        json_kubeconfig.write_text(json.dumps(yaml.safe_load(kubeconfig.read_text()), indent=2))
        json_env = {**installed_env, "KUBECONFIG": str(json_kubeconfig)}
        get = [kubectl, "rollouts", "get", "rollout", "web"]
        results = {
            "kubectl-rollouts version --client": median_seconds([plugin, "version", "--client"], env, args.runs),
            "kubectl-rollouts version": median_seconds([plugin, "version"], env, args.runs),
            "kubectl rollouts get rollout web": median_seconds(get, env, args.runs),
            "  the same, installed from a wheel": median_seconds(get, installed_env, args.runs),
            "  wheel, JSON kubeconfig (no PyYAML)": median_seconds(get, json_env, args.runs),
            # kubectl starts (~30 ms) before it runs the plugin: what the plugin itself takes
            "kubectl-rollouts get rollout web": median_seconds([plugin, *get[2:]], env, args.runs),
            "kubectl get rollout web": median_seconds([kubectl, "get", "rollout", "web"], env, args.runs),
        }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {load}, median of {args.runs} runs")
    print(f"{'command':40s} {'wall':>9s} {'CPU':>9s}")
    for name, (wall, cpu) in results.items():
        print(f"{name:40s} {wall * 1000:6.0f} ms {cpu * 1000:6.0f} ms")
    kubectl_get = results["kubectl get rollout web"]
    variants = (
        ("checkout", "kubectl rollouts get rollout web"),
        ("wheel", "  the same, installed from a wheel"),
        ("wheel, JSON", "  wheel, JSON kubeconfig (no PyYAML)"),
        ("executable", "kubectl-rollouts get rollout web"),
    )
    for label, name in variants:
        wall_ratio, cpu_ratio = results[name][0] / kubectl_get[0], results[name][1] / kubectl_get[1]
        print(f"{'get rollout: plugin (' + label + ') / kubectl':40s} {wall_ratio:8.2f}x {cpu_ratio:8.2f}x")


if __name__ == "__main__":
    main()
