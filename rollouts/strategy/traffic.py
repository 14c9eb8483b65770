"""The traffic-routed canary: which header and mirror routes the steps have set, how many pods a weight
needs, what the routers reported in one pass, and the planner's side of it: asking every router for
the writes of this pass's split (``reconcile_traffic``), gating the weight on ready pods, the replica
counts that follow the routed weight, and ``status.canary.weights`` from the routers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rollouts.model.spec import API_VERSION, KIND, CanarySpec, max_traffic_weight
from rollouts.model.steps import current_step, set_weight_at
from rollouts.strategy.experiments import experiment_destinations, retired_experiment_services
from rollouts.strategy.plan import WriteRoutingObject
from rollouts.strategy.replicasets import ReplicaSetView
from rollouts.strategy.services import service_selector_hash, stable_service_selects
from rollouts.strategy.steps import canary_scale
from rollouts.traffic.registry import build_routers
from rollouts.traffic.router import (
    DesiredTraffic,
    HeaderRoute,
    MirrorRoute,
    ObjectWrite,
    Owner,
    RoutingProblem,
    WeightDestination,
)

if TYPE_CHECKING:
    from rollouts.strategy.canary import CanaryPlanner

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
    additional: tuple[WeightDestination, ...] = ()  # the running experiment's weighted templates

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


def reconcile_traffic(planner: CanaryPlanner) -> None:
    """Ask every router for the writes that bring its objects to the split this pass may set.

    The weight moves towards the canary only once the canary ReplicaSet has the ready pods the
    step asks for, and back towards the stable only once the stable ReplicaSet has the pods for
    its share and the stable Service selects it; otherwise each router keeps what it routes now.
    Replica counts follow the weight the objects *route* (``routed_counts``), so pods are never
    taken away from traffic. When any router reports a problem, no router writes anything."""
    ro = planner.ro
    canary = ro.canary
    if canary is None or canary.traffic_routing is None:
        return
    routers, _ = build_routers(
        canary.traffic_routing, ro.name, ro.namespace, canary.stable_service, canary.canary_service
    )
    max_weight = max_traffic_weight(canary)
    desired_weight = _traffic_desired_weight(planner, max_weight)
    state = TrafficState(desired_weight, max_weight)
    planner.traffic = state
    live = planner.obs.routing or {}
    owner = Owner(API_VERSION, KIND, ro.name, ro.uid)
    last = _last_set_weight(planner)
    wanted = desired_traffic(planner, desired_weight, max_weight)
    state.additional = wanted.additional
    probes = [router.reconcile(wanted, live, owner) for router in routers]
    # after the promotion the header/mirror routes go only once no router sends the canary anything
    planner.routes_kept = not promoted(planner) or any(p.actual_canary_weight != 0 for p in probes)
    for router, probe in zip(routers, probes, strict=True):
        current = probe.actual_canary_weight if probe.actual_canary_weight is not None else last
        weight = _gate_weight(planner, desired_weight, current, max_weight)
        result = router.reconcile(desired_traffic(planner, weight, max_weight), live, owner)
        state.outcomes.append(
            RouterOutcome(router.name, weight, result.actual_canary_weight, result.writes, result.problems)
        )
    problems = state.problems
    if problems:
        message = problem_messages(problems)
        if message != _old_routing_message(planner):
            planner.event(TRAFFIC_ROUTING_ERROR_REASON, message, warning=True)
        for outcome in state.outcomes:
            outcome.writes = ()  # nothing moves: each router keeps what it routes
            outcome.set_weight = outcome.actual_weight if outcome.actual_weight is not None else last
        planner.plan.requeue(10.0)
        return
    moved: list[tuple[int, int]] = []
    for outcome in state.outcomes:
        for write in outcome.writes:
            planner.plan.actions.append(WriteRoutingObject(write))
        if outcome.writes and outcome.actual_weight != outcome.set_weight:
            moved.append((outcome.actual_weight if outcome.actual_weight is not None else last, outcome.set_weight))
    if moved:
        planner.event(TRAFFIC_WEIGHT_UPDATED_REASON, TRAFFIC_WEIGHT_UPDATED_MESSAGE.format(*moved[0]))
    if state.writes:
        planner.plan.requeue(0)  # read the objects back, then move on


def desired_traffic(planner: CanaryPlanner, weight: int, max_weight: int) -> DesiredTraffic:
    """What the routers are asked to route: ``weight`` to the canary, and the step's header and mirror routes."""
    canary = planner.ro.canary
    assert canary is not None and planner.new_rs is not None
    headers, mirrors = _traffic_routes(planner)
    stable_hash = planner.stable_rs.pod_hash if planner.stable_rs is not None else ""
    additional = experiment_destinations(planner)
    return DesiredTraffic(
        canary_weight=weight,
        max_weight=max_weight,
        stable_service=canary.stable_service,
        canary_service=canary.canary_service,
        stable_hash=stable_hash,
        canary_hash=planner.new_rs.pod_hash,
        canary_available=planner.new_rs.replicas > 0 and planner.new_rs.available >= planner.new_rs.replicas,
        header_routes=headers,
        mirror_routes=mirrors,
        managed_routes=tuple(str(r.get("name")) for r in (canary.traffic_routing or {}).get("managedRoutes") or []),
        additional=additional,
        retired_services=retired_experiment_services(planner, additional),
    )


