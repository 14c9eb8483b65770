"""A third-party router through `trafficRouting.plugins`: the example plugin package
(`examples/router-plugin`) is installed into a directory on the controller's PYTHONPATH, and a Rollout
naming it moves through its steps, abort, retry and promote --full with the weights in the TrafficSplit
the plugin owns, and the sandbox's simulated requests following them. A plugin name nobody installed is
InvalidSpec naming the field."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers
from tests.fixtures.manifests import Step, service_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.router_plugin import PLUGIN_NAME, install_example_plugin
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import (
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    routed_manifests,
    status_weights,
)
from tests.fixtures.weighted_routes import canary_share

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

STEPS: list[Step] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
ROUTING = {"plugins": {PLUGIN_NAME: {"rootService": "web", "splitName": "web-split"}}}


@pytest.fixture(scope="module")
def controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """The controller, with the example plugin installed beside it (on its PYTHONPATH)."""
    site = install_example_plugin(tmp_path_factory.mktemp("plugin") / "site")
    path = os.pathsep.join(p for p in (str(site), cluster.env.get("PYTHONPATH", "")) if p)
    env = {**cluster.env, "PYTHONPATH": path}
    with running_controller(cluster.kubeconfig, env, tmp_path_factory.mktemp("controller")) as proc:
        yield proc


@pytest.fixture(scope="module")
def smi_crd(cluster: Cluster) -> None:
    install_crds(cluster, "smi.yaml", "trafficsplits", "TrafficSplit CRD")


def manifests(image: str, routing: dict[str, Any] = ROUTING) -> list[dict[str, Any]]:
    return [
        service_manifest("web", "web"),
        *routed_manifests(
            routing, STEPS, image=image, replicas=2, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
        ),
    ]


def split_weights(namespace: Namespace) -> dict[str, int] | None:
    obj = namespace.custom_object("split.smi-spec.io", "v1alpha2", "trafficsplits", "web-split")
    return None if obj is None else {b["service"]: int(b["weight"]) for b in obj["spec"]["backends"]}


def wait_split(namespace: Namespace, canary: int) -> None:
    wanted = {"web-canary": canary, "web-stable": 100 - canary}
    namespace.cluster.wait(f"plugin canary weight {canary}", lambda: split_weights(namespace) == wanted, 60)


def test_a_plugin_routes_steps_abort_retry_and_full_promotion(
    cluster: Cluster, controller: ControllerProcess, sandbox: SandboxHandle, smi_crd: None
) -> None:
    namespace = given(cluster, "rplugin")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    wait_split(namespace, 0)
    split = namespace.custom_object("split.smi-spec.io", "v1alpha2", "trafficsplits", "web-split")
    assert split is not None and split["metadata"]["ownerReferences"][0]["name"] == "web"

    namespace.apply(*manifests("nginx:2"))
    canary = rollout.wait_paused(timeout=60).seen["currentPodHash"]
    wait_split(namespace, 20)
    rollout.wait_sizes({"nginx:1": 2, "nginx:2": 1})
    assert status_weights(rollout) == (20, 80, True)
    shown = Plugin.on_cluster(cluster).ok("get", "rollout", "web", "-n", namespace.name)
    assert f"  plugins/{PLUGIN_NAME}: SetWeight 20, ActualWeight 20\n" in shown, shown
    metrics_url = sandbox.threaded.metrics_url
    assert metrics_url is not None
    # one canary pod beside two stable ones: by pods it would get a third; the plugin's split says 20%
    assert canary_share(metrics_url, namespace.name, "web", canary) == pytest.approx(0.2, abs=0.05)

    rollout.abort().wait_degraded(timeout=60)
    wait_split(namespace, 0)
    rollout.wait_sizes({"nginx:1": 2}, timeout=60)
    assert_weight_back_before_scale_down(rollout, 20, "from 1 to 0")

    rollout.retry().wait_paused(timeout=60)
    wait_split(namespace, 20)
    rollout.promote().wait_status("step 3", lambda st: st.get("currentStepIndex") == 3, 60)
    rollout.wait_paused(timeout=60)
    wait_split(namespace, 60)

    rollout.promote_full().wait_healthy(timeout=60).wait_sizes({"nginx:2": 2}, timeout=60)
    wait_split(namespace, 0)
    assert_weight_moves(rollout, [0, 20, 0, 20, 60, 100, 0])


def test_a_plugin_nobody_installed_is_invalid_spec(cluster: Cluster, controller: ControllerProcess) -> None:
    namespace = given(cluster, "rpluginmissing")
    routing: dict[str, Any] = {"plugins": {"acme/router": {}}}
    rollout = namespace.rollout_of(manifests("nginx:1", routing))
    status = rollout.apply().wait_status("InvalidSpec", lambda st: st.get("phase") == "Degraded", 60).seen
    assert "spec.strategy.canary.trafficRouting.plugins.acme/router" in status["message"]
    assert "'acme/router' is not installed" in status["message"]
