"""Which router serves which key of `strategy.canary.trafficRouting`.

`ROUTERS` maps a key to "module:Class"; a router module plugs in with one line here. Classes are
imported on first use, so a router module never imports the others. Several keys at once give
several routers, driven together (the reconciler does not know which ones it drives).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollouts.traffic.router import RoutedKind, Router, RoutingProblem

ROUTERS: dict[str, str] = {
    "nginx": "rollouts.traffic.nginx:NginxRouter",
    "smi": "rollouts.traffic.smi:SmiRouter",
    "istio": "rollouts.traffic.istio:IstioRouter",
    "gatewayAPI": "rollouts.traffic.gatewayapi:GatewayAPIRouter",
}

# Keys of trafficRouting that are settings shared by every router, not routers.
SHARED_KEYS = frozenset({"maxTrafficWeight", "managedRoutes"})

FIELD = "spec.strategy.canary.trafficRouting"


@dataclass(frozen=True)
class RouterContext:
    """What a router is built from: its own `trafficRouting.<key>` entry and the Rollout around it."""

    key: str
    config: Mapping[str, Any]
    rollout: str
    namespace: str
    stable_service: str
    canary_service: str
    traffic_routing: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{FIELD}.{self.key}"


def router_class(key: str) -> type[Any] | None:
    target = ROUTERS.get(key)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def routed_kinds() -> list[RoutedKind]:
    """Every kind the routers of `ROUTERS` read (their `KINDS`), once each, in registry order. A router
    without `KINDS` is left out: its objects are read with a GET on every pass instead of watched."""
    kinds: list[RoutedKind] = []
    for key in ROUTERS:
        cls = router_class(key)
        for kind in getattr(cls, "KINDS", ()):
            if kind not in kinds:
                kinds.append(kind)
    return kinds


def build_routers(
    traffic_routing: Mapping[str, Any] | None,
    rollout: str,
    namespace: str,
    stable_service: str,
    canary_service: str,
) -> tuple[list[Router], list[RoutingProblem]]:
    """The routers a `trafficRouting` block names, in the order of `ROUTERS`, and the keys we cannot serve."""
    if not traffic_routing:
        return [], []
    routers: list[Router] = []
    problems: list[RoutingProblem] = []
    for key in traffic_routing:
        if key in SHARED_KEYS or key in ROUTERS:
            continue
        problems.append(
            RoutingProblem(
                None,
                f"{FIELD}.{key}",
                f"traffic router {key!r} is not supported by this controller; use one of: "
                + ", ".join(sorted(ROUTERS)),
            )
        )
    for key in ROUTERS:
        config = traffic_routing.get(key)
        if config is None:
            continue
        cls = router_class(key)
        assert cls is not None
        context = RouterContext(
            key=key,
            config=config if isinstance(config, Mapping) else {},
            rollout=rollout,
            namespace=namespace,
            stable_service=stable_service,
            canary_service=canary_service,
            traffic_routing=traffic_routing,
        )
        routers.append(cls(context))
    return routers, problems


def router_keys(routers: Sequence[Router]) -> list[str]:
    return [r.name for r in routers]


def missing_services(context: RouterContext) -> list[RoutingProblem]:
    """For routers that split between the two Services: a problem per Service the Rollout does not name."""
    problems = []
    for key, name in (("canaryService", context.canary_service), ("stableService", context.stable_service)):
        if not name:
            problems.append(
                RoutingProblem(
                    None,
                    f"spec.strategy.canary.{key}",
                    f"Required value: trafficRouting.{context.key} splits traffic between canaryService and "
                    f"stableService: set {key}",
                )
            )
    return problems
