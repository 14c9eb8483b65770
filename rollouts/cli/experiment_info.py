"""What the plugin shows of Experiments (pure): `get experiment`'s details and tree, `list experiments`' table,
and the patches of `retry experiment` / `terminate experiment`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from rollouts.cli.actions import Patch
from rollouts.cli.info import analysis_icon, as_list, as_map
from rollouts.cli.render import ICON_ANALYSIS, ICON_REPLICASET
from rollouts.model.durations import human_duration
from rollouts.model.timestamps import parse_datetime

__all__ = ["RETRY_PATCH", "TERMINATE_PATCH", "render_experiment", "render_experiment_list"]

TERMINATE_PATCH = Patch({"spec": {"terminate": True}})
# Argo's `retry experiment`: the status cleared, so the controller runs the experiment again.
RETRY_PATCH = Patch({"status": None}, subresource="status")
_TEMPLATE_ICONS = {"Running": "✔", "Successful": "✔", "Progressing": "◌", "Pending": "◷", "Failed": "✖", "Error": "⚠"}


def _age(obj: Mapping[str, Any], now: dt.datetime) -> str:
    created = parse_datetime(as_map(obj.get("metadata")).get("creationTimestamp"))
    return human_duration((now - created).total_seconds()) if created is not None else "<unknown>"


def _phase(exp: Mapping[str, Any]) -> str:
    return str(as_map(exp.get("status")).get("phase") or "Pending")


def render_experiment(exp: Mapping[str, Any], now: dt.datetime) -> str:
    """`get experiment`: name, phase, message, images, then each template's ReplicaSet and each analysis' run."""
    meta, spec, status = as_map(exp.get("metadata")), as_map(exp.get("spec")), as_map(exp.get("status"))
    phase = _phase(exp)
    lines = [
        f"{'Name:':<16} {meta.get('name', '')}",
        f"{'Namespace:':<16} {meta.get('namespace', '')}",
        f"{'Status:':<16} {analysis_icon(phase)} {phase}",
    ]
    if status.get("message"):
        lines.append(f"{'Message:':<16} {status['message']}")
    images = []
    for template in as_list(spec.get("templates")):
        containers = as_list(as_map(as_map(as_map(template).get("template")).get("spec")).get("containers"))
        images += [f"{as_map(c).get('image', '')} ({as_map(template).get('name', '')})" for c in containers]
    for index, image in enumerate(images):
        lines.append(f"{'Images:' if index == 0 else '':<16} {image}")
    if status.get("availableAt"):
        lines.append(f"{'Available at:':<16} {status['availableAt']}")
    if spec.get("duration"):
        lines.append(f"{'Duration:':<16} {spec['duration']}")
    rows = [
        ("NAME", "KIND", "STATUS", "INFO"),
        (f"Σ {meta.get('name', '')}", "Experiment", f"{analysis_icon(phase)} {phase}", ""),
    ]
    for entry in as_list(status.get("templateStatuses")):
        entry = as_map(entry)
        state = str(entry.get("status") or "")
        info = f"{entry.get('availableReplicas', 0)}/{entry.get('replicas', 0)} available"
        if entry.get("serviceName"):
            info += f", service {entry['serviceName']}"
        rows.append((f"├──{ICON_REPLICASET} {entry.get('replicaSetName', entry.get('name', ''))}", "ReplicaSet",
                     f"{_TEMPLATE_ICONS.get(state, ' ')} {state}", info))  # fmt: skip
    for entry in as_list(status.get("analysisRuns")):
        entry = as_map(entry)
        run_phase = str(entry.get("phase") or "")
        name = f"└──{ICON_ANALYSIS} {entry.get('analysisRun', '')}"
        rows.append((name, "AnalysisRun", f"{analysis_icon(run_phase)} {run_phase}", str(entry.get("message") or "")))
    widths = [max(len(row[col]) for row in rows) for col in range(3)]
    table = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
    return "\n".join([*lines, "", *table]) + "\n"


def render_experiment_list(items: Iterable[Mapping[str, Any]], all_namespaces: bool, now: dt.datetime) -> str:
    """`list experiments`: NAME (NAMESPACE first with -A), STATUS, DURATION, AGE."""
    rows = [("NAMESPACE", "NAME", "STATUS", "DURATION", "AGE")]
    for exp in sorted(
        items,
        key=lambda e: (str(as_map(e.get("metadata")).get("namespace")), str(as_map(e.get("metadata")).get("name"))),
    ):
        meta = as_map(exp.get("metadata"))
        rows.append((str(meta.get("namespace", "")), str(meta.get("name", "")), _phase(exp),
                     str(as_map(exp.get("spec")).get("duration") or "-"), _age(exp, now)))  # fmt: skip
    if not all_namespaces:
        rows = [row[1:] for row in rows]  # type: ignore[misc]
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return (
        "\n".join("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
        + "\n"
    )
