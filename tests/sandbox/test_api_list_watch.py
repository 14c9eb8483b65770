"""LIST (selectors, pagination) and WATCH (resume, 410, bookmarks, timeouts, selector transitions)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes
import pytest

from rollouts.sandbox import server as server_module
from rollouts.sandbox import store as store_module
from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.patches import MERGE_PATCH
from tests.fixtures.kube import api_client, assert_status, http
from tests.fixtures.manifests import configmap
from tests.fixtures.sandbox import SandboxHandle

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        yield client


@pytest.fixture(scope="module")
def core(sandbox: SandboxHandle) -> Iterator[kubernetes.client.CoreV1Api]:
    with api_client(sandbox.kubeconfig) as client:
        yield kubernetes.client.CoreV1Api(client)


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


def name_of(obj: kubernetes.client.V1ConfigMap) -> str | None:
    """metadata.name of a client model (whose annotations make metadata optional)."""
    assert obj.metadata is not None, obj
    return obj.metadata.name


def watch_events(api: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    """All events of a watch that the server ends itself (timeoutSeconds)."""
    events = []
    with api.stream("GET", path, params={"watch": "true", **params}, timeout=30) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line:
                events.append(json.loads(line))
    return events


# ---------------------------------------------------------------------------------------------- list


@pytest.fixture(scope="module")
def labelled(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "sel"}})
    path = "/api/v1/namespaces/sel/configmaps"
    for name, labels in {
        "a": {"app": "web", "tier": "front"},
        "b": {"app": "web", "tier": "back"},
        "c": {"app": "db", "tier": "back"},
        "d": {"app": "cache"},
        "e": {},
    }.items():
        assert api.post(path, json=configmap(name, labels)).status_code == 201


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d", "e"]),
        ("app=web,tier=back", ["b"]),
        ("app in (web, db)", ["a", "b", "c"]),
        ("app notin (web,db)", ["d", "e"]),
        ("tier", ["a", "b", "c"]),
        ("!tier", ["d", "e"]),
        ("app,!tier", ["d"]),
        ("tier in (back),app notin (db)", ["b"]),
        ("app=nothing", []),
        ("", ["a", "b", "c", "d", "e"]),
    ],
)
def test_label_selectors(api: httpx.Client, labelled: None, selector: str, expected: list[str]) -> None:
    resp = api.get("/api/v1/namespaces/sel/configmaps", params={"labelSelector": selector})
    assert resp.status_code == 200, resp.text
    assert names(resp.json()) == expected


def test_label_selector_with_the_python_client(core: kubernetes.client.CoreV1Api, labelled: None) -> None:
    items = core.list_namespaced_config_map("sel", label_selector="app in (web),tier!=front").items
    assert [name_of(i) for i in items] == ["b"]


@pytest.mark.parametrize("selector", ["app in (web", "app in ()", "a=b=c", "app notin", "=x", "a b"])
def test_malformed_label_selector_is_400(api: httpx.Client, selector: str) -> None:
    assert_status(api.get(CM, params={"labelSelector": selector}), 400, "BadRequest")


def test_field_selectors(api: httpx.Client, labelled: None) -> None:
    body = api.get("/api/v1/configmaps", params={"fieldSelector": "metadata.namespace=sel"}).json()
    assert names(body) == ["a", "b", "c", "d", "e"]
    body = api.get("/api/v1/namespaces/sel/configmaps", params={"fieldSelector": "metadata.name=c"}).json()
    assert names(body) == ["c"]
    body = api.get(
        "/api/v1/configmaps", params={"fieldSelector": "metadata.namespace==sel,metadata.name!=c"}
    ).json()
    assert names(body) == ["a", "b", "d", "e"]
    body = api.get(
        "/api/v1/configmaps", params={"fieldSelector": "metadata.name=a", "labelSelector": "tier=front"}
    ).json()
    assert names(body) == ["a"]
    assert_status(
        api.get(CM, params={"fieldSelector": "spec.foo=bar"}), 400, "BadRequest", "field label not supported: spec.foo"
    )


def test_an_events_source_field_label_is_its_source_component(api: httpx.Client) -> None:
    """As the API server converts it: `source=X` selects Events whose source.component is X."""
    api.post("/api/v1/namespaces", json={"metadata": {"name": "evsrc"}})
    for name, component in (("ours", "rollouts-controller"), ("theirs", "kubelet")):
        event = {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "namespace": "evsrc", "name": "p"},
            "source": {"component": component, "host": "node-1"},
            "reason": "Test",
        }
        assert api.post("/api/v1/namespaces/evsrc/events", json=event).status_code == 201
    body = api.get("/api/v1/namespaces/evsrc/events", params={"fieldSelector": "source=rollouts-controller"}).json()
    assert names(body) == ["ours"]


def test_pagination_over_25_objects(api: httpx.Client, core: kubernetes.client.CoreV1Api) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "pages"}})
    path = "/api/v1/namespaces/pages/configmaps"
    for n in range(25):
        assert api.post(path, json=configmap(f"cm-{n:02d}")).status_code == 201
    seen: list[str] = []
    remaining: list[int | None] = []
    token = ""
    pages = 0
    while True:
        params = {"limit": "10", **({"continue": token} if token else {})}
        body = api.get(path, params=params).json()
        pages += 1
        seen += names(body)
        remaining.append(body["metadata"].get("remainingItemCount"))
        token = body["metadata"].get("continue", "")
        if not token:
            break
        # Writes between pages do not disturb the walk.
        api.post(path, json=configmap(f"zz-late-{pages}"))
    assert pages == 3
    assert seen[:25] == [f"cm-{n:02d}" for n in range(25)]
    assert len(seen) == len(set(seen))
    assert remaining[:2] == [15, 5 + 1]
    # The Python client pages the same way.
    first = core.list_namespaced_config_map("pages", limit=7)
    assert len(first.items) == 7 and first.metadata is not None and first.metadata._continue
    second = core.list_namespaced_config_map("pages", limit=7, _continue=first.metadata._continue)
    assert name_of(second.items[0]) == "cm-07"
    # With a selector the server cannot know how many remain, so it does not say.
    body = api.get(path, params={"limit": "2", "labelSelector": "!nothing"}).json()
    assert body["metadata"]["continue"] and "remainingItemCount" not in body["metadata"]


def test_list_carries_a_resource_version(api: httpx.Client) -> None:
    before = int(api.get(CM).json()["metadata"]["resourceVersion"])
    created = api.post(CM, json=configmap("listrv")).json()
    after = int(api.get(CM).json()["metadata"]["resourceVersion"])
    assert after >= int(created["metadata"]["resourceVersion"]) > before


# ---------------------------------------------------------------------------------------------- watch


def test_watch_from_resource_version_sees_only_later_events(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "w1"}})
    path = "/api/v1/namespaces/w1/configmaps"
    first = api.post(path, json=configmap("one", v="1")).json()
    rv = first["metadata"]["resourceVersion"]
    api.post(path, json=configmap("two"))
    api.patch(f"{path}/one", json={"data": {"v": "2"}}, headers=MERGE)
    api.delete(f"{path}/two")
    events = watch_events(api, path, resourceVersion=rv, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "two"),
        ("MODIFIED", "one"),
        ("DELETED", "two"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[1]["object"]["data"] == {"v": "2"}
    # Without a resourceVersion: the current state as synthetic ADDED events.
    events = watch_events(api, path, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]


def test_watch_resume_with_the_python_client(core: kubernetes.client.CoreV1Api, api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "w2"}})
    listing = core.list_namespaced_config_map("w2")
    assert listing.metadata is not None
    rv = listing.metadata.resource_version
    api.post("/api/v1/namespaces/w2/configmaps", json=configmap("x"))
    api.post("/api/v1/namespaces/w2/configmaps", json=configmap("y"))
    watcher = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    seen = []
    stream = watcher.stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_config_map, "w2", resource_version=rv, timeout_seconds=2
    )
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            watcher.stop()  # type: ignore[no-untyped-call]
    assert seen == [("ADDED", "x"), ("ADDED", "y")]
    # Resume where the watch stopped: only what happened since.
    api.delete("/api/v1/namespaces/w2/configmaps/x")
    resumed = []
    for event in watcher.stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_config_map, "w2", resource_version=watcher.resource_version, timeout_seconds=1
    ):
        resumed.append((event["type"], event["object"].metadata.name))
    assert resumed == [("DELETED", "x")]


def test_watch_follows_objects_into_and_out_of_a_label_selector(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "w3"}})
    path = "/api/v1/namespaces/w3/configmaps"
    rv = api.get(path).json()["metadata"]["resourceVersion"]
    api.post(path, json=configmap("in", {"team": "a"}))
    api.post(path, json=configmap("out", {"team": "b"}))
    api.patch(f"{path}/in", json={"data": {"k": "v"}}, headers=MERGE)  # MODIFIED, still in
    api.patch(f"{path}/out", json={"metadata": {"labels": {"team": "a"}}}, headers=MERGE)  # enters: ADDED
    api.patch(f"{path}/in", json={"metadata": {"labels": {"team": "c"}}}, headers=MERGE)  # leaves: DELETED
    api.patch(f"{path}/in", json={"data": {"k": "w"}}, headers=MERGE)  # outside: nothing
    api.delete(f"{path}/in")  # outside: nothing
    api.delete(f"{path}/out")  # inside: DELETED
    events = watch_events(api, path, resourceVersion=rv, labelSelector="team=a", timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "in"),
        ("MODIFIED", "in"),
        ("ADDED", "out"),
        ("DELETED", "in"),
        ("DELETED", "out"),
    ]
    # A field-selector watch sees one object only.
    events = watch_events(api, path, resourceVersion=rv, fieldSelector="metadata.name=out", timeoutSeconds="1")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_live_watch_receives_new_events(sandbox: SandboxHandle, api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "w4"}})
    path = "/api/v1/namespaces/w4/configmaps"
    rv = api.get(path).json()["metadata"]["resourceVersion"]
    with http(sandbox.url) as streamer, streamer.stream(
        "GET", path, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5"}
    ) as resp:
        lines = resp.iter_lines()
        api.post(path, json=configmap("live"))
        event = json.loads(next(line for line in lines if line))
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "live")


def test_watch_timeout_seconds_ends_the_stream(api: httpx.Client) -> None:
    start = time.monotonic()
    assert watch_events(api, CM, resourceVersion=api.get(CM).json()["metadata"]["resourceVersion"],
                        timeoutSeconds="1") == []
    assert 0.8 < time.monotonic() - start < 5


def test_bookmarks_only_when_asked(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "BOOKMARK_INTERVAL", 0.2)
    rv = api.get(CM).json()["metadata"]["resourceVersion"]
    events = watch_events(api, CM, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="1")
    assert events and {e["type"] for e in events} == {"BOOKMARK"}
    bookmark = events[0]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(rv)
    assert watch_events(api, CM, resourceVersion=rv, timeoutSeconds="1") == []


def test_initial_events_end_with_a_bookmark(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"metadata": {"name": "w5"}})
    path = "/api/v1/namespaces/w5/configmaps"
    api.post(path, json=configmap("p"))
    api.post(path, json=configmap("q"))
    events = watch_events(
        api, path, sendInitialEvents="true", allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan",
        timeoutSeconds="1",
    )
    assert [e["type"] for e in events[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[2]["object"]["metadata"]["resourceVersion"] == api.get(path).json()["metadata"]["resourceVersion"]


def test_watch_too_old_resource_version_is_410(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Through HTTP, on a sandbox whose history keeps 20 events: an ERROR event with a 410 Status."""
    monkeypatch.setattr(store_module, "HISTORY_LIMIT", 20)
    with ThreadedSandbox(kubeconfig_path=tmp_path / "kubeconfig") as small:
        with http(small.url) as api:
            first = api.post(CM, json=configmap("old")).json()["metadata"]["resourceVersion"]
            for n in range(30):
                api.patch(f"{CM}/old", json={"data": {"n": str(n)}}, headers=MERGE)
            events = watch_events(api, CM, resourceVersion=first, timeoutSeconds="1")
            assert len(events) == 1 and events[0]["type"] == "ERROR"
            status = events[0]["object"]
            assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
            assert status["message"].startswith(f"too old resource version: {first} (")
            # A recent resourceVersion still works.
            recent = api.get(CM).json()["metadata"]["resourceVersion"]
            assert watch_events(api, CM, resourceVersion=recent, timeoutSeconds="1") == []
        with api_client(tmp_path / "kubeconfig") as client:
            core = kubernetes.client.CoreV1Api(client)
            with pytest.raises(kubernetes.client.ApiException) as err:
                for _ in kubernetes.watch.Watch().stream(  # type: ignore[no-untyped-call]
                    core.list_namespaced_config_map, "default", resource_version=first, timeout_seconds=1
                ):
                    pass
            assert err.value.status == 410


def test_store_history_limit_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "HISTORY_LIMIT", 5)
    store = store_module.Store()
    rtype = store.registry.get("", "v1", "configmaps")
    assert rtype is not None
    created = store.create(rtype, "default", configmap("h"))
    start = int(created["metadata"]["resourceVersion"])
    for n in range(10):
        store.patch(rtype, "default", "h", MERGE_PATCH, {"data": {"n": str(n)}})
    with pytest.raises(ApiError) as err:
        store.watch(rtype, "default", str(start))
    assert err.value.code == 410 and err.value.reason == "Expired"
    # The oldest event still held can be resumed from; its predecessor cannot.
    newest = int(store.resource_version)
    _, backlog = store.watch(rtype, "default", str(newest - 5))
    assert len(backlog) == 5
    with pytest.raises(ApiError):
        store.watch(rtype, "default", str(newest - 6))
