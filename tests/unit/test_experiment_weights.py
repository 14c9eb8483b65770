"""An experiment step's template ``weight`` is InvalidSpec, naming the field, wherever it cannot be routed:
without a traffic router, with a router that cannot give a third Service a share, or when the shares do not
fit in ``maxTrafficWeight`` beside the step's canary weight."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from tests.fixtures.world import rollout

FIELD = "spec.strategy.canary.steps[1].experiment.templates"


def errors_of(weights: tuple[Any, ...], set_weight: int = 20, **canary: Any) -> list[str]:
    templates = [{"name": f"t{i}", "specRef": "canary", "weight": w} for i, w in enumerate(weights)]
    steps: list[dict[str, Any]] = [{"setWeight": set_weight}, {"experiment": {"templates": templates}}]
    obj = rollout(steps=steps, canaryService="web-canary", stableService="web-stable", **canary)
    spec = RolloutSpec.parse(obj)
    return [e for e in validate_rollout(spec, spec.template) if ".experiment." in e]


SMI: dict[str, Any] = {"smi": {}}


@pytest.mark.parametrize(
    "routing",
    [SMI, {"istio": {"virtualService": {"name": "web"}}}, {"alb": {"ingress": "web", "servicePort": 80}}],
    ids=["smi", "istio", "alb"],
)
def test_routers_that_can_take_the_weights(routing: dict[str, Any]) -> None:
    assert errors_of((10, 10), trafficRouting=routing) == []
    assert errors_of((40, 40), trafficRouting=routing) == []  # 20 + 80 = 100


def test_without_a_router_each_weight_is_named() -> None:
    assert errors_of((10, 5)) == [
        f"{FIELD}[0].weight: Invalid value: 10: Experiment template weight cannot be set unless TrafficRouting is "
        "enabled: set spec.strategy.canary.trafficRouting (SMI, Istio or ALB) or remove the weight",
        f"{FIELD}[1].weight: Invalid value: 5: Experiment template weight cannot be set unless TrafficRouting is "
        "enabled: set spec.strategy.canary.trafficRouting (SMI, Istio or ALB) or remove the weight",
    ]


@pytest.mark.parametrize(
    ("routing", "names"),
    [
        ({"nginx": {"stableIngress": "web"}}, "nginx"),
        ({"traefik": {"weightedTraefikServiceName": "web"}}, "traefik"),
        ({"smi": {}, "nginx": {"stableIngress": "web"}}, "nginx"),
    ],
    ids=["nginx", "traefik", "smi-and-nginx"],
)
def test_a_router_that_cannot_is_named(routing: dict[str, Any], names: str) -> None:
    [error] = errors_of((10,), trafficRouting=routing)
    assert error.startswith(f"{FIELD}[0].weight: Invalid value: 10: traffic router {names} cannot send a share")


def test_shares_past_max_traffic_weight() -> None:
    [error] = errors_of((30, 60), trafficRouting=SMI)
    assert error == (
        f"{FIELD}: Invalid value: 90: the templates' weights (90) and the canary's weight at this step (20) add up "
        "to more than maxTrafficWeight (100): lower them"
    )
    assert errors_of((300, 600), set_weight=100, trafficRouting={**SMI, "maxTrafficWeight": 1000}) == []


def test_a_negative_weight() -> None:
    [error] = errors_of((-1,), trafficRouting=SMI)
    assert error == f"{FIELD}[0].weight: Invalid value: -1: must be a whole number, 0 or more"
