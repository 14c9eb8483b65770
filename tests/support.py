"""Helpers shared by the test folders (imported as `tests.support`: tests/ is a package).

When PYROLLOUTS_REQUIRE_KUBECTL=1 / PYROLLOUTS_REQUIRE_PROMETHEUS=1 (as in CI), a missing tool fails
the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest

from rollouts import schema
from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.patches import merge_patch
from rollouts.traffic.router import DesiredTraffic, ObjectRef, Owner, RouterResult

REPO = Path(__file__).resolve().parent.parent
ROLLOUTS_API = "/apis/pyrollouts.io/v1alpha1/namespaces"
T = TypeVar("T")
ROLLOUT_OWNER = Owner("pyrollouts.io/v1alpha1", "Rollout", "web", "uid-1")


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


@contextmanager
def traffic_sandbox_handle(workdir: Path, traffic_rps: int) -> Iterator[SandboxHandle]:
    """A sandbox that also sends `traffic_rps` simulated requests/s through every Service (and serves
    /metrics), for a module's scenarios."""
    threaded = ThreadedSandbox(
        kubeconfig_path=workdir / "kubeconfig", default_ready_after=0.2, traffic_rps=traffic_rps, metrics_port=0
    ).start()
    try:
        yield SandboxHandle(threaded, workdir / "kubeconfig", workdir / "kube-cache")
    finally:
        threaded.stop()


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


def poll(what: str, check: Callable[[], T | Literal[False] | None], timeout: float, interval: float = 0.1) -> T:
    """Poll until `check` returns something truthy; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def json_object(value: object) -> dict[str, Any]:
    """`value` (a decoded JSON answer) as the object it must be."""
    assert isinstance(value, dict), value
    return value


def service_manifest(name: str) -> dict[str, Any]:
    """A Service named `name` selecting the pods `app: <name>`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


@contextmanager
def traffic_sandbox_with_crds(workdir: Path, traffic_rps: int) -> Iterator[ThreadedSandbox]:
    """A sandbox sending `traffic_rps` simulated requests/s to each Service, with the project's CRDs."""
    with ThreadedSandbox(
        workdir / "kubeconfig", default_ready_after=0.1, traffic_rps=traffic_rps, metrics_port=0
    ) as sandbox:
        with httpx.Client(base_url=sandbox.url, timeout=10) as client:
            for crd in schema.load_crds():
                response = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
                assert response.status_code < 300, response.text
        yield sandbox


@contextmanager
def controller_subprocess(kubeconfig: Path, prometheus_url: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The controller (`python -m rollouts.main controller`) using `prometheus_url`, logging to `log_path`;
    stopped with SIGTERM (then SIGKILL) afterwards. PYROLLOUTS_SHOW_CONTROLLER_LOGS=1 prints its log."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
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
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYROLLOUTS_PROMETHEUS_ADDRESS": prometheus_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    if os.environ.get("PYROLLOUTS_SHOW_CONTROLLER_LOGS") == "1":
        print(log_path.read_text(errors="replace"))


class RolloutsApi:
    """The sandbox's API (httpx) in one namespace: create objects, read Rollouts and AnalysisRuns."""

    def __init__(self, client: httpx.Client, ns: str) -> None:
        self.client, self.ns = client, ns

    def create(self, path: str, body: dict[str, Any]) -> None:
        response = self.client.post(path, json=body)
        assert response.status_code < 300, response.text

    def get(self, path: str) -> dict[str, Any]:
        response = self.client.get(path)
        response.raise_for_status()
        obj: dict[str, Any] = response.json()
        return obj

    def rollout(self, name: str) -> dict[str, Any]:
        return self.get(f"{ROLLOUTS_API}/{self.ns}/rollouts/{name}")

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.rollout(name).get("status") or {})

    def wait_phase(self, name: str, phase: str, timeout: float) -> dict[str, Any]:
        """The status of Rollout `name` once its phase is `phase`."""
        return poll(
            f"Rollout {name} to be {phase}",
            lambda: (lambda s: s if s.get("phase") == phase else None)(self.status(name)),
            timeout,
        )

    def wait_promoted(self, name: str, timeout: float) -> dict[str, Any]:
        """The status of Rollout `name` once it is Healthy with its canary as the stable version."""
        return poll(
            f"Rollout {name}'s canary to be promoted",
            lambda: (
                lambda s: s if s.get("phase") == "Healthy" and s.get("stableRS") == s.get("currentPodHash") else None
            )(self.status(name)),
            timeout,
        )

    def run(self, name: str) -> dict[str, Any]:
        return self.get(f"{ROLLOUTS_API}/{self.ns}/analysisruns/{name}")

    def step_run(self, name: str) -> str | None:
        """The name of the analysis step's run of Rollout `name`, if it has one."""
        entry = (self.status(name).get("canary") or {}).get("currentStepAnalysisRunStatus")
        return str(entry["name"]) if entry else None

    def patch_rollout(self, name: str, operations: list[dict[str, Any]]) -> None:
        response = self.client.patch(
            f"{ROLLOUTS_API}/{self.ns}/rollouts/{name}",
            json=operations,
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert response.status_code < 300, response.text

    def new_namespace(self) -> None:
        self.create("/api/v1/namespaces", {"metadata": {"name": self.ns}})


def desired_traffic(weight: int, **overrides: Any) -> DesiredTraffic:
    """What a router is asked for: `weight` of 100 to web-canary (hash bbb) against web-stable (aaa)."""
    values: dict[str, Any] = dict(
        canary_weight=weight,
        max_weight=100,
        stable_service="web-stable",
        canary_service="web-canary",
        stable_hash="aaa",
        canary_hash="bbb",
        canary_available=True,
    )
    values.update(overrides)
    return DesiredTraffic(**values)


def apply_merge_patches(result: RouterResult, live: dict[ObjectRef, Any]) -> dict[ObjectRef, Any]:
    """The objects after a router's writes, each a merge patch carrying the resourceVersion it read."""
    out = dict(live)
    for write in result.writes:
        assert write.op == "merge-patch"
        assert write.body["metadata"]["resourceVersion"] == live[write.ref]["metadata"]["resourceVersion"]
        out[write.ref] = merge_patch(out[write.ref], write.body)
    return out


def analysis_step_rollout(
    name: str, template_name: str, args: list[dict[str, Any]], annotations: dict[str, str], image: str = "app:1"
) -> dict[str, Any]:
    """A Rollout of 2 sandbox pods (ready after 0.1 s, annotated `annotations`) whose canary sets weight 50,
    then runs an analysis step with template `template_name` and `args`."""
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {"sandbox.pyrollouts.io/ready-after": "0.1s", **annotations},
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 50},
                        {"analysis": {"templates": [{"templateName": template_name}], "args": args}},
                    ]
                }
            },
        },
    }
