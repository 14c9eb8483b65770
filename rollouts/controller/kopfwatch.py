"""kopf's watch loop, made to outlive a kind that stops being served.

kopf ends the whole operator when a watched kind answers 404 (its CRD was deleted, or the API server is a
new one without it): the error leaves `continuous_watch`, and every watch stops with it. client-go's
reflectors list again with a backoff instead, and so do we: :func:`install` wraps kopf's
`continuous_watch` so that a 404 ends that one stream after a pause, and kopf's `infinite_watch` lists
the kind again (and again, until it is served). The listing never reports what went away meanwhile:
rollouts.controller.resync drops that from the caches.

This reaches into kopf's private `_cogs` (it has no public hook for it); tests/unit/test_kopf_watch.py
fails if kopf moves the function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import errors, watching

log = logging.getLogger("pyrollouts.operator")

NOT_SERVED_RETRY_SECONDS = 2.0

_kopf_continuous_watch = watching.continuous_watch


async def continuous_watch_outliving_404(**kwargs: Any) -> AsyncIterator[Any]:
    """kopf's `continuous_watch`; a 404 (the kind is not served) ends the stream after a pause."""
    try:
        async for item in _kopf_continuous_watch(**kwargs):
            yield item
    except errors.APINotFoundError:
        log.warning(
            "%s is not served (its CRD was removed?); listing it again in %.0fs",
            kwargs.get("resource"),
            NOT_SERVED_RETRY_SECONDS,
        )
        await asyncio.sleep(NOT_SERVED_RETRY_SECONDS)


def install() -> None:
    watching.continuous_watch = continuous_watch_outliving_404
