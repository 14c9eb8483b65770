"""Object semantics and errors, checked against what kube-apiserver answers.

uid / creationTimestamp / resourceVersion / generation / generateName, 201 / 409 / 404 answers,
`Status` bodies (reason, code, message, details), optimistic concurrency under concurrent writers,
dryRun, and bad input that must never become a 500.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator

import httpx
import kubernetes
import pytest

from tests.fixtures.kube import api_client, api_exception_body, assert_status, http, request_body
from tests.fixtures.manifests import configmap, deployment
from tests.fixtures.sandbox import SandboxHandle

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        yield client


@pytest.fixture(scope="module")
def k8s(sandbox: SandboxHandle) -> Iterator[kubernetes.client.ApiClient]:
    with api_client(sandbox.kubeconfig) as client:
        yield client


# ---------------------------------------------------------------------------------------------- create


def test_create_answers_201_with_server_set_metadata(api: httpx.Client) -> None:
    resp = api.post(CM, json=configmap("meta-1", a="1"))
    assert resp.status_code == 201
    meta = resp.json()["metadata"]
    uuid.UUID(meta["uid"])
    assert RFC3339.match(meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit()
    assert meta["namespace"] == "default"
    assert api.get(f"{CM}/meta-1").json() == resp.json()


def test_server_ignores_client_supplied_system_fields(api: httpx.Client) -> None:
    body = configmap("meta-sys")
    body["metadata"].update(
        uid="not-a-uid", resourceVersion="12345", creationTimestamp="2001-01-01T00:00:00Z", deletionTimestamp="x"
    )
    resp = api.post(CM, json=body)
    assert resp.status_code == 201, resp.text
    meta = resp.json()["metadata"]
    assert meta["uid"] != "not-a-uid"
    assert meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert "deletionTimestamp" not in meta


def test_create_existing_is_409_already_exists(api: httpx.Client) -> None:
    assert api.post(DEPLOY, json=deployment("dup")).status_code == 201
    body = assert_status(
        api.post(DEPLOY, json=deployment("dup")), 409, "AlreadyExists", 'deployments.apps "dup" already exists'
    )
    assert body["details"] == {"name": "dup", "group": "apps", "kind": "deployments"}
    body = assert_status(
        api.post(CM, json=configmap("meta-1")), 409, "AlreadyExists", 'configmaps "meta-1" already exists'
    )
    assert body["details"] == {"name": "meta-1", "kind": "configmaps"}


def test_missing_object_is_404_not_found(api: httpx.Client, k8s: kubernetes.client.ApiClient) -> None:
    body = assert_status(api.get(f"{DEPLOY}/nope"), 404, "NotFound", 'deployments.apps "nope" not found')
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    assert_status(api.delete(f"{CM}/nope"), 404, "NotFound", 'configmaps "nope" not found')
    assert_status(
        api.patch(f"{CM}/nope", json={}, headers={"Content-Type": "application/merge-patch+json"}),
        404,
        "NotFound",
        'configmaps "nope" not found',
    )
    with pytest.raises(kubernetes.client.ApiException) as err:
        kubernetes.client.AppsV1Api(k8s).read_namespaced_deployment("nope", "default")
    assert err.value.status == 404
    assert api_exception_body(err.value)["reason"] == "NotFound"


def test_create_in_missing_namespace_is_404(api: httpx.Client) -> None:
    body = assert_status(
        api.post("/api/v1/namespaces/ghost/configmaps", json=configmap("x")),
        404,
        "NotFound",
        'namespaces "ghost" not found',
    )
    assert body["details"] == {"name": "ghost", "kind": "namespaces"}


def test_generate_name(api: httpx.Client) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    names = set()
    for _ in range(5):
        resp = api.post(CM, json=body)
        assert resp.status_code == 201, resp.text
        meta = resp.json()["metadata"]
        assert re.fullmatch(r"gen-[a-z0-9]{5}", meta["name"]), meta["name"]
        assert meta["generateName"] == "gen-"
        names.add(meta["name"])
    assert len(names) == 5


def test_name_is_required_and_validated(api: httpx.Client) -> None:
    body = assert_status(
        api.post(CM, json={"metadata": {}}),
        422,
        "Invalid",
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required',
    )
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
         "field": "metadata.name"}
    ]
    body = assert_status(api.post(CM, json=configmap("Bad_Name")), 422, "Invalid")
    assert body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ')
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_namespace_mismatch_is_400(api: httpx.Client) -> None:
    body = configmap("mismatch")
    body["metadata"]["namespace"] = "kube-system"
    assert_status(
        api.post(CM, json=body),
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )


# ---------------------------------------------------------------------------------------------- resourceVersion


def test_resource_version_increases_and_stale_write_is_409(api: httpx.Client) -> None:
    created = api.post(CM, json=configmap("rv", v="0")).json()
    versions = [int(created["metadata"]["resourceVersion"])]
    current = created
    for n in range(1, 4):
        current = {**current, "data": {"v": str(n)}}
        resp = api.put(f"{CM}/rv", json=current)
        assert resp.status_code == 200, resp.text
        current = resp.json()
        versions.append(int(current["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    stale = {**created, "data": {"v": "stale"}}
    body = assert_status(
        api.put(f"{CM}/rv", json=stale),
        409,
        "Conflict",
        'Operation cannot be fulfilled on configmaps "rv": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )
    assert body["details"] == {"name": "rv", "kind": "configmaps"}
    assert api.get(f"{CM}/rv").json()["data"] == {"v": "3"}
    # The same for a patch that carries a stale resourceVersion.
    patch = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"v": "p"}}
    assert_status(
        api.patch(f"{CM}/rv", json=patch, headers={"Content-Type": "application/merge-patch+json"}), 409, "Conflict"
    )


def test_no_op_update_keeps_resource_version(api: httpx.Client) -> None:
    created = api.post(CM, json=configmap("noop", a="1")).json()
    again = api.put(f"{CM}/noop", json=created).json()
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_unconditional_put_allowed_for_builtin_kinds(api: httpx.Client) -> None:
    api.post(CM, json=configmap("uncond", a="1"))
    resp = api.put(f"{CM}/uncond", json=configmap("uncond", a="2"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"a": "2"}


def test_put_name_mismatch_is_400_and_missing_is_404(api: httpx.Client) -> None:
    api.post(CM, json=configmap("putname"))
    assert_status(
        api.put(f"{CM}/putname", json=configmap("other")),
        400,
        "BadRequest",
        "the name of the object (other) does not match the name on the URL (putname)",
    )
    assert_status(api.put(f"{CM}/absent", json=configmap("absent")), 404, "NotFound", 'configmaps "absent" not found')


def test_generation_follows_spec_only(api: httpx.Client) -> None:
    created = api.post(DEPLOY, json=deployment("gen")).json()
    assert created["metadata"]["generation"] == 1
    merge = {"Content-Type": "application/merge-patch+json"}
    labelled = api.patch(f"{DEPLOY}/gen", json={"metadata": {"labels": {"x": "y"}}}, headers=merge).json()
    assert labelled["metadata"]["generation"] == 1
    scaled = api.patch(f"{DEPLOY}/gen", json={"spec": {"replicas": 3}}, headers=merge).json()
    assert scaled["metadata"]["generation"] == 2
    status = api.patch(f"{DEPLOY}/gen/status", json={"status": {"observedGeneration": 2}}, headers=merge).json()
    assert status["metadata"]["generation"] == 2
    # A spec write that changes nothing changes nothing.
    same = api.patch(f"{DEPLOY}/gen", json={"spec": {"replicas": 3}}, headers=merge).json()
    assert same["metadata"]["generation"] == 2


def test_concurrent_writers_lose_no_update(sandbox: SandboxHandle) -> None:
    """Many threads do read-modify-write with retries on 409: every increment lands exactly once."""
    threads, rounds = 8, 12
    with api_client(sandbox.kubeconfig) as client:
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespaced_config_map("default", request_body(configmap("counter", n="0")))
    conflicts = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with api_client(sandbox.kubeconfig) as client:
                core = kubernetes.client.CoreV1Api(client)
                for _ in range(rounds):
                    while True:
                        cm = core.read_namespaced_config_map("counter", "default")
                        assert cm.data is not None, cm
                        cm.data["n"] = str(int(cm.data["n"]) + 1)
                        try:
                            core.replace_namespaced_config_map("counter", "default", cm)
                            break
                        except kubernetes.client.ApiException as exc:
                            assert exc.status == 409, exc
                            assert api_exception_body(exc)["reason"] == "Conflict"
                            conflicts.append(1)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors, errors
    with api_client(sandbox.kubeconfig) as client:
        final = kubernetes.client.CoreV1Api(client).read_namespaced_config_map("counter", "default")
    assert final.data is not None and final.data["n"] == str(threads * rounds)


# ---------------------------------------------------------------------------------------------- dry run


def test_dry_run_writes_nothing(api: httpx.Client) -> None:
    before = api.get(CM).json()["metadata"]["resourceVersion"]
    resp = api.post(CM, params={"dryRun": "All"}, json=configmap("dry"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["metadata"]["name"] == "dry"
    assert_status(api.get(f"{CM}/dry"), 404, "NotFound")

    created = api.post(CM, json=configmap("dry2", a="1")).json()
    rv = created["metadata"]["resourceVersion"]
    resp = api.put(f"{CM}/dry2", params={"dryRun": "All"}, json={**created, "data": {"a": "2"}})
    assert resp.status_code == 200 and resp.json()["data"] == {"a": "2"}
    resp = api.patch(
        f"{CM}/dry2", params={"dryRun": "All"}, json={"data": {"a": "3"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200 and resp.json()["data"] == {"a": "3"}
    resp = api.delete(f"{CM}/dry2", params={"dryRun": "All"})
    assert resp.status_code == 200
    stored = api.get(f"{CM}/dry2").json()
    assert stored["data"] == {"a": "1"} and stored["metadata"]["resourceVersion"] == rv
    assert int(api.get(CM).json()["metadata"]["resourceVersion"]) == int(before) + 1
    assert_status(api.post(CM, params={"dryRun": "Some"}, json=configmap("dry3")), 400, "BadRequest")


# ---------------------------------------------------------------------------------------------- errors


def test_unknown_resources_are_404(api: httpx.Client) -> None:
    msg = "the server could not find the requested resource"
    for path in (
        "/api/v1/namespaces/default/widgets",
        "/apis/nope.example.com/v1/widgets",
        "/apis/apps/v9/deployments",
        "/api/v1/namespaces/default/configmaps/x/bogus",
        "/nothing/here",
    ):
        body = assert_status(api.get(path), 404, "NotFound", msg)
        assert body.get("details", {}) == {}


def test_wrong_method_is_405(api: httpx.Client) -> None:
    api.post(CM, json=configmap("meth"))
    assert_status(api.post(f"{CM}/meth", json=configmap("meth")), 405, "MethodNotAllowed")
    assert_status(api.put(CM, json=configmap("meth")), 405, "MethodNotAllowed")


def test_delete_answers_as_the_real_server(api: httpx.Client) -> None:
    created = api.post(CM, json=configmap("del-cm")).json()
    resp = api.delete(f"{CM}/del-cm")
    assert resp.status_code == 200
    body = resp.json()
    # Most kinds answer a finished delete with a Status Success naming the object ...
    assert body["kind"] == "Status" and body["status"] == "Success", body
    assert body["details"] == {"name": "del-cm", "kind": "configmaps", "uid": created["metadata"]["uid"]}
    api.post(DEPLOY, json=deployment("del-deploy"))
    body = api.delete(f"{DEPLOY}/del-deploy").json()
    assert body["details"]["group"] == "apps" and body["details"]["kind"] == "deployments"
    # ... pods (ReturnDeletedObject) answer with the deleted object.
    pod = {"metadata": {"name": "del-pod"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert api.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201
    resp = api.delete("/api/v1/namespaces/default/pods/del-pod")
    assert resp.status_code == 200 and resp.json()["kind"] == "Pod"


def test_delete_preconditions(api: httpx.Client) -> None:
    created = api.post(CM, json=configmap("precond")).json()
    resp = api.request("DELETE", f"{CM}/precond", json={"preconditions": {"uid": "0000"}})
    body = assert_status(resp, 409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "precond": Precondition failed: '
        f"UID in precondition: 0000, UID in object meta: {created['metadata']['uid']}"
    )
    resp = api.request("DELETE", f"{CM}/precond", json={"preconditions": {"resourceVersion": "1"}})
    assert_status(resp, 409, "Conflict")
    resp = api.request("DELETE", f"{CM}/precond", json={"preconditions": {"uid": created["metadata"]["uid"]}})
    assert resp.status_code == 200


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not json", b"{nope", "application/json"),
    ("truncated", b'{"metadata": {"name": "x"', "application/json"),
    ("a list", b"[1, 2]", "application/json"),
    ("a string", b'"configmap"', "application/json"),
    ("a number", b"42", "application/json"),
    ("null", b"null", "application/json"),
    ("empty", b"", "application/json"),
    ("metadata a list", b'{"metadata": []}', "application/json"),
    ("name a number", b'{"metadata": {"name": 5}}', "application/json"),
    ("labels a string", b'{"metadata": {"name": "x", "labels": "a=b"}}', "application/json"),
    ("label value a number", b'{"metadata": {"name": "x", "labels": {"a": 1}}}', "application/json"),
    ("bad label value", b'{"metadata": {"name": "x", "labels": {"a": "no spaces"}}}', "application/json"),
    ("bad label key", b'{"metadata": {"name": "x", "labels": {"-a": "b"}}}', "application/json"),
    ("annotations a list", b'{"metadata": {"name": "x", "annotations": ["a"]}}', "application/json"),
    ("finalizers a map", b'{"metadata": {"name": "x", "finalizers": {"a": 1}}}', "application/json"),
    ("finalizer a number", b'{"metadata": {"name": "x", "finalizers": [1]}}', "application/json"),
    ("ownerReferences a string", b'{"metadata": {"name": "x", "ownerReferences": "me"}}', "application/json"),
    ("ownerReference incomplete", b'{"metadata": {"name": "x", "ownerReferences": [{"name": "o"}]}}',
     "application/json"),
    ("generateName a number", b'{"metadata": {"generateName": 3}}', "application/json"),
    ("kind mismatch", b'{"kind": "Secret", "metadata": {"name": "x"}}', "application/json"),
    ("apiVersion a number", b'{"apiVersion": 1, "metadata": {"name": "x"}}', "application/json"),
    ("data a list", b'{"metadata": {"name": "x"}, "data": [1]}', "application/json"),
    ("yaml garbage", b"a: [b", "application/yaml"),
]


@pytest.mark.parametrize(("label", "raw", "ctype"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_create_bodies_are_client_errors(api: httpx.Client, label: str, raw: bytes, ctype: str) -> None:
    resp = api.post(CM, content=raw, headers={"Content-Type": ctype})
    assert resp.status_code in (400, 422), f"{label}: {resp.status_code} {resp.text}"
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == resp.status_code and body["message"], body
    assert body["reason"] == ("BadRequest" if resp.status_code == 400 else "Invalid"), body
    assert "Traceback" not in resp.text


def test_bad_label_is_422_with_field(api: httpx.Client) -> None:
    body = assert_status(
        api.post(CM, json={"metadata": {"name": "badlabel", "labels": {"a": "no spaces"}}}), 422, "Invalid"
    )
    cause = body["details"]["causes"][0]
    assert cause["field"] == "metadata.labels" and cause["reason"] == "FieldValueInvalid"
    assert cause["message"].startswith('Invalid value: "no spaces": a valid label must be an empty string')


BAD_DEPLOYMENT_SPECS = [
    {"replicas": -1},
    {"replicas": "3"},
    {"selector": {}},
    {"selector": {"matchLabels": {"other": "x"}}},
    {"template": "x"},
    {"template": {"metadata": {"labels": "x"}}},
    {"template": {"spec": {"containers": "x"}}},
    {"template": {"spec": {"containers": [1]}}},
    {"template": {"spec": {"containers": [{"image": "x"}]}}},
]


@pytest.mark.parametrize("spec", BAD_DEPLOYMENT_SPECS, ids=[str(s) for s in BAD_DEPLOYMENT_SPECS])
def test_bad_deployment_specs_never_500(api: httpx.Client, spec: dict[str, object]) -> None:
    body = deployment("bad-deploy")
    body["spec"].update(spec)
    resp = api.post(DEPLOY, json=body)
    assert resp.status_code in (400, 422), resp.text
    assert resp.json()["kind"] == "Status"
    assert_status(api.get(f"{DEPLOY}/bad-deploy"), 404, "NotFound")


def test_bad_query_parameters_are_400(api: httpx.Client) -> None:
    assert_status(api.get(CM, params={"limit": "ten"}), 400, "BadRequest")
    assert_status(api.get(CM, params={"labelSelector": "a in (b"}), 400, "BadRequest")
    assert_status(api.get(CM, params={"continue": "garbage!"}), 400, "BadRequest")
    assert_status(api.get(CM, params={"watch": "true", "resourceVersion": "abc"}), 400, "BadRequest")
    assert_status(api.get(CM, params={"watch": "true", "timeoutSeconds": "soon"}), 400, "BadRequest")
    assert_status(api.post(CM, params={"fieldValidation": "Loud"}, json=configmap("fv")), 400, "BadRequest")
    api.post(CM, json=configmap("propagation"))
    assert_status(api.delete(f"{CM}/propagation", params={"propagationPolicy": "Sometimes"}), 400, "BadRequest")


def test_bad_delete_options_are_400(api: httpx.Client) -> None:
    api.post(CM, json=configmap("delopts"))
    for raw in (b"{nope", b"[1]", b'{"preconditions": "x"}', b'{"propagationPolicy": 3}'):
        resp = api.request("DELETE", f"{CM}/delopts", content=raw, headers={"Content-Type": "application/json"})
        assert_status(resp, 400, "BadRequest")
    assert api.get(f"{CM}/delopts").status_code == 200
