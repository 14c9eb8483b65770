"""The checks on an experiment step's template ``weight``: a weighted template takes a share of the traffic
through the Rollout's traffic router, so it needs a router that can route to more Services than the canary
and the stable, and the shares must fit in ``maxTrafficWeight`` beside the canary's weight at that step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rollouts.model.spec import CanarySpec, RolloutSpec, max_traffic_weight
from rollouts.model.steps import set_weight_at
from rollouts.traffic.registry import build_routers
from rollouts.traffic.router import RoutesAdditionalDestinations

__all__ = ["experiment_weight_errors"]


def _weighted(raw: Any) -> list[tuple[int, Any]]:
    """(index, weight) of each template of an experiment step that sets a weight."""
    templates = raw.get("templates") if isinstance(raw, Mapping) else None
    if not isinstance(templates, list):
        return []
    return [(i, t["weight"]) for i, t in enumerate(templates) if isinstance(t, Mapping) and t.get("weight") is not None]


def _routers_that_cannot(ro: RolloutSpec, canary: CanarySpec) -> list[str]:
    routing = canary.traffic_routing or {}
    routers, _ = build_routers(routing, ro.name, ro.namespace, canary.stable_service, canary.canary_service)
    return [
        r.name
        for r in routers
        if not (isinstance(r, RoutesAdditionalDestinations) and r.routes_additional_destinations())
    ]


def experiment_weight_errors(ro: RolloutSpec, canary: CanarySpec) -> list[str]:
    """One error per experiment-step template weight this Rollout cannot route, naming the field and the fix."""
    errors: list[str] = []
    cannot: list[str] | None = None
    for step in canary.steps:
        weighted = _weighted(step.raw.get("experiment"))
        if not weighted:
            continue
        path = f"spec.strategy.canary.steps[{step.index}].experiment.templates"
        if canary.traffic_routing is None:
            errors += [
                f"{path}[{i}].weight: Invalid value: {json.dumps(w)}: Experiment template weight cannot be set "
                "unless TrafficRouting is enabled: set spec.strategy.canary.trafficRouting (SMI, Istio or ALB) or "
                "remove the weight"
                for i, w in weighted
            ]
            continue
        if cannot is None:
            cannot = _routers_that_cannot(ro, canary)
        if cannot:
            errors += [
                f"{path}[{i}].weight: Invalid value: {json.dumps(w)}: traffic router {', '.join(cannot)} cannot "
                "send a share of the traffic to an experiment template (SMI, Istio and ALB can): remove the weight"
                for i, w in weighted
            ]
            continue
        bad = [(i, w) for i, w in weighted if isinstance(w, bool) or not isinstance(w, int) or w < 0]
        errors += [
            f"{path}[{i}].weight: Invalid value: {json.dumps(w)}: must be a whole number, 0 or more" for i, w in bad
        ]
        if bad:
            continue
        total, canary_weight, limit = (
            sum(w for _, w in weighted),
            set_weight_at(ro, step.index),
            max_traffic_weight(canary),
        )
        if canary_weight + total > limit:
            errors.append(
                f"{path}: Invalid value: {total}: the templates' weights ({total}) and the canary's weight at this "
                f"step ({canary_weight}) add up to more than maxTrafficWeight ({limit}): lower them"
            )
    return errors
