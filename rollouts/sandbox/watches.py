"""Watch fan-out of the sandbox's store: the event history, the open watches and in-process listeners.

Every write of the store becomes one Event; each open watch sees it through its selectors (an object
entering or leaving them is ADDED or DELETED for that watch), and the history lets a watch resume
from a resourceVersion until it falls out of the window (410 Expired, as after an etcd compaction).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollouts.sandbox.errors import ApiError, bad_request
from rollouts.sandbox.selectors import FieldMatcher, Requirement, matches_labels

WATCH_QUEUE_LIMIT = 100_000

WatchItem = tuple[str, dict[str, Any]]  # (event type, object) as a watch sends it


@dataclass
class Event:
    rv: int
    key: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    """One open watch: a filter and the queue its events go to."""

    key: str
    namespace: str | None
    labels: list[Requirement]
    fields: FieldMatcher | None
    queue: asyncio.Queue[WatchItem | None] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def matches(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if not matches_labels(self.labels, meta.get("labels")):
            return False
        return self.fields is None or self.fields(obj)

    def translate(self, event: Event) -> WatchItem | None:
        """What this watcher sees of an event: objects entering or leaving its selector become ADDED/DELETED."""
        if event.key != self.key:
            return None
        now_in = event.type != "DELETED" and self.matches(event.obj)
        was_in = (
            self.matches(event.old)
            if event.type == "MODIFIED"
            else event.type == "DELETED" and self.matches(event.obj)
        )
        if event.type == "ADDED":
            return ("ADDED", event.obj) if now_in else None
        if event.type == "DELETED":
            return ("DELETED", event.obj) if was_in else None
        if now_in and was_in:
            return ("MODIFIED", event.obj)
        if now_in:
            return ("ADDED", event.obj)
        if was_in:
            return ("DELETED", event.obj)
        return None

    def offer(self, item: WatchItem) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            # A watcher that cannot keep up is dropped, as the real server does; the client relists.
            self.close()
            return
        self.queue.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class EventHub:
    """The last `history_limit` events, the open watches and the in-process listeners they go to."""

    def __init__(self, history_limit: int) -> None:
        self._history: deque[Event] = deque(maxlen=history_limit)
        self._oldest_rv = 1
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._oldest_rv = self._history[0].rv
        self._history.append(event)
        for watcher in list(self._watchers):
            item = watcher.translate(event)
            if item is not None:
                watcher.offer(item)
        for listener in self._listeners:
            listener(event)

    def replay(self, watcher: Watcher, resource_version: str, current: int) -> list[WatchItem]:
        """What the watcher missed since resource_version; 410 Expired once the history no longer reaches it,
        or for a version this store never reached (a client of the store before a restart: kube-apiserver
        answers "Too large resource version", after which client-go lists again; kopf lists again on 410)."""
        try:
            since = int(resource_version)
        except ValueError as exc:
            raise bad_request(f'invalid resource version "{resource_version}"') from exc
        if since < self._oldest_rv:
            raise ApiError(410, "Expired", f"too old resource version: {since} ({self._oldest_rv})")
        if since > current:
            raise ApiError(410, "Expired", f"Too large resource version: {since}, current: {current}")
        backlog: list[WatchItem] = []
        for event in self._history:
            if event.rv > since:
                item = watcher.translate(event)
                if item is not None:
                    backlog.append(item)
        return backlog

    def add(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def stop(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_all(self) -> None:
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()
