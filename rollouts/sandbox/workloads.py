"""Simulated controllers and kubelet: ReplicaSets make Pods, Pods turn Ready, Jobs finish,
Deployments own a ReplicaSet per template, Services get Endpoints.

Behaviour is steered by pod-template annotations (see SANDBOX_ANNOTATIONS), so a test or demo can
ask for a slow, never-ready, crashing or failing workload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from rollouts.model.durations import parse_go_duration
from rollouts.sandbox.endpoints import SelectorIndex
from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.jsoncopy import json_copy
from rollouts.sandbox.resources import ResourceType
from rollouts.sandbox.selectors import parse_label_selector
from rollouts.sandbox.store import Store, now_rfc3339
from rollouts.sandbox.watches import Event

log = logging.getLogger("pyrollouts.sandbox.workloads")

PREFIX = "sandbox.pyrollouts.io/"
READY_AFTER = PREFIX + "ready-after"
NEVER_READY = PREFIX + "never-ready"
CRASH = PREFIX + "crash"
FAIL = PREFIX + "fail"
REVISION = "deployment.kubernetes.io/revision"
SANDBOX_ANNOTATIONS = (
    READY_AFTER,
    NEVER_READY,
    CRASH,
    FAIL,
    PREFIX + "error-rate",
    PREFIX + "latency-ms",
    PREFIX + "latency-jitter-ms",
)
CRASH_RESTART_SECONDS = 2.0
NODE_NAME = "sandbox-node"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_BARE_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def parse_duration(text: str, default: float) -> float:
    """A Go duration (`500ms`, `3s`, `1m30s`) or a bare number of seconds (`2`) -> seconds; the default
    for anything unreadable or negative."""
    text = (text or "").strip()
    if _BARE_SECONDS.match(text):
        return float(text)
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        return default
    return seconds if seconds >= 0 else default


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A short, stable hash of a pod template, in the alphabet Kubernetes uses for pod-template-hash."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode() + str(collision_count).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_NAME_CHARS))
        chars.append(_NAME_CHARS[index])
    return "".join(chars)


def _owner_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


class Workloads:
    """All simulated controllers, driven by store events on the sandbox's event loop."""

    def __init__(self, store: Store, default_ready_after: float = 0.5, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.default_ready_after = default_ready_after
        self.clock = clock
        self._pending: set[tuple[str, str, str]] = set()
        self._scheduled = False
        self._ready_at: dict[str, float] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        reg = store.registry
        self.pods = self._type(reg.by_key("/pods"))
        self.replicasets = self._type(reg.by_key("apps/replicasets"))
        self.deployments = self._type(reg.by_key("apps/deployments"))
        self.jobs = self._type(reg.by_key("batch/jobs"))
        self.services = self._type(reg.by_key("/services"))
        self.endpoints = self._type(reg.by_key("/endpoints"))
        self.selection = SelectorIndex()

    @staticmethod
    def _type(rtype: ResourceType | None) -> ResourceType:
        assert rtype is not None
        return rtype

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for svc in self.store.objects(self.services):  # what was stored before we listened
            self.selection.service_changed(svc["metadata"].get("namespace", ""), svc["metadata"]["name"], svc)
        for pod in self.store.objects(self.pods):
            self.selection.pod_changed(pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod)
        self.store.subscribe(self._on_event)

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._loop = None

    # ------------------------------------------------------------------ scheduling

    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if event.key in ("apps/replicasets", "apps/deployments", "batch/jobs"):
            self._enqueue(event.key, ns, name)
            deployment = self._owner_name(event.obj, "Deployment") if event.key == "apps/replicasets" else None
            if deployment:
                # A Deployment's status sums its ReplicaSets' statuses, so it follows them.
                self._enqueue("apps/deployments", ns, deployment)
        elif event.key == "/pods":
            if event.type == "ADDED":
                self._enqueue("kubelet", ns, name)
            owner = self._owner_name(event.obj, "ReplicaSet")
            if owner:
                self._enqueue("apps/replicasets", ns, owner)
            for service in self.selection.pod_changed(ns, name, None if event.type == "DELETED" else event.obj):
                self._enqueue("endpoints", ns, service)
        elif event.key == "/services":
            self.selection.service_changed(ns, name, None if event.type == "DELETED" else event.obj)
            self._enqueue("endpoints", ns, name)

    @staticmethod
    def _owner_name(obj: Mapping[str, Any], kind: str) -> str | None:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == kind and ref.get("controller"):
                return str(ref.get("name"))
        return None

    def _enqueue(self, kind: str, namespace: str, name: str) -> None:
        self._pending.add((kind, namespace, name))
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _later(self, delay: float, kind: str, namespace: str, name: str) -> None:
        if self._loop is None:
            return
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            self._enqueue(kind, namespace, name)

        timer = self._loop.call_later(max(delay, 0.0), fire)
        holder.append(timer)
        self._timers.add(timer)

    def _drain(self) -> None:
        self._scheduled = False
        rounds = 0
        while self._pending and rounds < 1000:
            rounds += 1
            kind, namespace, name = self._pending.pop()
            handler = {
                "apps/replicasets": self._sync_replicaset,
                "apps/deployments": self._sync_deployment,
                "batch/jobs": self._sync_job,
                "kubelet": self._sync_pod,
                "endpoints": self._sync_endpoints,
            }[kind]
            try:
                handler(namespace, name)
            except ApiError as exc:
                # A conflicting write from a client is normal; the next event retries.
                log.debug("simulated %s %s/%s: %s", kind, namespace, name, exc)

    # ------------------------------------------------------------------ kubelet

    def _sync_pod(self, namespace: str, name: str) -> None:
        pod = self.store.find(self.pods, namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        annotations = pod["metadata"].get("annotations") or {}
        status = pod.get("status") or {}
        uid = pod["metadata"]["uid"]
        if _truthy(annotations.get(CRASH)):
            self._crash(pod)
            return
        if status.get("phase") == "Running":
            return
        if _truthy(annotations.get(NEVER_READY)):
            self._set_pod_status(pod, ready=False)
            return
        delay = parse_duration(str(annotations.get(READY_AFTER, "")), self.default_ready_after)
        due = self._ready_at.setdefault(uid, self.clock() + delay)
        if self.clock() >= due:
            self._set_pod_status(pod, ready=True)
        else:
            if status.get("phase") != "Pending" or not status.get("podIP"):
                self._set_pod_status(pod, ready=False, phase="Pending")
            self._later(due - self.clock(), "kubelet", namespace, name)

    def _pod_ip(self, uid: str) -> str:
        number = int(uid.replace("-", "")[:6], 16)
        return f"10.244.{(number >> 8) % 256}.{number % 254 + 1}"

    def _set_pod_status(
        self, pod: dict[str, Any], ready: bool, phase: str = "Running", restarts: int = 0, waiting: str | None = None
    ) -> None:
        meta = pod["metadata"]
        stamp = now_rfc3339(self.clock)
        containers = (pod.get("spec") or {}).get("containers") or []
        statuses = []
        for container in containers:
            entry: dict[str, Any] = {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "imageID": "",
                "ready": ready,
                "started": phase == "Running",
                "restartCount": restarts,
            }
            if waiting:
                entry["state"] = {"waiting": {"reason": waiting, "message": "back-off restarting failed container"}}
                entry["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": stamp}}
            elif phase == "Running":
                entry["state"] = {"running": {"startedAt": meta.get("creationTimestamp", stamp)}}
            else:
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
            statuses.append(entry)
        old = pod.get("status") or {}
        old_ready: dict[str, Any] = next((c for c in old.get("conditions") or [] if c.get("type") == "Ready"), {})
        ready_text = "True" if ready else "False"
        transition = old_ready.get("lastTransitionTime", stamp) if old_ready.get("status") == ready_text else stamp
        status = {
            "phase": phase,
            "hostIP": "10.0.0.1",
            "podIP": self._pod_ip(meta["uid"]),
            "podIPs": [{"ip": self._pod_ip(meta["uid"])}],
            "startTime": old.get("startTime", stamp),
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": meta.get("creationTimestamp", stamp)},
                {"type": "Initialized", "status": "True", "lastTransitionTime": meta.get("creationTimestamp", stamp)},
                {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": transition},
                {"type": "Ready", "status": ready_text, "lastTransitionTime": transition},
            ],
            "containerStatuses": statuses,
        }
        if ready and old_ready.get("status") != "True":
            self._ready_at[meta["uid"]] = self.clock()
        if not (pod.get("spec") or {}).get("nodeName"):
            spec_pod = json_copy(pod)
            spec_pod["spec"]["nodeName"] = NODE_NAME
            pod = self.store.replace_internal(self.pods, spec_pod)
        self.store.update_status(self.pods, meta.get("namespace", ""), meta["name"], status)

    def _crash(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        restarts = sum(int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or [])
        started = self._ready_at.setdefault("crash:" + meta["uid"], self.clock())
        due = int((self.clock() - started) / CRASH_RESTART_SECONDS)
        if due > restarts or not (pod.get("status") or {}).get("containerStatuses"):
            self._set_pod_status(pod, ready=False, restarts=max(due, restarts), waiting="CrashLoopBackOff")
        self._later(CRASH_RESTART_SECONDS, "kubelet", meta.get("namespace", ""), meta["name"])

    def pod_available(self, pod: Mapping[str, Any], min_ready_seconds: int) -> bool:
        if not _pod_ready(pod):
            return False
        ready_at = self._ready_at.get(pod["metadata"]["uid"], 0.0)
        return self.clock() - ready_at >= min_ready_seconds

    # ------------------------------------------------------------------ ReplicaSets

    def owned_pods(self, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._dependents(self.pods, owner)

    def _dependents(self, rtype: ResourceType, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The objects of `rtype` `owner` controls, in key order (from the garbage collector's owner index)."""
        uid = owner["metadata"]["uid"]
        found = []
        for rkey, key in self.store.garbage.dependents(uid):
            obj = self.store.object_at(rkey, key) if rkey == rtype.key else None
            if obj is not None and _controller_uid(obj) == uid:
                found.append(obj)
        return found

    def _sync_replicaset(self, namespace: str, name: str) -> None:
        rs = self.store.find(self.replicasets, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        pods = self._scale_pods(rs, namespace, int(spec.get("replicas", 1)))
        min_ready = int(spec.get("minReadySeconds", 0) or 0)
        ready = [p for p in pods if _pod_ready(p)]
        available = [p for p in ready if self.pod_available(p, min_ready)]
        if len(available) < len(ready):
            self._later(self._until_next_available(ready, min_ready), "apps/replicasets", namespace, name)
        status = _replicaset_status(rs, pods, ready, available)
        current = self.store.find(self.replicasets, namespace, name)
        if current is not None and current.get("status") != status:
            self.store.update_status(self.replicasets, namespace, name, status)

    def _scale_pods(self, rs: Mapping[str, Any], namespace: str, desired: int) -> list[dict[str, Any]]:
        """Create or delete the ReplicaSet's pods until it has `desired`; the pods it then has."""
        pods = [p for p in self.owned_pods(rs) if not p["metadata"].get("deletionTimestamp")]
        if len(pods) < desired:
            for _ in range(desired - len(pods)):
                pods.append(self._create_pod(rs))
        elif len(pods) > desired:
            for pod in sorted(pods, key=_deletion_rank)[: len(pods) - desired]:
                self.store.delete(self.pods, namespace, pod["metadata"]["name"])
                pods.remove(pod)
        return pods

    def _until_next_available(self, ready: list[dict[str, Any]], min_ready: int) -> float:
        """Seconds until the next ready pod has been ready for minReadySeconds (when to look again)."""
        waits = [self._ready_at.get(p["metadata"]["uid"], 0.0) + min_ready - self.clock() for p in ready]
        return max(min(w for w in waits if w > 0), 0.01) if any(w > 0 for w in waits) else 0.05

    def _create_pod(self, rs: Mapping[str, Any]) -> dict[str, Any]:
        template = json_copy((rs.get("spec") or {}).get("template") or {})
        meta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {
            "generateName": rs["metadata"]["name"] + "-",
            "labels": meta.get("labels") or {},
            "ownerReferences": [_owner_ref(rs)],
        }
        if meta.get("annotations"):
            pod_meta["annotations"] = meta["annotations"]
        pod_meta["name"] = rs["metadata"]["name"] + "-" + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        body = {"metadata": pod_meta, "spec": template.get("spec") or {"containers": []}}
        return self.store.create_internal(self.pods, rs["metadata"].get("namespace", ""), body)

    # ------------------------------------------------------------------ Deployments

    def _sync_deployment(self, namespace: str, name: str) -> None:
        deploy = self.store.find(self.deployments, namespace, name)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return
        replicas = int((deploy.get("spec") or {}).get("replicas", 1))
        current_name, owned = self._current_replicaset(deploy, namespace, replicas)
        for rs in owned:
            want = replicas if rs["metadata"]["name"] == current_name else 0
            if (rs.get("spec") or {}).get("replicas") != want:
                changed = json_copy(rs)
                changed["spec"]["replicas"] = want
                self.store.replace_internal(self.replicasets, changed)
        deploy = self._record_revision(deploy, owned, current_name)
        current = next(
            r for r in self.store.objects(self.replicasets, namespace) if r["metadata"]["name"] == current_name
        )
        rs_status = current.get("status") or {}
        status = _deployment_status(deploy, owned, rs_status, replicas)
        if (deploy.get("status") or {}) != status:
            self.store.update_status(self.deployments, namespace, name, status)
        if rs_status.get("availableReplicas", 0) != replicas:
            # The ReplicaSet's own events bring us back here once its pods move.
            self._later(0.2, "apps/deployments", namespace, name)

    def _owned_replicasets(self, deploy: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
        return self._dependents(self.replicasets, deploy)

    def _current_replicaset(
        self, deploy: Mapping[str, Any], namespace: str, replicas: int
    ) -> tuple[str, list[dict[str, Any]]]:
        """The name of the ReplicaSet of the Deployment's template, created (or, after an undo, made the
        newest revision) if need be, and the Deployment's ReplicaSets as they then are."""
        template = json_copy((deploy.get("spec") or {}).get("template") or {})
        owned = self._owned_replicasets(deploy, namespace)
        # As the deployment controller does: an existing ReplicaSet whose template equals ours, ignoring
        # the hash label (after `kubectl rollout undo`, say), is the current one.
        same = [r for r in owned if _comparable_template(r) == _comparable_template(deploy)]
        pod_hash = (
            str(same[0]["metadata"].get("labels", {}).get("pod-template-hash", "")) if same else ""
        ) or template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
        current_name = same[0]["metadata"]["name"] if same else f"{deploy['metadata']['name']}-{pod_hash}"
        revisions = {r["metadata"]["name"]: _revision(r) for r in owned}
        newest = max(revisions.values(), default=0)
        if current_name not in revisions:
            self._create_replicaset(deploy, namespace, current_name, template, pod_hash, newest + 1, replicas)
            owned = self._owned_replicasets(deploy, namespace)
        elif revisions[current_name] < newest:
            # Back to an older template (`kubectl rollout undo`): its ReplicaSet becomes the newest revision.
            rs = json_copy(next(r for r in owned if r["metadata"]["name"] == current_name))
            rs["metadata"].setdefault("annotations", {})[REVISION] = str(newest + 1)
            self.store.replace_internal(self.replicasets, rs)
            owned = self._owned_replicasets(deploy, namespace)
        return current_name, owned

    def _create_replicaset(
        self,
        deploy: Mapping[str, Any],
        namespace: str,
        name: str,
        template: dict[str, Any],
        pod_hash: str,
        revision: int,
        replicas: int,
    ) -> None:
        """A new ReplicaSet for the Deployment's template (which carries the pod-template-hash label)."""
        spec = deploy.get("spec") or {}
        selector = json_copy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        self.store.create_internal(
            self.replicasets,
            namespace,
            {
                "metadata": {
                    "name": name,
                    "labels": {**template["metadata"]["labels"]},
                    "annotations": {REVISION: str(revision)},
                    "ownerReferences": [_owner_ref(deploy)],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": selector,
                    "template": template,
                    "minReadySeconds": spec.get("minReadySeconds", 0),
                },
            },
        )

    def _record_revision(
        self, deploy: dict[str, Any], owned: list[dict[str, Any]], current_name: str
    ) -> dict[str, Any]:
        """The Deployment carries its current ReplicaSet's revision annotation; the Deployment as stored."""
        current_revision = next(str(_revision(r)) for r in owned if r["metadata"]["name"] == current_name)
        if (deploy["metadata"].get("annotations") or {}).get(REVISION) != current_revision:
            annotated = json_copy(deploy)
            annotated["metadata"].setdefault("annotations", {})[REVISION] = current_revision
            deploy = self.store.replace_internal(self.deployments, annotated)
        return deploy

    # ------------------------------------------------------------------ Jobs

    def _sync_job(self, namespace: str, name: str) -> None:
        job = self.store.find(self.jobs, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        status = job.get("status") or {}
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            return
        annotations = {
            **(job["metadata"].get("annotations") or {}),
            **((((job.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}),
        }
        uid = job["metadata"]["uid"]
        delay = parse_duration(str(annotations.get(READY_AFTER, "")), self.default_ready_after)
        due = self._ready_at.setdefault("job:" + uid, self.clock() + delay)
        stamp = now_rfc3339(self.clock)
        if self.clock() < due:
            if not status.get("startTime"):
                self.store.update_status(self.jobs, namespace, name, {"startTime": stamp, "active": 1})
            self._later(due - self.clock(), "batch/jobs", namespace, name)
            return
        if _truthy(annotations.get(FAIL)):
            done = {
                "startTime": status.get("startTime", stamp),
                "failed": 1,
                "active": 0,
                "conditions": [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                        "lastTransitionTime": stamp,
                    },
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                        "lastTransitionTime": stamp,
                    },
                ],
            }
        else:
            done = {
                "startTime": status.get("startTime", stamp),
                "completionTime": stamp,
                "succeeded": 1,
                "active": 0,
                "conditions": [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastTransitionTime": stamp,
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastTransitionTime": stamp,
                    },
                ],
            }
        self.store.update_status(self.jobs, namespace, name, done)

    # ------------------------------------------------------------------ Endpoints

    def _sync_endpoints(self, namespace: str, name: str) -> None:
        """The Service's Endpoints (same name) list the pods its selector picks, ready or not (the
        selection index finds them: no scan of the namespace's pods)."""
        service = self.store.find(self.services, namespace, name)
        if service is None or not (service.get("spec") or {}).get("selector"):
            return
        members = [
            pod
            for pod_name in self.selection.selected_pods(namespace, name)
            if (pod := self.store.find(self.pods, namespace, pod_name)) is not None
        ]
        subsets = _endpoint_subsets(service, members)
        svc_name = service["metadata"]["name"]
        existing = self.store.find(self.endpoints, namespace, svc_name)
        body = {
            "metadata": {"name": svc_name, "labels": service["metadata"].get("labels") or {}},
            "subsets": subsets,
        }
        if existing is None:
            self.store.create_internal(self.endpoints, namespace, body)
        elif existing.get("subsets") != subsets:
            changed = json_copy(existing)
            changed["subsets"] = subsets
            self.store.replace_internal(self.endpoints, changed)


def _endpoint_subsets(service: Mapping[str, Any], members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One subset: the ready pods' addresses, those of pods with an IP but not ready, the target ports."""
    ready = [p for p in members if _pod_ready(p)]
    not_ready = [p for p in members if not _pod_ready(p) and (p.get("status") or {}).get("podIP")]
    ports = [
        {
            "name": p.get("name", ""),
            "port": p.get("targetPort", p.get("port")),
            "protocol": p.get("protocol", "TCP"),
        }
        for p in (service.get("spec") or {}).get("ports") or []
    ]
    ports = [p if p["name"] else {k: v for k, v in p.items() if k != "name"} for p in ports]
    subset: dict[str, Any] = {}
    if ready:
        subset["addresses"] = [_address(p) for p in ready]
    if not_ready:
        subset["notReadyAddresses"] = [_address(p) for p in not_ready]
    return [{**subset, "ports": ports}] if subset else []


def _replicaset_status(
    rs: Mapping[str, Any], pods: list[dict[str, Any]], ready: list[dict[str, Any]], available: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ReplicaSet's status: its pods counted (fully labeled: carrying every label of the template)."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(
            1
            for p in pods
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
        ),
        "readyReplicas": len(ready),
        "availableReplicas": len(available),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }


def _deployment_status(
    deploy: Mapping[str, Any], owned: list[dict[str, Any]], rs_status: Mapping[str, Any], replicas: int
) -> dict[str, Any]:
    """The Deployment's status: its ReplicaSets' counts summed, `updated` those of the current one."""
    total = sum(int((r.get("status") or {}).get("replicas", 0)) for r in owned)
    available = sum(int((r.get("status") or {}).get("availableReplicas", 0)) for r in owned)
    return {
        "observedGeneration": deploy["metadata"].get("generation", 1),
        "replicas": total,
        "updatedReplicas": int(rs_status.get("replicas", 0)),
        "readyReplicas": sum(int((r.get("status") or {}).get("readyReplicas", 0)) for r in owned),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available >= replicas else "False",
                "reason": "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
            }
        ],
    }


def _address(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "ip": (pod.get("status") or {}).get("podIP", ""),
        "nodeName": NODE_NAME,
        "targetRef": {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta["uid"]},
    }


def _pruned(value: Any) -> Any:
    if isinstance(value, Mapping):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _comparable_template(owner: Mapping[str, Any]) -> Any:
    """A pod template without the hash label and empty values, to compare as the controller does."""
    template = json_copy(((owner.get("spec") or {}).get("template")) or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    return _pruned(template)


def _revision(rs: Mapping[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _deletion_rank(pod: Mapping[str, Any]) -> tuple[int, str]:
    """Scale-down order as in the ReplicaSet controller: not-ready first, then the newest."""
    created = str(pod["metadata"].get("creationTimestamp", ""))
    inverted = "".join(chr(255 - ord(c)) for c in created)
    return (1 if _pod_ready(pod) else 0, inverted)


__all__ = ["SANDBOX_ANNOTATIONS", "Workloads", "parse_duration", "parse_label_selector", "template_hash"]