def promoted(planner: CanaryPlanner) -> bool:
    """No canary: the new ReplicaSet is the stable one (or one of them is missing)."""
    return planner.new_rs is None or planner.stable_rs is None or planner.stable_rs.name == planner.new_rs.name


def _traffic_desired_weight(planner: CanaryPlanner, max_weight: int) -> int:
    """Argo's ``GetCurrentSetWeight`` in units of maxTrafficWeight: 0 once promoted or aborted, all of
    it after the last step or on a full promotion."""
    if promoted(planner) or planner.aborted():
        return 0
    if planner.old.get("promoteFull"):
        return max_weight
    _step, index = current_step(planner.ro, planner.old)
    return min(set_weight_at(planner.ro, index), max_weight)


def _traffic_routes(planner: CanaryPlanner) -> tuple[tuple[HeaderRoute, ...], tuple[MirrorRoute, ...]]:
    """Header and mirror routes in force: none after an abort; after the promotion they stay until
    every router sends no weight to the canary any more (weight first, then the routes)."""
    canary = planner.ro.canary
    assert canary is not None
    if planner.aborted() or not canary.steps or not planner.routes_kept:
        return (), ()
    _, index = current_step(planner.ro, planner.old)
    if index is None or index >= len(canary.steps):
        index = len(canary.steps) - 1
    return active_routes(canary, index)


def _last_set_weight(planner: CanaryPlanner) -> int:
    """The canary weight the last status recorded (for routers whose objects say nothing)."""
    weights = (planner.old.get("canary") or {}).get("weights") or {}
    value = (weights.get("canary") or {}).get("weight")
    return int(value) if isinstance(value, int) else 0


def _old_routing_message(planner: CanaryPlanner) -> str:
    """The routers' problems as the last status recorded them."""
    routers = (planner.old.get("canary") or {}).get(ROUTERS_STATUS) or []
    return "; ".join(str(r.get("message")) for r in routers if isinstance(r, Mapping) and r.get("message"))


def _canary_desired_count(planner: CanaryPlanner, weight: int) -> int:
    """The canary pods a step asks for: setCanaryScale if one is in force, else the weight's share."""
    ro = planner.ro
    assert ro.canary is not None and planner.traffic is not None
    replicas, scale_weight = canary_scale(planner)
    if replicas is not None:
        count = min(replicas, ro.replicas)
    elif scale_weight is not None:
        count = weight_to_replicas(scale_weight, ro.replicas, 100)
    else:
        count = weight_to_replicas(weight, ro.replicas, planner.traffic.max_weight)
    minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas)
    return max(count, minimum) if count else 0


def _gate_weight(planner: CanaryPlanner, target: int, current: int, max_weight: int) -> int:
    """``target`` when the side that gains traffic has its ready pods, else ``current`` (hold)."""
    if target == current:
        return target
    if target > current:
        new_rs = planner.new_rs
        assert new_rs is not None
        need = max(1, _canary_desired_count(planner, target))
        step, _ = current_step(planner.ro, planner.old)
        if planner.old.get("promoteFull") or step is None:
            need = planner.ro.replicas  # all of it goes to the canary: all of its pods first
        return target if new_rs.available >= need else current
    stable = planner.stable_rs
    if stable is None:
        return target
    need = weight_to_replicas(max_weight - target, planner.ro.replicas, max_weight)
    if stable.available >= need and stable_service_selects(planner, stable.pod_hash):
        return target
    return current


