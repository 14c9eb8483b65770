"""AWS Load Balancer Controller (`trafficRouting.alb`): the weighted-target-group action annotation
`<prefix>/actions.<rootService>` on each Ingress the Rollout names.

The Ingress routes a path to the action (backend Service `rootService`, default the stable Service,
port name `use-annotation`); the AWS Load Balancer Controller reads the action's JSON and forwards
to the canary Service (weight w) and the stable Service (`maxTrafficWeight - w`), on `servicePort`,
optionally with target-group stickiness. The JSON is the controller's own format (`Type`,
`ForwardConfig.TargetGroups[].ServiceName/ServicePort/Weight`, `TargetGroupStickinessConfig`), canary
first as Argo writes it. `rollouts.pyrollouts.io/managed-alb-actions` records which Rollout manages
which action (several Rollouts may share an Ingress). Nothing else of the Ingress is changed.

Each write is one merge patch of one Ingress carrying the `resourceVersion` it was computed from, so a
concurrent edit gives a 409 and the next pass starts over. With several Ingresses the live weight is
known only when they all agree, so the planner never moves on while one of them lags behind.

Not done here (AWS-side): Argo's `--aws-verify-target-group` (reading the real target groups' weights
and registered pod IPs through the AWS API), and header routes (`conditions.<route>`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.traffic.objects import annotations_of, as_dict, as_list, parse_weight
from rollouts.traffic.registry import RouterContext, missing_services
from rollouts.traffic.router import (
    DesiredTraffic,
    ObjectRef,
    ObjectWrite,
    Owner,
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


def forward_action(desired: DesiredTraffic, port: str, stickiness: Mapping[str, Any] | None) -> dict[str, Any]:
    """The action the AWS Load Balancer Controller reads: canary and stable target groups, weighted."""
    forward: dict[str, Any] = {
        "TargetGroups": [
            {"ServiceName": desired.canary_service, "ServicePort": port, "Weight": desired.canary_weight},
            {"ServiceName": desired.stable_service, "ServicePort": port, "Weight": desired.stable_weight},
        ]
    }
    if stickiness is not None and stickiness.get("enabled"):
        forward["TargetGroupStickinessConfig"] = {
            "Enabled": bool(stickiness.get("enabled")),
            "DurationSeconds": int(stickiness.get("durationSeconds") or 0),
        }
    return {"Type": "forward", "ForwardConfig": forward}


def parse_action(text: str | None) -> dict[str, Any] | None:
    """The action JSON of an annotation (None when absent or not a JSON object)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def managed_actions(text: str) -> dict[str, str]:
    """`rollout:actionKey,...` -> {rollout: actionKey}."""
    out: dict[str, str] = {}
    for item in text.split(","):
        rollout, sep, key = item.strip().partition(":")
        if sep and rollout:
            out[rollout] = key
    return out


class AlbRouter:
    """The `trafficRouting.alb` entry of one Rollout."""

    name = "alb"

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

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

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
            write = self._write(ref, ingress, desired, owner)
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
        self, ref: ObjectRef, ingress: Mapping[str, Any], desired: DesiredTraffic, owner: Owner
    ) -> ObjectWrite | None:
        notes = annotations_of(ingress)
        key = action_key(self.prefix, self.action_service)
        wanted = forward_action(desired, str(self.service_port), self.stickiness)
        managed = managed_actions(notes.get(MANAGED_ACTIONS, ""))
        patch: dict[str, str] = {}
        if parse_action(notes.get(key)) != wanted:
            patch[key] = json.dumps(wanted, separators=(",", ":"))
        if managed.get(owner.name) != key:
            managed[owner.name] = key
            patch[MANAGED_ACTIONS] = ",".join(f"{r}:{k}" for r, k in sorted(managed.items()))
        if not patch:
            return None
        meta: dict[str, Any] = {"annotations": patch}
        rv = as_dict(ingress.get("metadata")).get("resourceVersion")
        if rv:
            meta["resourceVersion"] = rv
        why = f"canary weight {desired.canary_weight}/{desired.max_weight}"
        return ObjectWrite(ref, "merge-patch", {"metadata": meta}, why)


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


__all__ = ["DEFAULT_PREFIX", "MANAGED_ACTIONS", "AlbRouter", "action_key", "forward_action", "parse_action"]
