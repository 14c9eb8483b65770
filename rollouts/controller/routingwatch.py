"""Routing objects (Ingresses, VirtualServices, TrafficSplits, HTTPRoutes, ...) read from watch caches.

The kinds come from the router registry (`routed_kinds`). kopf watches each of them while the API server
serves it: it follows CRDs, so a kind whose CRD is installed after the controller started is watched from
then on (a watch per kind, not a discovery request per pass). A kind's objects are read from the cache only
once its watch has listed every object (:meth:`RoutingWatches.listed`, told by rollouts.controller.kopfwatch)
and until the kind stops being served or may not be watched; meanwhile they are read with a GET.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from rollouts.controller.client import Cache, Kind, kind_of
from rollouts.traffic.router import ObjectRef, RoutedKind

log = logging.getLogger("pyrollouts.operator")


class RoutingWatches:
    """Which routing kinds have a complete cache, per watched namespace (None: cluster-wide)."""

    def __init__(
        self, cache: Cache, kinds: Sequence[RoutedKind], changed: Callable[[Kind, dict[str, Any]], None]
    ) -> None:
        self.cache = cache
        self.kinds = {k.plural: kind_of(k.api_version, k.plural, k.kind) for k in kinds}
        self.changed = changed  # an object the listing brought or took away: its Rollouts look again
        self._complete: set[tuple[str, str | None]] = set()

    def wants(self, plural: str) -> bool:
        return plural in self.kinds

    def listed(self, plural: str, namespace: str | None, objects: list[dict[str, Any]]) -> None:
        """A watch listed every object of `plural`: the cache holds exactly those (later events keep it)."""
        kind = self.kinds[plural]
        mark = self.cache.mark()
        for obj in objects:
            if self.cache.put(kind, obj):
                self.changed(kind, obj)
        for obj in self.cache.forget_unlisted(kind, objects, mark, namespace):
            self.changed(kind, obj)
        if (plural, namespace) not in self._complete:
            log.info("watching %s%s: its objects are read from the cache", plural,
                     f" in {namespace}" if namespace else "")
        self._complete.add((plural, namespace))

    def unserved(self, plural: str, namespace: str | None) -> None:
        """The kind is not served (or not ours to watch): read with a GET again, forget what was cached."""
        self._complete.discard((plural, namespace))
        kind = self.kinds[plural]
        for obj in list(self.cache.all(kind, namespace)):
            self.cache.remove(kind, obj)
            self.changed(kind, obj)

    def cached(self, ref: ObjectRef) -> bool:
        """Is `ref` read from the cache (its kind's watch covering its namespace has listed)?"""
        return (ref.plural, None) in self._complete or (ref.plural, ref.namespace) in self._complete
