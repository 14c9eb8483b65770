"""``canary.pingPong``: two Services that take turns as the stable and the canary Service (Argo's ping-pong,
routed through Istio here). What the spec must hold for it; which Service is which comes from
``status.canary.stablePingPong`` (:meth:`rollouts.model.spec.CanarySpec.with_stable_ping_pong`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rollouts.model.spec import CanarySpec

__all__ = ["ping_pong_errors"]

PATH = "spec.strategy.canary"


def _invalid(field: str, value: Any, detail: str) -> str:
    return f"{PATH}.{field}: Invalid value: {json.dumps(value, sort_keys=True, separators=(',', ':'))}: {detail}"


def ping_pong_errors(canary: CanarySpec, namespace: str, services: Mapping[str, Any] | None) -> list[str]:
    """InvalidSpec messages for ``pingPong``: both Services named, different, existing (when ``services``
    is given), without ``canaryService`` / ``stableService``, and routed by Istio at the host level."""
    errors: list[str] = []
    ping, pong = canary.ping_service, canary.pong_service
    for field, name in (("pingService", ping), ("pongService", pong)):
        if not name:
            errors.append(
                f"{PATH}.pingPong.{field}: Required value: Ping service and Pong service must be set to use "
                "the ping-pong feature"
            )
        elif services is not None and name not in services:
            errors.append(_invalid(f"pingPong.{field}", name,
                                   f'service "{name}" not found in namespace "{namespace}": create it or fix the name'))
    if ping and ping == pong:
        errors.append(_invalid("pingPong.pongService", pong, "pingService and pongService must be different Services"))
    for field in ("canaryService", "stableService"):
        if canary.raw.get(field):
            errors.append(_invalid(field, canary.raw[field],
                                   f"pingPong takes the place of canaryService and stableService: remove {field}"))
    routing = canary.traffic_routing or {}
    istio = routing.get("istio")
    if not isinstance(istio, Mapping):
        errors.append(_invalid("pingPong", dict(canary.raw.get("pingPong") or {}),
                               "ping-pong needs trafficRouting.istio: the two Services take turns as the "
                               "VirtualService's stable and canary destinations"))
    elif istio.get("destinationRule") is not None:
        errors.append(_invalid("trafficRouting.istio.destinationRule", dict(istio["destinationRule"]),
                               "ping-pong routes by Service (host), not by subset: remove destinationRule"))
    return errors
