"""A small kopf operator against the sandbox: kopf's own expectations of an API server.

It must see each pre-existing object exactly once on start, add and remove its finalizer around a
delete handler, and read back the status it patches. kopf keeps its state in `status.kopf` (not in
annotations) and runs standalone (no peering).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import kopf
import pytest
from kopf.testing import KopfRunner

from tests.fixtures.kube import http
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import deadline_after

GROUP, VERSION, PLURAL = "kopf.example.com", "v1", "kopfwidgets"
FINALIZER = "kopf.example.com/cleanup"


def crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "kopfwidget", "kind": "KopfWidget"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = deadline_after(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd()).status_code == 201
        yield client


def operator(url: str) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings, Counter[str], Counter[str]]:
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.watching.server_timeout = 5
    settings.watching.client_timeout = 10
    settings.networking.request_timeout = 10
    seen: Counter[str] = Counter()
    deleted: Counter[str] = Counter()
    lock = threading.Lock()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, token="sandbox", default_namespace="default")

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def started(name: str, namespace: str | None, patch: kopf.Patch, **_: Any) -> None:
        with lock:
            seen[f"{namespace}/{name}"] += 1
        patch.status["observed"] = f"seen {name}"

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def cleanup(name: str, namespace: str | None, **_: Any) -> None:
        with lock:
            deleted[f"{namespace}/{name}"] += 1

    return registry, settings, seen, deleted


@pytest.mark.parametrize("scope", [["--namespace", "kopf-ns"], ["-A"]], ids=["namespaced", "cluster-wide"])
def test_kopf_operator(
    sandbox: SandboxHandle, api: httpx.Client, monkeypatch: pytest.MonkeyPatch, scope: list[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    ns = "kopf-ns" if scope[0] == "--namespace" else "kopf-all"
    assert api.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    names = ["w1", "w2", "w3"]
    for name in names:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KopfWidget", "metadata": {"name": name},
                "spec": {"size": 1}}
        assert api.post(path(ns), json=body).status_code == 201
    registry, settings, seen, deleted = operator(sandbox.url)
    args = ["run", "--standalone", *scope, "--verbose"]
    with KopfRunner(args, registry=registry, settings=settings, timeout=20) as runner:
        # Each pre-existing object is handled once; its finalizer and status are written.
        eventually(lambda: all(seen[f"{ns}/{n}"] for n in names))

        def settled(name: str) -> bool:
            obj = api.get(path(ns, name)).json()
            return (
                FINALIZER in obj["metadata"].get("finalizers", [])
                and obj.get("status", {}).get("observed") == f"seen {name}"
            )

        eventually(lambda: all(settled(n) for n in names))
        obj = api.get(path(ns, "w1")).json()
        assert "kopf" in obj["status"]
        annotations = obj["metadata"].get("annotations") or {}
        assert not [a for a in annotations if a.startswith("kopf.zalando.org")], annotations
        # A later object is handled too.
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KopfWidget", "metadata": {"name": "w4"},
                "spec": {"size": 2}}
        api.post(path(ns), json=body)
        eventually(lambda: seen[f"{ns}/w4"] == 1 and settled("w4"))
        # Delete: the handler runs, the finalizer is removed, the object is gone.
        resp = api.delete(path(ns, "w2"))
        assert resp.status_code == 200 and resp.json()["metadata"]["deletionTimestamp"]
        eventually(lambda: api.get(path(ns, "w2")).status_code == 404)
        assert deleted[f"{ns}/w2"] == 1
        time.sleep(1.0)  # give a misbehaving server the chance to cause repeated handling
    assert runner.exit_code == 0, runner.output
    # Exactly once each (objects of other namespaces, seen by the cluster-wide run, resume once too).
    mine = {k: v for k, v in seen.items() if k.startswith(f"{ns}/")}
    assert mine == {f"{ns}/w1": 1, f"{ns}/w2": 1, f"{ns}/w3": 1, f"{ns}/w4": 1}, runner.output
    assert all(v == 1 for v in seen.values()), seen
    assert deleted == Counter({f"{ns}/w2": 1})
    assert "Traceback" not in runner.output, runner.output
