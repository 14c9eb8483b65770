"""Ambassador / Emissary (`trafficRouting.ambassador`): a weighted canary copy of each stable Mapping.

For each Mapping in `mappings` the controller keeps `<mapping>-canary` (Argo's name; the base name cut
to 246 characters), owned by the Rollout: a copy of the Mapping's spec whose `service` names the canary
Service instead of the stable one, with `weight` the canary's percent of the traffic. Ambassador sends
a weighted Mapping its percent of the requests for the same prefix and the unweighted one the rest, so
the stable Mapping is never modified (and must not set a weight). When the weight goes back to 0 the
copy first gets `weight: 0`, and is deleted on the next pass, once that write is read back (Argo waits
5 s between the two): the end of a rollout and an abort leave no canary Mapping behind.

Mappings are `getambassador.io/v2` (Argo's default; Emissary 3 serves it next to v3alpha1). No header
or mirror routes (Argo's Ambassador has none).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, merge_diff, owned_by, parse_quantity
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

API_VERSION = "getambassador.io/v2"
KIND = "Mapping"
PLURAL = "mappings"
MAX_BASE_NAME = 246  # Argo's cut, so that "-canary" still fits a 253-character name


def canary_mapping_name(base: str) -> str:
    return f"{base[:MAX_BASE_NAME]}-canary"


class AmbassadorRouter:
    """The `trafficRouting.ambassador` entry of one Rollout."""

    name = "ambassador"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (RoutedKind(API_VERSION, KIND, PLURAL),)

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        mappings = context.config.get("mappings")
        self.mappings = [str(m) for m in mappings if m] if isinstance(mappings, list) else []

    def ref(self, name: str) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, PLURAL, self.context.namespace, name)

    def objects(self) -> Sequence[ObjectRef]:
        return [r for m in self.mappings for r in (self.ref(m), self.ref(canary_mapping_name(m)))]

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

    def spec_problems(self) -> Sequence[RoutingProblem]:
        problems = list(missing_services(self.context))
        if not self.mappings:
            problems.append(
                RoutingProblem(
                    None,
                    f"{self.context.path}.mappings",
                    "Required value: list the Ambassador Mappings that route to the stable Service",
                )
            )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = []
        writes: list[ObjectWrite] = []
        weights: list[int | None] = []
        for base_name in self.mappings:
            base, canary = live.get(self.ref(base_name)), live.get(self.ref(canary_mapping_name(base_name)))
            if canary is not None and not owned_by(canary, owner):
                problems.append(self._not_ours(base_name, owner))
                continue
            weights.append(_routed(canary, desired.max_weight))
            problem = self._base_problem(base_name, base, desired)
            if problem is not None:
                problems.append(problem)
                continue
            assert base is not None
            write = self._canary_write(base, canary, desired, owner)
            if write is not None:
                writes.append(write)
        actual = weights[0] if weights and all(w == weights[0] for w in weights) else None
        if problems:
            return RouterResult(actual_canary_weight=actual, problems=tuple(problems))
        return RouterResult(writes=tuple(writes), actual_canary_weight=actual)

    def _not_ours(self, base_name: str, owner: Owner) -> RoutingProblem:
        name = canary_mapping_name(base_name)
        return RoutingProblem(
            self.ref(name),
            "metadata.ownerReferences",
            f'canary Mapping "{name}" already exists and is not owned by Rollout "{owner.name}": '
            "delete it or rename the stable Mapping",
        )

    def _base_problem(
        self, name: str, base: Mapping[str, Any] | None, desired: DesiredTraffic
    ) -> RoutingProblem | None:
        ref = self.ref(name)
        if base is None:
            return RoutingProblem(
                ref,
                f"{self.context.path}.mappings",
                f'Mapping "{name}" not found in namespace "{self.context.namespace}": create it or fix the name',
            )
        spec = as_dict(base.get("spec"))
        if parse_quantity(spec.get("weight")):
            return RoutingProblem(
                ref,
                "spec.weight",
                f'Mapping "{name}" sets a weight: remove it (the canary Mapping carries the weight, the stable '
                "one gets the rest)",
            )
        if desired.stable_service not in str(spec.get("service") or ""):
            return RoutingProblem(
                ref,
                "spec.service",
                f'Mapping "{name}" routes to {str(spec.get("service") or "")!r}, not to the stable Service '
                f'"{desired.stable_service}": list the Mapping of the stable Service, or fix stableService',
            )
        return None

    def _canary_write(
        self,
        base: Mapping[str, Any],
        canary: Mapping[str, Any] | None,
        desired: DesiredTraffic,
        owner: Owner,
    ) -> ObjectWrite | None:
        name = canary_mapping_name(str(as_dict(base.get("metadata")).get("name")))
        ref = self.ref(name)
        percent = round(desired.canary_weight * 100 / desired.max_weight)
        why = f"canary weight {desired.canary_weight}"
        if desired.canary_weight == 0:
            if canary is None:
                return None
            if parse_quantity(as_dict(canary.get("spec")).get("weight")):
                return ObjectWrite(ref, "merge-patch", {"spec": {"weight": 0}}, why)
            return ObjectWrite(ref, "delete", None, "canary weight 0: the canary Mapping goes")
        spec = copy.deepcopy(as_dict(base.get("spec")))
        spec["service"] = str(spec.get("service") or "").replace(desired.stable_service, desired.canary_service, 1)
        spec["weight"] = percent
        if canary is None:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": name, "namespace": self.context.namespace, "ownerReferences": [owner.reference()]},
                "spec": spec,
            }
            return ObjectWrite(ref, "create", manifest, why)
        patch = merge_diff(as_dict(canary.get("spec")), spec)
        return ObjectWrite(ref, "merge-patch", {"spec": patch}, why) if patch else None


def _routed(canary: Mapping[str, Any] | None, max_weight: int) -> int | None:
    """The canary's share as the canary Mapping routes it, in maxTrafficWeight units (none: 0)."""
    if canary is None:
        return 0
    weight = parse_quantity(as_dict(canary.get("spec")).get("weight"))
    if weight is None:
        return None  # an unweighted copy shares what the weighted Mappings leave: cannot tell
    return round(min(max(weight, 0.0), 100.0) * max_weight / 100)


__all__ = ["API_VERSION", "AmbassadorRouter", "canary_mapping_name"]
