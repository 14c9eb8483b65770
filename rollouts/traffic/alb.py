"""AWS Load Balancer Controller (`trafficRouting.alb`): the weighted-target-group action annotation
`<prefix>/actions.<rootService>` on each Ingress the Rollout names.

The Ingress routes a path to the action (backend Service `rootService`, default the stable Service,
port name `use-annotation`); the AWS Load Balancer Controller reads the action's JSON and forwards
to the canary Service (weight w) and the stable Service (`maxTrafficWeight - w`), on `servicePort`,
optionally with target-group stickiness. The JSON is the controller's own format (`Type`,
`ForwardConfig.TargetGroups[].ServiceName/ServicePort/Weight`, `TargetGroupStickinessConfig`), canary
first as Argo writes it; at an experiment step each weighted template's Service is one more target group,
its weight taken from the stable's. `rollouts.pyrollouts.io/managed-alb-actions` records which Rollout manages
which action (several Rollouts may share an Ingress). Nothing else of the Ingress is changed.

A `setHeaderRoute` step (its name in `managedRoutes`) becomes, as in Argo, the action
`<prefix>/actions.<route>` (all to the canary), the condition `<prefix>/conditions.<route>` (one
`http-header` condition per match: `exact` as the value, `prefix` as `prefix*`, ALB's wildcard) and a
path to the action ahead of each path to `rootService`, managed paths first in `managedRoutes` order.
A route that ends loses its annotations and paths.

Each write is one merge patch of one Ingress carrying the `resourceVersion` it was computed from, so a
concurrent edit gives a 409 and the next pass starts over. With several Ingresses the live weight is
known only when they all agree, so the planner never moves on while one of them lags behind.

Not done here (AWS-side): Argo's `--aws-verify-target-group` (reading the real target groups' weights
and registered pod IPs through the AWS API).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import annotations_of, as_dict, as_list, parse_weight
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

API_VERSION = "networking.k8s.io/v1"
KIND = "Ingress"
PLURAL = "ingresses"
DEFAULT_PREFIX = "alb.ingress.kubernetes.io"
USE_ANNOTATION = "use-annotation"
MANAGED_ACTIONS = "rollouts.pyrollouts.io/managed-alb-actions"
MAX_STICKINESS = 604800  # AWS's bound on TargetGroupStickinessConfig.DurationSeconds


def action_key(prefix: str, service: str) -> str:
    return f"{prefix}/actions.{service}"


def condition_key(prefix: str, route: str) -> str:
    return f"{prefix}/conditions.{route}"


def forward_action(desired: DesiredTraffic, port: str, stickiness: Mapping[str, Any] | None) -> dict[str, Any]:
    """The action the AWS Load Balancer Controller reads: canary and stable target groups, weighted."""
    forward: dict[str, Any] = {
        "TargetGroups": [
            {"ServiceName": desired.canary_service, "ServicePort": port, "Weight": desired.canary_weight},
            {"ServiceName": desired.stable_service, "ServicePort": port, "Weight": desired.stable_weight},
            *({"ServiceName": d.service_name, "ServicePort": port, "Weight": d.weight} for d in desired.additional),
        ]
    }
    if stickiness is not None and stickiness.get("enabled"):
        forward["TargetGroupStickinessConfig"] = _stickiness(stickiness)
    return {"Type": "forward", "ForwardConfig": forward}


def _stickiness(stickiness: Mapping[str, Any]) -> dict[str, Any]:
    return {"Enabled": True, "DurationSeconds": int(stickiness.get("durationSeconds") or 0)}


def canary_action(canary_service: str, port: str, stickiness: Mapping[str, Any] | None) -> dict[str, Any]:
    """A header route's action: everything to the canary target group (Argo's weight 100)."""
    forward: dict[str, Any] = {"TargetGroups": [{"ServiceName": canary_service, "ServicePort": port, "Weight": 100}]}
    if stickiness is not None and stickiness.get("enabled"):
        forward["TargetGroupStickinessConfig"] = _stickiness(stickiness)
    return {"Type": "forward", "ForwardConfig": forward}


def header_conditions(route: HeaderRoute) -> tuple[list[dict[str, Any]] | None, str]:
    """ALB `http-header` conditions for a header route's matches (None and why when ALB cannot match it)."""
    conditions = []
    for match in route.matches:
        value = as_dict(match.get("headerValue"))
        if value.get("exact") is not None:
            wanted = str(value["exact"])
        elif value.get("prefix") is not None:
            wanted = str(value["prefix"]) + "*"
        else:
            return None, "ALB header conditions match exact values or prefixes, not regular expressions"
        header = {"HttpHeaderName": str(match.get("headerName") or ""), "Values": [wanted]}
        conditions.append({"Field": "http-header", "HttpHeaderConfig": header})
    return conditions, ""


