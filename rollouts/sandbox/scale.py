"""The `/scale` subresource: an autoscaling/v1 Scale view of an object, and the write of its replicas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rollouts.model.labelselector import format_label_selector
from rollouts.sandbox.errors import Cause, invalid
from rollouts.sandbox.jsoncopy import json_copy
from rollouts.sandbox.resources import ScaleSpec


def scale_of(obj: Mapping[str, Any], spec: ScaleSpec, builtin: bool) -> dict[str, Any]:
    """The Scale a GET of `<object>/scale` answers."""
    meta = obj["metadata"]
    selector: Any = None
    if spec.label_selector_path:
        selector = _get_path(obj, spec.label_selector_path)
    if builtin:
        selector = format_label_selector((obj.get("spec") or {}).get("selector"))
    status: dict[str, Any] = {"replicas": int(_get_path(obj, spec.status_replicas_path) or 0)}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": int(_get_path(obj, spec.spec_replicas_path) or 0)},
        "status": status,
    }


def requested_replicas(name: str, body: Mapping[str, Any]) -> int:
    """The replicas a written Scale asks for; 422 unless a non-negative integer."""
    replicas = (body.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(
            "Scale",
            "autoscaling",
            name,
            [
                Cause(
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
                )
            ],
        )
    return replicas


def with_replicas(obj: dict[str, Any], spec: ScaleSpec, replicas: int) -> dict[str, Any]:
    """A copy of the object with its replicas (where the Scale spec says they are) set."""
    new: dict[str, Any] = json_copy(obj)
    _set_path(new, spec.spec_replicas_path, replicas)
    return new


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    current = obj
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value
