"""GET /sandbox/request-counts: what each client asked, by Kubernetes verb and resource (the scale benchmark
tells the controller's requests from its own by the User-Agent)."""

from __future__ import annotations

import httpx

from tests.fixtures.manifests import configmap
from tests.fixtures.sandbox import SandboxHandle

CM = "/api/v1/namespaces/default/configmaps"


def counts(sandbox: SandboxHandle) -> dict[tuple[str, str, str], int]:
    rows = httpx.get(f"{sandbox.url}/sandbox/request-counts", timeout=10).json()
    return {(r["client"], r["verb"], r["resource"]): r["count"] for r in rows}


def test_requests_are_counted_per_client_verb_and_resource(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url, headers={"User-Agent": "counted-client/1.0 (test)"}, timeout=10) as http:
        http.post(CM, json=configmap("counted", a="1")).raise_for_status()
        http.get(f"{CM}/counted").raise_for_status()
        http.get(CM).raise_for_status()
        http.get(CM, params={"watch": "1", "timeoutSeconds": "1"}).raise_for_status()
        patch = {"data": {"a": "2"}}
        headers = {"Content-Type": "application/merge-patch+json"}
        http.patch(f"{CM}/counted", json=patch, headers=headers).raise_for_status()
        http.put("/apis/apps/v1/namespaces/default/deployments/none/scale", json={})
    seen = {key: n for key, n in counts(sandbox).items() if key[0] == "counted-client"}
    assert seen == {
        ("counted-client", "create", "configmaps"): 1,
        ("counted-client", "get", "configmaps"): 1,
        ("counted-client", "list", "configmaps"): 1,
        ("counted-client", "watch", "configmaps"): 1,
        ("counted-client", "patch", "configmaps"): 1,
        ("counted-client", "update", "deployments/scale"): 1,
    }
