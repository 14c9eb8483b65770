"""A sample of README's Argo compatibility table: each Argo field this controller cannot honour is an
error naming the field (the Rollout's InvalidSpec, the template's Invalid condition, `lint`), never ignored."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.spec import validate_template
from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from tests.fixtures.world import rollout

SERVICES: dict[str, Any] = {"canaryService": "web-canary", "stableService": "web-stable"}
WEIGHTED: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"experiment": {"templates": [{"name": "canary", "specRef": "canary", "weight": 5}]}},
]


def rollout_errors(steps: list[dict[str, Any]], **canary: Any) -> list[str]:
    spec = RolloutSpec.parse(rollout(steps=steps, **canary))
    return validate_rollout(spec, spec.template)


@pytest.mark.parametrize(
    ("case", "steps", "canary", "field"),
    [
        ("experiment weight on APISIX", WEIGHTED,
         {**SERVICES, "trafficRouting": {"apisix": {"route": {"name": "web"}}}},
         "spec.strategy.canary.steps[1].experiment.templates[0].weight: Invalid value: 5"),
        ("experiment weight on NGINX", WEIGHTED, {**SERVICES, "trafficRouting": {"nginx": {"stableIngress": "web"}}},
         "spec.strategy.canary.steps[1].experiment.templates[0].weight: Invalid value: 5"),
        ("pingPong on SMI", [{"setWeight": 10}],
         {"pingPong": {"pingService": "ping", "pongService": "pong"}, "trafficRouting": {"smi": {}}},
         "spec.strategy.canary.pingPong: Invalid value"),
    ],
)  # fmt: skip
def test_rollout_fields_we_cannot_honour(
    case: str, steps: list[dict[str, Any]], canary: dict[str, Any], field: str
) -> None:
    errors = rollout_errors(steps, **canary)
    assert any(e.startswith(field) for e in errors), (case, errors)


def test_web_authentication_is_refused_not_ignored() -> None:
    web = {"url": "https://example.com/health", "authentication": {"oauth2": {"tokenUrl": "https://t"}}}
    template = {"spec": {"metrics": [{"name": "m", "provider": {"web": web}}]}}
    assert any(
        e.startswith("spec.metrics[0].provider.web.authentication: not supported by the web provider")
        for e in validate_template(template)
    ), validate_template(template)
