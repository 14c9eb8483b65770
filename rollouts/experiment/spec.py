"""A typed view of an Experiment's spec, Argo's defaults, and the checks that make it ``InvalidSpec``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rollouts.model.durations import parse_go_duration
from rollouts.model.labelselector import format_label_selector
from rollouts.model.spec import GROUP, VERSION

__all__ = [
    "COMPLETED_PHASES",
    "DEFAULT_PROGRESS_DEADLINE_SECONDS",
    "DEFAULT_SCALE_DOWN_DELAY_SECONDS",
    "EXPERIMENT_API_VERSION",
    "EXPERIMENT_KIND",
    "AnalysisSpec",
    "ExperimentSpec",
    "TemplateSpec",
    "spec_errors",
]

EXPERIMENT_KIND: Final = "Experiment"
EXPERIMENT_API_VERSION: Final = f"{GROUP}/{VERSION}"
DEFAULT_PROGRESS_DEADLINE_SECONDS: Final = 600
DEFAULT_SCALE_DOWN_DELAY_SECONDS: Final = 30
COMPLETED_PHASES: Final = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class TemplateSpec:
    """One version the experiment runs."""

    name: str
    replicas: int
    min_ready_seconds: int
    selector: Mapping[str, Any]
    template: Mapping[str, Any]
    service: Mapping[str, Any] | None
    weight: int | None

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> TemplateSpec:
        service = raw.get("service")
        weight = raw.get("weight")
        return TemplateSpec(
            name=str(raw.get("name") or ""),
            replicas=_int(raw.get("replicas"), 1),
            min_ready_seconds=_int(raw.get("minReadySeconds"), 0),
            selector=_mapping(raw.get("selector")),
            template=_mapping(raw.get("template")),
            service=service if isinstance(service, Mapping) else None,
            weight=weight if isinstance(weight, int) and not isinstance(weight, bool) else None,
        )


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the experiment: an AnalysisRun from a template."""

    name: str
    template_name: str
    cluster_scope: bool
    required_for_completion: bool
    args: Sequence[Mapping[str, Any]]

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> AnalysisSpec:
        args = raw.get("args")
        return AnalysisSpec(
            name=str(raw.get("name") or ""),
            template_name=str(raw.get("templateName") or ""),
            cluster_scope=bool(raw.get("clusterScope")),
            required_for_completion=bool(raw.get("requiredForCompletion")),
            args=[a for a in args if isinstance(a, Mapping)] if isinstance(args, list) else [],
        )


@dataclass(frozen=True)
class ExperimentSpec:
    """An Experiment's metadata and spec, with Argo's defaults filled in."""

    name: str
    namespace: str
    uid: str
    labels: Mapping[str, str]
    templates: tuple[TemplateSpec, ...]
    analyses: tuple[AnalysisSpec, ...]
    duration: float | None
    progress_deadline_seconds: int
    scale_down_delay_seconds: int
    terminate: bool
    dry_run: Sequence[Mapping[str, Any]]
    measurement_retention: Sequence[Mapping[str, Any]]
    analysis_run_metadata: Mapping[str, Any]

    @staticmethod
    def parse(obj: Mapping[str, Any]) -> ExperimentSpec:
        """The view of ``obj``; a duration that does not parse counts as none (:func:`spec_errors` names it)."""
        meta, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
        templates = _list(spec.get("templates"))
        analyses = _list(spec.get("analyses"))
        return ExperimentSpec(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=str(meta.get("uid") or ""),
            labels={str(k): str(v) for k, v in _mapping(meta.get("labels")).items()},
            templates=tuple(TemplateSpec.parse(t) for t in templates if isinstance(t, Mapping)),
            analyses=tuple(AnalysisSpec.parse(a) for a in analyses if isinstance(a, Mapping)),
            duration=_duration(spec.get("duration")),
            progress_deadline_seconds=_int(spec.get("progressDeadlineSeconds"), DEFAULT_PROGRESS_DEADLINE_SECONDS),
            scale_down_delay_seconds=_int(spec.get("scaleDownDelaySeconds"), DEFAULT_SCALE_DOWN_DELAY_SECONDS),
            terminate=bool(spec.get("terminate")),
            dry_run=[d for d in spec.get("dryRun") or [] if isinstance(d, Mapping)],
            measurement_retention=[m for m in spec.get("measurementRetention") or [] if isinstance(m, Mapping)],
            analysis_run_metadata=_mapping(spec.get("analysisRunMetadata")),
        )

    def owner_reference(self) -> dict[str, Any]:
        """The controller reference that ties a ReplicaSet, Service or AnalysisRun to this experiment."""
        return {
            "apiVersion": EXPERIMENT_API_VERSION,
            "kind": EXPERIMENT_KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _duration(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_go_duration(str(value))
    except ValueError:
        return None


def _template_errors(index: int, raw: Mapping[str, Any], seen: set[str]) -> list[str]:
    path = f"spec.templates[{index}]"
    name = raw.get("name")
    errors: list[str] = []
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        errors.append(f"{path}.name: Invalid value: {name!r}: must be a DNS label (lower case letters, digits, '-')")
    elif name in seen:
        errors.append(f'{path}.name: Duplicate value: "{name}": give each template its own name')
    seen.add(str(name))
    selector = _mapping(raw.get("selector"))
    labels = _mapping(_mapping(_mapping(raw.get("template")).get("metadata")).get("labels"))
    match = _mapping(selector.get("matchLabels"))
    if not match and not selector.get("matchExpressions"):
        errors.append(f"{path}.selector: Required value: give the template a selector matching its pod labels")
    elif any(labels.get(k) != v for k, v in match.items()):
        errors.append(
            f"{path}.selector: Invalid value: {format_label_selector(selector)!r}: does not match the labels of "
            f"{path}.template.metadata.labels: make the template's labels carry the selector's"
        )
    if not _mapping(_mapping(raw.get("template")).get("spec")).get("containers"):
        errors.append(f"{path}.template.spec.containers: Required value: the pod template needs a container")
    return errors


def spec_errors(obj: Mapping[str, Any]) -> list[str]:
    """What makes the Experiment unrunnable, each naming the field and the fix (empty when it can run)."""
    spec = _mapping(obj.get("spec"))
    templates = spec.get("templates")
    errors: list[str] = []
    if not isinstance(templates, list) or not templates:
        errors.append("spec.templates: Required value: an experiment runs at least one template")
        templates = []
    seen: set[str] = set()
    for index, raw in enumerate(templates):
        errors.extend(_template_errors(index, _mapping(raw), seen))
    duration = spec.get("duration")
    if duration not in (None, "") and _duration(duration) is None:
        errors.append(f'spec.duration: Invalid value: "{duration}": use a Go duration such as 30s, 5m or 1h')
    names: set[str] = set()
    for index, raw in enumerate(spec.get("analyses") or []):
        analysis = AnalysisSpec.parse(_mapping(raw))
        if analysis.name in names:
            errors.append(f'spec.analyses[{index}].name: Duplicate value: "{analysis.name}": give each its own name')
        names.add(analysis.name)
    return errors
