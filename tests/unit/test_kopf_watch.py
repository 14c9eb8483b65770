"""The wrapper that keeps kopf's watches alive when a kind stops being served: it replaces the function
kopf's watch loop calls, passes events through, and turns a 404 into the end of one stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching

from rollouts.controller import kopfwatch


def test_install_replaces_the_function_kopfs_watch_loop_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)  # put back after the test
    # kopf's loop looks the name up in its module at every call (a global of infinite_watch)
    assert "continuous_watch" in watching.infinite_watch.__code__.co_names
    kopfwatch.install()
    assert watching.continuous_watch is kopfwatch.continuous_watch_outliving_404


def test_events_pass_and_a_404_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    async def kopf_stream(**_: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "ADDED"}
        raise errors.APINotFoundError("the server could not find the requested resource", status=404, headers={})

    monkeypatch.setattr(kopfwatch, "_kopf_continuous_watch", kopf_stream)
    monkeypatch.setattr(kopfwatch, "NOT_SERVED_RETRY_SECONDS", 0.0)

    async def collect() -> list[Any]:
        return [event async for event in kopfwatch.continuous_watch_outliving_404(resource="rollouts")]

    assert asyncio.run(collect()) == [{"type": "ADDED"}]


ISTIO_VS = "virtualservices.networking.istio.io"


class Recorder:
    """A listener that wants Istio's `virtualservices` and writes down what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[Any, ...]] = []

    def wants(self, resource: str) -> bool:
        return resource == ISTIO_VS

    def listed(self, resource: str, namespace: str | None, objects: list[dict[str, Any]]) -> None:
        self.heard.append(("listed", resource, namespace, [o["metadata"]["name"] for o in objects]))

    def unserved(self, resource: str, namespace: str | None) -> None:
        self.heard.append(("unserved", resource, namespace))


class Resource:
    """kopf's resource, as much as the wrapper reads of it."""

    def __init__(self, resource: str) -> None:
        self.plural, _, self.group = resource.partition(".")


def run_stream(monkeypatch: pytest.MonkeyPatch, resource: str, error: Exception | None) -> tuple[list[Any], Recorder]:
    async def kopf_stream(**_: Any) -> AsyncIterator[Any]:
        yield {"type": None, "object": {"metadata": {"name": "listed-one"}}}
        yield watching.Bookmark.LISTED
        yield {"type": "ADDED", "object": {"metadata": {"name": "added-later"}}}
        if error is not None:
            raise error

    recorder = Recorder()
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)  # put back after the test
    monkeypatch.setattr(kopfwatch, "_kopf_continuous_watch", kopf_stream)
    monkeypatch.setattr(kopfwatch, "NOT_SERVED_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(kopfwatch, "FORBIDDEN_RETRY_SECONDS", 0.0)
    kopfwatch.install(recorder)

    async def collect() -> list[Any]:
        stream = kopfwatch.continuous_watch_outliving_404(resource=Resource(resource), namespace="ns")
        return [event async for event in stream]

    try:
        return asyncio.run(collect()), recorder
    finally:
        kopfwatch.install(None)


NOT_FOUND = errors.APINotFoundError("not found", status=404, headers={})
FORBIDDEN = errors.APIForbiddenError("forbidden", status=403, headers={})


def test_the_listener_hears_of_the_listing_once_with_the_listed_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    events, recorder = run_stream(monkeypatch, ISTIO_VS, None)
    assert len(events) == 3  # every item passes on to kopf
    assert recorder.heard == [("listed", ISTIO_VS, "ns", ["listed-one"])]


def test_a_404_tells_the_listener_the_kind_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    _, recorder = run_stream(monkeypatch, ISTIO_VS, NOT_FOUND)
    assert recorder.heard[-1] == ("unserved", ISTIO_VS, "ns")


def test_a_403_pauses_a_wanted_kinds_stream_but_ends_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    _, recorder = run_stream(monkeypatch, ISTIO_VS, FORBIDDEN)
    assert recorder.heard[-1] == ("unserved", ISTIO_VS, "ns")
    with pytest.raises(errors.APIForbiddenError):
        run_stream(monkeypatch, "replicasets.apps", FORBIDDEN)


def test_kinds_the_listener_does_not_want_are_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _, recorder = run_stream(monkeypatch, "replicasets.apps", NOT_FOUND)
    assert recorder.heard == []


def test_kinds_are_told_apart_by_group_not_by_plural_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """App Mesh also serves `virtualservices`: its stream is not the Istio kind the listener wants."""
    _, recorder = run_stream(monkeypatch, "virtualservices.appmesh.k8s.aws", NOT_FOUND)
    assert recorder.heard == []


class Taker:
    """A dispatcher that takes the events of `taken` once `ready`, and fails on an object named `bad`."""

    def __init__(self, taken: str) -> None:
        self.taken = taken
        self.ready = False
        self.got: list[tuple[str, Any]] = []

    def takes(self, resource: str) -> bool:
        return self.ready and resource == self.taken

    def dispatch(self, resource: str, event: dict[str, Any]) -> None:
        if event["object"]["metadata"]["name"] == "bad":
            raise ValueError("a handler's bug")
        self.got.append((resource, event["object"]["metadata"]["name"]))


def dispatch_stream(monkeypatch: pytest.MonkeyPatch, resource: str, taker: Taker) -> list[Any]:
    """What kopf gets of a stream: a listing (before the dispatcher is ready), then events after it."""

    async def kopf_stream(**_: Any) -> AsyncIterator[Any]:
        yield {"type": None, "object": {"metadata": {"name": "listed-one"}}}
        yield watching.Bookmark.LISTED
        taker.ready = True  # what the controller's first event handler does: every listing is done
        yield {"type": "ADDED", "object": {"metadata": {"name": "bad"}}}
        yield {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}
        yield {"type": "MODIFIED", "object": {"metadata": {"name": "changed"}}}
        yield {"type": "DELETED", "object": {"metadata": {"name": "gone"}}}

    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)  # put back after the test
    monkeypatch.setattr(kopfwatch, "_kopf_continuous_watch", kopf_stream)
    kopfwatch.install(None, taker)

    async def collect() -> list[Any]:
        return [event async for event in kopfwatch.continuous_watch_outliving_404(resource=Resource(resource))]

    try:
        return asyncio.run(collect())
    finally:
        kopfwatch.install(None)


def test_a_dispatcher_takes_its_kinds_events_past_kopf_once_it_is_ready(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    taker = Taker("replicasets.apps")
    to_kopf = dispatch_stream(monkeypatch, "replicasets.apps", taker)
    # the listing went to kopf (its index handlers fill the caches); kopf's own bookmarks always do
    assert to_kopf[:2] == [{"type": None, "object": {"metadata": {"name": "listed-one"}}}, watching.Bookmark.LISTED]
    assert [item.get("type") for item in to_kopf[2:]] == ["BOOKMARK"]
    # a failing handler is logged and the stream goes on, as kopf does with an event handler's error
    assert taker.got == [("replicasets.apps", "changed"), ("replicasets.apps", "gone")]
    assert "handling a watch event of replicasets.apps failed" in caplog.text


def test_kinds_the_dispatcher_does_not_take_go_to_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    taker = Taker("replicasets.apps")
    to_kopf = dispatch_stream(monkeypatch, "pods", taker)
    assert len(to_kopf) == 6 and taker.got == []
