"""/openapi/v2 through the real kubectl: client-side validation of a `kind: List`, an apply before the
CRDs exist (kubectl's own "no matches for kind"), and the project's examples passing that validation.

The order matters inside this module (one sandbox): the first test runs before any CRD is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl


def as_list(*items: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)}, sort_keys=False)


def rollout(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
            **extra,
        },
    }


def test_apply_before_the_crds_exist_gives_kubectls_no_matches_message(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(rollout("early")), check=False)
    assert result.returncode != 0
    assert 'no matches for kind "Rollout" in version "pyrollouts.io/v1alpha1"' in result.stderr
    assert "ensure CRDs are installed first" in result.stderr
    assert "could not find the requested resource" not in result.stderr


def test_openapi_v2_is_served_as_json_and_protobuf(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        as_json = client.get("/openapi/v2")
        assert as_json.status_code == 200 and as_json.json()["swagger"] == "2.0"
        proto = client.get(
            "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
        )
        assert proto.status_code == 200
        assert proto.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        assert proto.content.startswith(b"\n\x032.0")  # field 1 (swagger) = "2.0"


def test_apply_of_a_kind_list_creates_each_item(kubectl: Kubectl) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"}, "data": {"a": "1"}}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "listed"},
        "spec": {"selector": {"app": "listed"}, "ports": [{"port": 80}]},
    }
    result = kubectl.run("apply", "-f", "-", input=as_list(config, service))
    assert "configmap/listed created" in result.stdout and "service/listed created" in result.stdout
    assert kubectl.run("get", "configmap", "listed", "-o", "jsonpath={.data.a}").stdout == "1"


def test_a_list_of_custom_resources_is_validated_on_the_client(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    result = kubectl.run("apply", "-f", "-", input=as_list(rollout("bad", bogus=1)), check=False)
    assert result.returncode != 0
    assert 'unknown field "bogus" in io.pyrollouts.v1alpha1.Rollout.spec' in result.stderr
    result = kubectl.run("apply", "-f", "-", input=as_list(rollout("listed-rollout")))
    assert "rollout.pyrollouts.io/listed-rollout created" in result.stdout


def test_every_example_passes_client_side_validation_in_a_list(kubectl: Kubectl, tmp_path: Path) -> None:
    docs = [
        doc
        for path in sorted((REPO / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("apiVersion", "").startswith("pyrollouts.io/")
    ]
    assert docs
    result = kubectl.run("apply", "--dry-run=client", "-f", "-", input=as_list(*docs), check=False)
    assert "ValidationError" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
