"""A property test of the sandbox's handlers: random verbs, paths, queries, content types and bodies
never get a 5xx, and the server keeps answering afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollouts import schema
from rollouts.sandbox.cluster import ThreadedSandbox

NAMES = ["a", "b", "default", "kube-system"]
COLLECTIONS = [
    "/api/v1/namespaces",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/services",
    "/api/v1/pods",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/replicasets",
    "/apis/pyrollouts.io/v1alpha1/namespaces/default/rollouts",
    "/apis/pyrollouts.io/v1alpha1/namespaces/default/analysisruns",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
]
SUBRESOURCES = ["", "", "/status", "/scale", "/token", "/finalize", "/x"]
KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "status", "replicas",
    "selector", "matchLabels", "template", "containers", "image", "data", "op", "path", "value", "from", "items",
    "ownerReferences", "finalizers", "resourceVersion", "generateName", "strategy", "canary", "steps",
    "setWeight", "ports", "$patch", "$retainKeys", "uid", "preconditions", "propagationPolicy",
]  # fmt: skip
CONTENT_TYPES = [
    "application/json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
]
QUERY_KEYS = [
    "limit", "continue", "watch", "timeoutSeconds", "resourceVersion", "labelSelector", "fieldSelector",
    "fieldManager", "fieldValidation", "dryRun", "force", "propagationPolicy", "sendInitialEvents",
    "allowWatchBookmarks", "includeObject",
]  # fmt: skip

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
paths = st.builds(
    lambda base, name, sub: f"{base}/{name}{sub}" if name else base,
    st.sampled_from(COLLECTIONS) | st.text(alphabet="/abcv1-.%", max_size=20).map(lambda t: "/" + t),
    st.sampled_from(["", *NAMES]) | st.text(alphabet="abc-.%:", max_size=6),
    st.sampled_from(SUBRESOURCES),
)
queries = st.dictionaries(
    st.sampled_from(QUERY_KEYS),
    st.sampled_from(["-1", "0", "1", "true", "false", "nan", "1e400", "All", "Strict", "a=b", "!x", "x in (", ""])
    | st.text(max_size=6),
    max_size=3,
)
# Objects shaped like manifests reach past the decoder into admission, patching and the schema checks.
manifests = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["v1", "apps/v1", "pyrollouts.io/v1alpha1", "x/y/z"]) | scalars,
        "kind": st.sampled_from(["ConfigMap", "Deployment", "Rollout", "Namespace", "List"]) | scalars,
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(NAMES)}, optional={"labels": json_values})
        | json_values,
    },
    optional={"spec": json_values, "data": json_values, "status": json_values},
)
bodies = (json_values | manifests).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    with ThreadedSandbox(workdir / "kubeconfig") as sandbox, httpx.Client(base_url=sandbox.url, timeout=10) as client:
        for crd in schema.load_crds():
            assert client.post(COLLECTIONS[9], json=crd).status_code == 201
        client.post(COLLECTIONS[1], json={"metadata": {"name": "a"}, "data": {"k": "v"}})
        yield client


def send(api: httpx.Client, method: str, path: str, query: dict[str, str], content_type: str, body: bytes) -> Any:
    # A watch would stay open: the fuzz asks for a short one.
    if query.get("watch") in ("true", "1"):
        query = {**query, "timeoutSeconds": "0"}
    # A path starting with "//" would name a host, not a path on this server.
    path = "/" + path.lstrip("/")
    return api.request(method, path, params=query, content=body, headers={"Content-Type": content_type})


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    derandomize=True,
    database=None,  # derandomized: nothing to replay (.hypothesis/ still caches Unicode tables; ignored)
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    path=paths,
    query=queries,
    content_type=st.sampled_from(CONTENT_TYPES),
    body=bodies,
)
def test_no_request_gets_a_5xx(
    api: httpx.Client, method: str, path: str, query: dict[str, str], content_type: str, body: bytes
) -> None:
    resp = send(api, method, path, query, content_type, body)
    assert resp.status_code < 500, f"{method} {path}?{query} [{content_type}] {body!r}: {resp.text}"
    if resp.status_code >= 400:
        assert resp.json()["kind"] == "Status", resp.text


def test_the_server_still_answers_after_the_fuzz(api: httpx.Client) -> None:
    assert api.get("/healthz").text == "ok"
    assert api.get(COLLECTIONS[1]).status_code == 200
