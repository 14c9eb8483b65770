"""How much of a measurement an AnalysisRun keeps, so that a run stays well under the API server's
object limit (etcd refuses objects over about 1.5 MiB; every status write of a bigger run would fail
and the run would be stuck). Argo Rollouts stores measurements unbounded.

* A measurement's ``value`` keeps its first :data:`MAX_VALUE_CHARS` characters, its ``message`` its
  first :data:`MAX_MESSAGE_CHARS`, each ``metadata`` value its first :data:`MAX_METADATA_CHARS` (keys
  :data:`MAX_METADATA_KEY_CHARS`), at most :data:`MAX_METADATA_ENTRIES` entries; cut text ends with
  :data:`TRUNCATED_MARK` and says how long it was. Conditions see the whole value: only what is stored
  is cut. A judge's state (metadata ``judgeState``, only on the newest measurement) is not cut: it is
  read back.
* The run's ``status`` stays under :data:`MAX_STATUS_BYTES` of JSON whatever ``measurementRetention``
  says: the oldest retained measurements go first (never a metric's newest one).

Pure functions on the status JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_METADATA_CHARS",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_KEY_CHARS",
    "MAX_STATUS_BYTES",
    "MAX_VALUE_CHARS",
    "TRUNCATED_MARK",
    "cap_measurement",
    "cap_text",
    "fit_status",
]

MAX_VALUE_CHARS: Final = 4096
MAX_MESSAGE_CHARS: Final = 1024
MAX_METADATA_CHARS: Final = 1024
MAX_METADATA_KEY_CHARS: Final = 128
MAX_METADATA_ENTRIES: Final = 32  # a judge verdict has about 20
#: A quarter of the 1.5 MiB object limit: spec, metadata and managedFields share the object.
MAX_STATUS_BYTES: Final = 384 * 1024
TRUNCATED_MARK: Final = "... [truncated"
_UNCAPPED_METADATA: Final = frozenset({"judgeState"})


def cap_text(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and a mark with its length."""
    if len(text) <= limit:
        return text
    mark = f"{TRUNCATED_MARK} from {len(text)} characters]"
    return text[: max(0, limit - len(mark))] + mark


def cap_measurement(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A measurement's status entry with its value, message and metadata capped."""
    out = dict(entry)
    if isinstance(out.get("value"), str):
        out["value"] = cap_text(out["value"], MAX_VALUE_CHARS)
    if isinstance(out.get("message"), str):
        out["message"] = cap_text(out["message"], MAX_MESSAGE_CHARS)
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping):
        capped: dict[str, str] = {}
        for key, value in metadata.items():
            if key in _UNCAPPED_METADATA:
                capped[key] = value
            elif len(capped) < MAX_METADATA_ENTRIES:
                capped[cap_text(str(key), MAX_METADATA_KEY_CHARS)] = cap_text(str(value), MAX_METADATA_CHARS)
        out["metadata"] = capped
    return out


def _size(status: Mapping[str, Any]) -> int:
    return len(json.dumps(status, separators=(",", ":")).encode())


def fit_status(status: dict[str, Any], budget: int = MAX_STATUS_BYTES) -> int:
    """Drop the oldest retained measurements (round robin over the metrics, a metric's newest kept)
    until ``status`` is at most ``budget`` bytes of JSON; returns how many were dropped."""
    results = [r for r in status.get("metricResults") or [] if isinstance(r, dict)]
    size = _size(status)
    dropped = 0
    while size > budget:
        droppable = [r for r in results if len(r.get("measurements") or []) > 1]
        if not droppable:
            break
        for result in droppable:
            result["measurements"].pop(0)
            dropped += 1
        size = _size(status)
    return dropped
