"""Every router's example, driven only through manifests and `kubectl rollouts`: set image, the
per-router SetWeight/ActualWeight in `get rollout`, abort (weight back to stable), retry, promote --full."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import given
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

# example file, Rollout name, trafficRouting key, the first step's weight
EXAMPLES = [
    ("nginx.yaml", "nginx-demo", "nginx", 10),
    ("smi.yaml", "smi-demo", "smi", 20),
    ("istio.yaml", "istio-demo", "istio", 10),
    ("gateway-api.yaml", "gateway-demo", "gatewayAPI", 10),
    ("apisix.yaml", "apisix-demo", "apisix", 10),
    ("ambassador.yaml", "ambassador-demo", "ambassador", 10),
    ("appmesh.yaml", "appmesh-demo", "appMesh", 10),
]
CRDS = [
    ("istio.yaml", "virtualservices,destinationrules", "Istio CRDs"),
    ("smi.yaml", "trafficsplits", "TrafficSplit CRD"),
    ("gateway-api.yaml", "httproutes,grpcroutes", "Gateway API CRDs"),
    ("apisix.yaml", "apisixroutes", "ApisixRoute CRD"),
    ("ambassador.yaml", "mappings", "Mapping CRD"),
    ("appmesh.yaml", "virtualservices.appmesh.k8s.aws,virtualrouters,virtualnodes", "App Mesh CRDs"),
]


@pytest.fixture(scope="module")
def routing_crds(cluster: Cluster) -> None:
    for file_name, resources, what in CRDS:
        install_crds(cluster, file_name, resources, what)


def canary_weight(status: dict[str, Any]) -> int | None:
    weights = (status.get("canary") or {}).get("weights") or {}
    weight = (weights.get("canary") or {}).get("weight")
    return int(weight) if weight is not None else None


@pytest.mark.parametrize(("example", "name", "key", "first_weight"), EXAMPLES, ids=[e[2] for e in EXAMPLES])
def test_the_example_through_the_plugin(
    cluster: Cluster, controller: ControllerProcess | None, routing_crds: None, example: str, name: str, key: str,
    first_weight: int,
) -> None:
    plugin = Plugin.on_cluster(cluster)
    namespace = given(cluster, f"plugin-{key.lower()}")
    ns = namespace.name
    namespace.kubectl("apply", "-f", str(REPO / "examples" / example))
    rollout = namespace.rollout_named(name).wait_healthy(timeout=60)

    plugin.ok("set", "image", name, "web=nginx:1.26", "-n", ns)
    rollout.wait_status(
        f"{name} at its first weight",
        lambda st: st.get("currentStepIndex") == 1 and canary_weight(st) == first_weight,
        60,
    )
    line = re.compile(rf"{re.escape(key)}:\s+SetWeight {first_weight}, ActualWeight {first_weight}\b")
    shown = plugin.ok("get", "rollout", name, "-n", ns)
    assert line.search(shown), shown

    plugin.ok("abort", name, "-n", ns)
    aborted = rollout.wait_degraded(timeout=60).seen
    assert aborted.get("abort") is True
    rollout.wait_for(f"{name} weight back on stable", lambda: canary_weight(rollout.status) == 0, 60)

    plugin.ok("retry", "rollout", name, "-n", ns)
    rollout.wait_for(
        f"{name} at its first weight again",
        lambda: canary_weight(rollout.status) == first_weight and not rollout.status.get("abort"),
        60,
    )

    plugin.ok("promote", name, "--full", "-n", ns)
    done = rollout.wait_healthy(timeout=60).seen
    assert done["stableRS"] == done["currentPodHash"]
    cluster.wait(f"{name} all traffic on the new stable", lambda: canary_weight(cluster.status(ns, name)) == 0, 60)
    assert "nginx:1.26" in str(cluster.rollout(ns, name)["spec"]["template"])
