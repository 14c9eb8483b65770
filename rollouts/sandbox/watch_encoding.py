"""One JSON encoding per watch event, shared by every watch stream that sends it.

With hundreds of watches on one kind, encoding a large object once per stream kept the event loop busy
for seconds (288 watches and a 15 MB ConfigMap froze the sandbox for 40 s); the bytes of an event are
the same for every stream of the same apiVersion, so they are encoded once and kept while recent.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

# Recent encodings kept, by total size: a burst of events fans out to every watch within one pass of
# the event loop, so a few MiB cover it without holding many large objects alive.
CACHE_BYTES = 16 * 1024 * 1024

_Key = tuple[str, str, str, str, str]


def event_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


class SharedEncodings:
    """Encoded watch lines by (event type, resourceVersion, namespace, name, apiVersion).

    A resourceVersion names one write of the store, so a key always describes the same bytes."""

    def __init__(self, limit_bytes: int = CACHE_BYTES) -> None:
        self._lines: OrderedDict[_Key, bytes] = OrderedDict()
        self._bytes = 0
        self._limit = limit_bytes

    def line(self, event_type: str, obj: dict[str, Any]) -> bytes:
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if not rv:
            return event_line(event_type, obj)
        key = (event_type, str(rv), meta.get("namespace") or "", meta.get("name") or "", obj.get("apiVersion") or "")
        cached = self._lines.get(key)
        if cached is not None:
            self._lines.move_to_end(key)
            return cached
        encoded = event_line(event_type, obj)
        self._lines[key] = encoded
        self._bytes += len(encoded)
        while self._bytes > self._limit and len(self._lines) > 1:
            _, dropped = self._lines.popitem(last=False)
            self._bytes -= len(dropped)
        return encoded
