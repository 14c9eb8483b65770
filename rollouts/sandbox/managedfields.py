"""metadata.managedFields as the sandbox records them: one entry per manager and operation.

Informative only: field ownership between managers is not enforced (every apply behaves as
`--force-conflicts`), so an entry lists the fields of the whole object as the manager last wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def record_manager(obj: dict[str, Any], manager: str, operation: str, timestamp: str) -> None:
    """Put (or replace) the manager's entry for this operation in the object's managedFields."""
    meta = obj["metadata"]
    entries = [
        e
        for e in meta.get("managedFields") or []
        if not (e.get("manager") == manager and e.get("operation") == operation)
    ]
    entries.append(
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": obj.get("apiVersion", ""),
            "time": timestamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields_v1(obj, top=True),
        }
    )
    meta["managedFields"] = entries


def without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}


def _fields_v1(value: Any, top: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    skip = {"apiVersion", "kind"} if top else set()
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if key in skip or (top and key == "metadata"):
            continue
        out[f"f:{key}"] = _fields_v1(sub)
    if top and isinstance(value.get("metadata"), dict):
        meta = {f"f:{k}": _fields_v1(v) for k, v in value["metadata"].items() if k in ("labels", "annotations")}
        if meta:
            out["f:metadata"] = meta
    return out
