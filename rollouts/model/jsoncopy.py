"""A deep copy of JSON-shaped data (dicts, lists, scalars), several times cheaper than ``copy.deepcopy``
(no memo, no dispatch table): the planners copy a Rollout's status several times per pass, on every
pass of every Rollout. Anything else (a tuple, a Mapping that is not a dict) goes to ``copy.deepcopy``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if isinstance(v, _SCALARS) else json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if isinstance(v, _SCALARS) else json_copy(v) for v in value]
    if isinstance(value, _SCALARS):
        return value
    return copy.deepcopy(value)


def copy_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object, as a dict."""
    return {k: v if isinstance(v, _SCALARS) else json_copy(v) for k, v in value.items()}
