"""Routing objects come from watch caches: a converged Rollout with an Istio or NGINX router makes no GET,
LIST or write in steady state, even when a change to its routing object makes it reconcile; the Istio
CRDs are installed after the controller started, so their watch starts on the CRD's arrival.
With Istio's and App Mesh's CRDs served at once (both define `virtualservices`) each router reads its own
kind. Requests are counted by the sandbox (GET /sandbox/request-counts), per client."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.appmesh import appmesh_manifests, mesh_weights
from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import FREE_PORTS, ControllerProcess, runs_own_controllers
from tests.fixtures.istio import http_routes, install_istio_crds, virtual_service
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.traffic import ingress_manifest, routed_manifests

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

# The controller process's two clients: ours (reads and writes) and kopf's (the watches).
CONTROLLER_CLIENTS = frozenset({"pyrollouts-controller", "kopf"})
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}]
ISTIO_ROUTING = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
NGINX_ROUTING = {"nginx": {"stableIngress": "web"}}
HOST_LEVEL_VS = virtual_service(
    {
        "name": "primary",
        "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}, "weight": 0},
        ],
    }
)


@pytest.fixture(scope="module")
def controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """This module's controller serves /metrics (its reconcile counts say when a pass happened); it is up
    before the Istio CRDs are installed."""
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("controller"), listen=FREE_PORTS)
    proc.start()
    try:
        cluster.wait("the controller's /metrics", lambda: proc.port("/metrics"), timeout=30)
        yield proc
    finally:
        proc.stop()


def controller_requests(sandbox: SandboxHandle) -> Counter[tuple[str, str]]:
    """(verb, resource) -> count of the controller's requests so far."""
    rows = httpx.get(f"{sandbox.url}/sandbox/request-counts", timeout=10).json()
    out: Counter[tuple[str, str]] = Counter()
    for row in rows:
        if row["client"] in CONTROLLER_CLIENTS:
            out[(row["verb"], row["resource"])] += row["count"]
    return out


def reconciles(controller: ControllerProcess, namespace: str) -> float:
    """How many times the controller reconciled Rollout `web` of `namespace` (its /metrics)."""
    port = controller.port("/metrics")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(rf'^rollout_reconcile_count{{name="web",namespace="{namespace}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def assert_steady_state_reads_nothing(
    sandbox: SandboxHandle, controller: ControllerProcess, namespace: Namespace, rollout: RolloutHandle, touch: str
) -> None:
    """A change to the routing object (a label, nothing the router reads) requeues the Rollout through the
    watch; its pass reads the object from the cache and writes nothing."""
    before_passes = reconciles(controller, namespace.name)
    before = controller_requests(sandbox)
    namespace.kubectl("label", touch, "web", "touched=yes")
    rollout.wait_for(
        "a pass of the Rollout after the routing object changed",
        lambda: reconciles(controller, namespace.name) > before_passes,
        timeout=30,
    )
    delta = controller_requests(sandbox) - before
    # Watches may be re-opened; discovery documents ("/apis/<group>": the slow re-check of routing kinds
    # not served yet) are no objects. Nothing else: no GET, no LIST, no write.
    reads_or_writes = {key: n for key, n in delta.items() if key[0] != "watch" and not key[1].startswith("/")}
    assert reads_or_writes == {}, delta


def test_istio_crds_installed_after_the_controller_started_are_watched(
    sandbox: SandboxHandle, cluster: Cluster, controller: ControllerProcess
) -> None:
    install_istio_crds(cluster)
    namespace = given(cluster, "vs-watch")
    rollout = namespace.rollout_of([HOST_LEVEL_VS, *routed_manifests(ISTIO_ROUTING, STEPS, replicas=2)])
    rollout.apply().wait_healthy(timeout=60)
    cluster.wait(
        "the controller to watch VirtualServices",
        lambda: controller_requests(sandbox)[("watch", "virtualservices")] > 0,
        timeout=30,
    )
    assert_steady_state_reads_nothing(sandbox, controller, namespace, rollout, "virtualservices.networking.istio.io")


def test_ingresses_are_read_from_the_watch_cache(
    sandbox: SandboxHandle, cluster: Cluster, controller: ControllerProcess
) -> None:
    namespace = given(cluster, "ing-watch")
    manifests = [ingress_manifest("web", "web-stable"), *routed_manifests(NGINX_ROUTING, STEPS, replicas=2)]
    rollout = namespace.rollout_of(manifests).apply().wait_healthy(timeout=60)
    assert_steady_state_reads_nothing(sandbox, controller, namespace, rollout, "ingress")


def test_istio_and_app_mesh_virtualservices_are_watched_apart(
    sandbox: SandboxHandle, cluster: Cluster, controller: ControllerProcess
) -> None:
    """Both groups serve `virtualservices`, each Rollout's VirtualService is named `web`: each router reads
    and writes its own kind, and a change to either requeues only through its own watch."""
    install_istio_crds(cluster)
    install_crds(cluster, "appmesh.yaml", "virtualrouters,virtualnodes", "App Mesh CRDs")
    istio_ns, mesh_ns = given(cluster, "vs-both-istio"), given(cluster, "vs-both-mesh")
    istio = istio_ns.rollout_of([HOST_LEVEL_VS, *routed_manifests(ISTIO_ROUTING, STEPS, replicas=2)])
    mesh = mesh_ns.rollout_of(appmesh_manifests("nginx:1", STEPS))
    istio.apply().wait_healthy(timeout=60)
    mesh.apply().wait_healthy(timeout=60)
    istio.set_image("nginx:2").wait_paused(timeout=60)
    mesh.set_image("nginx:2").wait_paused(timeout=60)
    assert http_routes(istio_ns) == [("primary", {"web-stable": 80, "web-canary": 20})]
    assert mesh_weights(mesh_ns) == (20, 80)
    assert_steady_state_reads_nothing(sandbox, controller, istio_ns, istio, "virtualservices.networking.istio.io")
    assert_steady_state_reads_nothing(sandbox, controller, mesh_ns, mesh, "virtualservices.appmesh.k8s.aws")
