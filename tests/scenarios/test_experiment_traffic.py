"""An experiment step's weighted templates through the Rollout's traffic router, on the sandbox with simulated
traffic and through `kubectl rollouts` only: while the experiment runs, each weighted template's Service gets
its share of the requests out of the stable's (SMI: a TrafficSplit backend; Istio: a VirtualService
destination; ALB: a target group of the Ingress's action); when the experiment ends, or the update is aborted,
the shares go back. A router that cannot do it (NGINX) makes the Rollout InvalidSpec, and `lint` says so,
naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.istio import http_routes, install_istio_crds, virtual_service
from tests.fixtures.manifests import Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import routed_manifests, simulated_shares, simulated_traffic
from tests.fixtures.weighted_routes import alb_ingress_manifest, alb_weights

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

EXPERIMENT = {
    "templates": [
        {"name": "baseline", "specRef": "stable", "weight": 10},
        {"name": "canary", "specRef": "canary", "weight": 10},
    ],
    "scaleDownDelaySeconds": 0,
}
STEPS: list[Step] = [{"setWeight": 20}, {"experiment": EXPERIMENT}, {"pause": {}}]
SMI = {"smi": {"rootService": "web", "trafficSplitName": "web-split"}}
ISTIO = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
ALB = {"alb": {"ingress": "web", "servicePort": 80}}
HOST_LEVEL_VS = virtual_service(
    {
        "name": "primary",
        "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}, "weight": 0},
        ],
    }
)

# the weights a router routes now, by Service (the experiment's Services by template name)
Weights = Callable[[Namespace, str], dict[str, int]]


@pytest.fixture(scope="module")
def router_crds(cluster: Cluster) -> None:
    install_crds(cluster, "smi.yaml", "trafficsplits", "TrafficSplit CRD")
    install_istio_crds(cluster)


def _by_template(weights: dict[str, int], experiment: str) -> dict[str, int]:
    """`weights` with the experiment's Services named by their template (`<experiment>-<template>`)."""
    return {name.removeprefix(f"{experiment}-") if experiment else name: w for name, w in weights.items()}


def split_weights(namespace: Namespace, experiment: str) -> dict[str, int]:
    obj = namespace.custom_object("split.smi-spec.io", "v1alpha2", "trafficsplits", "web-split") or {}
    backends = (obj.get("spec") or {}).get("backends") or []
    return _by_template({b["service"]: int(b["weight"]) for b in backends}, experiment)


def route_weights(namespace: Namespace, experiment: str) -> dict[str, int]:
    routes = dict(http_routes(namespace))
    return _by_template(routes.get("primary", {}), experiment)


def action_weights(namespace: Namespace, experiment: str) -> dict[str, int]:
    return _by_template(alb_weights(namespace) or {}, experiment)


def wait_weights(namespace: Namespace, read: Weights, experiment: str, want: dict[str, int]) -> None:
    namespace.cluster.wait(f"routed weights {want}", lambda: read(namespace, experiment) == want, 60)


def step_experiment(rollout: RolloutHandle, revision: int) -> str:
    """The name of revision `revision`'s experiment (step 1), once the Rollout has created it."""

    def check(status: dict[str, Any]) -> bool:
        return str((status.get("canary") or {}).get("currentExperiment") or "").endswith(f"-{revision}-1")

    return str(rollout.wait_status(f"revision {revision}'s experiment", check, 60).seen["canary"]["currentExperiment"])


