"""Helpers shared by the API-semantics tests (tests/sandbox/test_api_*.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import yaml

REPO = Path(__file__).resolve().parent.parent.parent


def api_client(kubeconfig: Path) -> kubernetes.client.ApiClient:
    """A fresh official-client ApiClient aimed at the sandbox (never the process-wide default)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    return kubernetes.client.ApiClient(configuration)


def request_body(manifest: Mapping[str, Any]) -> Any:
    """`manifest` as a request body of the official client: its methods name a model class (V1Service, …)
    for the body, but it sends a plain dict as it is, which is what these tests mean to send."""
    return manifest


def http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10)


def assert_status(resp: httpx.Response, code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    """The answer is a `Status` failure with this code and reason (and message, when given)."""
    assert resp.status_code == code, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == code, body
    assert body["reason"] == reason, body
    if message is not None:
        assert body["message"] == message, body
    return body


def api_exception_body(exc: kubernetes.client.ApiException) -> dict[str, Any]:
    assert exc.body is not None, exc
    body: dict[str, Any] = json.loads(exc.body)
    return body


def load_crd(name: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((REPO / "crds" / name).read_text())
    return crd


def install_crd(client: httpx.Client, crd: dict[str, Any]) -> None:
    resp = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert resp.status_code in (201, 409), resp.text


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }
