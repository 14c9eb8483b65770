"""Traefik (`trafficRouting.traefik`): the weights of the canary and stable Services in a weighted
`TraefikService` (`spec.weighted.services`), which an IngressRoute sends its requests to.

The TraefikService is the user's: it must list both Services (kind `Service`, the default), and only
their two weights change: canary `w`, stable `maxTrafficWeight - w` (Traefik weights are relative, so
any total works). Other entries (a third Service, a nested TraefikService) keep their weights. The
write is one merge patch of `spec.weighted.services` carrying the `resourceVersion` it was computed
from, so a concurrent edit gives a 409 and the next pass starts over. No header or mirror routes
(Argo's Traefik router has none either).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, as_list, parse_weight
from rollouts.traffic.registry import RouterContext, missing_services
from rollouts.traffic.router import (
    DesiredTraffic,
    ObjectRef,
    ObjectWrite,
    Owner,
    RoutedKind,
    RouterResult,
    RoutingProblem,
)

API_VERSION = "traefik.io/v1alpha1"
KIND = "TraefikService"
PLURAL = "traefikservices"
SERVICES_FIELD = "spec.weighted.services"


class TraefikRouter:
    """The `trafficRouting.traefik` entry of one Rollout."""

    name = "traefik"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        self.service_name = str(as_dict(context.config).get("weightedTraefikServiceName") or "")
        self.ref = ObjectRef(API_VERSION, KIND, PLURAL, context.namespace, self.service_name)

    def objects(self) -> Sequence[ObjectRef]:
        return [self.ref] if self.service_name else []

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

    def spec_problems(self) -> Sequence[RoutingProblem]:
        problems = list(missing_services(self.context))
        if not self.service_name:
            problems.append(
                RoutingProblem(
                    None,
                    f"{self.context.path}.weightedTraefikServiceName",
                    "Required value: the weighted TraefikService that splits the traffic",
                )
            )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems = list(self.spec_problems())
        if problems:
            return RouterResult(problems=tuple(problems))
        obj = live.get(self.ref)
        if obj is None:
            return RouterResult(
                problems=(
                    RoutingProblem(
                        self.ref,
                        f"{self.context.path}.weightedTraefikServiceName",
                        f'TraefikService "{self.service_name}" not found in namespace "{self.context.namespace}": '
                        "create it or fix the name",
                    ),
                )
            )
        services = [as_dict(s) for s in as_list(as_dict(as_dict(obj.get("spec")).get("weighted")).get("services"))]
        missing = [
            name for name in (desired.canary_service, desired.stable_service) if not any(_is(s, name) for s in services)
        ]
        if missing:
            return RouterResult(
                problems=(
                    RoutingProblem(
                        self.ref,
                        SERVICES_FIELD,
                        f'TraefikService "{self.service_name}" has no weighted service '
                        + " or ".join(f'"{name}"' for name in missing)
                        + ": add the canary and the stable Service to spec.weighted.services",
                    ),
                )
            )
        actual = live_weight(services, desired)
        wanted = [_weighted(s, desired) for s in services]
        if wanted == services:
            return RouterResult(actual_canary_weight=actual)
        meta: dict[str, Any] = {}
        rv = as_dict(obj.get("metadata")).get("resourceVersion")
        if rv:
            meta["resourceVersion"] = rv
        body = {"metadata": meta, "spec": {"weighted": {"services": wanted}}}
        why = f"canary weight {desired.canary_weight}/{desired.max_weight}"
        return RouterResult(writes=(ObjectWrite(self.ref, "merge-patch", body, why),), actual_canary_weight=actual)


def _is(service: Mapping[str, Any], name: str) -> bool:
    return service.get("name") == name and service.get("kind", "Service") == "Service"


def _weighted(service: dict[str, Any], desired: DesiredTraffic) -> dict[str, Any]:
    if _is(service, desired.canary_service):
        return {**service, "weight": desired.canary_weight}
    if _is(service, desired.stable_service):
        return {**service, "weight": desired.stable_weight}
    return service


def live_weight(services: Sequence[Mapping[str, Any]], desired: DesiredTraffic) -> int | None:
    """The canary's share between the two Services, in maxTrafficWeight units (an unset weight counts 1)."""
    canary = stable = 0
    for service in services:
        weight = parse_weight(service.get("weight", 1))
        if weight is None:
            return None
        if _is(service, desired.canary_service):
            canary += weight
        elif _is(service, desired.stable_service):
            stable += weight
    return round(canary * desired.max_weight / (canary + stable)) if canary + stable > 0 else 0


__all__ = ["API_VERSION", "TraefikRouter", "live_weight"]
