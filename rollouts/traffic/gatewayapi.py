"""Gateway API (built in): the weights of the stable and canary `backendRefs` in the rules of
HTTPRoutes and GRPCRoutes, and `setHeaderRoute` as extra rules.

Every rule whose backendRefs name both the stable and the canary Service gets canary weight `w` and
stable weight `maxTrafficWeight - w` (Gateway API weights are relative, so any total works). A header
route adds, for each such rule, a rule named after the header route whose matches are the rule's own
matches with the header matches added (all must hold), sending everything to the canary. More header
matches make a rule more specific, so Gateway API implementations pick it before the original rule.
Managed rules are recognised by their `name` (Gateway API v1.2+ `rules[].name`). No mirroring: a
`setMirrorRoute` step is reported as a problem.

Writes are JSON merge patches of `spec.rules` carrying the `resourceVersion` they were computed
from, so a concurrent change gives a 409 and the next reconcile starts over.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, as_list
from rollouts.traffic.registry import RouterContext, missing_services
from rollouts.traffic.router import (
    DesiredTraffic,
    HeaderRoute,
    ObjectRef,
    ObjectWrite,
    Owner,
    RoutedKind,
    RouterResult,
    RoutingProblem,
)

API_VERSION = "gateway.networking.k8s.io/v1"
FIELD = "spec.strategy.canary.trafficRouting.gatewayAPI"
ROUTE_PLURALS = {"HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes"}

Json = dict[str, Any]


@dataclass(frozen=True)
class RouteEntry:
    ref: ObjectRef
    field: str
    use_header_routes: bool


class GatewayAPIRouter:
    """The `trafficRouting.gatewayAPI` entry of one Rollout."""

    name = "gatewayAPI"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = tuple(
        RoutedKind(API_VERSION, kind, plural) for kind, plural in ROUTE_PLURALS.items()
    )

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        self.entry = as_dict(context.config)
        self.rollout_namespace = context.namespace
        self.namespace = str(self.entry.get("namespace") or context.namespace)
        routes: list[RouteEntry] = []
        if self.entry.get("httpRoute"):
            routes.append(self._route("HTTPRoute", str(self.entry["httpRoute"]), f"{FIELD}.httpRoute", True))
        for i, item in enumerate(as_list(self.entry.get("httpRoutes"))):
            item = as_dict(item)
            routes.append(
                self._route(
                    "HTTPRoute",
                    str(item.get("name") or ""),
                    f"{FIELD}.httpRoutes[{i}]",
                    bool(item.get("useHeaderRoutes")),
                )
            )
        if self.entry.get("grpcRoute"):
            routes.append(self._route("GRPCRoute", str(self.entry["grpcRoute"]), f"{FIELD}.grpcRoute", True))
        self.routes = tuple(routes)

    def _route(self, kind: str, name: str, field: str, headers: bool) -> RouteEntry:
        return RouteEntry(ObjectRef(API_VERSION, kind, ROUTE_PLURALS[kind], self.namespace, name), field, headers)

    # ------------------------------------------------------------------ protocol

    def objects(self) -> Sequence[ObjectRef]:
        return [r.ref for r in self.routes]

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        problems = list(missing_services(self.context))
        if not self.routes:
            problems.append(RoutingProblem(None, FIELD, "name the routes to split: httpRoute, httpRoutes or grpcRoute"))
        if self.entry.get("httpRoute") and self.entry.get("httpRoutes"):
            problems.append(RoutingProblem(None, FIELD, "set either httpRoute or httpRoutes, not both"))
        for route in self.routes:
            if not route.ref.name:
                problems.append(RoutingProblem(None, f"{route.field}.name", "the route name is empty"))
        seen = set()
        for route in self.routes:
            if route.ref in seen and route.ref.name:
                problems.append(RoutingProblem(None, route.field, f"{route.ref.describe()} is listed twice"))
            seen.add(route.ref)
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = list(self.spec_problems())
        managed = set(desired.managed_routes)
        for mirror in desired.mirror_routes:
            problems.append(
                RoutingProblem(
                    None,
                    "spec.strategy.canary.steps[].setMirrorRoute",
                    f"mirror route {mirror.name!r}: the Gateway API router cannot mirror traffic; remove the step",
                )
            )
        for header in desired.header_routes:
            if header.name not in managed:
                problems.append(
                    RoutingProblem(
                        None,
                        "spec.strategy.canary.trafficRouting.managedRoutes",
                        f"route {header.name!r} is not listed in managedRoutes: add it there",
                    )
                )
        writes: list[ObjectWrite] = []
        live_weights: list[int] = []
        for route in self.routes:
            write, route_problems, weights = self._one(route, desired, live.get(route.ref))
            problems += route_problems
            live_weights += weights
            if write is not None:
                writes.append(write)
        if problems:
            return RouterResult(writes=(), actual_canary_weight=None, problems=tuple(problems))
        actual = next(
            (w for w in live_weights if w != desired.canary_weight), live_weights[0] if live_weights else None
        )
        return RouterResult(writes=tuple(writes), actual_canary_weight=actual)

    def _is_service(self, backend: Mapping[str, Any], service: str, route_namespace: str) -> bool:
        if not service or backend.get("name") != service:
            return False
        if backend.get("kind", "Service") != "Service" or backend.get("group", "") not in ("", "core"):
            return False
        return str(backend.get("namespace") or route_namespace) == self.rollout_namespace

    def _one(
        self, route: RouteEntry, desired: DesiredTraffic, obj: Mapping[str, Any] | None
    ) -> tuple[ObjectWrite | None, list[RoutingProblem], list[int]]:
        ref = route.ref
        if obj is None:
            return (
                None,
                [RoutingProblem(ref, route.field, f"the {ref.kind} does not exist: create it or fix the name")],
                [],
            )
        spec = as_dict(obj.get("spec"))
        managed = set(desired.managed_routes)
        rules = [r for r in copy.deepcopy(as_list(spec.get("rules"))) if not _is_managed(as_dict(r), managed)]
        split_rules: list[int] = []
        live_weights: list[int] = []
        for i, rule in enumerate(rules):
            rule = as_dict(rule)
            backends = [as_dict(b) for b in as_list(rule.get("backendRefs"))]
            stable = [b for b in backends if self._is_service(b, desired.stable_service, ref.namespace)]
            canary = [b for b in backends if self._is_service(b, desired.canary_service, ref.namespace)]
            if not stable or not canary:
                continue
            split_rules.append(i)
            live_weights.append(_live_weight(stable, canary, desired.max_weight))
            new_backends = []
            for backend in backends:
                if self._is_service(backend, desired.canary_service, ref.namespace):
                    backend = {**backend, "weight": desired.canary_weight}
                elif self._is_service(backend, desired.stable_service, ref.namespace):
                    backend = {**backend, "weight": desired.stable_weight}
                new_backends.append(backend)
            rules[i] = {**rule, "backendRefs": new_backends}
        if not split_rules:
            return (
                None,
                [
                    RoutingProblem(
                        ref,
                        "spec.rules[].backendRefs",
                        f"no rule has backendRefs for both the stable Service {desired.stable_service!r} and the "
                        f"canary Service {desired.canary_service!r}: add both to the rule that serves the Rollout",
                    )
                ],
                [],
            )
        added: list[Any] = []
        if route.use_header_routes:
            headers = {h.name: h for h in desired.header_routes}
            for name in desired.managed_routes:
                if name in headers:
                    added += header_rules(
                        headers[name],
                        [rules[i] for i in split_rules],
                        lambda b: self._is_service(b, desired.canary_service, ref.namespace),
                    )
        new_rules = added + rules
        write = None
        if new_rules != as_list(spec.get("rules")):
            rv = as_dict(obj.get("metadata")).get("resourceVersion")
            write = ObjectWrite(
                ref,
                "merge-patch",
                {"metadata": {"resourceVersion": rv} if rv else {}, "spec": {"rules": new_rules}},
                why=f"canary weight {desired.canary_weight}/{desired.max_weight}",
            )
        return write, [], live_weights


def _is_managed(rule: Mapping[str, Any], managed: set[str]) -> bool:
    name = str(rule.get("name") or "")
    if not name:
        return False
    if name in managed:
        return True
    base, _, number = name.rpartition("-")
    return base in managed and number.isdigit()


def _live_weight(stable: list[Json], canary: list[Json], max_weight: int) -> int:
    """The canary's share of a rule in `max_weight` units; an unset weight counts 1, as Gateway API says."""

    def total(backends: list[Json]) -> int:
        out = 0
        for backend in backends:
            weight = backend.get("weight", 1)
            out += weight if isinstance(weight, int) and weight > 0 else 0
        return out

    c, s = total(canary), total(stable)
    return round(c * max_weight / (c + s)) if c + s > 0 else 0


