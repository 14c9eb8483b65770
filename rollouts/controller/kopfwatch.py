"""kopf's watch loop, made to outlive a kind that stops being served.

kopf ends the whole operator when a watched kind answers 404 (its CRD was deleted, or the API server is a
new one without it): the error leaves `continuous_watch`, and every watch stops with it. client-go's
reflectors list again with a backoff instead, and so do we: :func:`install` wraps kopf's
`continuous_watch` so that a 404 ends that one stream after a pause, and kopf's `infinite_watch` lists
the kind again (and again, until it is served). The listing never reports what went away meanwhile:
rollouts.controller.resync drops that from the caches.

The wrapper also tells a :class:`Listener` when a stream of a kind it wants has listed every object (with
the objects listed) and when the kind stopped being served: the controller reads routing objects from its
cache only while their kind's watch is complete (rollouts.controller.routingwatch). For such optional
kinds a 403 (the role does not grant list/watch) pauses that one stream instead of ending the operator.

Once a :class:`Dispatcher` `takes` a kind (the controller: once every first listing is done), the wrapper
hands it that kind's events itself and kopf never sees them: kopf's per-event machinery (a task and queue
per object, its memories, a diff-base copy of every body, causes, handler invocation, the index filter)
was a third of the controller's CPU at scale, for handlers that only update a cache and queue a Rollout.
kopf still lists, watches, logs in and follows CRDs.

This reaches into kopf's private `_cogs` (it has no public hook for it); tests/unit/test_kopf_watch.py
fails if kopf moves the function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from kopf._cogs.clients import errors, watching

from rollouts.controller.client import resource_key

log = logging.getLogger("pyrollouts.operator")

NOT_SERVED_RETRY_SECONDS = 2.0
FORBIDDEN_RETRY_SECONDS = 60.0

_kopf_continuous_watch = watching.continuous_watch


class Listener(Protocol):
    """Told about the streams of the kinds it `wants` (by resource, `Kind.resource`: plural and group;
    namespace None: cluster-wide)."""

    def wants(self, resource: str) -> bool: ...

    def listed(self, resource: str, namespace: str | None, objects: list[dict[str, Any]]) -> None: ...

    def unserved(self, resource: str, namespace: str | None) -> None: ...


class Dispatcher(Protocol):
    """Takes the events of the kinds it `takes` (by resource) past kopf; `dispatch` must not block."""

    def takes(self, resource: str) -> bool: ...

    def dispatch(self, resource: str, event: dict[str, Any]) -> None: ...


_listener: Listener | None = None
_dispatcher: Dispatcher | None = None


async def continuous_watch_outliving_404(**kwargs: Any) -> AsyncIterator[Any]:
    """kopf's `continuous_watch`; a 404 (the kind is not served) ends the stream after a pause."""
    resource, namespace = kwargs.get("resource"), kwargs.get("namespace")
    plural = str(getattr(resource, "plural", resource))
    key = resource_key(str(getattr(resource, "group", "") or ""), plural)
    listener = _listener if _listener is not None and _listener.wants(key) else None
    listing: list[dict[str, Any]] | None = [] if listener is not None else None
    try:
        async for item in _kopf_continuous_watch(**kwargs):
            if listing is not None and listener is not None:
                if item is watching.Bookmark.LISTED:
                    listener.listed(key, namespace, listing)
                    listing = None
                elif isinstance(item, dict) and item.get("type") is None:
                    listing.append(dict(item["object"]))
            if _dispatched(key, item):
                continue
            yield item
    except errors.APINotFoundError:
        log.warning("%s is not served (its CRD was removed?); listing it again in %.0fs", resource,
                    NOT_SERVED_RETRY_SECONDS)
        if listener is not None:
            listener.unserved(key, namespace)
        await asyncio.sleep(NOT_SERVED_RETRY_SECONDS)
    except errors.APIForbiddenError as exc:
        if listener is None:
            raise
        log.warning("cannot watch %s (%s): its objects are read with a GET on every pass; trying again in %.0fs "
                    "(grant the controller's role list and watch on %s)", resource, exc, FORBIDDEN_RETRY_SECONDS,
                    key)
        listener.unserved(key, namespace)
        await asyncio.sleep(FORBIDDEN_RETRY_SECONDS)


def _dispatched(key: str, item: Any) -> bool:
    """Was this stream item an event the dispatcher took (kopf gets everything else)?"""
    dispatcher = _dispatcher
    if dispatcher is None or not isinstance(item, dict) or item.get("type") == "BOOKMARK":
        return False
    if not dispatcher.takes(key):
        return False
    try:
        dispatcher.dispatch(key, item)
    except Exception:  # as kopf does with an event handler's error: logged, the stream goes on
        log.exception("handling a watch event of %s failed", key)
    return True


def install(listener: Listener | None = None, dispatcher: Dispatcher | None = None) -> None:
    """Put the wrapper in kopf's place; `listener` hears of the listings and ends of the kinds it wants,
    `dispatcher` takes the events of the kinds it takes."""
    global _listener, _dispatcher
    _listener = listener
    _dispatcher = dispatcher
    watching.continuous_watch = continuous_watch_outliving_404
