"""The sandbox's Endpoints index: the pods a Service selects and the Services a pod event concerns are
found by label pair, never by a scan, and follow label, selector, deletion and deletionTimestamp changes."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.sandbox.endpoints import SelectorIndex


def pod(labels: dict[str, str], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


def service(selector: dict[str, str]) -> dict[str, Any]:
    return {"spec": {"selector": selector}}


def test_a_service_selects_the_pods_carrying_its_whole_selector() -> None:
    index = SelectorIndex()
    index.service_changed("ns", "web-stable", service({"app": "web", "hash": "a"}))
    index.service_changed("ns", "web-canary", service({"app": "web", "hash": "b"}))
    assert index.pod_changed("ns", "p1", pod({"app": "web", "hash": "a"})) == {"web-stable"}
    assert index.pod_changed("ns", "p2", pod({"app": "web", "hash": "b"})) == {"web-canary"}
    index.pod_changed("other", "p3", pod({"app": "web", "hash": "a"}))  # another namespace
    assert index.selected_pods("ns", "web-stable") == ["p1"]
    assert index.selected_pods("ns", "web-canary") == ["p2"]


def test_relabelled_deleting_and_deleted_pods_leave_their_services() -> None:
    index = SelectorIndex()
    index.service_changed("ns", "web", service({"app": "web"}))
    index.pod_changed("ns", "p1", pod({"app": "web"}))
    assert index.pod_changed("ns", "p1", pod({"app": "api"})) == {"web"}  # the Service it left syncs
    assert index.selected_pods("ns", "web") == []
    index.pod_changed("ns", "p1", pod({"app": "web"}))
    assert index.pod_changed("ns", "p1", pod({"app": "web"}, deleting=True)) == {"web"}
    assert index.selected_pods("ns", "web") == []
    index.pod_changed("ns", "p1", pod({"app": "web"}))
    assert index.pod_changed("ns", "p1", None) == {"web"}
    assert index.selected_pods("ns", "web") == []


def test_a_selector_change_selects_other_pods_and_no_selector_selects_none() -> None:
    index = SelectorIndex()
    index.pod_changed("ns", "old", pod({"app": "web", "hash": "a"}))
    index.pod_changed("ns", "new", pod({"app": "web", "hash": "b"}))
    index.service_changed("ns", "web", service({"app": "web", "hash": "a"}))
    assert index.selected_pods("ns", "web") == ["old"]
    index.service_changed("ns", "web", service({"app": "web", "hash": "b"}))
    assert index.selected_pods("ns", "web") == ["new"]
    index.service_changed("ns", "web", service({}))
    assert index.selected_pods("ns", "web") == []
    index.service_changed("ns", "web", None)
    assert index.pod_changed("ns", "new", pod({"app": "web", "hash": "b"})) == set()


@pytest.mark.parametrize("pods", [100, 10_000])
def test_an_event_looks_at_its_own_services_only(pods: int) -> None:
    """10,000 pods in one namespace, two Services per app: a pod event touches its app's Services."""
    index = SelectorIndex()
    for i in range(pods // 2):
        index.service_changed("ns", f"stable-{i}", service({"app": f"app-{i}", "role": "stable"}))
        index.service_changed("ns", f"canary-{i}", service({"app": f"app-{i}", "role": "canary"}))
    for i in range(pods):
        index.pod_changed("ns", f"pod-{i}", pod({"app": f"app-{i // 2}", "role": "stable"}))
    assert index.pod_changed("ns", "pod-7", pod({"app": "app-3", "role": "canary"})) == {"stable-3", "canary-3"}
    assert index.selected_pods("ns", "canary-3") == ["pod-7"]