def routed_counts(planner: CanaryPlanner) -> tuple[int, int]:
    """(new, stable) replica counts with a traffic router: Argo's
    ``CalculateReplicaCountsForTrafficRoutedCanary``, plus: the canary keeps the pods for the most
    traffic a router still sends it, and with dynamicStableScale the stable keeps the pods for the
    most traffic it has or will have, so neither shrinks before the weight has left it."""
    ro = planner.ro
    state = planner.traffic
    assert state is not None and ro.canary is not None
    if promoted(planner):
        return ro.replicas, 0
    step, _ = current_step(ro, planner.old)
    if planner.aborted():
        desired_new = 0
    elif planner.old.get("promoteFull") or step is None:
        desired_new = ro.replicas
    else:
        desired_new = _canary_desired_count(planner, state.desired_weight)
    new = max(desired_new, canary_carry(planner))
    stable = ro.replicas
    if ro.canary.dynamic_stable_scale:
        least = min(state.desired_weight, state.canary_least())
        stable = weight_to_replicas(state.max_weight - least, ro.replicas, state.max_weight)
        minimum = min(ro.canary.min_pods_per_replica_set or 0, ro.replicas)
        stable = max(stable, minimum) if stable else 0
    return new, stable


def canary_carry(planner: CanaryPlanner) -> int:
    """Pods the canary needs for the traffic routers may still send it (0 without a router, and 0 while a
    ``setCanaryScale`` is in force: as in Argo, that sizes the canary whatever traffic it has)."""
    state = planner.traffic
    if state is None or canary_scale(planner) != (None, None):
        return 0
    weight = state.canary_carry(_last_set_weight(planner))
    return weight_to_replicas(weight, planner.ro.replicas, state.max_weight)


def routed_service_selects(planner: CanaryPlanner, rs: ReplicaSetView) -> bool:
    """With a router: does the canary or stable Service (after this pass's patches) still select ``rs``?
    A router may send traffic there, so its pods stay (always false without a router)."""
    canary = planner.ro.canary
    if planner.traffic is None or canary is None:
        return False
    return any(
        service_selector_hash(planner, name) == rs.pod_hash for name in (canary.canary_service, canary.stable_service)
    )


def traffic_off_canary(planner: CanaryPlanner) -> bool:
    """No router sends the canary anything (always true without a router)."""
    state = planner.traffic
    return state is None or state.canary_carry(_last_set_weight(planner)) == 0


def traffic_left_old(planner: CanaryPlanner) -> bool:
    """Old ReplicaSets may go only once the routers route as planned with nothing left to write
    and the stable Service selects the stable ReplicaSet (always true without a router)."""
    state = planner.traffic
    if state is None:
        return True
    if state.problems or state.writes or not state.verified():
        return False
    return planner.stable_rs is None or stable_service_selects(planner, planner.stable_rs.pod_hash)


def traffic_step_reached(planner: CanaryPlanner) -> bool:
    """A setWeight / setHeaderRoute / setMirrorRoute step is done once every router routes the step's
    weight with nothing left to write (always true without a router)."""
    state = planner.traffic
    return state is None or state.reached(state.desired_weight)


def routed_weights(planner: CanaryPlanner, new: dict[str, Any]) -> None:
    """``status.canary.weights`` from the routers: the weight set, and whether the objects route it."""
    canary = planner.ro.canary
    state = planner.traffic
    assert canary is not None
    if state is None:
        return  # this pass did not reach the routers: keep what the last one recorded
    section = new.setdefault("canary", {})
    new_hash = planner.new_rs.pod_hash if planner.new_rs is not None else ""
    stable_hash = planner.stable_rs.pod_hash if planner.stable_rs is not None else new.get("stableRS") or ""
    weight = state.set_weight()
    section["weights"] = {
        "canary": {"weight": weight, "podTemplateHash": new_hash, "serviceName": canary.canary_service},
        "stable": {
            "weight": state.max_weight - weight - sum(d.weight for d in state.additional),
            "podTemplateHash": stable_hash,
            "serviceName": canary.stable_service,
        },
        "verified": state.verified(),
    }
    if state.additional:
        section["weights"]["additional"] = [d.status() for d in state.additional]
    section[ROUTERS_STATUS] = [o.status() for o in state.outcomes]
