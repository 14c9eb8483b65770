"""Simulated controllers and kubelet, driven through the official kubernetes client.

ReplicaSets make pods, pods turn Ready (or not, or crash) by pod-template annotation, Jobs finish,
Deployments own ReplicaSets, Endpoints follow ready pods.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import kubernetes
import pytest

from rollouts.sandbox.workloads import CRASH, FAIL, NEVER_READY, READY_AFTER
from tests.fixtures.kube import api_client, request_body
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import poll

T = TypeVar("T")
NS = "default"
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{int(time.time() * 1000) % 100000}"


def eventually(probe: Callable[[], T | Literal[False] | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy; that value."""
    return poll("the condition", probe, timeout, interval)


class Cluster:
    """Thin JSON-in, JSON-out access through the kubernetes client's typed APIs."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.batch = kubernetes.client.BatchV1Api(api)

    @staticmethod
    def decoded(response: Any) -> Any:
        """The JSON body of a response read with `_preload_content=False` (which the client's annotations
        do not know: they name the model it would have built)."""
        return json.loads(response.data)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.decoded(
            self.core.list_namespaced_pod(NS, label_selector=selector, _preload_content=False)
        )["items"]
        return items

    def rs(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.decoded(self.apps.read_namespaced_replica_set(name, NS, _preload_content=False))
        return result

    def deployment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.decoded(self.apps.read_namespaced_deployment(name, NS, _preload_content=False))
        return result

    def job(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.decoded(self.batch.read_namespaced_job(name, NS, _preload_content=False))
        return result

    def endpoints(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.decoded(self.core.read_namespaced_endpoints(name, NS, _preload_content=False))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def create_rs(self, name: str, replicas: int, annotations: dict[str, str] | None = None,
                  min_ready: int = 0, labels: dict[str, str] | None = None,
                  selector: dict[str, str] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "minReadySeconds": min_ready,
                "selector": {"matchLabels": selector or {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name, **(labels or {})}, "annotations": annotations or {}},
                    "spec": {"containers": [{"name": "main", "image": "example/app:1"}]},
                },
            },
        }
        result: dict[str, Any] = self.decoded(
            self.apps.create_namespaced_replica_set(NS, request_body(body), _preload_content=False)
        )
        return result


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


@pytest.fixture(scope="module")
def cluster(sandbox: SandboxHandle) -> Iterator[Cluster]:
    api = api_client(sandbox.kubeconfig)
    try:
        yield Cluster(api)
    finally:
        api.close()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------- ReplicaSets


def test_replicaset_creates_named_labelled_owned_pods(cluster: Cluster) -> None:
    name = unique("rs")
    rs = cluster.create_rs(name, 3, labels={"tier": "web"})
    pods = eventually(lambda: (p := cluster.pods(f"app={name}")) and len(p) == 3 and p)
    for pod in pods:
        meta = pod["metadata"]
        assert re.fullmatch(rf"{name}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", meta["name"]), meta["name"]
        assert meta["labels"] == {"app": name, "tier": "web"}
        assert meta["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True,
        }]
        assert pod["spec"]["containers"][0]["image"] == "example/app:1"
    assert len({p["metadata"]["name"] for p in pods}) == 3
    status = eventually(lambda: (s := cluster.rs(name)["status"]).get("availableReplicas") == 3 and s)
    assert status["replicas"] == 3 and status["readyReplicas"] == 3 and status["fullyLabeledReplicas"] == 3
    assert status["observedGeneration"] == cluster.rs(name)["metadata"]["generation"]
    ready_pods = cluster.pods(f"app={name}")
    assert all(ready(p) and p["status"]["phase"] == "Running" and p["status"]["podIP"] for p in ready_pods)


def test_replicaset_scales_up_and_down(cluster: Cluster) -> None:
    name = unique("scale")
    cluster.create_rs(name, 2)
    eventually(lambda: cluster.rs(name).get("status", {}).get("readyReplicas") == 2)
    cluster.apps.patch_namespaced_replica_set_scale(name, NS, {"spec": {"replicas": 4}})
    eventually(lambda: len(cluster.pods(f"app={name}")) == 4)
    status = eventually(lambda: (s := cluster.rs(name)["status"]).get("readyReplicas") == 4 and s)
    rs = cluster.rs(name)
    assert status["observedGeneration"] == rs["metadata"]["generation"] == 2
    cluster.apps.patch_namespaced_replica_set(name, NS, {"spec": {"replicas": 1}})
    eventually(lambda: len(cluster.pods(f"app={name}")) == 1)
    status = eventually(lambda: (s := cluster.rs(name)["status"]).get("replicas") == 1 and s)
    assert status["observedGeneration"] == 3
    eventually(lambda: cluster.rs(name)["status"].get("availableReplicas") == 1)


def test_min_ready_seconds_delays_availability(cluster: Cluster) -> None:
    name = unique("minready")
    start = time.monotonic()
    cluster.create_rs(name, 2, min_ready=1)
    status = eventually(lambda: (s := cluster.rs(name).get("status", {})).get("readyReplicas") == 2 and s)
    if time.monotonic() - start < 0.8:
        assert status.get("availableReplicas", 0) == 0
    eventually(lambda: cluster.rs(name)["status"].get("availableReplicas") == 2, timeout=5)
    assert time.monotonic() - start >= 1.0


def test_ready_after_delays_readiness(cluster: Cluster) -> None:
    name = unique("slow")
    start = time.monotonic()
    cluster.create_rs(name, 1, {READY_AFTER: "1s"})
    pod = eventually(lambda: (p := cluster.pods(f"app={name}")) and p[0].get("status", {}).get("podIP") and p[0])
    if time.monotonic() - start < 0.8:
        assert not ready(pod)
        assert pod["status"]["phase"] == "Pending"
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ContainerCreating"
    eventually(lambda: ready(cluster.pods(f"app={name}")[0]), timeout=5)
    assert time.monotonic() - start >= 0.95


def test_never_ready_pods_stay_unready(cluster: Cluster) -> None:
    name = unique("never")
    cluster.create_rs(name, 2, {NEVER_READY: "true"})
    eventually(lambda: (s := cluster.rs(name).get("status", {})).get("replicas") == 2 and s)
    time.sleep(0.8)  # well past the sandbox's default readiness delay
    pods = cluster.pods(f"app={name}")
    assert len(pods) == 2 and not any(ready(p) for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    status = cluster.rs(name)["status"]
    assert status.get("readyReplicas", 0) == 0 and status.get("availableReplicas", 0) == 0


@pytest.mark.slow
def test_crashing_pods_show_crash_loop_with_climbing_restarts(cluster: Cluster) -> None:
    name = unique("crash")
    cluster.create_rs(name, 1, {CRASH: "true"})

    def container() -> dict[str, Any] | None:
        pods = cluster.pods(f"app={name}")
        statuses = pods[0].get("status", {}).get("containerStatuses") if pods else None
        return statuses[0] if statuses else None

    first = eventually(container)
    assert first["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert first["ready"] is False
    assert first["lastState"]["terminated"]["exitCode"] == 1
    later = eventually(lambda: (c := container()) and c["restartCount"] > first["restartCount"] and c, timeout=6)
    assert later["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cluster.rs(name)["status"].get("readyReplicas", 0) == 0


# ---------------------------------------------------------------------- Jobs


def _job(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
            }
        },
    }


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind and cond["status"] == "True":
            result: dict[str, Any] = cond
            return result
    return None


def test_jobs_complete_or_fail_by_annotation(cluster: Cluster) -> None:
    good, bad = unique("job-ok"), unique("job-fail")
    cluster.batch.create_namespaced_job(NS, request_body(_job(good)))
    cluster.batch.create_namespaced_job(NS, request_body(_job(bad, {FAIL: "true"})))
    complete = eventually(lambda: _condition(cluster.job(good), "Complete"))
    assert complete["reason"] == "CompletionsReached"
    status = cluster.job(good)["status"]
    assert status["succeeded"] == 1 and status["completionTime"] and status["startTime"]
    assert _condition(cluster.job(good), "Failed") is None
    failed = eventually(lambda: _condition(cluster.job(bad), "Failed"))
    assert failed["reason"] == "BackoffLimitExceeded"
    assert cluster.job(bad)["status"]["failed"] == 1
    assert _condition(cluster.job(bad), "Complete") is None


# ---------------------------------------------------------------------- Deployments


def _deployment(name: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def test_deployment_owns_a_replicaset_and_rolls_to_a_new_one(cluster: Cluster) -> None:
    name = unique("deploy")
    created = cluster.apps.create_namespaced_deployment(
        NS, request_body(_deployment(name, "app:1")), _preload_content=False
    )
    uid = Cluster.decoded(created)["metadata"]["uid"]

    def owned() -> list[dict[str, Any]]:
        items = Cluster.decoded(cluster.apps.list_namespaced_replica_set(NS, _preload_content=False))["items"]
        return [r for r in items if any(o["uid"] == uid for o in r["metadata"].get("ownerReferences", []))]

    first = eventually(lambda: o[0] if len(o := owned()) == 1 else None)
    pod_hash = first["metadata"]["labels"]["pod-template-hash"]
    assert first["metadata"]["name"] == f"{name}-{pod_hash}"
    assert first["spec"]["selector"]["matchLabels"] == {"app": name, "pod-template-hash": pod_hash}
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    status = eventually(lambda: (s := cluster.deployment(name).get("status", {})).get("availableReplicas") == 2 and s)
    assert status["updatedReplicas"] == 2 and status["observedGeneration"] == 1
    assert _condition(cluster.deployment(name), "Available") is not None
    pods = cluster.pods(f"app={name}")
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {pod_hash}

    cluster.apps.patch_namespaced_deployment(
        name, NS, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "app:2"}]}}}}
    )
    second = eventually(lambda: [r for r in owned() if r["metadata"]["name"] != first["metadata"]["name"]])
    new_hash = second[0]["metadata"]["labels"]["pod-template-hash"]
    assert new_hash != pod_hash
    assert second[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    eventually(lambda: cluster.rs(first["metadata"]["name"])["spec"]["replicas"] == 0)
    eventually(lambda: {p["metadata"]["labels"]["pod-template-hash"] for p in cluster.pods(f"app={name}")}
               == {new_hash})
    status = eventually(
        lambda: (s := cluster.deployment(name)["status"]).get("availableReplicas") == 2
        and s.get("replicas") == 2 and s.get("updatedReplicas") == 2 and s
    )
    assert status["observedGeneration"] == 2 and status["updatedReplicas"] == 2


# ---------------------------------------------------------------------- Endpoints


def test_endpoints_follow_ready_pods(cluster: Cluster) -> None:
    name = unique("ep")
    cluster.core.create_namespaced_service(NS, request_body({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    cluster.create_rs(name, 2)

    def addresses(key: str) -> list[str]:
        ep = cluster.endpoints(name)
        subsets = (ep or {}).get("subsets") or []
        return sorted(a["ip"] for s in subsets for a in s.get(key, []))

    ready_ips = eventually(lambda: (a := addresses("addresses")) and len(a) == 2 and a)
    pods = cluster.pods(f"app={name}")
    assert ready_ips == sorted(p["status"]["podIP"] for p in pods)
    ep = cluster.endpoints(name)
    assert ep is not None
    assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert {a["targetRef"]["name"] for a in ep["subsets"][0]["addresses"]} == {p["metadata"]["name"] for p in pods}

    # An unready pod of the same app is listed apart; a deleted one disappears.
    cluster.create_rs(f"{name}-x", 1, {NEVER_READY: "true"}, labels={"app": name, "unit": "x"},
                      selector={"unit": "x"})
    eventually(lambda: len(addresses("notReadyAddresses")) == 1)
    assert len(addresses("addresses")) == 2
    cluster.apps.patch_namespaced_replica_set_scale(name, NS, {"spec": {"replicas": 1}})
    eventually(lambda: len(addresses("addresses")) == 1)
