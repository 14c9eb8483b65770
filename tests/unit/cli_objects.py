"""Object builders for the plugin's unit tests: Rollouts, ReplicaSets, Pods and AnalysisRuns as the
API server returns them (plain dicts), with fixed timestamps so rendered ages are stable."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
RO_UID = "11111111-1111-1111-1111-111111111111"


def stamp(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rollout(
    name: str = "demo",
    namespace: str = "prod",
    steps: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    image: str = "nginx:1.25",
    age: float = 7200,
) -> dict[str, Any]:
    canary: dict[str, Any] = {
        "steps": steps
        if steps is not None
        else [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}]
    }
    body: dict[str, Any] = {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": RO_UID,
            "generation": 2,
            "creationTimestamp": stamp(age),
        },
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            "strategy": {"canary": canary},
        },
        "status": status or {},
    }
    if spec:
        body["spec"].update(copy.deepcopy(spec))
    return body


def replicaset(
    ro: dict[str, Any],
    pod_hash: str,
    revision: int,
    replicas: int,
    available: int | None = None,
    image: str = "nginx:1.25",
    age: float = 600,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    name = f"{ro['metadata']['name']}-{pod_hash}"
    labels = {"app": ro["metadata"]["name"], "rollouts-pod-template-hash": pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": ro["metadata"]["namespace"],
            "uid": f"rs-{pod_hash}",
            "generation": 1,
            "creationTimestamp": stamp(age),
            "labels": labels,
            "annotations": {"rollouts.pyrollouts.io/revision": str(revision), **(annotations or {})},
            "ownerReferences": [
                {
                    "apiVersion": "pyrollouts.io/v1alpha1",
                    "kind": "Rollout",
                    "name": ro["metadata"]["name"],
                    "uid": ro["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": replicas if available is None else available,
            "availableReplicas": replicas if available is None else available,
            "observedGeneration": 1,
        },
    }


def pod(
    rs: dict[str, Any],
    suffix: str,
    ready: bool = True,
    age: float = 300,
    waiting: str | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": stamp(age)}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{suffix}",
            "namespace": rs["metadata"]["namespace"],
            "uid": f"pod-{rs['metadata']['name']}-{suffix}",
            "creationTimestamp": stamp(age),
            "labels": dict(rs["metadata"]["labels"]),
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                 "uid": rs["metadata"]["uid"], "controller": True}
            ],
        },
        "spec": {"containers": [{"name": "web", "image": "x"}]},
        "status": {
            "phase": "Running" if not waiting else "Pending",
            "containerStatuses": [
                {"name": "web", "ready": ready, "restartCount": restarts, "state": state}
            ],
        },
    }


def analysisrun(
    ro: dict[str, Any], name: str, revision: int, phase: str, successful: int = 0, failed: int = 0, age: float = 120
) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": ro["metadata"]["namespace"],
            "uid": f"ar-{name}",
            "creationTimestamp": stamp(age),
            "annotations": {"rollouts.pyrollouts.io/revision": str(revision)},
            "ownerReferences": [{"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout",
                                 "name": ro["metadata"]["name"], "uid": ro["metadata"]["uid"], "controller": True}],
        },
        "spec": {"metrics": [{"name": "success-rate", "provider": {"web": {"url": "http://x"}}}]},
        "status": {
            "phase": phase,
            "metricResults": [{"name": "success-rate", "phase": phase, "successful": successful, "failed": failed}],
        },
    }


def paused_canary() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """A canary at step 1/4 (the indefinite pause after setWeight 20): 1 canary pod, 4 stable pods,
    a scaled-down older revision and a successful AnalysisRun for the canary's revision."""
    ro = rollout(
        status={
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "currentPodHash": "6f8f9c",
            "stableRS": "5d7b8a",
            "currentStepIndex": 1,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": stamp(60)}],
            "controllerPause": True,
            "replicas": 5,
            "updatedReplicas": 1,
            "readyReplicas": 5,
            "availableReplicas": 5,
            "observedGeneration": "2",
        }
    )
    canary_rs = replicaset(ro, "6f8f9c", 3, 1, image="nginx:1.26", age=90)
    stable_rs = replicaset(ro, "5d7b8a", 2, 4, image="nginx:1.25", age=3600)
    old_rs = replicaset(ro, "4c6a7b", 1, 0, image="nginx:1.24", age=7200)
    pods = [pod(canary_rs, "abcde", age=80)]
    pods += [pod(stable_rs, s, age=3500) for s in ("aaaaa", "bbbbb", "ccccc", "ddddd")]
    runs = [analysisrun(ro, "demo-6f8f9c-3-1", 3, "Successful", successful=3, age=70)]
    return ro, [canary_rs, stable_rs, old_rs], pods, runs
