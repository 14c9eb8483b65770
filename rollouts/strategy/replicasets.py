"""ReplicaSets of a Rollout: the read-only view the planners use, the manifest of a new one (with
blue/green's injected anti-affinity), and the annotations we keep on them.

Annotation keys mirror Argo Rollouts' ``rollout.argoproj.io/*`` under our own prefix.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollouts.model.annotations import SCALE_DOWN_DEADLINE
from rollouts.model.jsoncopy import copy_object
from rollouts.model.revisions import REVISION, revision_of
from rollouts.model.spec import API_VERSION, HASH_LABEL, KIND, PodMetadata, RolloutSpec
from rollouts.model.timestamps import parse_time

PREFIX = "rollouts.pyrollouts.io/"
REVISION_HISTORY = PREFIX + "revision-history"
DESIRED_REPLICAS = PREFIX + "desired-replicas"
EPHEMERAL_METADATA = PREFIX + "ephemeral-metadata"
TEMPLATE_DIGEST = PREFIX + "template-digest"
#: On a Service whose selector the controller manages: the Rollout's name.
MANAGED_BY = PREFIX + "managed-by-rollouts"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


@dataclass(frozen=True)
class ReplicaSetView:
    """What the planners need to know about one ReplicaSet."""

    name: str
    uid: str
    pod_hash: str
    replicas: int  # spec.replicas
    status_replicas: int
    ready: int
    available: int
    revision: int
    annotations: Mapping[str, str]
    created: str
    generation: int
    observed_generation: int
    deleting: bool
    template_metadata: Mapping[str, Any] = field(default_factory=dict)
    min_ready_seconds: int = 0

    @staticmethod
    def parse(obj: Mapping[str, Any]) -> ReplicaSetView:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        labels = meta.get("labels") or {}
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        return ReplicaSetView(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            pod_hash=str(labels.get(HASH_LABEL, "")),
            replicas=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
            status_replicas=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            revision=revision_of(obj),
            annotations=annotations,
            created=str(meta.get("creationTimestamp", "")),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            deleting=bool(meta.get("deletionTimestamp")),
            template_metadata=copy_object((spec.get("template") or {}).get("metadata") or {}),
            min_ready_seconds=int(spec.get("minReadySeconds") or 0),
        )

    def scale_down_deadline(self) -> float | None:
        return parse_time(self.annotations.get(SCALE_DOWN_DEADLINE))

    def ephemeral_metadata(self) -> PodMetadata | None:
        raw = self.annotations.get(EPHEMERAL_METADATA)
        if not raw:
            return None
        try:
            return PodMetadata.parse(json.loads(raw))
        except json.JSONDecodeError:
            return None


def total_replicas(rss: Iterable[ReplicaSetView | None]) -> int:
    return sum(rs.replicas for rs in rss if rs is not None)


def total_status_replicas(rss: Iterable[ReplicaSetView | None]) -> int:
    return sum(rs.status_replicas for rs in rss if rs is not None)


def total_available(rss: Iterable[ReplicaSetView | None]) -> int:
    return sum(rs.available for rs in rss if rs is not None)


def total_ready(rss: Iterable[ReplicaSetView | None]) -> int:
    return sum(rs.ready for rs in rss if rs is not None)


def max_revision(rss: Iterable[ReplicaSetView]) -> int:
    return max((rs.revision for rs in rss), default=0)


def by_creation(rss: Sequence[ReplicaSetView]) -> list[ReplicaSetView]:
    return sorted(rss, key=lambda rs: (rs.created, rs.name))


def owner_reference(ro: RolloutSpec) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": ro.name,
        "uid": ro.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def apply_ephemeral_metadata(
    template_metadata: Mapping[str, Any], existing: PodMetadata | None, desired: PodMetadata | None
) -> dict[str, Any]:
    """Argo's ``SyncEphemeralPodMetadata``: add what is desired, remove what we added before and no longer want,
    and leave everything else (the user's own labels, a sidecar injector's annotations) alone."""
    meta = copy.deepcopy(dict(template_metadata))
    labels = dict(meta.get("labels") or {})
    annotations = dict(meta.get("annotations") or {})
    if desired is not None:
        labels.update(desired.labels)
        annotations.update(desired.annotations)
    if existing is not None:
        for key in existing.labels:
            if desired is None or key not in desired.labels:
                labels.pop(key, None)
        for key in existing.annotations:
            if desired is None or key not in desired.annotations:
                annotations.pop(key, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return meta


def new_replicaset_manifest(
    ro: RolloutSpec,
    template: Mapping[str, Any],
    selector: Mapping[str, Any],
    pod_hash: str,
    revision: int,
    digest: str,
    ephemeral: PodMetadata | None,
) -> dict[str, Any]:
    """The ReplicaSet for one version of the pod template, created at zero replicas (the planner scales it)."""
    rs_template = copy.deepcopy(dict(template))
    meta = rs_template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), HASH_LABEL: pod_hash}
    annotations = {REVISION: str(revision), TEMPLATE_DIGEST: digest, DESIRED_REPLICAS: str(ro.replicas)}
    if ephemeral is not None and (ephemeral.labels or ephemeral.annotations):
        rs_template["metadata"] = apply_ephemeral_metadata(meta, None, ephemeral)
        annotations[EPHEMERAL_METADATA] = json.dumps(ephemeral.as_dict(), sort_keys=True)
    rs_selector = copy.deepcopy(dict(selector))
    rs_selector["matchLabels"] = {**(rs_selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{ro.name}-{pod_hash}",
            "namespace": ro.namespace,
            "labels": dict(rs_template["metadata"].get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [owner_reference(ro)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": ro.min_ready_seconds,
            "selector": rs_selector,
            "template": rs_template,
        },
    }


def anti_affinity_terms(anti: Mapping[str, Any], previous_hash: str) -> dict[str, Any]:
    """Argo's injected anti-affinity: keep the new pods off the nodes of the previous version's pods."""
    term = {
        "labelSelector": {"matchExpressions": [{"key": HASH_LABEL, "operator": "In", "values": [previous_hash]}]},
        "topologyKey": HOSTNAME_TOPOLOGY,
    }
    preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution")
    if isinstance(preferred, Mapping):
        weight = int(preferred.get("weight") or 1)
        return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": term}]}
    return {"requiredDuringSchedulingIgnoredDuringExecution": [term]}


def with_anti_affinity(manifest: dict[str, Any], anti: Mapping[str, Any], previous_hash: str) -> dict[str, Any]:
    manifest = copy.deepcopy(manifest)
    pod_spec = manifest["spec"]["template"].setdefault("spec", {})
    affinity = pod_spec.setdefault("affinity", {})
    anti_affinity = affinity.setdefault("podAntiAffinity", {})
    for key, terms in anti_affinity_terms(anti, previous_hash).items():
        anti_affinity[key] = [*(anti_affinity.get(key) or []), *terms]
    return manifest
