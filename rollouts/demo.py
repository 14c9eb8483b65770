"""`pyrollouts demo` (what `make demo` runs): a sandbox cluster with simulated traffic, a real
Prometheus scraping it every second, and the controller; a canary with an error-rate analysis step
is rolled out twice: a bad version (20% errors) that the analysis aborts, then a good one that is
promoted. Everything it starts is stopped at the end."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rollouts import schema
from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer, find_binary

DEMO_DIR = Path(".demo")
NAMESPACE = "default"
NAME = "demo"
GOOD_IMAGE, BAD_IMAGE = "demo-app:1.1", "demo-app:1.2-broken"
RO_PATH = f"/apis/pyrollouts.io/v1alpha1/namespaces/{NAMESPACE}/rollouts"

ANALYSIS_TEMPLATE: dict[str, Any] = {
    "apiVersion": "pyrollouts.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "error-rate"},
    "spec": {
        "args": [{"name": "canary-hash"}],
        "metrics": [
            {
                "name": "error-rate",
                "initialDelay": "5s",
                "interval": "4s",
                "count": 3,
                "failureLimit": 0,
                # No data yet is not a failure: the next measurement decides.
                "successCondition": "len(result) == 0 || result[0] <= 0.05",
                "provider": {
                    "prometheus": {
                        "query": (
                            'sum(rate(http_requests_total{service="demo",rollouts_pod_template_hash='
                            '"{{args.canary-hash}}",code=~"5.."}[10s])) / sum(rate(http_requests_total'
                            '{service="demo",rollouts_pod_template_hash="{{args.canary-hash}}"}[10s]))'
                        )
                    }
                },
            }
        ],
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": NAME},
    "spec": {"selector": {"app": NAME}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
}


def rollout(image: str, error_rate: float) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {
                    "labels": {"app": NAME},
                    "annotations": {
                        "sandbox.pyrollouts.io/ready-after": "1s",
                        "sandbox.pyrollouts.io/error-rate": str(error_rate),
                        "sandbox.pyrollouts.io/latency-ms": "40",
                    },
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 25},
                        {"pause": {"duration": "3s"}},
                        {
                            "analysis": {
                                "templates": [{"templateName": "error-rate"}],
                                "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
                            }
                        },
                        {"setWeight": 50},
                        {"pause": {"duration": "3s"}},
                        {"setWeight": 75},
                        {"pause": {"duration": "3s"}},
                    ]
                }
            },
        },
    }


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kubeconfig = (DEMO_DIR / "kubeconfig").resolve()
        self.bin_dir = Path(sys.executable).parent
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{self.bin_dir}:{os.environ['PATH']}"}
        self.controller: subprocess.Popen[bytes] | None = None

    def plugin(self, *args: str) -> None:
        """Show what an operator would see: `kubectl rollouts ...` (the plugin binary itself)."""
        print(f"$ kubectl rollouts {' '.join(args)}", flush=True)
        subprocess.run([str(self.bin_dir / "kubectl-rollouts"), *args], env=self.env, check=False, timeout=60)

    def start_controller(self, prometheus_url: str) -> None:
        log = (self.workdir / "controller.log").open("wb")
        self.controller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rollouts.main",
                "controller",
                "--kubeconfig",
                str(self.kubeconfig),
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            env={**self.env, "PYROLLOUTS_PROMETHEUS_ADDRESS": prometheus_url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop_controller(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            try:
                self.controller.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.controller.kill()


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {timeout:.0f}s for {what}")
        time.sleep(0.5)


def _ensure_prometheus() -> str:
    """Debian's prometheus: installed when missing and we are root, else a clear message."""
    binary = find_binary("prometheus")
    if binary is not None:
        return binary
    if os.geteuid() != 0:
        raise SystemExit("the demo needs Prometheus: install Debian's package (sudo apt-get install -y prometheus)")
    print("installing Debian's prometheus package (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "prometheus"], check=True, env=env, stdout=subprocess.DEVNULL)
    binary = find_binary("prometheus")
    if binary is None:
        raise SystemExit("apt-get installed prometheus but no prometheus binary is on PATH")
    return binary


def _status(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"{RO_PATH}/{NAME}")
    response.raise_for_status()
    status: dict[str, Any] = response.json().get("status") or {}
    return status


def _apply(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    response = client.post(path, json=body)
    if response.status_code == 409:
        current = client.get(f"{path}/{name}").json()
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        response = client.put(f"{path}/{name}", json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"applying {body['kind']} {name} failed: {response.text}")


def _failed_runs(client: httpx.Client) -> list[str]:
    response = client.get(f"/apis/pyrollouts.io/v1alpha1/namespaces/{NAMESPACE}/analysisruns")
    response.raise_for_status()
    return [
        run["metadata"]["name"]
        for run in response.json().get("items") or []
        if (run.get("status") or {}).get("phase") in ("Failed", "Error")
    ]


def _phase(status: dict[str, Any]) -> str:
    return f"{status.get('phase')}: {status.get('message') or ''}".rstrip(": ")


def run_demo(keep_running: bool = False) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    prometheus_binary = _ensure_prometheus()
    DEMO_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyrollouts-demo-") as tmp:
        workdir = Path(tmp)
        demo = Demo(workdir)
        with ThreadedSandbox(kubeconfig_path=demo.kubeconfig, traffic_rps=200, metrics_port=0) as sandbox:
            say(
                f"sandbox cluster at {sandbox.url} (kubeconfig {demo.kubeconfig}); "
                f"simulated traffic metrics at {sandbox.metrics_url}"
            )
            assert sandbox.metrics_url is not None
            prometheus = PrometheusServer(
                workdir / "prometheus", targets=[sandbox.metrics_url], binary=prometheus_binary
            ).start()
            try:
                say(f"Prometheus {prometheus.url} scrapes the sandbox every second")
                with httpx.Client(base_url=sandbox.url, timeout=10) as client:
                    for crd in schema.load_crds():
                        _apply(client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                    demo.start_controller(prometheus.url)
                    say(
                        "controller started; applying an AnalysisTemplate on the canary's error rate, "
                        f"a Service and the Rollout '{NAME}' ({GOOD_IMAGE}, 4 replicas)"
                    )
                    _apply(
                        client,
                        f"/apis/pyrollouts.io/v1alpha1/namespaces/{NAMESPACE}/analysistemplates",
                        ANALYSIS_TEMPLATE,
                    )
                    _apply(client, f"/api/v1/namespaces/{NAMESPACE}/services", SERVICE)
                    _apply(client, RO_PATH, rollout(GOOD_IMAGE, 0.0))
                    _wait("the first version to be Healthy", lambda: _status(client).get("phase") == "Healthy", 60)
                    demo.plugin("get", "rollout", NAME)

                    say(f"rolling out a bad version: {BAD_IMAGE}, 20% of its requests fail")
                    _apply(client, RO_PATH, rollout(BAD_IMAGE, 0.2))
                    _wait(
                        "the canary to reach its analysis step",
                        lambda: (_status(client).get("currentStepIndex") or 0) >= 2,
                        60,
                    )
                    demo.plugin("get", "rollout", NAME)
                    _wait(
                        "the analysis to abort the bad version", lambda: _status(client).get("phase") == "Degraded", 90
                    )
                    bad_outcome = _phase(_status(client))
                    demo.plugin("get", "rollout", NAME)
                    for run in _failed_runs(client):
                        demo.plugin("get", "analysisrun", run)

                    say(f"rolling out a good version: {GOOD_IMAGE}-fixed, no errors")
                    _apply(client, RO_PATH, rollout(GOOD_IMAGE + "-fixed", 0.0))
                    _wait(
                        "the good version to be promoted",
                        lambda: (
                            _status(client).get("phase") == "Healthy"
                            and (_status(client).get("stableRS") == _status(client).get("currentPodHash"))
                        ),
                        120,
                    )
                    good_outcome = _phase(_status(client))
                    demo.plugin("get", "rollout", NAME)
                    demo.plugin("list", "rollouts")
                say("summary")
                print(f"  bad version  {BAD_IMAGE:<22} -> {bad_outcome}")
                print(f"  good version {GOOD_IMAGE + '-fixed':<22} -> {good_outcome}")
                print(f"  the whole demo took {time.monotonic() - started:.0f}s")
                if keep_running:
                    print(
                        "\nsandbox, Prometheus and controller keep running until Ctrl-C; "
                        f"export KUBECONFIG={demo.kubeconfig}",
                        flush=True,
                    )
                    try:
                        while True:
                            time.sleep(3600)
                    except KeyboardInterrupt:
                        pass
            except (TimeoutError, RuntimeError) as exc:
                print(f"\ndemo failed: {exc}", file=sys.stderr)
                print("controller log (last lines):", file=sys.stderr)
                log = workdir / "controller.log"
                if log.exists():
                    print("\n".join(log.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)
                return 1
            finally:
                demo.stop_controller()
                prometheus.stop()
    print("\ndemo finished; sandbox, Prometheus and controller stopped", flush=True)
    print("\n".join(next_steps(has_kubectl=shutil.which("kubectl") is not None)), flush=True)
    return 0


def next_steps(has_kubectl: bool) -> list[str]:
    """What a reader can do after the tour, each with the command to type."""
    steps = [
        "",
        "== what to try next",
        "  .venv/bin/pyrollouts demo --keep    # the same tour, then the sandbox, Prometheus and controller stay up",
        "  # with --keep, in another terminal (export KUBECONFIG=<the path it prints>, PATH=$PWD/.venv/bin:$PATH):",
        f"  kubectl rollouts get rollout {NAME} --watch",
        f"  kubectl rollouts set image {NAME} '*={GOOD_IMAGE}-next'    # a new canary, measured by the same analysis",
        f"  kubectl rollouts promote {NAME} --full",
        "  your own canary on a sandbox: README.md, \"The controller and a canary walkthrough\"",
    ]
    if not has_kubectl:
        steps.append("  (the kubectl steps need kubectl on PATH: https://kubernetes.io/docs/tasks/tools/)")
    return steps
