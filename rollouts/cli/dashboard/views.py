"""Pure: the JSON the dashboard's page draws, from the objects its watches hold.

Everything shown comes from the plugin's rules (`info.rollout_info`, `analysisrun_info.analysisrun_detail`,
`model.steps`), so the page and `kubectl rollouts get rollout` never disagree; this module only adds
what a page needs beyond text: the steps as a list with the current one marked, and each metric's
measurements as numeric series for the charts. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.cli import info as i
from rollouts.cli.analysisrun_info import analysisrun_detail
from rollouts.model.spec import RolloutSpec, Step
from rollouts.model.steps import current_step

Objects = Sequence[Mapping[str, Any]]


def jsonable(value: Any) -> Any:
    """Dataclasses, lists and dicts as JSON values; datetimes as RFC 3339 text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _in_namespace(objects: Objects, namespace: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if i.meta(o).get("namespace") == namespace]


def rollout_summary(info: i.RolloutInfo) -> dict[str, Any]:
    """One row of the rollouts list: what `list rollouts` shows, plus the status message."""
    return {
        "name": info.name,
        "namespace": info.namespace,
        "strategy": info.strategy or "unknown",
        "status": info.status,
        "icon": info.icon,
        "message": info.message,
        "step": info.step,
        "setWeight": info.set_weight,
        "actualWeight": info.actual_weight,
        "desired": info.desired,
        "current": info.current,
        "updated": info.updated,
        "ready": info.ready,
        "available": info.available,
    }


def rollout_listing(rollouts: Objects, replicasets: Objects, pods: Objects, runs: Objects) -> list[dict[str, Any]]:
    """The rollouts grouped by namespace (namespaces and names sorted)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for ro in rollouts:
        ns = str(i.meta(ro).get("namespace", ""))
        info = i.rollout_info(ro, _in_namespace(replicasets, ns), _in_namespace(pods, ns), _in_namespace(runs, ns))
        by_namespace.setdefault(ns, []).append(rollout_summary(info))
    return [
        {"namespace": ns, "rollouts": sorted(rows, key=lambda row: str(row["name"]))}
        for ns, rows in sorted(by_namespace.items())
    ]


def step_description(step: Step) -> str:
    """"setWeight: 25", "pause (until promoted)", "pause: 30s", "analysis: success-rate", ..."""
    parts = []
    for key, value in step.raw.items():
        if key == "pause":
            duration = value.get("duration") if isinstance(value, Mapping) else None
            parts.append(f"pause: {duration}" if duration is not None else "pause (until promoted)")
        elif key == "analysis" and isinstance(value, Mapping):
            templates = [t for t in i.as_list(value.get("templates")) if isinstance(t, Mapping)]
            names = [str(t.get("templateName", "")) for t in templates]
            parts.append("analysis: " + ", ".join(names))
        elif isinstance(value, (Mapping, list)):
            parts.append(f"{key}: {json.dumps(value, separators=(', ', ': '), sort_keys=True)}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def steps_view(ro: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The canary steps, each "done", "current" or "pending" by `status.currentStepIndex` (Argo's rule)."""
    view = RolloutSpec.parse(ro)
    if view.canary is None:
        return []
    _step, index = current_step(view, i.status_of(ro))
    position = index if index is not None else 0
    out = []
    for step in view.canary.steps:
        state = "done" if step.index < position else "current" if step.index == position else "pending"
        out.append({"index": step.index, "text": step_description(step), "state": state})
    return out


def _number(text: str) -> float | None:
    """A measurement value as a number: "0.97", "[0.97]" (one-element vector) or "12"; None otherwise."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _interval(text: str) -> tuple[float | None, float | None]:
    """The judge's "[low, high]" interval text as numbers."""
    parts = text.strip().strip("[]").split(",")
    if len(parts) != 2:
        return None, None
    return _number(parts[0].strip()), _number(parts[1].strip())


def measurement_series(measurements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One point per measurement: its time, phase and numeric value; for a judge, its estimate, interval
    and decision."""
    points = []
    for m in measurements:
        metadata = {str(k): str(v) for k, v in i.as_map(m.get("metadata")).items() if v is not None}
        low, high = _interval(metadata.get("interval", ""))
        points.append({
            "time": str(m.get("finishedAt") or m.get("startedAt") or ""),
            "phase": str(m.get("phase") or ""),
            "value": _number(str(m.get("value") or "")),
            "text": str(m.get("value") or ""),
            "estimate": _number(metadata.get("estimate", "")),
            "low": low,
            "high": high,
            "decision": metadata.get("decision", ""),
        })
    return points


def analysisrun_view(run: Mapping[str, Any]) -> dict[str, Any]:
    """An AnalysisRun as `get analysisrun` shows it, each metric with all its measurements as a series."""
    detail = analysisrun_detail(run)
    results = {
        str(i.as_map(r).get("name", "")): i.as_map(r)
        for r in i.as_list(i.as_map(run.get("status")).get("metricResults"))
    }
    view: dict[str, Any] = jsonable(detail)
    for metric in view["metrics"]:
        measurements = [i.as_map(m) for m in i.as_list(results.get(metric["name"], {}).get("measurements"))]
        metric["series"] = measurement_series(measurements)
    return view


def rollout_page(ro: Mapping[str, Any], replicasets: Objects, pods: Objects, runs: Objects) -> dict[str, Any]:
    """Everything the rollout page shows: `get rollout`'s details and tree, the steps, the routers' weights
    and the rollout's AnalysisRuns with their measurements."""
    info = i.rollout_info(ro, replicasets, pods, runs)
    uid = str(i.meta(ro).get("uid", ""))
    owned = {str(i.meta(run).get("name", "")): run for run in runs if i.owned_by(run, [uid]) is not None}
    revisions = []
    for revision in i.revisions(info):
        revisions.append({
            "revision": revision,
            "replicasets": [jsonable(rs) for rs in info.replicasets if rs.revision == revision],
            "analysisruns": [
                {**jsonable(run), **analysisrun_view(owned[run.name])}
                for run in info.analysisruns
                if run.revision == revision and run.name in owned
            ],
        })
    return {
        **rollout_summary(info),
        "images": jsonable(i.images(info)),
        "steps": steps_view(ro),
        "routers": jsonable(info.routers),
        "judges": jsonable(info.judges),
        "revisions": revisions,
        "paused": bool(i.status_of(ro).get("pauseConditions")) or i.spec_of(ro).get("paused") is True,
        "aborted": i.status_of(ro).get("abort") is True,
    }
