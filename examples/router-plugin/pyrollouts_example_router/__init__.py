"""An example traffic router plugin: splits the traffic with an SMI TrafficSplit it creates and owns.

Configured as `trafficRouting.plugins: {pyrollouts-examples.trafficsplit: {splitName: ..., rootService:
...}}`. A plugin is a class built from a `RouterContext` that implements the `Router` protocol of
`rollouts.traffic.router`: it declares the kinds of the objects it reads (`KINDS`: the controller
watches them and reads the objects from its cache), names the objects it reads, and turns the weight the
controller wants plus those objects (as they are now) into writes. It never talks to the API server itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.registry import RouterContext
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


class TrafficSplitRouter:
    # Every kind objects() names: watched while served (the controller's role needs list and watch on it).
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, "TrafficSplit", "trafficsplits"),)

    def __init__(self, context: RouterContext) -> None:
        self.name = f"plugins/{context.plugin}"
        self.context = context
        self.root_service = str(context.config.get("rootService") or context.stable_service)
        split_name = str(context.config.get("splitName") or f"{context.rollout}-plugin")
        self.ref = ObjectRef(API_VERSION, "TrafficSplit", "trafficsplits", context.namespace, split_name)

    def objects(self) -> Sequence[ObjectRef]:
        return [self.ref]

    def spec_problems(self) -> Sequence[RoutingProblem]:
        if self.context.canary_service and self.context.stable_service:
            return []
        return [RoutingProblem(None, "spec.strategy.canary", "set canaryService and stableService for this plugin")]

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

    def reconcile(
        self, desired: DesiredTraffic, live: Mapping[ObjectRef, Mapping[str, Any] | None], owner: Owner
    ) -> RouterResult:
        spec = {
            "service": self.root_service,
            "backends": [
                {"service": desired.canary_service, "weight": desired.canary_weight},
                {"service": desired.stable_service, "weight": desired.stable_weight},
            ],
        }
        why = f"canary weight {desired.canary_weight}"
        split = live.get(self.ref)
        if split is None:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "TrafficSplit",
                "metadata": {"name": self.ref.name, "ownerReferences": [owner.reference()]},
                "spec": spec,
            }
            return RouterResult(writes=(ObjectWrite(self.ref, "create", manifest, why),), actual_canary_weight=0)
        backends = (split.get("spec") or {}).get("backends") or []
        weights = {b.get("service"): int(b.get("weight") or 0) for b in backends}
        total = sum(weights.values())
        actual = round(weights.get(desired.canary_service, 0) * desired.max_weight / total) if total else 0
        if split.get("spec") == spec:
            return RouterResult(actual_canary_weight=actual)
        return RouterResult(
            writes=(ObjectWrite(self.ref, "merge-patch", {"spec": spec}, why),), actual_canary_weight=actual
        )
