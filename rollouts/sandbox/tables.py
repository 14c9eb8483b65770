"""Server-side printing: `Table` answers for `kubectl get` (built-in columns and CRD printer columns)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.parser import parse as parse_jsonpath

from rollouts.model.durations import human_duration
from rollouts.sandbox.resources import ResourceType

Cell = Callable[[Mapping[str, Any], float], Any]


def parse_timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value.replace(".000000", "")[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def _age_of(value: Any, now: float) -> str:
    ts = parse_timestamp(value)
    return "<unknown>" if ts is None else human_duration(now - ts)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name(obj: Mapping[str, Any], _now: float) -> Any:
    return _meta(obj).get("name", "")


def _age(obj: Mapping[str, Any], now: float) -> Any:
    return _age_of(_meta(obj).get("creationTimestamp"), now)


def _at(*path: str, default: Any = 0) -> Cell:
    def cell(obj: Mapping[str, Any], _now: float) -> Any:
        current: Any = obj
        for part in path:
            if not isinstance(current, Mapping):
                return default
            current = current.get(part)
        return default if current is None else current

    return cell


def _pod_ready(obj: Mapping[str, Any], _now: float) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: Mapping[str, Any], _now: float) -> str:
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase", "Pending"))


def _pod_restarts(obj: Mapping[str, Any], _now: float) -> int:
    return sum(int(s.get("restartCount", 0)) for s in (obj.get("status") or {}).get("containerStatuses") or [])


def _deploy_ready(obj: Mapping[str, Any], _now: float) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 0)}"


def _service_ports(obj: Mapping[str, Any], _now: float) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _job_status(obj: Mapping[str, Any], _now: float) -> str:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return "Running"


def _job_completions(obj: Mapping[str, Any], _now: float) -> str:
    return f"{(obj.get('status') or {}).get('succeeded', 0)}/{(obj.get('spec') or {}).get('completions', 1)}"


def _event_object(obj: Mapping[str, Any], _now: float) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_last_seen(obj: Mapping[str, Any], now: float) -> str:
    stamp = obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")
    return _age_of(stamp, now)


def _crd_created(obj: Mapping[str, Any], _now: float) -> Any:
    return _meta(obj).get("creationTimestamp", "")


def _count(*path: str) -> Cell:
    def cell(obj: Mapping[str, Any], _now: float) -> int:
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        return len(value) if isinstance(value, (Mapping, list)) else 0

    return cell


def _data_count(obj: Mapping[str, Any], _now: float) -> int:
    return sum(len(obj.get(k) or {}) for k in ("data", "binaryData"))


def _templ_containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def _containers(obj: Mapping[str, Any], _now: float) -> str:
    return ",".join(str(c.get("name", "")) for c in _templ_containers(obj)) or "<none>"


def _images(obj: Mapping[str, Any], _now: float) -> str:
    return ",".join(str(c.get("image", "")) for c in _templ_containers(obj)) or "<none>"


def _selector(obj: Mapping[str, Any], _now: float) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for req in selector.get("matchExpressions") or []:
        op, key, values = req.get("operator", ""), req.get("key", ""), ",".join(req.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(op, f"!{key}")
        )
    return ",".join(parts) or "<none>"


def _service_selector(obj: Mapping[str, Any], _now: float) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"


def _endpoints(obj: Mapping[str, Any], _now: float) -> str:
    found = [
        f"{a.get('ip')}:{p.get('port')}" if p else str(a.get("ip"))
        for subset in obj.get("subsets") or []
        for a in subset.get("addresses") or []
        for p in (subset.get("ports") or [None])
    ]
    if not found:
        return "<none>"
    return ",".join(found[:3]) + (f" + {len(found) - 3} more..." if len(found) > 3 else "")


def _job_duration(obj: Mapping[str, Any], now: float) -> str:
    status = obj.get("status") or {}
    start = parse_timestamp(status.get("startTime"))
    if start is None:
        return ""
    end = parse_timestamp(status.get("completionTime"))
    return human_duration((end if end is not None else now) - start)


Column = tuple[str, str, Cell, int]  # (name, type, cell, priority)
_NAME: Column = ("Name", "string", _name, 0)
_AGE: Column = ("Age", "string", _age, 0)

BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "/pods": [
        _NAME,
        ("Ready", "string", _pod_ready, 0),
        ("Status", "string", _pod_status, 0),
        ("Restarts", "string", _pod_restarts, 0),
        _AGE,
        ("IP", "string", _at("status", "podIP", default="<none>"), 1),
        ("Node", "string", _at("spec", "nodeName", default="<none>"), 1),
        ("Nominated Node", "string", _at("status", "nominatedNodeName", default="<none>"), 1),
        ("Readiness Gates", "string", lambda _o, _n: "<none>", 1),
    ],
    "apps/replicasets": [
        _NAME,
        ("Desired", "integer", _at("spec", "replicas"), 0),
        ("Current", "integer", _at("status", "replicas"), 0),
        ("Ready", "integer", _at("status", "readyReplicas"), 0),
        _AGE,
        ("Containers", "string", _containers, 1),
        ("Images", "string", _images, 1),
        ("Selector", "string", _selector, 1),
    ],
    "apps/deployments": [
        _NAME,
        ("Ready", "string", _deploy_ready, 0),
        ("Up-to-date", "integer", _at("status", "updatedReplicas"), 0),
        ("Available", "integer", _at("status", "availableReplicas"), 0),
        _AGE,
        ("Containers", "string", _containers, 1),
        ("Images", "string", _images, 1),
        ("Selector", "string", _selector, 1),
    ],
    "/services": [
        _NAME,
        ("Type", "string", _at("spec", "type", default="ClusterIP"), 0),
        ("Cluster-IP", "string", _at("spec", "clusterIP", default="<none>"), 0),
        ("External-IP", "string", _at("spec", "externalIP", default="<none>"), 0),
        ("Port(s)", "string", _service_ports, 0),
        _AGE,
        ("Selector", "string", _service_selector, 1),
    ],
    "/namespaces": [_NAME, ("Status", "string", _at("status", "phase", default="Active"), 0), _AGE],
    "batch/jobs": [
        _NAME,
        ("Status", "string", _job_status, 0),
        ("Completions", "string", _job_completions, 0),
        ("Duration", "string", _job_duration, 0),
        _AGE,
        ("Containers", "string", _containers, 1),
        ("Images", "string", _images, 1),
        ("Selector", "string", _selector, 1),
    ],
    "/configmaps": [_NAME, ("Data", "integer", _data_count, 0), _AGE],
    "/secrets": [
        _NAME,
        ("Type", "string", _at("type", default="Opaque"), 0),
        ("Data", "integer", _data_count, 0),
        _AGE,
    ],
    "/serviceaccounts": [_NAME, ("Secrets", "integer", _count("secrets"), 0), _AGE],
    "/endpoints": [_NAME, ("Endpoints", "string", _endpoints, 0), _AGE],
    "coordination.k8s.io/leases": [_NAME, ("Holder", "string", _at("spec", "holderIdentity", default=""), 0), _AGE],
    "/events": [
        ("Last Seen", "string", _event_last_seen, 0),
        ("Type", "string", _at("type", default=""), 0),
        ("Reason", "string", _at("reason", default=""), 0),
        ("Object", "string", _event_object, 0),
        ("Message", "string", _at("message", default=""), 0),
    ],
    "apiextensions.k8s.io/customresourcedefinitions": [_NAME, ("Created At", "date", _crd_created, 0)],
}


@lru_cache(maxsize=512)
def _compiled(path: str) -> Any:
    try:
        return parse_jsonpath("$" + path if path.startswith(".") else path)
    except (JsonPathLexerError, JsonPathParserError, Exception):  # a bad column must not fail a GET
        return None


def _printer_cell(column: Mapping[str, Any]) -> Cell:
    path = str(column.get("jsonPath", ""))
    kind = column.get("type", "string")

    def cell(obj: Mapping[str, Any], now: float) -> Any:
        expr = _compiled(path)
        found = [m.value for m in expr.find(obj)] if expr is not None else []
        if not found:
            return None
        value = found[0]
        if kind == "date":
            return _age_of(value, now)
        if kind == "integer" and isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, (dict, list)):
            return str(value)
        return value

    return cell


def columns_for(rtype: ResourceType) -> list[Column]:
    if rtype.printer_columns:
        cols: list[Column] = [_NAME]
        for column in rtype.printer_columns:
            cols.append(
                (
                    str(column.get("name", "")),
                    "string" if column.get("type") == "date" else str(column.get("type", "string")),
                    _printer_cell(column),
                    int(column.get("priority", 0)),
                )
            )
        return cols
    return BUILTIN_COLUMNS.get(rtype.key, [_NAME, _AGE])


def _row_object(obj: Mapping[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(obj)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": dict(_meta(obj))}


def table(
    rtype: ResourceType,
    objects: Sequence[Mapping[str, Any]],
    resource_version: str,
    include: str = "Metadata",
    with_columns: bool = True,
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    cols = columns_for(rtype)
    now = time.time()
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj, now) for _n, _t, cell, _p in cols]}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    result: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "rows": rows}
    result["columnDefinitions"] = (
        [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind, _c, priority in cols
        ]
        if with_columns
        else None
    )
    return result