def parse_action(text: str | None) -> dict[str, Any] | None:
    """The action JSON of an annotation (None when absent or not a JSON object)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def managed_annotations(text: str) -> set[tuple[str, str]]:
    """`rollout:annotation,...` -> {(rollout, annotation)}: which Rollout manages which annotation."""
    out: set[tuple[str, str]] = set()
    for item in text.split(","):
        rollout, sep, key = item.strip().partition(":")
        if sep and rollout:
            out.add((rollout, key))
    return out


class AlbRouter:
    """The `trafficRouting.alb` entry of one Rollout."""

    name = "alb"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        config = as_dict(context.config)
        names: list[str] = []
        if config.get("ingress"):
            names.append(str(config["ingress"]))
        for name in as_list(config.get("ingresses")):
            if str(name) not in names:
                names.append(str(name))
        self.ingress_names = names
        self.prefix = str(config.get("annotationPrefix") or DEFAULT_PREFIX)
        self.action_service = str(config.get("rootService") or context.stable_service)
        port = config.get("servicePort")
        self.service_port = port if isinstance(port, int) and not isinstance(port, bool) else None
        stickiness = config.get("stickinessConfig")
        self.stickiness = stickiness if isinstance(stickiness, Mapping) else None

    # ------------------------------------------------------------------ protocol

    def ref(self, name: str) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, PLURAL, self.context.namespace, name)

    def objects(self) -> Sequence[ObjectRef]:
        return [self.ref(name) for name in self.ingress_names]

    def routes_additional_destinations(self) -> bool:
        return True

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        path = self.context.path
        problems: list[RoutingProblem] = list(missing_services(self.context))
        if not self.ingress_names:
            problems.append(RoutingProblem(None, f"{path}.ingress", "name the ALB Ingress: set ingress or ingresses"))
        if self.context.config.get("ingress") and self.context.config.get("ingresses"):
            problems.append(RoutingProblem(None, f"{path}.ingresses", "set either ingress or ingresses, not both"))
        if self.service_port is None or not 0 < self.service_port < 65536:
            problems.append(
                RoutingProblem(
                    None,
                    f"{path}.servicePort",
                    "Required value: the port (1-65535) of the canary and stable Services the ALB forwards to",
                )
            )
        if self.stickiness is not None and self.stickiness.get("enabled"):
            duration = self.stickiness.get("durationSeconds")
            if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= MAX_STICKINESS:
                problems.append(
                    RoutingProblem(
                        None,
                        f"{path}.stickinessConfig.durationSeconds",
                        f"must be 1 to {MAX_STICKINESS} seconds (7 days), as AWS target groups take it",
                    )
                )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = list(self.spec_problems())
        writes: list[ObjectWrite] = []
        weights: list[int | None] = []
        conditions: dict[str, list[dict[str, Any]]] = {}
        for route in desired.header_routes:
            found, why = header_conditions(route)
            if found is None:
                problems.append(RoutingProblem(None, "spec.strategy.canary.steps[].setHeaderRoute.match", why))
            else:
                conditions[route.name] = found
        if problems:
            return RouterResult(problems=tuple(problems))
        for name in self.ingress_names:
            ref = self.ref(name)
            ingress = live.get(ref)
            if ingress is None:
                problems.append(
                    RoutingProblem(
                        ref,
                        f"{self.context.path}.ingress",
                        f'Ingress "{name}" not found in namespace "{self.context.namespace}": '
                        "create it or fix the name",
                    )
                )
                continue
            problem = self._rule_problem(ref, ingress)
            if problem is not None:
                problems.append(problem)
                continue
            weights.append(self.live_weight(ingress, desired))
            write = self._write(ref, ingress, desired, conditions, owner)
            if write is not None:
                writes.append(write)
        if problems:
            return RouterResult(actual_canary_weight=_one(weights), problems=tuple(problems))
        return RouterResult(writes=tuple(writes), actual_canary_weight=_one(weights))

    # ------------------------------------------------------------------ the Ingress

    def _rule_problem(self, ref: ObjectRef, ingress: Mapping[str, Any]) -> RoutingProblem | None:
        """The Ingress must send a path to the action: backend Service `rootService`, port `use-annotation`."""
        ports = [port for service, port in _backends(ingress) if service == self.action_service]
        if not ports:
            return RoutingProblem(
                ref,
                "spec.rules[].http.paths[].backend.service.name",
                f'Ingress "{ref.name}" has no rule with backend Service "{self.action_service}": add one (port name '
                f'"{USE_ANNOTATION}"), or set {self.context.path}.rootService to the action the Ingress uses',
            )
        if USE_ANNOTATION not in ports:
            return RoutingProblem(
                ref,
                "spec.rules[].http.paths[].backend.service.port.name",
                f'Ingress "{ref.name}" routes to Service "{self.action_service}" directly: set the backend\'s port '
                f'name to "{USE_ANNOTATION}" so the AWS Load Balancer Controller reads the weighted action',
            )
        return None

    def live_weight(self, ingress: Mapping[str, Any], desired: DesiredTraffic) -> int | None:
        """The canary's share of the action, scaled to maxTrafficWeight (0 before the first write)."""
        action = parse_action(annotations_of(ingress).get(action_key(self.prefix, self.action_service)))
        if action is None:
            return 0
        groups = [as_dict(g) for g in as_list(as_dict(action.get("ForwardConfig")).get("TargetGroups"))]
        total = 0
        canary = 0
        for group in groups:
            weight = parse_weight(group.get("Weight", 0))
            if weight is None:
                return None
            total += weight
            if group.get("ServiceName") == desired.canary_service:
                canary += weight
        return round(canary * desired.max_weight / total) if total > 0 else 0

    def _write(
        self,
        ref: ObjectRef,
        ingress: Mapping[str, Any],
        desired: DesiredTraffic,
        conditions: Mapping[str, list[dict[str, Any]]],
        owner: Owner,
    ) -> ObjectWrite | None:
        notes = annotations_of(ingress)
        port = str(self.service_port)
        wanted: dict[str, str | None] = {
            action_key(self.prefix, self.action_service): _json(forward_action(desired, port, self.stickiness))
        }
        for route in desired.managed_routes:
            active = route in conditions
            action = _json(canary_action(desired.canary_service, port, self.stickiness)) if active else None
            wanted[action_key(self.prefix, route)] = action
            wanted[condition_key(self.prefix, route)] = _json(conditions[route]) if active else None
        managed = managed_annotations(notes.get(MANAGED_ACTIONS, ""))
        mine = {(owner.name, key) for key, value in wanted.items() if value is not None}
        managed = {item for item in managed if item[0] != owner.name} | mine
        wanted[MANAGED_ACTIONS] = ",".join(f"{r}:{k}" for r, k in sorted(managed))
        patch = {k: v for k, v in wanted.items() if _differs(notes.get(k), v)}
        rules = self._rules(ingress, desired.managed_routes, [r for r in desired.managed_routes if r in conditions])
        if not patch and rules is None:
            return None
        meta: dict[str, Any] = {"annotations": patch}
        rv = as_dict(ingress.get("metadata")).get("resourceVersion")
        if rv:
            meta["resourceVersion"] = rv
        body: dict[str, Any] = {"metadata": meta}
        if rules is not None:
            body["spec"] = {"rules": rules}
        why = f"canary weight {desired.canary_weight}/{desired.max_weight}"
        return ObjectWrite(ref, "merge-patch", body, why)

    def _rules(
        self, ingress: Mapping[str, Any], managed: Sequence[str], active: Sequence[str]
    ) -> list[Any] | None:
        """The Ingress's rules with a path per active header route ahead of each path to the action (and
        none for the managed routes that are not active); None when they are that already."""
        rules = as_list(as_dict(ingress.get("spec")).get("rules"))
        new_rules = []
        for rule in rules:
            rule = as_dict(rule)
            paths = [as_dict(p) for p in as_list(as_dict(rule.get("http")).get("paths"))]
            if not paths:
                new_rules.append(rule)
                continue
            kept = [p for p in paths if _backend_service(p) not in managed]
            added = []
            for path in kept:
                if _backend_service(path) == self.action_service:
                    for route in active:
                        copied = copy.deepcopy(path)
                        copied["backend"] = {"service": {"name": route, "port": {"name": USE_ANNOTATION}}}
                        added.append(copied)
            new_rules.append({**rule, "http": {**as_dict(rule.get("http")), "paths": added + kept}})
        return None if new_rules == rules else new_rules


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _differs(current: str | None, wanted: str | None) -> bool:
    """Whether an annotation must be written: JSON values are compared as JSON (a person may reformat)."""
    if current is None or wanted is None:
        return current != wanted
    try:
        return bool(json.loads(current) != json.loads(wanted))
    except ValueError:
        return current != wanted


def _backend_service(path: Mapping[str, Any]) -> str:
    return str(as_dict(as_dict(path.get("backend")).get("service")).get("name") or "")


def _backends(ingress: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(Service name, port name or number) of every backend of the Ingress's rules and default backend."""
    spec = as_dict(ingress.get("spec"))
    backends = [as_dict(spec.get("defaultBackend"))]
    for rule in map(as_dict, as_list(spec.get("rules"))):
        backends += [as_dict(p.get("backend")) for p in map(as_dict, as_list(as_dict(rule.get("http")).get("paths")))]
    out = []
    for backend in backends:
        service = as_dict(backend.get("service"))
        if service.get("name"):
            port = as_dict(service.get("port"))
            out.append((str(service["name"]), str(port.get("name") or port.get("number") or "")))
    return out


def _one(weights: Sequence[int | None]) -> int | None:
    """One live weight for several Ingresses: theirs when they agree, None when they do not."""
    if not weights:
        return None
    first = weights[0]
    return first if all(w == first for w in weights) else None


__all__ = [
    "DEFAULT_PREFIX",
    "MANAGED_ACTIONS",
    "AlbRouter",
    "action_key",
    "condition_key",
    "forward_action",
    "header_conditions",
    "parse_action",
]