def header_match(match: Mapping[str, Any]) -> Json:
    """Argo's `{headerName, headerValue: {exact|regex|prefix}}` as a Gateway API header match."""
    name = str(match.get("headerName") or "")
    value = as_dict(match.get("headerValue"))
    if "exact" in value:
        return {"type": "Exact", "name": name, "value": str(value["exact"])}
    if "regex" in value:
        return {"type": "RegularExpression", "name": name, "value": str(value["regex"])}
    return {"type": "RegularExpression", "name": name, "value": "^" + re.escape(str(value.get("prefix", ""))) + ".*"}


def header_rules(
    route: HeaderRoute, split_rules: list[Any], is_canary: Callable[[Mapping[str, Any]], bool]
) -> list[Json]:
    """For each split rule, a rule sending the requests that match it and all the header matches to the
    canary (the split rule's canary backendRefs, without weights)."""
    extra = [header_match(as_dict(m)) for m in route.matches]
    built = []
    for n, rule in enumerate(split_rules):
        rule = as_dict(rule)
        matches = [as_dict(m) for m in as_list(rule.get("matches"))] or [{}]
        combined = []
        for match in matches:
            match = copy.deepcopy(match)
            match["headers"] = [*as_list(match.get("headers")), *copy.deepcopy(extra)]
            combined.append(match)
        canary = [
            {k: v for k, v in b.items() if k != "weight"}
            for b in map(as_dict, as_list(rule.get("backendRefs")))
            if is_canary(b)
        ]
        name = route.name if len(split_rules) == 1 else f"{route.name}-{n}"
        built.append({"name": name, "matches": combined, "backendRefs": canary})
    return built


__all__ = ["API_VERSION", "GatewayAPIRouter", "header_match", "header_rules"]
