"""PUT and the four PATCH formats through HTTP and the official client, plus /status and /scale."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes
import pytest

from tests.fixtures.kube import api_client, assert_status, http, install_crd, json_object, load_crd, request_body
from tests.fixtures.manifests import configmap, deployment
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import deadline_after

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
RO = "/apis/pyrollouts.io/v1alpha1/namespaces/default/rollouts"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        install_crd(client, load_crd("rollouts.yaml"))
        yield client


@pytest.fixture(scope="module")
def k8s(sandbox: SandboxHandle) -> Iterator[kubernetes.client.ApiClient]:
    with api_client(sandbox.kubeconfig) as client:
        yield client


def rollout(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "a:1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }


# ---------------------------------------------------------------------------------------------- patches


def test_merge_patch(api: httpx.Client) -> None:
    api.post(CM, json=configmap("mp", a="1", b="2"))
    patch = {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"x": "y"}}}
    resp = api.patch(f"{CM}/mp", json=patch, headers=MERGE)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"b": "2", "c": "3"}
    assert resp.json()["metadata"]["labels"] == {"x": "y"}


def test_json_patch_and_failed_test_op(api: httpx.Client) -> None:
    created = api.post(CM, json=configmap("jp", a="1")).json()
    ops = [{"op": "test", "path": "/data/a", "value": "1"}, {"op": "add", "path": "/data/b", "value": "2"}]
    resp = api.patch(f"{CM}/jp", json=ops, headers=JSONP)
    assert resp.status_code == 200 and resp.json()["data"] == {"a": "1", "b": "2"}
    rv = resp.json()["metadata"]["resourceVersion"]
    body = assert_status(
        api.patch(f"{CM}/jp", json=[{"op": "test", "path": "/data/a", "value": "9"}], headers=JSONP),
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    )
    assert body["details"]["causes"] == [
        {"reason": "UnexpectedServerResponse", "message": "testing value /data/a failed: test failed"}
    ]
    assert_status(api.patch(f"{CM}/jp", json=[{"op": "remove", "path": "/data/zz"}], headers=JSONP), 422, "Invalid")
    assert_status(api.patch(f"{CM}/jp", json={"op": "add"}, headers=JSONP), 400, "BadRequest")
    # Nothing was written by the failed patches.
    assert api.get(f"{CM}/jp").json()["metadata"]["resourceVersion"] == rv != created["metadata"]["resourceVersion"]


def test_strategic_merge_patch_on_a_deployment(api: httpx.Client) -> None:
    body = deployment("smp")
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    api.post(DEPLOY, json=body)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.26",
                            "env": [{"name": "B", "value": "20"}],
                            "ports": [{"containerPort": 8080}],
                        },
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                }
            }
        }
    }
    resp = api.patch(f"{DEPLOY}/smp", json=patch, headers=SMP)
    assert resp.status_code == 200, resp.text
    spec = resp.json()["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    app = spec["containers"][0]
    assert app["image"] == "nginx:1.26"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}]
    assert app["ports"] == [{"containerPort": 80}, {"containerPort": 8080}]
    assert [v["name"] for v in spec["volumes"]] == ["data", "cache"]
    assert resp.json()["metadata"]["generation"] == 2
    # The official client sends strategic merge patches for built-in kinds.
    apps = kubernetes.client.AppsV1Api(api_client_for(api))
    result = apps.patch_namespaced_deployment(
        "smp", "default", {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    )
    strategy = result.spec.strategy
    assert strategy is not None and strategy.type == "Recreate" and strategy.rolling_update is None


def api_client_for(api: httpx.Client) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(api.base_url).rstrip("/")
    return kubernetes.client.ApiClient(configuration)


def test_strategic_merge_patch_on_a_service(api: httpx.Client) -> None:
    svc = {
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
    }
    assert api.post("/api/v1/namespaces/default/services", json=svc).status_code == 201
    resp = api.patch(
        "/api/v1/namespaces/default/services/svc", json={"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        headers=SMP,
    )
    assert resp.json()["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443},
    ]


def test_custom_resources_refuse_strategic_merge_patch(api: httpx.Client) -> None:
    api.post(RO, json=rollout("nosmp"))
    assert_status(
        api.patch(f"{RO}/nosmp", json={"spec": {"replicas": 3}}, headers=SMP),
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )
    assert_status(
        api.patch(f"{CM}/mp", content=b"{}", headers={"Content-Type": "text/plain"}), 415, "UnsupportedMediaType"
    )


def test_server_side_apply_creates_and_updates(api: httpx.Client) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n  b: '2'\n"
    resp = api.patch(f"{CM}/applied", content=manifest, headers=APPLY, params={"fieldManager": "me"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["data"] == {"a": "1", "b": "2"}
    assert any(m["manager"] == "me" and m["operation"] == "Apply" for m in resp.json()["metadata"]["managedFields"])
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '10'\n"
    resp = api.patch(f"{CM}/applied", content=manifest, headers=APPLY, params={"fieldManager": "me", "force": "true"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"a": "10"}
    assert_status(api.patch(f"{CM}/applied", content=manifest, headers=APPLY), 422, "Invalid")
    # Apply of a custom resource.
    resp = api.patch(f"{RO}/applied-ro", json=rollout("applied-ro"), headers=APPLY, params={"fieldManager": "me"})
    assert resp.status_code == 201, resp.text


def test_put_replaces_the_whole_object(api: httpx.Client, k8s: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(k8s)
    core.create_namespaced_config_map("default", request_body(configmap("put", a="1", b="2")))
    current = core.read_namespaced_config_map("put", "default")
    current.data = {"c": "3"}
    replaced = core.replace_namespaced_config_map("put", "default", current)
    assert replaced.data == {"c": "3"}
    # A custom resource PUT needs a resourceVersion.
    created = api.post(RO, json=rollout("put-ro")).json()
    body = assert_status(api.put(f"{RO}/put-ro", json=rollout("put-ro")), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    again = {**rollout("put-ro", 5), "metadata": created["metadata"]}
    assert api.put(f"{RO}/put-ro", json=again).json()["spec"]["replicas"] == 5


def test_patch_bodies_that_are_not_objects(api: httpx.Client) -> None:
    for raw, headers in ((b"[1]", MERGE), (b"{nope", MERGE), (b"3", SMP), (b'"x"', JSONP), (b"", MERGE)):
        resp = api.patch(f"{CM}/mp", content=raw, headers=headers)
        assert resp.status_code == 400, (raw, resp.text)
        assert resp.json()["kind"] == "Status"
    # A patch that breaks the object's shape is refused, and nothing is written.
    assert_status(api.patch(f"{CM}/mp", json={"data": [1]}, headers=MERGE), 400, "BadRequest")
    assert_status(api.patch(f"{CM}/mp", json={"metadata": {"name": "other"}}, headers=MERGE), 400, "BadRequest")
    assert api.get(f"{CM}/mp").json()["data"] == {"b": "2", "c": "3"}


# ---------------------------------------------------------------------------------------------- /status


def test_status_subresource_isolation(api: httpx.Client) -> None:
    created = api.post(DEPLOY, json=deployment("iso")).json()
    assert "status" not in created or created["status"] == {} or "observedGeneration" not in created["status"]
    # A spec write ignores status.
    resp = api.patch(f"{DEPLOY}/iso", json={"status": {"replicas": 42}, "spec": {"replicas": 2}}, headers=MERGE)
    assert resp.json()["spec"]["replicas"] == 2
    assert resp.json().get("status", {}).get("replicas") != 42
    # A status write ignores spec and metadata.
    current = api.get(f"{DEPLOY}/iso").json()
    current["spec"]["replicas"] = 7
    current["metadata"]["labels"] = {"changed": "yes"}
    current["status"] = {"observedGeneration": 99}
    resp = api.put(f"{DEPLOY}/iso/status", json=current)
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["status"] == {"observedGeneration": 99}
    assert after["spec"]["replicas"] == 2 and after["metadata"]["labels"] == {"app": "iso"}
    assert after["metadata"]["generation"] == 2
    # A stale status write conflicts.
    assert_status(api.put(f"{DEPLOY}/iso/status", json=current), 409, "Conflict")


def test_status_subresource_on_a_custom_resource(api: httpx.Client, k8s: kubernetes.client.ApiClient) -> None:
    api.post(RO, json=rollout("ro-status"))
    custom = kubernetes.client.CustomObjectsApi(k8s)
    patched = json_object(custom.patch_namespaced_custom_object_status(
        "pyrollouts.io", "v1alpha1", "default", "rollouts", "ro-status",
        {"status": {"phase": "Paused", "message": "waiting"}, "spec": {"replicas": 9}},
    ))
    assert patched["status"]["phase"] == "Paused" and patched["spec"]["replicas"] == 2
    assert patched["metadata"]["generation"] == 1
    obj = json_object(
        custom.get_namespaced_custom_object("pyrollouts.io", "v1alpha1", "default", "rollouts", "ro-status")
    )
    assert obj["status"]["message"] == "waiting"
    # Spec writes keep status; a main-resource write with a bad status field still validates spec only.
    obj["spec"]["replicas"] = 4
    obj["status"] = {"phase": "Healthy"}
    replaced = json_object(custom.replace_namespaced_custom_object(
        "pyrollouts.io", "v1alpha1", "default", "rollouts", "ro-status", obj
    ))
    assert replaced["spec"]["replicas"] == 4 and replaced["status"]["phase"] == "Paused"
    assert replaced["metadata"]["generation"] == 2
    # Status is validated against the schema too.
    resp = api.patch(f"{RO}/ro-status/status", json={"status": {"phase": "Sleeping"}}, headers=MERGE)
    body = assert_status(resp, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "status.phase"
    assert_status(api.get(f"{CM}/mp/status"), 404, "NotFound")


# ---------------------------------------------------------------------------------------------- /scale


def test_scale_subresource_on_a_deployment(api: httpx.Client, k8s: kubernetes.client.ApiClient) -> None:
    api.post(DEPLOY, json=deployment("scaled", replicas=1))
    apps = kubernetes.client.AppsV1Api(k8s)
    scale = apps.read_namespaced_deployment_scale("scaled", "default")
    assert scale.spec is not None and scale.spec.replicas == 1 and scale.kind == "Scale"
    assert scale.status is not None and scale.status.selector == "app=scaled"
    apps.patch_namespaced_deployment_scale("scaled", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("scaled", "default").spec.replicas == 3
    # A read-modify-replace, retried on 409 as clients do: the simulated Deployment controller writes the
    # Deployment's status in between, and a replace carrying the older resourceVersion is refused.
    deadline = deadline_after(10)
    while True:
        scale = apps.read_namespaced_deployment_scale("scaled", "default")
        assert scale.spec is not None
        scale.spec.replicas = 4
        try:
            apps.replace_namespaced_deployment_scale("scaled", "default", scale)
            break
        except kubernetes.client.ApiException as conflict:
            assert conflict.status == 409 and time.monotonic() < deadline, conflict
    deploy = api.get(f"{DEPLOY}/scaled").json()
    assert deploy["spec"]["replicas"] == 4 and deploy["metadata"]["generation"] == 3
    body = assert_status(
        api.patch(f"{DEPLOY}/scaled/scale", json={"spec": {"replicas": -1}}, headers=MERGE), 422, "Invalid"
    )
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    stale = {**api.get(f"{DEPLOY}/scaled/scale").json(), "spec": {"replicas": 1}}
    stale["metadata"]["resourceVersion"] = "1"
    assert_status(api.put(f"{DEPLOY}/scaled/scale", json=stale), 409, "Conflict")
    assert_status(api.get(f"{CM}/mp/scale"), 404, "NotFound")


def test_scale_subresource_on_a_rollout(api: httpx.Client, k8s: kubernetes.client.ApiClient) -> None:
    api.post(RO, json=rollout("ro-scale", replicas=2))
    api.patch(
        f"{RO}/ro-scale/status", json={"status": {"HPAReplicas": 2, "selector": "app=ro-scale"}}, headers=MERGE
    )
    custom = kubernetes.client.CustomObjectsApi(k8s)
    scale = json_object(
        custom.get_namespaced_custom_object_scale("pyrollouts.io", "v1alpha1", "default", "rollouts", "ro-scale")
    )
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "app=ro-scale"}
    custom.patch_namespaced_custom_object_scale(
        "pyrollouts.io", "v1alpha1", "default", "rollouts", "ro-scale", {"spec": {"replicas": 5}}
    )
    obj = api.get(f"{RO}/ro-scale").json()
    assert obj["spec"]["replicas"] == 5 and obj["status"]["HPAReplicas"] == 2
    assert obj["metadata"]["generation"] == 2
