"""Pure pieces of the traffic-routed canary: which header and mirror routes the steps have set,
how many pods a weight needs, and what the routers reported in one pass.

The planner (:mod:`rollouts.strategy.canary`) owns the ordering; see ``_Planner._traffic_routing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollouts.model.spec import CanarySpec
from rollouts.traffic.router import HeaderRoute, MirrorRoute, ObjectWrite, RoutingProblem

TRAFFIC_WEIGHT_UPDATED_REASON = "TrafficWeightUpdated"
TRAFFIC_WEIGHT_UPDATED_MESSAGE = "Traffic weight updated from {} to {}"
TRAFFIC_ROUTING_ERROR_REASON = "TrafficRoutingError"
ROUTERS_STATUS = "trafficRouters"  # status.canary.trafficRouters: [{name, setWeight, actualWeight, message}]


def weight_to_replicas(weight: int, replicas: int, max_weight: int) -> int:
    """Argo's ``trafficWeightToReplicas``: the pods a share of the traffic needs, rounded up."""
    if weight <= 0 or replicas <= 0:
        return 0
    return min(replicas, math.ceil(weight * replicas / max_weight))


def active_routes(canary: CanarySpec, index: int | None) -> tuple[tuple[HeaderRoute, ...], tuple[MirrorRoute, ...]]:
    """The header and mirror routes the steps up to ``index`` (inclusive) have set and not removed,
    in the order of ``managedRoutes`` (a step without ``match`` removes its route, as in Argo)."""
    if index is None:
        return (), ()
    headers: dict[str, HeaderRoute] = {}
    mirrors: dict[str, MirrorRoute] = {}
    for step in canary.steps[: index + 1]:
        header = step.raw.get("setHeaderRoute")
        if isinstance(header, Mapping) and header.get("name"):
            name = str(header["name"])
            matches = tuple(m for m in header.get("match") or [] if isinstance(m, Mapping))
            if matches:
                headers[name] = HeaderRoute(name, matches)
            else:
                headers.pop(name, None)
        mirror = step.raw.get("setMirrorRoute")
        if isinstance(mirror, Mapping) and mirror.get("name"):
            name = str(mirror["name"])
            matches = tuple(m for m in mirror.get("match") or [] if isinstance(m, Mapping))
            if matches:
                percentage = mirror.get("percentage")
                mirrors[name] = MirrorRoute(name, matches, int(percentage) if isinstance(percentage, int) else 100)
            else:
                mirrors.pop(name, None)
    order = [str(r.get("name")) for r in (canary.traffic_routing or {}).get("managedRoutes") or []]

    def rank(name: str) -> int:
        return order.index(name) if name in order else len(order)

    return (
        tuple(headers[n] for n in sorted(headers, key=rank)),
        tuple(mirrors[n] for n in sorted(mirrors, key=rank)),
    )


@dataclass
class RouterOutcome:
    """One router in one pass: the weight we asked for, the weight its objects route now, what to write."""

    name: str
    set_weight: int
    actual_weight: int | None
    writes: tuple[ObjectWrite, ...] = ()
    problems: tuple[RoutingProblem, ...] = ()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "setWeight": self.set_weight}
        if self.actual_weight is not None:
            out["actualWeight"] = self.actual_weight
        if self.problems:
            out["message"] = "; ".join(str(p) for p in self.problems)
        return out


@dataclass
class TrafficState:
    """What the routers said in this pass (before our writes)."""

    desired_weight: int  # what the steps ask for now
    max_weight: int
    outcomes: list[RouterOutcome] = field(default_factory=list)

    @property
    def problems(self) -> list[RoutingProblem]:
        return [p for o in self.outcomes for p in o.problems]

    @property
    def writes(self) -> list[ObjectWrite]:
        return [w for o in self.outcomes for w in o.writes]

    def set_weight(self) -> int:
        """The weight the routers are asked to route after this pass (the same for all, once settled)."""
        return min((o.set_weight for o in self.outcomes), default=self.desired_weight)

    def canary_carry(self, fallback: int) -> int:
        """The most traffic any router may still send to the canary (unknown: ``fallback``)."""
        return max((o.actual_weight if o.actual_weight is not None else fallback for o in self.outcomes), default=0)

    def canary_least(self) -> int:
        """The least traffic any router sends to the canary (unknown counts as 0: the stable side is sized
        for all the traffic then)."""
        return min((o.actual_weight or 0 for o in self.outcomes), default=0)

    def reached(self, weight: int) -> bool:
        """Every router routes ``weight`` now, nothing is left to write and nothing is wrong."""
        return all(o.actual_weight == weight and not o.writes and not o.problems for o in self.outcomes)

    def verified(self) -> bool:
        return all(o.actual_weight == o.set_weight and not o.problems for o in self.outcomes)


def problem_messages(problems: Sequence[RoutingProblem]) -> str:
    return "; ".join(str(p) for p in problems)
