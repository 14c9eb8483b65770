"""The objects an Experiment owns: a ReplicaSet (and maybe a Service) per template, an AnalysisRun per analysis."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from analysis.spec import ArgError, SpecError, build_analysis_run, resolve_rollout_args
from rollouts.experiment.spec import AnalysisSpec, ExperimentSpec, TemplateSpec
from rollouts.model.hashing import canonical_template, fnv32a, safe_encode
from rollouts.model.spec import HASH_LABEL, INSTANCE_ID_LABEL

__all__ = [
    "EXPERIMENT_NAME",
    "TEMPLATE_NAME",
    "TemplateLookup",
    "analysis_run_manifest",
    "replicaset_manifest",
    "replicaset_name",
    "service_manifest",
    "service_name",
    "template_hash",
]

EXPERIMENT_NAME: Final = "experiment.pyrollouts.io/name"
TEMPLATE_NAME: Final = "experiment.pyrollouts.io/template-name"
_PLACEHOLDER: Final = re.compile(r"\{\{\s*(templates\.([A-Za-z0-9-]+)\.(podTemplateHash|replicaset\.name)|"
                                 r"experiment\.availableAt)\s*\}\}")  # fmt: skip

TemplateLookup = Callable[[str, bool], Mapping[str, Any] | None]


def replicaset_name(exp: ExperimentSpec, template: TemplateSpec) -> str:
    """Argo's name for a template's ReplicaSet: ``<experiment>-<template>``."""
    return f"{exp.name}-{template.name}"


def service_name(exp: ExperimentSpec, template: TemplateSpec) -> str:
    """The Service's name: the template's ``service.name``, else the ReplicaSet's."""
    named = (template.service or {}).get("name")
    return str(named) if named else replicaset_name(exp, template)


def template_hash(exp: ExperimentSpec, template: TemplateSpec) -> str:
    """The ``rollouts-pod-template-hash`` of the template's pods.

    The pod template alone would give a template copied from a Rollout (``specRef``) the hash of the
    Rollout's own ReplicaSet, and the Rollout's Services would then select the experiment's pods too; the
    experiment's and the template's names are mixed in so that each experiment's pods stand apart."""
    data = json.dumps(canonical_template(template.template), sort_keys=True, separators=(",", ":"))
    return safe_encode(str(fnv32a(f"{exp.name}/{template.name}/{data}".encode())))


def replicaset_manifest(exp: ExperimentSpec, template: TemplateSpec, replicas: int) -> dict[str, Any]:
    """The template's ReplicaSet, owned by the experiment, its pods labelled with :func:`template_hash`."""
    pod_hash = template_hash(exp, template)
    pod_template = copy.deepcopy(dict(template.template))
    meta = pod_template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = copy.deepcopy(dict(template.selector))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    labels = dict(meta["labels"])
    if INSTANCE_ID_LABEL in exp.labels:
        labels[INSTANCE_ID_LABEL] = exp.labels[INSTANCE_ID_LABEL]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": replicaset_name(exp, template),
            "namespace": exp.namespace,
            "labels": labels,
            "annotations": {EXPERIMENT_NAME: exp.name, TEMPLATE_NAME: template.name},
            "ownerReferences": [exp.owner_reference()],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": template.min_ready_seconds,
            "selector": selector,
            "template": pod_template,
        },
    }


def _ports(template: TemplateSpec) -> list[dict[str, Any]]:
    """One Service port per container port of the pod template (Argo's), port 80 when there is none."""
    ports: list[dict[str, Any]] = []
    for container in (template.template.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            if not isinstance(number, int) or any(p["port"] == number for p in ports):
                continue
            entry: dict[str, Any] = {"port": number, "targetPort": number, "protocol": port.get("protocol") or "TCP"}
            if port.get("name"):
                entry["name"] = str(port["name"])
            ports.append(entry)
    if len(ports) > 1:
        for index, entry in enumerate(ports):
            entry.setdefault("name", f"port-{index}")
    return ports or [{"port": 80, "targetPort": 80, "protocol": "TCP"}]


def service_manifest(exp: ExperimentSpec, template: TemplateSpec) -> dict[str, Any]:
    """The Service selecting the template's pods (its selector's labels and the pod-template hash)."""
    selector = {str(k): str(v) for k, v in (template.selector.get("matchLabels") or {}).items()}
    selector[HASH_LABEL] = template_hash(exp, template)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(exp, template),
            "namespace": exp.namespace,
            "annotations": {EXPERIMENT_NAME: exp.name, TEMPLATE_NAME: template.name},
            "ownerReferences": [exp.owner_reference()],
        },
        "spec": {"selector": selector, "ports": _ports(template)},
    }


def _placeholders(exp: ExperimentSpec, available_at: str) -> dict[str, str]:
    values = {"experiment.availableAt": available_at}
    for template in exp.templates:
        values[f"templates.{template.name}.podTemplateHash"] = template_hash(exp, template)
        values[f"templates.{template.name}.replicaset.name"] = replicaset_name(exp, template)
    return values


def resolve_args(
    exp: ExperimentSpec, experiment: Mapping[str, Any], analysis: AnalysisSpec, available_at: str
) -> list[dict[str, Any]]:
    """The analysis' args for its run: ``{{templates.NAME.podTemplateHash}}``, ``{{templates.NAME.replicaset.name}}``
    and ``{{experiment.availableAt}}`` filled in, ``fieldRef`` read from the Experiment (``secretKeyRef``
    stays a reference, read at measurement time). Raises :class:`ArgError` naming an unknown template."""
    values = _placeholders(exp, available_at)
    where = f"spec.analyses[name={analysis.name}]"

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ArgError(f'{where}.args: "{match.group(0)}" names no template of the experiment: use one of '
                           f"{', '.join(t.name for t in exp.templates)}")  # fmt: skip
        return values[key]

    args = resolve_rollout_args(analysis.args, experiment, None, None)
    for arg in args:
        if isinstance(arg.get("value"), str):
            arg["value"] = _PLACEHOLDER.sub(fill, arg["value"])
    return args


def analysis_run_manifest(
    exp: ExperimentSpec,
    experiment: Mapping[str, Any],
    analysis: AnalysisSpec,
    available_at: str,
    lookup: TemplateLookup,
) -> dict[str, Any]:
    """The run of one analysis, ``<experiment>-<analysis>``, owned by the experiment. Raises ``SpecError``
    (a template missing or invalid) or ``ArgError`` (an arg without a value)."""
    template = lookup(analysis.template_name, analysis.cluster_scope)
    namespaced: Sequence[Mapping[str, Any]] = [] if analysis.cluster_scope or template is None else [template]
    cluster: Sequence[Mapping[str, Any]] = [template] if analysis.cluster_scope and template is not None else []
    if template is None:
        kind = "ClusterAnalysisTemplate" if analysis.cluster_scope else "AnalysisTemplate"
        raise SpecError(f'{kind} "{analysis.template_name}" not found')
    metadata = exp.analysis_run_metadata
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    labels[EXPERIMENT_NAME] = exp.name
    if INSTANCE_ID_LABEL in exp.labels:
        labels[INSTANCE_ID_LABEL] = exp.labels[INSTANCE_ID_LABEL]
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    return build_analysis_run(
        namespaced,
        cluster,
        resolve_args(exp, experiment, analysis, available_at),
        f"{exp.name}-{analysis.name}",
        exp.namespace,
        labels,
        annotations,
        [exp.owner_reference()],
        dry_run=exp.dry_run,
        measurement_retention=exp.measurement_retention,
        lookup=lookup,
    )
