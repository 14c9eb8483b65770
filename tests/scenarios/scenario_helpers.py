"""Helpers for scenario tests: drive a cluster through its public interfaces (manifests, kubectl, the
API) and read objects back. Nothing here imports the controller."""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from kubernetes import client, config

from tests.support import json_object

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "pyrollouts.io", "v1alpha1"
HASH_LABEL = "rollouts-pod-template-hash"
T = TypeVar("T")
_counter = itertools.count(1)


def rollout_manifest(
    name: str,
    replicas: int = 4,
    steps: list[dict[str, Any]] | None = None,
    image: str = "nginx:1",
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    **canary: Any,
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
            "strategy": {"canary": {"steps": steps if steps is not None else [], **canary}},
            **(spec or {}),
        },
    }


def service_manifest(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


@dataclass
class Cluster:
    """A cluster reached through a kubeconfig: kubectl for changes, the API for reading back."""

    kubeconfig: Path
    kubectl_bin: str
    env: dict[str, str]
    api: client.ApiClient = field(init=False)

    def __post_init__(self) -> None:
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=cfg
        )
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    # ------------------------------------------------------------------ changes

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_bin, *args], input=input, capture_output=True, text=True, env=self.env, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def new_namespace(self, prefix: str = "s") -> str:
        name = f"{prefix}-{os.getpid() % 10000}-{next(_counter)}"
        self.kubectl("create", "namespace", name)
        return name

    def apply(self, ns: str, *objs: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        text = yaml.safe_dump_all([copy.deepcopy(o) for o in objs])
        return self.kubectl("apply", "-n", ns, "-f", "-", input=text, check=check)

    def patch(
        self,
        ns: str,
        name: str,
        patch: dict[str, Any] | list[dict[str, Any]],
        status: bool = False,
        kind: str = "rollout",
        patch_type: str = "merge",
    ) -> None:
        args = ["patch", kind, name, "-n", ns, "--type", patch_type, "-p", json.dumps(patch)]
        if status:
            args += ["--subresource=status"]
        self.kubectl(*args)

    def set_image(self, ns: str, name: str, image: str) -> None:
        self.patch(
            ns,
            name,
            [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}],
            patch_type="json",
        )

    # Argo's kubectl-plugin patches, done by hand so that these scenarios do not depend on the plugin.
    def promote(self, ns: str, name: str) -> None:
        self.patch(ns, name, {"status": {"pauseConditions": None}}, status=True)

    def promote_full(self, ns: str, name: str) -> None:
        self.patch(ns, name, {"status": {"promoteFull": True}}, status=True)

    def abort(self, ns: str, name: str) -> None:
        self.patch(ns, name, {"status": {"abort": True}}, status=True)

    def retry(self, ns: str, name: str) -> None:
        self.patch(ns, name, {"status": {"abort": False}}, status=True)

    # ------------------------------------------------------------------ reading back

    def rollout(self, ns: str, name: str) -> dict[str, Any]:
        return json_object(self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "rollouts", name))

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.rollout(ns, name).get("status") or {})

    def replicasets(self, ns: str, name: str) -> list[dict[str, Any]]:
        uid = self.rollout(ns, name)["metadata"]["uid"]
        items = self.plain(self.apps.list_namespaced_replica_set(ns).items)
        return [
            rs
            for rs in items
            if any(r.get("uid") == uid and r.get("controller") for r in rs["metadata"].get("ownerReferences") or [])
        ]

    def sizes(self, ns: str, name: str) -> dict[str, int]:
        """spec.replicas per image, zero-sized ReplicaSets left out."""
        out: dict[str, int] = {}
        for rs in self.replicasets(ns, name):
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            if rs["spec"]["replicas"]:
                out[image] = out.get(image, 0) + rs["spec"]["replicas"]
        return out

    def ready_sizes(self, ns: str, name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for rs in self.replicasets(ns, name):
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            ready = (rs.get("status") or {}).get("availableReplicas") or 0
            if rs["spec"]["replicas"] or ready:
                out[image] = out.get(image, 0) + ready
        return {k: v for k, v in out.items() if v}

    def pods(self, ns: str, label_selector: str | None = None, deleting: bool = False) -> list[dict[str, Any]]:
        """The pods of `ns` (matching `label_selector`), those being deleted only when `deleting`."""
        items = self.plain(self.core.list_namespaced_pod(ns, label_selector=label_selector).items)
        return [p for p in items if deleting or not p["metadata"].get("deletionTimestamp")]

    def deployment(self, ns: str, name: str) -> dict[str, Any]:
        return json_object(self.plain(self.apps.read_namespaced_deployment(name, ns)))

    def service(self, ns: str, name: str) -> dict[str, Any]:
        return json_object(self.plain(self.core.read_namespaced_service(name, ns)))

    def events(self, ns: str, name: str) -> list[tuple[str, str]]:
        items = [
            e
            for e in self.plain(self.core.list_namespaced_event(ns).items)
            if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "Rollout"
        ]
        items.sort(key=lambda e: (e.get("lastTimestamp") or "", e["metadata"].get("resourceVersion", "")))
        return [(e["reason"], e["message"]) for e in items]

    def plain(self, obj: Any) -> Any:
        """A client model (or a list of them) as the JSON the API server sent: dicts and lists."""
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def wait(
        self, what: str, check: Callable[[], T | Literal[False] | None], timeout: float = 20.0, interval: float = 0.05
    ) -> T:
        """Poll until ``check`` returns something truthy; fail naming ``what`` and the last value seen (a failed
        assertion in ``check`` counts as not yet)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = check()
            except AssertionError as exc:
                last = exc
            else:
                if value:
                    return value
                last = value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
            time.sleep(interval)

    def wait_phase(
        self, ns: str, name: str, phase: str, timeout: float = 20.0, message: str | None = None
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st = self.status(ns, name)
            ro = self.rollout(ns, name)
            observed = str(st.get("observedGeneration")) == str(ro["metadata"].get("generation"))
            ok = observed and st.get("phase") == phase and (message is None or st.get("message") == message)
            return st if ok else None

        return self.wait(f"{ns}/{name} phase {phase} {message or ''}".strip(), check, timeout)

    def wait_sizes(self, ns: str, name: str, sizes: dict[str, int], timeout: float = 20.0) -> None:
        self.wait(
            f"{ns}/{name} sizes {sizes}",
            lambda: (self.sizes(ns, name) == sizes and self.ready_sizes(ns, name) == sizes) or None,
            timeout,
        )


class ControllerProcess:
    """`pyrollouts controller` as a subprocess, started, stopped and killed by the tests."""

    def __init__(self, kubeconfig: Path, env: dict[str, str], log_dir: Path, extra: list[str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.env = env
        self.log_dir = log_dir
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> ControllerProcess:
        assert self.proc is None
        self.starts += 1
        log = open(self.log_dir / f"controller-{self.starts}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
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
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=REPO,
        )
        self._log = log
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("controller-*.log")))

    @contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


def analysis_template(name: str, arg: str, metric: dict[str, Any]) -> dict[str, Any]:
    """An AnalysisTemplate `name` with one argument and one metric."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"args": [{"name": arg}], "metrics": [metric]},
    }


