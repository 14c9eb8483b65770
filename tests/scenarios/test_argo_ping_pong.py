"""Argo's Istio ping-pong on the sandbox: `canary.pingPong: {pingService, pongService}` instead of
canaryService/stableService. Ping is the stable Service first; each promotion hands the stable role to
the Service that already selects the new version, so ping and pong swap roles each release. The
VirtualService is bound to an Istio Gateway (the kind is in examples/crds/istio.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.istio import GROUP, VERSION, custom, http_routes, install_istio_crds, virtual_service
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.traffic import READY_FAST

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}]
PING_PONG = {"pingService": "web-ping", "pongService": "web-pong"}
ROUTING = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
GATEWAY = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Gateway",
    "metadata": {"name": "web-gateway"},
    "spec": {"selector": {"istio": "ingressgateway"},
             "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["web.example.com"]}]},
}


@pytest.fixture(scope="module")
def istio_crds(cluster: Cluster) -> None:
    install_istio_crds(cluster)


def manifests(image: str) -> list[dict[str, Any]]:
    vs = virtual_service({
        "name": "primary",
        "route": [
            {"destination": {"host": "web-ping"}, "weight": 100},
            {"destination": {"host": "web-pong"}, "weight": 0},
        ],
    })
    vs["spec"]["gateways"] = ["web-gateway"]
    ro = rollout_manifest("web", replicas=4, steps=STEPS, image=image, annotations=READY_FAST,
                          pingPong=PING_PONG, trafficRouting=ROUTING, scaleDownDelaySeconds=1)
    return [GATEWAY, vs, service_manifest("web-ping", "web"), service_manifest("web-pong", "web"), ro]


def selects(namespace: Namespace, service: str) -> str:
    return str(namespace.service(service)["spec"]["selector"].get(HASH_LABEL, ""))


def split(ping: int, pong: int) -> list[tuple[str, dict[str, int]]]:
    return [("primary", {"web-ping": ping, "web-pong": pong})]


def test_ping_and_pong_swap_roles_each_release(
    cluster: Cluster, controller: ControllerProcess | None, istio_crds: None
) -> None:
    namespace = given(cluster, "pingpong")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    assert rollout.status["canary"]["stablePingPong"] == "ping"
    v1 = rollout.hash_of("nginx:1")
    rollout.wait_for("ping on v1", lambda: selects(namespace, "web-ping") == v1, 30)
    assert custom(namespace, "gateways", "web-gateway") is not None

    # release 2: pong is the canary Service
    rollout.set_image("nginx:2")
    rollout.wait_paused(timeout=60)
    v2 = rollout.hash_of("nginx:2")
    rollout.wait_for("the split at 25 on pong", lambda: http_routes(namespace) == split(75, 25), 60)
    assert (selects(namespace, "web-ping"), selects(namespace, "web-pong")) == (v1, v2)
    weights = rollout.status["canary"]["weights"]
    assert (weights["canary"]["serviceName"], weights["stable"]["serviceName"]) == ("web-pong", "web-ping")
    shown = Plugin.on_cluster(cluster).ok("get", "rollout", "web", "-n", namespace.name)
    assert any("canary" in line and "pong" in line for line in shown.splitlines()), shown

    rollout.promote().wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
    assert rollout.status["canary"]["stablePingPong"] == "pong"
    rollout.wait_for("all traffic on pong", lambda: http_routes(namespace) == split(0, 100), 60)
    assert selects(namespace, "web-pong") == v2

    # release 3: ping is the canary Service now
    rollout.set_image("nginx:3")
    rollout.wait_paused(timeout=60)
    v3 = rollout.hash_of("nginx:3")
    rollout.wait_for("the split at 25 on ping", lambda: http_routes(namespace) == split(25, 75), 60)
    assert (selects(namespace, "web-ping"), selects(namespace, "web-pong")) == (v3, v2)
    assert rollout.status["canary"]["stablePingPong"] == "pong"
    rollout.promote().wait_healthy(timeout=60).wait_sizes({"nginx:3": 4}, timeout=60)
    assert rollout.status["canary"]["stablePingPong"] == "ping"
    rollout.wait_for("all traffic on ping", lambda: http_routes(namespace) == split(100, 0), 60)


def test_ping_pong_without_istio_names_the_field(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "pingpong-bad")
    ro = rollout_manifest("web", replicas=2, steps=STEPS, pingPong=PING_PONG)
    rollout = namespace.rollout_of([service_manifest("web-ping", "web"), service_manifest("web-pong", "web"), ro])
    message = rollout.apply().wait_degraded().seen["message"]
    assert "spec.strategy.canary.pingPong" in message and "needs trafficRouting.istio" in message, message