def wait_experiment(namespace: Namespace, name: str, phase: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = namespace.custom_object("pyrollouts.io", "v1alpha1", "experiments", name) or {}
        status: dict[str, Any] = obj.get("status") or {}
        return status if status.get("phase") == phase else None

    return namespace.cluster.wait(f"experiment {name} {phase}", check, 60)


@pytest.mark.parametrize(
    ("routing", "companions", "read", "label"),
    [
        pytest.param(SMI, [], split_weights, "web", id="smi"),
        pytest.param(ISTIO, [HOST_LEVEL_VS], route_weights, "web-stable", id="istio"),
        pytest.param(ALB, [alb_ingress_manifest()], action_weights, "web-stable", id="alb"),
    ],
)
def test_weighted_templates_share_the_traffic_until_the_experiment_ends_or_the_rollout_aborts(
    cluster: Cluster,
    controller: ControllerProcess | None,
    sandbox: SandboxHandle,
    router_crds: None,
    routing: dict[str, Any],
    companions: list[dict[str, Any]],
    read: Weights,
    label: str,
) -> None:
    namespace = given(cluster, f"exp-{next(iter(routing))}")
    ns = namespace.name
    plugin = Plugin.on_cluster(cluster)

    def manifests(image: str) -> list[dict[str, Any]]:
        return [*companions, *routed_manifests(routing, STEPS, image=image, replicas=5, abortScaleDownDelaySeconds=1)]

    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)

    # the experiment runs: its two templates get 10 each, out of the stable's share
    plugin.ok("set", "image", "web", "web=nginx:2", "-n", ns)
    name = step_experiment(rollout, 2)
    status = wait_experiment(namespace, name, "Running")
    wait_weights(namespace, read, name, {"web-canary": 20, "web-stable": 60, "baseline": 10, "canary": 10})
    hashes = {t["name"]: t["podTemplateHash"] for t in status["templateStatuses"]}
    additional = rollout.wait_status(
        "the additional weights", lambda st: bool(st.get("canary", {}).get("weights", {}).get("additional")), 60
    ).seen["canary"]["weights"]
    assert additional["stable"]["weight"] == 60
    assert additional["additional"] == [
        {"serviceName": f"{name}-{t}", "podTemplateHash": hashes[t], "weight": 10} for t in ("baseline", "canary")
    ]
    if simulated_traffic():  # each template's pods answer a tenth of the requests
        assert sandbox.threaded.metrics_url is not None
        shares = simulated_shares(sandbox.threaded.metrics_url, ns, label)
        new, old = rollout.status["currentPodHash"], rollout.status["stableRS"]
        assert shares.get(hashes["baseline"], 0.0) == pytest.approx(0.10, abs=0.04)
        assert shares.get(hashes["canary"], 0.0) == pytest.approx(0.10, abs=0.04)
        assert shares.get(new, 0.0) == pytest.approx(0.20, abs=0.05)
        assert shares.get(old, 0.0) == pytest.approx(0.60, abs=0.06)

    # it ends: the Rollout goes on to its pause, and the templates' shares return to the stable
    plugin.ok("terminate", "experiment", name, "-n", ns)
    rollout.wait_paused("CanaryPauseStep", step=2, timeout=60)
    wait_weights(namespace, read, "", {"web-canary": 20, "web-stable": 80})
    plugin.ok("promote", "web", "-n", ns)
    rollout.wait_healthy(timeout=60)

    # an abort during the experiment: everything goes back to the stable
    plugin.ok("set", "image", "web", "web=nginx:3", "-n", ns)
    name = step_experiment(rollout, 3)
    wait_experiment(namespace, name, "Running")
    wait_weights(namespace, read, name, {"web-canary": 20, "web-stable": 60, "baseline": 10, "canary": 10})
    plugin.ok("abort", "web", "-n", ns)
    wait_weights(namespace, read, "", {"web-canary": 0, "web-stable": 100})
    wait_experiment(namespace, name, "Successful")  # terminated by the abort
    rollout.wait_degraded("RolloutAborted: Rollout aborted update to revision 3", timeout=60)
    assert "additional" not in rollout.status["canary"]["weights"]


def test_a_router_that_cannot_route_a_template_weight_is_invalid_spec_and_a_lint_error(
    cluster: Cluster, controller: ControllerProcess | None, tmp_path: Path
) -> None:
    namespace = given(cluster, "exp-nginx")
    objects = routed_manifests({"nginx": {"stableIngress": "web"}}, STEPS, replicas=2)
    field = "spec.strategy.canary.steps[1].experiment.templates[0].weight"
    words = f"{field}: Invalid value: 10: traffic router nginx cannot send a share of the traffic"
    rollout = namespace.rollout_of(objects).apply()
    status = rollout.wait_degraded(timeout=60).seen
    assert status["message"].startswith('InvalidSpec: The Rollout "web" is invalid: ') and words in status["message"]
    assert rollout.replicasets() == []

    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(json.dumps(objects[-1]))
    result = Plugin.on_cluster(cluster).run("lint", "-f", str(manifest))
    assert result.returncode != 0
    assert words in result.stdout + result.stderr
    assert "templates[1].weight" in result.stdout + result.stderr