def held_template(name: str, metric: str, arg: str) -> dict[str, Any]:
    """A template whose metric never measures within a test (it waits an hour): the test sets each run's
    phase, so the rollout reacts to that phase only."""
    return analysis_template(
        name,
        arg,
        {
            "name": metric,
            "initialDelay": "1h",
            "successCondition": "result == 'ok'",
            "provider": {"web": {"url": f"http://127.0.0.1:9/{{{{args.{arg}}}}}"}},
        },
    )


def web_template(name: str, arg: str, url: str) -> dict[str, Any]:
    """A template measuring `{$.ok}` of `url` twice, a second apart; `url` may use `{{args.<arg>}}`."""
    return analysis_template(
        name,
        arg,
        {
            "name": "up",
            "interval": "1s",
            "count": 2,
            "successCondition": "result == true",
            "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}},
        },
    )


def analysis_runs(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = json_object(cluster.custom.list_namespaced_custom_object(GROUP, VERSION, ns, "analysisruns"))["items"]
    return {r["metadata"]["name"]: r for r in items}


def set_run_phase(cluster: Cluster, ns: str, name: str, phase: str, message: str = "") -> None:
    """Play the analysis controller: write a completed phase, which the real one leaves alone."""
    status: dict[str, Any] = {"phase": phase}
    if message:
        status["message"] = message
    cluster.patch(ns, name, {"status": status}, status=True, kind="analysisrun")


def current_run(cluster: Cluster, ns: str, strategy: str, key: str, not_name: str = "", timeout: float = 20.0) -> str:
    """The run named in `status.<strategy>.<key>` of Rollout `web`, once it is one other than `not_name`."""

    def check() -> str | None:
        entry = (cluster.status(ns, "web").get(strategy) or {}).get(key)
        return str(entry["name"]) if entry and entry["name"] != not_name else None

    return cluster.wait(f"status.{strategy}.{key}", check, timeout=timeout)


class HealthHandler(BaseHTTPRequestHandler):
    """Answers every GET with `{"ok": healthy}` and records the path; `serve_health` makes a fresh subclass."""

    healthy = True
    seen: list[str] = []

    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = json.dumps({"ok": type(self).healthy}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve_health() -> Iterator[tuple[str, type[HealthHandler]]]:
    """A health endpoint on a free 127.0.0.1 port: its base URL and its handler class (set `healthy`, read `seen`)."""
    handler = type("Health", (HealthHandler,), {"healthy": True, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def install_crds(cluster: Cluster, file_name: str, resources: str, what: str) -> None:
    """Apply examples/crds/<file_name> and wait until `kubectl get <resources>` is served."""
    cluster.kubectl("apply", "-f", str(REPO / "examples" / "crds" / file_name))
    cluster.wait(
        f"the {what} to be served",
        lambda: cluster.kubectl("get", resources, "-A", check=False).returncode == 0,
        timeout=30,
    )


def progress(cluster: Cluster, ns: str, name: str = "web") -> tuple[Any, ...]:
    """Where Rollout `name` is: its step index, its phase and its sizes by image (for crash tests that
    kill the controller whenever this, or what they add to it, changes)."""
    status = cluster.status(ns, name)
    return (status.get("currentStepIndex"), status.get("phase"), tuple(sorted(cluster.sizes(ns, name).items())))


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_restarted(
    cluster: Cluster, ns: str, restart_at: str, timeout: float
) -> tuple[int, list[dict[str, Any]]]:
    """Wait until Rollout `web` reports `restartedAt: restart_at`, counting the ready pods all along: the
    fewest ready pods seen (at most 3) and the pods alive afterwards."""
    min_ready = 3
    deadline = time.monotonic() + timeout
    while cluster.status(ns, "web").get("restartedAt") != restart_at:
        min_ready = min(min_ready, len([p for p in cluster.pods(ns) if pod_ready(p)]))
        assert time.monotonic() < deadline, "restart did not finish"
        time.sleep(0.05)
    return min_ready, cluster.pods(ns)


def settled(read: Callable[[], dict[str, Any]], replicas: int, timeout: float = 30.0) -> dict[str, Any]:
    """`read()` once it holds still for half a second with `status.replicas == replicas`: the last status
    writes trail the scale-down, the more so for a controller just restarted after a kill."""
    deadline = time.monotonic() + timeout
    last = read()
    while True:
        time.sleep(0.5)
        now = read()
        if now == last and now["status"].get("replicas") == replicas:
            return now
        assert time.monotonic() < deadline, f"the state did not settle: {now}"
        last = now
