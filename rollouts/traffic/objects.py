"""Small pure helpers the routers share: merge-patch diffs, owner checks, annotation reads."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rollouts.traffic.router import Owner


def merge_diff(old: Any, new: Any) -> Any:
    """An RFC 7386 merge patch turning `old` into `new` for the keys of `new` (None: no difference).
    Keys only in `old` are left alone, so fields other controllers own survive."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        patch: dict[str, Any] = {}
        for key, value in new.items():
            if key not in old:
                if value is not None:
                    patch[key] = copy.deepcopy(value)
                continue
            if value is None:
                patch[key] = None
                continue
            sub = merge_diff(old[key], value)
            if sub is not None:
                patch[key] = sub
        return patch or None
    if old == new:
        return None
    return copy.deepcopy(new)


def as_dict(value: Any) -> dict[str, Any]:
    """A copy of `value` if it is a mapping, else {} (user-written specs may hold anything)."""
    return dict(value) if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """A copy of `value` if it is a list or tuple, else []."""
    return list(value) if isinstance(value, list | tuple) else []


def owned_by(obj: Mapping[str, Any], owner: Owner) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, Mapping) and r.get("uid") == owner.uid and r.get("controller") for r in refs)


def annotations_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    if obj is None:
        return {}
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items()}


def parse_quantity(value: Any) -> float | None:
    """A weight as written in an object: 20, "20", or a Kubernetes quantity such as "500m"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        if text.endswith("m"):
            return int(text[:-1]) / 1000
        return float(text)
    except ValueError:
        return None


def parse_weight(value: Any) -> int | None:
    """`parse_quantity`, rounded to a whole weight."""
    quantity = parse_quantity(value)
    return None if quantity is None else round(quantity)
