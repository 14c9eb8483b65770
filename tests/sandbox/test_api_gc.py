"""Finalizers, deletionTimestamp, owner-reference garbage collection and namespace deletion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.kube import assert_status, http, install_crd, load_crd
from tests.fixtures.manifests import configmap, deployment
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import deadline_after

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
RS = "/apis/apps/v1/namespaces/default/replicasets"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
HOLD = "example.com/hold"


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        yield client


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = deadline_after(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def owner_ref(owner: dict[str, Any], block: bool = True, controller: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
        "controller": controller,
    }


def dependent(name: str, owner: dict[str, Any], block: bool = True, finalizers: list[str] | None = None
              ) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [owner_ref(owner, block)]
    if finalizers:
        body["metadata"]["finalizers"] = finalizers
    return body


def watch_events(api: httpx.Client, path: str, rv: str) -> list[tuple[str, str]]:
    events = []
    with api.stream("GET", path, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}) as resp:
        for line in resp.iter_lines():
            if line:
                event = json.loads(line)
                events.append((event["type"], event["object"]["metadata"]["name"]))
    return events


def gone(api: httpx.Client, path: str) -> bool:
    return api.get(path).status_code == 404


# ---------------------------------------------------------------------------------------------- finalizers


def test_finalizer_blocks_deletion_until_removed(api: httpx.Client) -> None:
    body = configmap("held")
    body["metadata"]["finalizers"] = [HOLD]
    created = api.post(CM, json=body).json()
    resp = api.delete(f"{CM}/held")
    assert resp.status_code == 200  # kube-apiserver answers 200 (not 202) with the object being deleted
    deleting = resp.json()
    assert deleting["kind"] == "ConfigMap"
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    assert deleting["metadata"]["finalizers"] == [HOLD]
    assert int(deleting["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stored = api.get(f"{CM}/held").json()
    assert stored["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
    # Deleting again changes nothing.
    again = api.delete(f"{CM}/held")
    assert again.status_code == 200 and again.json()["metadata"]["resourceVersion"] == stored["metadata"][
        "resourceVersion"]
    # No new finalizer while terminating; other metadata may change.
    body = assert_status(
        api.patch(f"{CM}/held", json={"metadata": {"finalizers": [HOLD, "example.com/more"]}}, headers=MERGE),
        422,
        "Invalid",
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
            'found new finalizers []string{"example.com/more"}',
            "field": "metadata.finalizers",
        }
    ]
    assert api.patch(f"{CM}/held", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE).status_code == 200
    # The deletionTimestamp cannot be cleared by a client.
    cleared = api.patch(f"{CM}/held", json={"metadata": {"deletionTimestamp": None}}, headers=MERGE).json()
    assert cleared["metadata"]["deletionTimestamp"]
    rv = cleared["metadata"]["resourceVersion"]
    resp = api.patch(f"{CM}/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert resp.status_code == 200
    assert_status(api.get(f"{CM}/held"), 404, "NotFound")
    assert watch_events(api, CM, rv) == [("DELETED", "held")]


def test_json_patch_removing_the_last_finalizer(api: httpx.Client) -> None:
    body = configmap("held-jp")
    body["metadata"]["finalizers"] = [HOLD, "example.com/other"]
    api.post(CM, json=body)
    api.delete(f"{CM}/held-jp")
    ops = [{"op": "remove", "path": "/metadata/finalizers/0"}]
    patch_headers = {"Content-Type": "application/json-patch+json"}
    assert api.patch(f"{CM}/held-jp", json=ops, headers=patch_headers).json()["metadata"]["finalizers"] == [
        "example.com/other"
    ]
    assert api.patch(f"{CM}/held-jp", json=ops, headers=patch_headers).status_code == 200
    assert gone(api, f"{CM}/held-jp")


# ---------------------------------------------------------------------------------------------- garbage collection


def test_background_gc_of_pods_when_a_replicaset_is_deleted(api: httpx.Client) -> None:
    rs = deployment("gc-rs", replicas=3)
    rs["kind"] = "ReplicaSet"
    assert api.post(RS, json=rs).status_code == 201

    def pods() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = api.get(PODS, params={"labelSelector": "app=gc-rs"}).json()["items"]
        return items

    eventually(lambda: len(pods()) == 3)
    owner_uid = api.get(f"{RS}/gc-rs").json()["metadata"]["uid"]
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == owner_uid for p in pods())
    resp = api.delete(f"{RS}/gc-rs", params={"propagationPolicy": "Background"})
    assert resp.status_code == 200 and resp.json()["status"] == "Success"
    eventually(lambda: pods() == [])
    assert gone(api, f"{RS}/gc-rs")


def test_deployment_deletion_cascades_to_replicasets_and_pods(api: httpx.Client) -> None:
    api.post(DEPLOY, json=deployment("gc-deploy", replicas=2))
    selector = {"labelSelector": "app=gc-deploy"}
    eventually(lambda: len(api.get(PODS, params=selector).json()["items"]) == 2)
    assert len(api.get(RS, params=selector).json()["items"]) == 1
    api.delete(f"{DEPLOY}/gc-deploy")
    eventually(lambda: api.get(RS, params=selector).json()["items"] == [])
    eventually(lambda: api.get(PODS, params=selector).json()["items"] == [])


def test_foreground_deletion_waits_for_blocking_dependents(api: httpx.Client) -> None:
    owner = api.post(CM, json=configmap("fg-owner")).json()
    api.post(CM, json=dependent("fg-held", owner, finalizers=[HOLD]))
    api.post(CM, json=dependent("fg-free", owner))
    api.post(CM, json=dependent("fg-nonblocking", owner, block=False, finalizers=[HOLD]))
    rv = api.get(CM).json()["metadata"]["resourceVersion"]
    resp = api.delete(f"{CM}/fg-owner", params={"propagationPolicy": "Foreground"})
    assert resp.status_code == 200
    owner_now = resp.json()
    assert owner_now["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert owner_now["metadata"]["deletionTimestamp"]
    # The owner waits: one blocking dependent is held by its own finalizer.
    assert api.get(f"{CM}/fg-owner").status_code == 200
    assert gone(api, f"{CM}/fg-free")
    held = api.get(f"{CM}/fg-held").json()
    assert held["metadata"]["deletionTimestamp"]
    assert api.get(f"{CM}/fg-nonblocking").json()["metadata"]["deletionTimestamp"]
    # Release the blocking dependent: then (and only then) the owner goes.
    api.patch(f"{CM}/fg-held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert gone(api, f"{CM}/fg-held")
    eventually(lambda: gone(api, f"{CM}/fg-owner"))
    # A dependent that does not block owner deletion is still terminating, owner or not.
    assert api.get(f"{CM}/fg-nonblocking").json()["metadata"]["deletionTimestamp"]
    api.patch(f"{CM}/fg-nonblocking", json={"metadata": {"finalizers": None}}, headers=MERGE)
    events = [e for e in watch_events(api, CM, rv) if e[1].startswith("fg-")]
    deleted = [name for kind, name in events if kind == "DELETED"]
    assert deleted.index("fg-free") < deleted.index("fg-owner")
    assert deleted.index("fg-held") < deleted.index("fg-owner")
    assert events[0] == ("MODIFIED", "fg-owner")  # the owner is marked first


def test_orphan_keeps_dependents_without_owner_references(api: httpx.Client) -> None:
    owner = api.post(CM, json=configmap("orphan-owner")).json()
    other = api.post(CM, json=configmap("other-owner")).json()
    child = dependent("orphan-child", owner)
    child["metadata"]["ownerReferences"].append(owner_ref(other))
    api.post(CM, json=child)
    api.post(CM, json=dependent("orphan-only-child", owner))
    resp = api.request("DELETE", f"{CM}/orphan-owner", json={"propagationPolicy": "Orphan"})
    assert resp.status_code == 200
    eventually(lambda: gone(api, f"{CM}/orphan-owner"))
    only = api.get(f"{CM}/orphan-only-child").json()
    assert "ownerReferences" not in only["metadata"]
    both = api.get(f"{CM}/orphan-child").json()
    assert [r["name"] for r in both["metadata"]["ownerReferences"]] == ["other-owner"]
    # The deprecated orphanDependents=true means the same.
    owner = api.post(CM, json=configmap("orphan-owner2")).json()
    api.post(CM, json=dependent("orphan-child2", owner))
    api.delete(f"{CM}/orphan-owner2", params={"orphanDependents": "true"})
    assert "ownerReferences" not in api.get(f"{CM}/orphan-child2").json()["metadata"]


def test_dependent_of_a_missing_owner_is_collected(api: httpx.Client) -> None:
    owner = api.post(CM, json=configmap("short-lived")).json()
    api.delete(f"{CM}/short-lived")
    # Created after its owner is gone: the garbage collector removes it.
    api.post(CM, json=dependent("late-child", owner))
    eventually(lambda: gone(api, f"{CM}/late-child"))


# ---------------------------------------------------------------------------------------------- namespaces


def test_namespace_deletion_removes_its_content(api: httpx.Client) -> None:
    install_crd(api, load_crd("rollouts.yaml"))
    assert api.post("/api/v1/namespaces", json={"metadata": {"name": "doomed"}}).status_code == 201
    base = "/api/v1/namespaces/doomed"
    api.post(f"{base}/configmaps", json=configmap("c1"))
    api.post(f"{base}/secrets", json={"metadata": {"name": "s1"}, "stringData": {"k": "v"}})
    api.post("/apis/apps/v1/namespaces/doomed/deployments", json=deployment("d1"))
    api.post("/apis/pyrollouts.io/v1alpha1/namespaces/doomed/analysistemplates",
             json={"metadata": {"name": "t"}, "spec": {"metrics": []}})
    eventually(lambda: len(api.get(f"{base}/pods").json()["items"]) == 1)
    held = configmap("held")
    held["metadata"]["finalizers"] = [HOLD]
    api.post(f"{base}/configmaps", json=held)
    resp = api.delete(base)
    assert resp.status_code == 200
    ns = resp.json()
    assert ns["kind"] == "Namespace" and ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    # Content is deleted; the held configmap keeps the namespace Terminating.
    eventually(lambda: [i["metadata"]["name"] for i in api.get(f"{base}/configmaps").json()["items"]] == ["held"])
    for kind in ("secrets", "pods"):
        assert api.get(f"{base}/{kind}").json()["items"] == []
    assert api.get("/apis/apps/v1/namespaces/doomed/deployments").json()["items"] == []
    assert api.get(base).json()["status"]["phase"] == "Terminating"
    body = assert_status(
        api.post(f"{base}/configmaps", json=configmap("late")),
        403,
        "Forbidden",
        'configmaps "late" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated",
    )
    assert body["details"] == {"name": "late", "kind": "configmaps"}
    api.patch(f"{base}/configmaps/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    eventually(lambda: gone(api, base))
    assert_status(api.get(base), 404, "NotFound", 'namespaces "doomed" not found')
    assert_status(api.get(f"{base}/configmaps/c1"), 404, "NotFound")
