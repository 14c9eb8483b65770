"""`convert -f FILE` (beyond Argo): Argo Rollouts manifests rewritten for this controller. Pure: documents
in, converted documents and a report out.

What changes: the apiVersion of Argo's Rollouts kinds (`argoproj.io/v1alpha1` -> ours; other `argoproj.io`
kinds, such as Argo CD's Application, are left alone), and the annotation and label keys of Argo Rollouts
and of its notifications, on the object and on its pod templates. What has no equivalent here (steps,
traffic routers, metric providers this controller does not run) is reported, not removed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.providers import registry
from rollouts.model.limits import UNSUPPORTED_STEPS
from rollouts.model.spec import API_VERSION, INSTANCE_ID_LABEL
from rollouts.model.stepplugins import plugin_step_errors
from rollouts.traffic.registry import ROUTERS, SHARED_KEYS

__all__ = ["Conversion", "convert_documents"]

ARGO_API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun", "Experiment")
#: Whole keys first (they differ beyond the prefix), then prefixes; the first match wins.
KEYS: tuple[tuple[str, str], ...] = (
    ("argo-rollouts.argoproj.io/controller-instance-id", INSTANCE_ID_LABEL),
    ("notified.notifications.argoproj.io", "notified.notifications.pyrollouts.io"),
)
PREFIXES: tuple[tuple[str, str], ...] = (
    ("argo-rollouts.argoproj.io/", "rollouts.pyrollouts.io/"),
    ("rollout.argoproj.io/", "rollouts.pyrollouts.io/"),
    ("notifications.argoproj.io/", "notifications.pyrollouts.io/"),
)


@dataclass
class Conversion:
    """The converted documents, what was changed and what has no equivalent (one line each, naming the
    document and the field)."""

    documents: list[Any] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _new_key(key: str) -> str | None:
    for old, new in KEYS:
        if key == old:
            return new
    for old, new in PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def _metadata_holders(doc: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(path, metadata) of the object and of the pod templates it carries."""
    yield "metadata", doc.get("metadata")
    spec = _map(doc.get("spec"))
    template = spec.get("template")
    if isinstance(template, Mapping):
        yield "spec.template.metadata", template.get("metadata")
    for index, item in enumerate(spec.get("templates") or []):  # an Experiment's templates
        if isinstance(item, Mapping) and isinstance(item.get("template"), Mapping):
            yield f"spec.templates[{index}].template.metadata", item["template"].get("metadata")


def _rename_keys(doc: dict[str, Any], where: str, out: Conversion) -> None:
    for path, meta in _metadata_holders(doc):
        if not isinstance(meta, dict):
            continue
        for kind in ("annotations", "labels"):
            entries = meta.get(kind)
            if not isinstance(entries, dict):
                continue
            renamed: dict[str, Any] = {}
            for key, value in entries.items():
                new = _new_key(str(key))
                if new is not None and new != key:
                    out.changed.append(f"{where}: {path}.{kind}: {key} -> {new}")
                renamed[new or key] = value
            meta[kind] = renamed


def _unsupported_rollout(doc: Mapping[str, Any], where: str) -> list[str]:
    spec = _map(doc.get("spec"))
    strategy = _map(spec.get("strategy"))
    canary = _map(strategy.get("canary"))
    found: list[str] = []
    for index, step in enumerate(canary.get("steps") or []):
        for action in step if isinstance(step, Mapping) else ():
            path = f"spec.strategy.canary.steps[{index}].{action}"
            if action in UNSUPPORTED_STEPS:
                found.append(f"{where}: {path}: {UNSUPPORTED_STEPS[action]}")
            elif action == "plugin":  # Argo's step plugins are Go programs: ours are Python entry points
                found += [f"{where}: {problem}" for problem in plugin_step_errors(step[action], path)]
    routing = _map(canary.get("trafficRouting"))
    for key in routing:
        if key not in ROUTERS and key not in SHARED_KEYS:
            found.append(f"{where}: spec.strategy.canary.trafficRouting.{key}: traffic router not supported "
                         f"by this controller (use one of: {', '.join(sorted(ROUTERS))})")
    return found


def _unsupported_metrics(doc: Mapping[str, Any], where: str) -> list[str]:
    spec = _map(doc.get("spec"))
    found: list[str] = []
    for index, metric in enumerate(spec.get("metrics") or []):
        provider = metric.get("provider") if isinstance(metric, Mapping) else None
        for key in provider if isinstance(provider, Mapping) else ():
            if not registry.is_registered(str(key)):
                found.append(f"{where}: spec.metrics[{index}].provider.{key}: metric provider not supported "
                             "by this controller")
            elif key == "plugin" and isinstance(provider, Mapping):
                # Argo's metric plugins are Go programs: ours are Python entry points
                field = f"spec.metrics[{index}].provider.plugin"
                problems = registry.spec_problems(key, provider[key], field, metric)
                found += [f"{where}: {problem}" for problem in problems]
    return found


def convert_documents(documents: Sequence[Any], filename: str) -> Conversion:
    """Each document converted (a copy; documents that are not Argo Rollouts objects pass unchanged)."""
    out = Conversion()
    for index, original in enumerate(documents):
        if not isinstance(original, Mapping):
            out.documents.append(original)
            continue
        doc = copy.deepcopy(dict(original))
        kind = str(doc.get("kind", ""))
        name = str((doc.get("metadata") or {}).get("name") or "")
        where = f'{filename}: document {index + 1} ({kind or "no kind"} "{name}")'
        if doc.get("apiVersion") == ARGO_API_VERSION and kind in KINDS:
            doc["apiVersion"] = API_VERSION
            out.changed.append(f"{where}: apiVersion: {ARGO_API_VERSION} -> {API_VERSION}")
        _rename_keys(doc, where, out)
        if doc.get("apiVersion") == API_VERSION:
            if kind == "Rollout":
                out.unsupported.extend(_unsupported_rollout(doc, where))
            elif kind in ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun"):
                out.unsupported.extend(_unsupported_metrics(doc, where))
        out.documents.append(doc)
    return out
