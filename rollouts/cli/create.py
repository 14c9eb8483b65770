"""Pure: the documents of `kubectl rollouts create -f FILE` -> which collection each is created in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollouts.cli.client import ANALYSISRUNS, ANALYSISTEMPLATES, CLUSTERANALYSISTEMPLATES, GROUP, ROLLOUTS, Resource

KINDS = {
    "Rollout": ROLLOUTS,
    "AnalysisRun": ANALYSISRUNS,
    "AnalysisTemplate": ANALYSISTEMPLATES,
    "ClusterAnalysisTemplate": CLUSTERANALYSISTEMPLATES,
}


class CreateError(ValueError):
    """A document `create -f` cannot create; the message names it and the fix."""


def resource_of(doc: Mapping[str, Any], filename: str, index: int) -> Resource:
    """The resource type of one document, or CreateError saying what to change."""
    kind = str(doc.get("kind", ""))
    api_version = str(doc.get("apiVersion", ""))
    name = str((doc.get("metadata") or {}).get("name") or (doc.get("metadata") or {}).get("generateName") or "")
    where = f'{filename}: document {index + 1} ({kind or "no kind"} "{name}")'
    if kind not in KINDS:
        raise CreateError(
            f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}; create other objects with kubectl create -f"
        )
    if api_version.startswith("argoproj.io/"):
        raise CreateError(f"{where}: apiVersion is {api_version}; change it to {GROUP}/v1alpha1")
    if not api_version.startswith(f"{GROUP}/"):
        raise CreateError(f"{where}: apiVersion is {api_version!r}; use {GROUP}/v1alpha1")
    if not name:
        raise CreateError(f"{where}: metadata.name (or metadata.generateName) is missing")
    return KINDS[kind]


def created_line(resource: Resource, created: Mapping[str, Any]) -> str:
    """kubectl's `rollout.pyrollouts.io/web created`."""
    return f"{resource.kind}.{GROUP}/{(created.get('metadata') or {}).get('name', '')} created"
