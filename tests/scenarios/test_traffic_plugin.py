"""Every router's example, driven only through manifests and `kubectl rollouts`: set image, the
per-router SetWeight/ActualWeight in `get rollout`, abort (weight back to stable), retry, promote --full."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.plugin import Plugin
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

# example file, Rollout name, trafficRouting key, the first step's weight
EXAMPLES = [
    ("nginx.yaml", "nginx-demo", "nginx", 10),
    ("smi.yaml", "smi-demo", "smi", 20),
    ("istio.yaml", "istio-demo", "istio", 10),
    ("gateway-api.yaml", "gateway-demo", "gatewayAPI", 10),
]
CRDS = [
    ("istio.yaml", "virtualservices,destinationrules", "Istio CRDs"),
    ("smi.yaml", "trafficsplits", "TrafficSplit CRD"),
    ("gateway-api.yaml", "httproutes,grpcroutes", "Gateway API CRDs"),
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
    cluster: Cluster, controller: ControllerProcess, routing_crds: None, example: str, name: str, key: str,
    first_weight: int,
) -> None:
    plugin = Plugin(cluster)
    ns = cluster.new_namespace(f"plugin-{key.lower()}")
    cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / example))
    cluster.wait_phase(ns, name, "Healthy", timeout=60)

    plugin.ok("set", "image", name, "web=nginx:1.26", "-n", ns)
    cluster.wait(
        f"{name} at its first weight",
        lambda: (lambda st: st if st.get("currentStepIndex") == 1 and canary_weight(st) == first_weight else None)(
            cluster.status(ns, name)
        ),
        60,
    )
    line = re.compile(rf"{re.escape(key)}:\s+SetWeight {first_weight}, ActualWeight {first_weight}\b")
    shown = plugin.ok("get", "rollout", name, "-n", ns)
    assert line.search(shown), shown

    plugin.ok("abort", name, "-n", ns)
    aborted = cluster.wait_phase(ns, name, "Degraded", timeout=60)
    assert aborted.get("abort") is True
    cluster.wait(f"{name} weight back on stable", lambda: canary_weight(cluster.status(ns, name)) == 0, 60)

    plugin.ok("retry", "rollout", name, "-n", ns)
    cluster.wait(
        f"{name} at its first weight again",
        lambda: canary_weight(cluster.status(ns, name)) == first_weight and not cluster.status(ns, name).get("abort"),
        60,
    )

    plugin.ok("promote", name, "--full", "-n", ns)
    done = cluster.wait_phase(ns, name, "Healthy", timeout=60)
    assert done["stableRS"] == done["currentPodHash"]
    cluster.wait(f"{name} all traffic on the new stable", lambda: canary_weight(cluster.status(ns, name)) == 0, 60)
    assert "nginx:1.26" in str(cluster.rollout(ns, name)["spec"]["template"])
