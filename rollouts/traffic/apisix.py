"""Apache APISIX (`trafficRouting.apisix`): the weights of the stable and canary backends in the
rules of one `ApisixRoute`, and `setHeaderRoute` as ApisixRoutes of their own.

`route.name` names the ApisixRoute; `route.rules` the `spec.http[].name`s to split (default: the one
named like the route, as Argo). In each rule the backend whose `serviceName` is the canary Service gets
weight `w`, the stable one `maxTrafficWeight - w` (APISIX weights are relative; an unset weight
counts 100, APISIX's default). The route is the user's: we change only those two weights, with a
merge patch of `spec.http` carrying the `resourceVersion` it was computed from (a concurrent change
gives a 409 and the next pass starts over).

A header route is an ApisixRoute named after the managed route, owned by the Rollout (as Argo): a copy
(without the route's labels, so that a GitOps tool tracking the route by label does not prune it) of
the split rules with only the canary backend (weight 100), priority one above the rule's, and the
header matches as `match.exprs` (`exact` -> `Equal`, `regex` -> `RegexMatch`, `prefix` ->
`RegexMatch ^prefix.*`). It is deleted when its step removes it, or once the weight is back on the
stable after the promotion or an abort. No mirroring (Argo's APISIX has none).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, as_list, owned_by, parse_quantity
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

API_VERSION = "apisix.apache.org/v2"
KIND = "ApisixRoute"
PLURAL = "apisixroutes"
DEFAULT_WEIGHT = 100  # APISIX's weight of a backend that sets none

Json = dict[str, Any]


class ApisixRouter:
    """The `trafficRouting.apisix` entry of one Rollout."""

    name = "apisix"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        route = as_dict(context.config.get("route"))
        self.route_name = str(route.get("name") or "")
        self.rules = [str(r) for r in as_list(route.get("rules"))] or [self.route_name]
        managed = as_list(context.traffic_routing.get("managedRoutes"))
        self.managed = [str(as_dict(r).get("name")) for r in managed if as_dict(r).get("name")]

    def ref(self, name: str) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, PLURAL, self.context.namespace, name)

    def objects(self) -> Sequence[ObjectRef]:
        return [self.ref(self.route_name), *(self.ref(n) for n in self.managed if n != self.route_name)]

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        problems = list(missing_services(self.context))
        if not self.route_name:
            problems.append(
                RoutingProblem(None, f"{self.context.path}.route.name", "Required value: name the ApisixRoute to split")
            )
        if self.route_name in self.managed:
            problems.append(
                RoutingProblem(
                    None,
                    "spec.strategy.canary.trafficRouting.managedRoutes",
                    f"{self.route_name!r} is the ApisixRoute the Rollout splits: a header route needs another name",
                )
            )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        ref = self.ref(self.route_name)
        route = live.get(ref)
        if route is None:
            problem = RoutingProblem(
                ref,
                f"{self.context.path}.route.name",
                f'ApisixRoute "{self.route_name}" not found in namespace "{self.context.namespace}": '
                "create it or fix the name",
            )
            return RouterResult(actual_canary_weight=None, problems=(problem,))
        http = [as_dict(r) for r in as_list(as_dict(route.get("spec")).get("http"))]
        problems: list[RoutingProblem] = []
        weights: list[int] = []
        new_http = copy.deepcopy(http)
        split_rules: list[Json] = []
        for rule_name in self.rules:
            index = next((i for i, r in enumerate(http) if r.get("name") == rule_name), None)
            if index is None:
                problems.append(self._missing_rule(ref, rule_name))
                continue
            trouble, weight = self._set_weights(ref, new_http[index], desired)
            if trouble is not None:
                problems.append(trouble)
                continue
            weights.append(weight)
            split_rules.append(http[index])
        actual = weights[0] if weights and all(w == weights[0] for w in weights) else None
        writes: list[ObjectWrite] = []
        if new_http != http:
            rv = as_dict(route.get("metadata")).get("resourceVersion")
            body = {"metadata": {"resourceVersion": rv} if rv else {}, "spec": {"http": new_http}}
            why = f"canary weight {desired.canary_weight}/{desired.max_weight}"
            writes.append(ObjectWrite(ref, "merge-patch", body, why))
        if not problems:
            writes += self._header_route_writes(route, split_rules, desired, live, owner, problems)
        if problems:
            return RouterResult(actual_canary_weight=actual, problems=tuple(problems))
        return RouterResult(writes=tuple(writes), actual_canary_weight=actual)

    # ------------------------------------------------------------------ weights

    def _missing_rule(self, ref: ObjectRef, rule_name: str) -> RoutingProblem:
        return RoutingProblem(
            ref,
            f"{self.context.path}.route.rules",
            f'ApisixRoute "{self.route_name}" has no spec.http rule named "{rule_name}": '
            "name the rule in route.rules, or rename the rule",
        )

    def _set_weights(
        self, ref: ObjectRef, rule: Json, desired: DesiredTraffic
    ) -> tuple[RoutingProblem | None, int]:
        """Set the two weights of `rule` (in place); the canary's share it had, in maxTrafficWeight units."""
        backends = [as_dict(b) for b in as_list(rule.get("backends"))]
        canary = [b for b in backends if b.get("serviceName") == desired.canary_service]
        stable = [b for b in backends if b.get("serviceName") == desired.stable_service]
        if not canary or not stable:
            missing = desired.canary_service if not canary else desired.stable_service
            return (
                RoutingProblem(
                    ref,
                    f'spec.http[name="{rule.get("name")}"].backends',
                    f'rule "{rule.get("name")}" has no backend with serviceName "{missing}": add the stable and '
                    "the canary Service as its backends",
                ),
                0,
            )
        c, s = _weight(canary[0]), _weight(stable[0])
        had = round(c * desired.max_weight / (c + s)) if c + s > 0 else 0
        canary[0]["weight"] = desired.canary_weight
        stable[0]["weight"] = desired.stable_weight
        rule["backends"] = backends
        return None, had

    # ------------------------------------------------------------------ header routes

    def _header_route_writes(
        self,
        route: Mapping[str, Any],
        split_rules: list[Json],
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
        problems: list[RoutingProblem],
    ) -> list[ObjectWrite]:
        active = {h.name: h for h in desired.header_routes}
        writes: list[ObjectWrite] = []
        for name in self.managed:
            if name == self.route_name:
                continue
            ref = self.ref(name)
            current = live.get(ref)
            if current is not None and not owned_by(current, owner):
                if name in active:
                    problems.append(
                        RoutingProblem(
                            ref,
                            "spec.strategy.canary.trafficRouting.managedRoutes",
                            f'ApisixRoute "{name}" already exists and is not owned by Rollout "{owner.name}": '
                            "delete it or rename the managed route",
                        )
                    )
                continue
            if name not in active:
                if current is not None:
                    writes.append(ObjectWrite(ref, "delete", None, f"header route {name} removed"))
                continue
            spec = self._header_spec(route, split_rules, active[name], desired)
            if current is None:
                manifest = {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "metadata": {
                        "name": name,
                        "namespace": self.context.namespace,
                        "ownerReferences": [owner.reference()],
                    },
                    "spec": spec,
                }
                writes.append(ObjectWrite(ref, "create", manifest, f"header route {name}"))
            elif as_dict(current.get("spec")) != spec:
                writes.append(ObjectWrite(ref, "merge-patch", {"spec": spec}, f"header route {name}"))
        return writes

    def _header_spec(
        self, route: Mapping[str, Any], split_rules: list[Json], header: HeaderRoute, desired: DesiredTraffic
    ) -> Json:
        """The main route's spec with only the split rules, each sending the header's requests to the canary."""
        spec = {k: copy.deepcopy(v) for k, v in as_dict(route.get("spec")).items() if k != "http"}
        exprs = [e for m in header.matches for e in header_exprs(m)]
        rules = []
        for rule in split_rules:
            copied = copy.deepcopy(rule)
            canary = [
                {**as_dict(b), "weight": 100}
                for b in as_list(rule.get("backends"))
                if as_dict(b).get("serviceName") == desired.canary_service
            ]
            copied["backends"] = canary
            priority = rule.get("priority")
            copied["priority"] = (priority if isinstance(priority, int) else 0) + 1
            copied["match"] = {**as_dict(rule.get("match")), "exprs": exprs}
            rules.append(copied)
        spec["http"] = rules
        return spec


def header_exprs(match: Mapping[str, Any]) -> list[Json]:
    """Argo's `{headerName, headerValue: {exact|regex|prefix}}` as APISIX `match.exprs`."""
    subject = {"scope": "Header", "name": str(match.get("headerName") or "")}
    value = as_dict(match.get("headerValue"))
    exprs: list[Json] = []
    if value.get("exact"):
        exprs.append({"subject": dict(subject), "op": "Equal", "value": str(value["exact"])})
    if value.get("regex"):
        exprs.append({"subject": dict(subject), "op": "RegexMatch", "value": str(value["regex"])})
    if value.get("prefix"):
        pattern = "^" + re.escape(str(value["prefix"])) + ".*"
        exprs.append({"subject": dict(subject), "op": "RegexMatch", "value": pattern})
    return exprs


def _weight(backend: Mapping[str, Any]) -> float:
    if "weight" not in backend:
        return DEFAULT_WEIGHT
    weight = parse_quantity(backend.get("weight"))
    return max(weight, 0.0) if weight is not None else 0.0


__all__ = ["API_VERSION", "ApisixRouter", "header_exprs"]
