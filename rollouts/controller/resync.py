"""Listing everything again when the caches may describe a server that is no more.

kopf resumes a cut watch from its last resourceVersion (as client-go does) and lists again only after
410 Expired; a listing never reports the objects that went away meanwhile, and an API server started
again empty lists nothing at all, so the handlers hear nothing. Two things notice instead:

- :class:`ServerWatch` keeps one watch of its own open (Rollouts, resumed from its resourceVersion). A
  server it cannot reach, or that refuses the resourceVersion (410: expired, or never reached, as after
  a restart empty), triggers a resync.
- The API client reports every request that could not connect (`Client.on_connection_lost`).

:class:`Resync` then holds every write (the client refuses them with ``WritesHeld``), lists each watched
kind, drops from the cache what the listings lack (the handlers hear of it as a deletion, so the owners
look again), releases the writes and queues everything again: nothing is written from memory of objects
the server no longer has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rollouts.controller.client import ROLLOUTS, ApiError, Cache, Client, Kind

log = logging.getLogger("pyrollouts.resync")

RESYNC_RETRY_SECONDS = 1.0
SERVER_WATCH_SECONDS = 300


@dataclass(frozen=True)
class Watched:
    """A watched kind and the label selector its watch uses (None: every object)."""

    kind: Kind
    label_selector: str | None = None


class Resync:
    """Lists the watched kinds again on `trigger()`; writes are held (`held`) until it has."""

    def __init__(
        self,
        client: Client,
        cache: Cache,
        watched: Sequence[Watched],
        namespaces: Sequence[str],
        forgotten: Callable[[Kind, dict[str, Any]], None],
        done: Callable[[], None],
    ) -> None:
        self.client = client
        self.cache = cache
        self.watched = list(watched)
        self.namespaces = list(namespaces)
        self.forgotten = forgotten
        self.done = done
        self.held = False
        self.count = 0  # resyncs completed
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def trigger(self, why: str) -> None:
        if not self.held:
            log.warning("%s: holding writes until every watched kind is listed again", why)
        self.held = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="resync")
        else:
            self._again = True  # a listing under way may predate the cause: list once more after it

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self._list_all()
            except ApiError as exc:
                log.info("listing again failed (%s); retrying in %.0fs", exc, RESYNC_RETRY_SECONDS)
                await asyncio.sleep(RESYNC_RETRY_SECONDS)
                self._again = True
            if not self._again:
                break
        self.held = False
        self.count += 1
        log.info("every watched kind listed again; writes resume")
        self.done()

    async def _list_all(self) -> None:
        for watched in self.watched:
            kind = watched.kind
            mark = self.cache.mark()
            listed: list[dict[str, Any]] = []
            scopes: list[str | None] = list(self.namespaces) if self.namespaces and kind.namespaced else [None]
            try:
                for namespace in scopes:
                    listed += await self._list(watched, namespace)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                # Not ours to list (kopf cannot watch it either): keep what we know rather than hold all writes.
                log.warning("cannot list %s again (%s); keeping the cached ones", kind.plural, exc)
                continue
            for obj in listed:
                self.cache.put(kind, obj)
            for obj in self.cache.forget_unlisted(kind, listed, mark):
                self.forgotten(kind, obj)


    async def _list(self, watched: Watched, namespace: str | None) -> list[dict[str, Any]]:
        kind = watched.kind
        try:
            answer = await self.client.list(kind, namespace, watched.label_selector)
        except ApiError as exc:
            if not exc.not_found:
                raise
            return []  # the kind is not served (its CRD is not installed): none of it exists
        return [{"apiVersion": kind.api_version, "kind": kind.kind, **o} for o in answer.get("items") or []]


class ServerWatch:
    """One watch of Rollouts (in `namespace`, or all) kept open to notice an API server that went away or
    came back as another. Its client is its own: its requests are not the controller's work."""

    def __init__(self, client: Client, namespace: str | None, label_selector: str, lost: Callable[[str], None]) -> None:
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.lost = lost

    async def run(self) -> None:
        version: str | None = None
        failing = False  # one trigger per outage: the resync itself tries until it can list
        while True:
            try:
                if version is None:
                    listing = await self.client.list(ROLLOUTS, self.namespace, self.label_selector)
                    version = str(listing.get("metadata", {}).get("resourceVersion") or "")
                failing = False
                version = await self._follow(version)
            except ApiError as exc:
                if not failing:
                    self.lost(f"the API server cannot be reached or refused a watch ({exc})")
                failing = True
                version = None
                await asyncio.sleep(RESYNC_RETRY_SECONDS)

    async def _follow(self, version: str) -> str | None:
        """Watch from `version` until the stream ends; the version to go on from (None: list again)."""
        params = {
            "resourceVersion": version,
            "labelSelector": self.label_selector,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(SERVER_WATCH_SECONDS),
        }
        async for event in self.client.watch(ROLLOUTS, self.namespace, params):
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                self.lost(f"the API server refused resourceVersion {version}: {obj.get('message', obj)}")
                return None
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        return version
