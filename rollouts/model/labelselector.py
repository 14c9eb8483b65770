"""A metav1.LabelSelector as its string form (`metav1.FormatLabelSelector`): the `labelSelector`
query parameter, a scale subresource's `status.selector`, a Rollout's `status.selector`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_label_selector(selector: Any) -> str:
    """`a=b,c in (x,y),d notin (z),e,!f`; an empty or missing selector is ""."""
    if not isinstance(selector, Mapping) or not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(sorted(expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
