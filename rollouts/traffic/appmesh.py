"""AWS App Mesh (`trafficRouting.appMesh`): the weights of the canary and stable VirtualNodes in the
routes of the VirtualRouter behind a VirtualService, and the pod-template hash in each VirtualNode's
`podSelector` (`appmesh.k8s.aws/v1beta2`).

`virtualService.name` names the VirtualService; its `spec.provider.virtualRouter.virtualRouterRef` the
VirtualRouter (read after it: `followed_objects`). In each of its routes (`virtualService.routes`, or
every route that targets both VirtualNodes) of type httpRoute, http2Route, grpcRoute or tcpRoute, the
`weightedTargets` entry of `virtualNodeGroup.canaryVirtualNodeRef` gets the canary's percent and the
stable one the rest (App Mesh weights are 0..100). As Argo, the controller writes
`rollouts-pod-template-hash` into the VirtualNodes' `podSelector.matchLabels`: the stable hash (or
`stable-hash` while there is none) and the canary hash (`canary-hash` when there is no canary), and
marks them with the managed-by annotation.

Crash-safe order: a VirtualNode's hash changes only while the VirtualRouter sends it nothing, or for a
stable VirtualNode that carries traffic (a placeholder hash, Argo's behaviour); those writes come
after the weights. A canary VirtualNode that still carries weight but selects another version (a new
revision mid-rollout) counts as routing 0 to the canary: its weight goes back to 0 before the hash
changes, and up again only once the new pods are ready. After the promotion the canary VirtualNode
keeps the new version's hash until the weights have left it, then gets its placeholder.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, as_list, parse_quantity
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

API_VERSION = "appmesh.k8s.aws/v1beta2"
HASH_LABEL = "rollouts-pod-template-hash"
MANAGED_BY = "rollouts.pyrollouts.io/managed-by-rollouts"
ROUTE_TYPES = ("httpRoute", "tcpRoute", "http2Route", "grpcRoute")  # the ones with weightedTargets
STABLE_PLACEHOLDER, CANARY_PLACEHOLDER = "stable-hash", "canary-hash"  # Argo's

Json = dict[str, Any]


class AppMeshRouter:
    """The `trafficRouting.appMesh` entry of one Rollout."""

    name = "appMesh"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (
        RoutedKind(API_VERSION, "VirtualService", "virtualservices"),
        RoutedKind(API_VERSION, "VirtualRouter", "virtualrouters"),
        RoutedKind(API_VERSION, "VirtualNode", "virtualnodes"),
    )

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        service = as_dict(context.config.get("virtualService"))
        self.service_name = str(service.get("name") or "")
        self.routes = [str(r) for r in as_list(service.get("routes"))]
        group = as_dict(context.config.get("virtualNodeGroup"))
        self.canary_node = str(as_dict(group.get("canaryVirtualNodeRef")).get("name") or "")
        self.stable_node = str(as_dict(group.get("stableVirtualNodeRef")).get("name") or "")

    def ref(self, kind: str, name: str, namespace: str | None = None) -> ObjectRef:
        return ObjectRef(API_VERSION, kind, kind.lower() + "s", namespace or self.context.namespace, name)

    def objects(self) -> Sequence[ObjectRef]:
        return [
            self.ref("VirtualService", self.service_name),
            self.ref("VirtualNode", self.canary_node),
            self.ref("VirtualNode", self.stable_node),
        ]

    def followed_objects(self, live: Mapping[ObjectRef, Mapping[str, Any] | None]) -> Sequence[ObjectRef]:
        router = self._router_ref(live.get(self.ref("VirtualService", self.service_name)))
        return [router] if router is not None else []

    def supports_mirror(self) -> bool:
        return False

    def supports_header_routes(self) -> bool:
        return False

    def spec_problems(self) -> Sequence[RoutingProblem]:
        path = self.context.path
        problems = list(missing_services(self.context))
        for name, field in (
            (self.service_name, "virtualService.name"),
            (self.canary_node, "virtualNodeGroup.canaryVirtualNodeRef.name"),
            (self.stable_node, "virtualNodeGroup.stableVirtualNodeRef.name"),
        ):
            if not name:
                problems.append(RoutingProblem(None, f"{path}.{field}", "Required value: App Mesh needs it"))
        if self.canary_node and self.canary_node == self.stable_node:
            problems.append(
                RoutingProblem(
                    None,
                    f"{path}.virtualNodeGroup",
                    "the canary and the stable VirtualNode must differ: name one VirtualNode per version",
                )
            )
        return problems

    def _router_ref(self, service: Mapping[str, Any] | None) -> ObjectRef | None:
        if service is None:
            return None
        provider = as_dict(as_dict(as_dict(service.get("spec")).get("provider")).get("virtualRouter"))
        router = as_dict(provider.get("virtualRouterRef"))
        if not router.get("name"):
            return None
        return self.ref("VirtualRouter", str(router["name"]), str(router.get("namespace") or "") or None)

    # ------------------------------------------------------------------ reconcile

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = []
        router_ref, router = self._find_router(live, problems)
        nodes = {}
        for role, name in (("canary", self.canary_node), ("stable", self.stable_node)):
            node = live.get(self.ref("VirtualNode", name))
            if node is None:
                problems.append(self._missing("VirtualNode", name, f"virtualNodeGroup.{role}VirtualNodeRef.name"))
            nodes[role] = node
        if router_ref is None or router is None or problems:
            return RouterResult(actual_canary_weight=None, problems=tuple(problems))
        routes = self._split_routes(router_ref, router, problems)
        if problems:
            return RouterResult(actual_canary_weight=None, problems=tuple(problems))
        live_weights = [_canary_share(targets, desired.max_weight) for targets in routes.values()]
        routed = live_weights[0] if all(w == live_weights[0] for w in live_weights) else None
        hashes = self._wanted_hashes(desired)
        # the canary VirtualNode routes to the canary's pods (after the promotion those are the stable's)
        canary_current = _node_hash(nodes["canary"]) in (hashes["canary"], desired.canary_hash)
        actual = routed if canary_current or routed is None else 0
        # which VirtualNodes get traffic now; a canary VirtualNode that must select another version
        # gets no weight while it changes
        before = {"canary": routed != 0, "stable": any(_stable_share(t) for t in routes.values())}
        percent = round(desired.canary_weight * 100 / desired.max_weight)
        if not canary_current and before["canary"]:
            percent = 0
        first: list[ObjectWrite] = []
        last: list[ObjectWrite] = []
        for role in ("stable", "canary"):
            write = self._node_write(role, nodes[role], hashes[role], owner)
            if write is None:
                continue
            if not before[role]:
                first.append(write)
            else:  # after the weights: the canary's gets none by then; the stable's carries traffic (as Argo)
                last.append(write)
        writes = [*first, *self._router_write(router_ref, router, routes, percent), *last]
        return RouterResult(writes=tuple(writes), actual_canary_weight=actual)

    def _find_router(
        self, live: Mapping[ObjectRef, Mapping[str, Any] | None], problems: list[RoutingProblem]
    ) -> tuple[ObjectRef | None, Mapping[str, Any] | None]:
        service = live.get(self.ref("VirtualService", self.service_name))
        if service is None:
            problems.append(self._missing("VirtualService", self.service_name, "virtualService.name"))
            return None, None
        router_ref = self._router_ref(service)
        if router_ref is None:
            problems.append(
                RoutingProblem(
                    self.ref("VirtualService", self.service_name),
                    "spec.provider.virtualRouter.virtualRouterRef",
                    f'VirtualService "{self.service_name}" is not provided by a VirtualRouter: set '
                    "spec.provider.virtualRouter.virtualRouterRef (the routes the controller weighs live there)",
                )
            )
            return None, None
        router = live.get(router_ref)
        if router is None:
            problems.append(
                RoutingProblem(
                    router_ref,
                    "spec.provider.virtualRouter.virtualRouterRef",
                    f'VirtualRouter "{router_ref.name}" (named by VirtualService "{self.service_name}") not found '
                    f'in namespace "{router_ref.namespace}": create it or fix the reference',
                )
            )
        return router_ref, router

    def _missing(self, kind: str, name: str, field: str) -> RoutingProblem:
        return RoutingProblem(
            self.ref(kind, name),
            f"{self.context.path}.{field}",
            f'{kind} "{name}" not found in namespace "{self.context.namespace}": create it or fix the name',
        )

    def _is_node(self, target: Mapping[str, Any], name: str, router_ref: ObjectRef) -> bool:
        ref = as_dict(target.get("virtualNodeRef"))
        namespace = str(ref.get("namespace") or router_ref.namespace)
        return ref.get("name") == name and namespace == self.context.namespace

    def _split_routes(
        self, router_ref: ObjectRef, router: Mapping[str, Any], problems: list[RoutingProblem]
    ) -> dict[int, dict[str, Json]]:
        """Route index -> {"canary": target, "stable": target} for the routes to weigh."""
        out: dict[int, dict[str, Json]] = {}
        routes = [as_dict(r) for r in as_list(as_dict(router.get("spec")).get("routes"))]
        for index, route in enumerate(routes):
            named = str(route.get("name") or "")
            if self.routes and named not in self.routes:
                continue
            rule_type = next((t for t in ROUTE_TYPES if t in route), None)
            targets = self._targets(router_ref, route, rule_type)
            if targets is not None:
                out[index] = targets
            elif self.routes:
                problems.append(self._route_problem(router_ref, named, rule_type))
        for name in self.routes:
            if not any(str(r.get("name") or "") == name for r in routes):
                problems.append(
                    RoutingProblem(
                        router_ref,
                        f"{self.context.path}.virtualService.routes",
                        f'VirtualRouter "{router_ref.name}" has no route named "{name}": fix the name in routes',
                    )
                )
        if not out and not problems:
            problems.append(self._route_problem(router_ref, "", None))
        return out

    def _targets(
        self, router_ref: ObjectRef, route: Mapping[str, Any], rule_type: str | None
    ) -> dict[str, Json] | None:
        """The route's canary and stable `weightedTargets` entries (None unless it has both)."""
        action = as_dict(as_dict(route.get(rule_type)).get("action")) if rule_type else {}
        targets = [as_dict(t) for t in as_list(action.get("weightedTargets"))]
        canary = [t for t in targets if self._is_node(t, self.canary_node, router_ref)]
        stable = [t for t in targets if self._is_node(t, self.stable_node, router_ref)]
        return {"canary": canary[0], "stable": stable[0]} if canary and stable else None

    def _route_problem(self, router_ref: ObjectRef, name: str, rule_type: str | None) -> RoutingProblem:
        which = f'route "{name}" ({rule_type or "no weightedTargets"}) lacks' if name else "no route has"
        return RoutingProblem(
            router_ref,
            "spec.routes[].*.action.weightedTargets",
            f'VirtualRouter "{router_ref.name}": {which} weightedTargets for both VirtualNode "{self.canary_node}" '
            f'and "{self.stable_node}": add both targets to an httpRoute, http2Route, grpcRoute or tcpRoute',
        )

    def _wanted_hashes(self, desired: DesiredTraffic) -> dict[str, str]:
        stable = desired.stable_hash or STABLE_PLACEHOLDER
        canary = desired.canary_hash if desired.canary_hash and desired.canary_hash != stable else CANARY_PLACEHOLDER
        return {"stable": stable, "canary": canary}

    def _node_write(self, role: str, node: Mapping[str, Any] | None, wanted: str, owner: Owner) -> ObjectWrite | None:
        assert node is not None
        notes = as_dict(as_dict(node.get("metadata")).get("annotations"))
        if _node_hash(node) == wanted and notes.get(MANAGED_BY) == owner.name:
            return None
        name = str(as_dict(node.get("metadata")).get("name"))
        patch = {
            "metadata": {"annotations": {MANAGED_BY: owner.name}},
            "spec": {"podSelector": {"matchLabels": {HASH_LABEL: wanted}}},
        }
        return ObjectWrite(self.ref("VirtualNode", name), "merge-patch", patch, f"{role} VirtualNode selects {wanted}")

    def _router_write(
        self, router_ref: ObjectRef, router: Mapping[str, Any], routes: Mapping[int, Mapping[str, Json]], percent: int
    ) -> list[ObjectWrite]:
        new_routes = copy.deepcopy(as_list(as_dict(router.get("spec")).get("routes")))
        changed = False
        for index in routes:
            route = new_routes[index]
            rule_type = next(t for t in ROUTE_TYPES if t in route)
            for target in route[rule_type]["action"]["weightedTargets"]:
                if self._is_node(target, self.canary_node, router_ref):
                    changed |= target.get("weight") != percent
                    target["weight"] = percent
                elif self._is_node(target, self.stable_node, router_ref):
                    changed |= target.get("weight") != 100 - percent
                    target["weight"] = 100 - percent
        if not changed:
            return []
        rv = as_dict(router.get("metadata")).get("resourceVersion")
        body = {"metadata": {"resourceVersion": rv} if rv else {}, "spec": {"routes": new_routes}}
        return [ObjectWrite(router_ref, "merge-patch", body, f"canary weight {percent}%")]


def _node_hash(node: Mapping[str, Any] | None) -> str:
    labels = as_dict(as_dict(as_dict(node or {}).get("spec")).get("podSelector"))
    return str(as_dict(labels.get("matchLabels")).get(HASH_LABEL) or "")


def _canary_share(targets: Mapping[str, Json], max_weight: int) -> int:
    canary = parse_quantity(targets["canary"].get("weight")) or 0.0
    stable = parse_quantity(targets["stable"].get("weight")) or 0.0
    return round(canary * max_weight / (canary + stable)) if canary + stable > 0 else 0


def _stable_share(targets: Mapping[str, Json]) -> bool:
    return bool(parse_quantity(targets["stable"].get("weight")))


__all__ = ["API_VERSION", "AppMeshRouter"]
