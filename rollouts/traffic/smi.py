"""SMI: one TrafficSplit (`trafficRouting.smi`), owned by the Rollout, splitting the root Service's
traffic between the canary Service (w) and the stable Service (maxTrafficWeight - w).

At an experiment step each weighted template's Service is one more backend, its weight taken from the
stable's. `trafficSplitName` defaults to the Rollout's name, `rootService` to the stable Service. We write
`split.smi-spec.io/v1alpha2` (integer weights, as Linkerd and OSM serve it); weights we read may
also be quantities ("500m"). A TrafficSplit of that name that another owner controls is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import merge_diff, owned_by, parse_quantity, parse_weight
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

API_VERSION = "split.smi-spec.io/v1alpha2"
KIND = "TrafficSplit"
PLURAL = "trafficsplits"


class SmiRouter:
    name = "smi"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        config = context.config
        self.split_name = str(config.get("trafficSplitName") or context.rollout)
        self.root_service = str(config.get("rootService") or context.stable_service)
        self.ref = ObjectRef(API_VERSION, KIND, PLURAL, context.namespace, self.split_name)

    def objects(self) -> Sequence[ObjectRef]:
        return [self.ref]

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

    def routes_additional_destinations(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        return missing_services(self.context)

    def desired_spec(self, desired: DesiredTraffic) -> dict[str, Any]:
        """The split: canary, stable, then each experiment template's Service (the split is ours alone, so
        an experiment's backend that is no longer wanted simply goes)."""
        return {
            "service": self.root_service,
            "backends": [
                {"service": desired.canary_service, "weight": desired.canary_weight},
                {"service": desired.stable_service, "weight": desired.stable_weight},
                *({"service": d.service_name, "weight": d.weight} for d in desired.additional),
            ],
        }

    def actual_weight(self, split: Mapping[str, Any] | None, desired: DesiredTraffic) -> int | None:
        """The canary's share of the split, scaled to maxTrafficWeight (0 when there is no split)."""
        if split is None:
            return 0
        total = 0.0
        canary = 0.0
        for backend in (split.get("spec") or {}).get("backends") or []:
            weight = parse_quantity(backend.get("weight")) if isinstance(backend, Mapping) else None
            if weight is None:
                return None
            total += weight
            if backend.get("service") == desired.canary_service:
                canary += weight
        if total <= 0:
            return 0
        return round(canary * desired.max_weight / total)

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        split = live.get(self.ref)
        spec = self.desired_spec(desired)
        if split is None:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": self.split_name,
                    "namespace": self.context.namespace,
                    "ownerReferences": [owner.reference()],
                },
                "spec": spec,
            }
            return RouterResult(
                writes=(ObjectWrite(self.ref, "create", manifest, f"canary weight {desired.canary_weight}"),),
                actual_canary_weight=0,
            )
        if not owned_by(split, owner):
            return RouterResult(
                actual_canary_weight=self.actual_weight(split, desired),
                problems=(
                    RoutingProblem(
                        self.ref,
                        f"{self.context.path}.trafficSplitName",
                        f'TrafficSplit "{self.split_name}" already exists and is not owned by Rollout '
                        f'"{owner.name}": delete it or set another trafficSplitName',
                    ),
                ),
            )
        actual = self.actual_weight(split, desired)
        current_spec = dict(split.get("spec") or {})
        if current_spec.get("service") == spec["service"] and _same_backends(current_spec, spec):
            return RouterResult(actual_canary_weight=actual)
        patch = merge_diff(current_spec, spec)
        return RouterResult(
            writes=(ObjectWrite(self.ref, "merge-patch", {"spec": patch}, f"canary weight {desired.canary_weight}"),),
            actual_canary_weight=actual,
        )


def _same_backends(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    backends = [b for b in current.get("backends") or [] if isinstance(b, Mapping)]
    have = [(b.get("service"), parse_weight(b.get("weight"))) for b in backends]
    return have == [(b["service"], b["weight"]) for b in wanted["backends"]]
