"""Routing objects (Ingresses, VirtualServices, TrafficSplits, HTTPRoutes, ...) read from watch caches.

The kinds come from the router registry (`routed_kinds`). kopf watches each of them while the API server
serves it: it follows CRDs, so a kind whose CRD is installed after the controller started is watched from
then on (a watch per kind, not a discovery request per pass). A kind's objects are read from the cache only
once its watch has listed every object (:meth:`RoutingWatches.listed`, told by rollouts.controller.kopfwatch)
and until the kind stops being served or may not be watched; meanwhile they are read with a GET.

Kinds are keyed by resource (`Kind.resource`: plural and group), never by plural alone: Istio's and App
Mesh's `virtualservices` are two kinds, watched and cached apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from rollouts.controller.client import Cache, Kind, kind_of
from rollouts.traffic.router import ObjectRef, RoutedKind

log = logging.getLogger("pyrollouts.operator")


def ref_kind(ref: ObjectRef | RoutedKind) -> Kind:
    """The Kind a router's object reference or declared kind names."""
    return kind_of(ref.api_version, ref.plural, ref.kind)


class RoutingWatches:
    """Which routing kinds have a complete cache, per watched namespace (None: cluster-wide)."""

    def __init__(
        self, cache: Cache, kinds: Sequence[RoutedKind], changed: Callable[[Kind, dict[str, Any]], None]
    ) -> None:
        self.cache = cache
        self.kinds: dict[str, Kind] = {}  # by resource; the first version declared of a resource wins
        for routed in kinds:
            self.kinds.setdefault(ref_kind(routed).resource, ref_kind(routed))
        self.changed = changed  # an object the listing brought or took away: its Rollouts look again
        self._complete: set[tuple[str, str | None]] = set()

    def wants(self, resource: str) -> bool:
        return resource in self.kinds

    def listed(self, resource: str, namespace: str | None, objects: list[dict[str, Any]]) -> None:
        """A watch listed every object of `resource`: the cache holds exactly those (later events keep it)."""
        kind = self.kinds[resource]
        mark = self.cache.mark()
        for obj in objects:
            if self.cache.put(kind, obj):
                self.changed(kind, obj)
        for obj in self.cache.forget_unlisted(kind, objects, mark, namespace):
            self.changed(kind, obj)
        if (resource, namespace) not in self._complete:
            log.info("watching %s%s: its objects are read from the cache", resource,
                     f" in {namespace}" if namespace else "")
        self._complete.add((resource, namespace))

    def unserved(self, resource: str, namespace: str | None) -> None:
        """The kind is not served (or not ours to watch): read with a GET again, forget what was cached."""
        self._complete.discard((resource, namespace))
        kind = self.kinds[resource]
        for obj in list(self.cache.all(kind, namespace)):
            self.cache.remove(kind, obj)
            self.changed(kind, obj)

    def cached(self, ref: ObjectRef) -> bool:
        """Is `ref` read from the cache (its kind's watch covering its namespace has listed)?"""
        resource = ref_kind(ref).resource
        return (resource, None) in self._complete or (resource, ref.namespace) in self._complete
