"""Revisions: the number a ReplicaSet (and the AnalysisRuns, and the Rollout itself) carries for each
version of the pod template, in an annotation, as Argo Rollouts' ``rollout.argoproj.io/revision``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Written by the controller on the Rollout, its ReplicaSets and its AnalysisRuns.
REVISION = "rollouts.pyrollouts.io/revision"
#: Argo's own key, read too, so objects a previous Argo Rollouts installation made keep their revision.
ARGO_REVISION = "rollout.argoproj.io/revision"


def revision_of(obj: Mapping[str, Any]) -> int:
    """The revision annotation of an object (ours, else Argo's); 0 when absent or not a number."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in (REVISION, ARGO_REVISION):
        if key in annotations:
            try:
                return int(str(annotations[key]))
            except ValueError:
                return 0
    return 0
