"""The App Mesh router against recorded objects: the VirtualRouter it follows from the VirtualService,
the weights it writes, the hashes it writes into the VirtualNodes and the order of the writes (a
VirtualNode changes only while it gets no traffic), and the problems it names."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.sandbox.patches import merge_patch
from rollouts.traffic.appmesh import API_VERSION, MANAGED_BY, AppMeshRouter
from rollouts.traffic.registry import RouterContext, followed_refs
from rollouts.traffic.router import ObjectRef, RouterResult
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"
OBJECTS = list(
    yaml.safe_load_all(
        """
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  provider: {virtualRouter: {virtualRouterRef: {name: web-router}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: web-router, namespace: shop, resourceVersion: "3"}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: primary
    httpRoute:
      match: {prefix: /}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: web-canary}, weight: 0}
        - {virtualNodeRef: {name: web-stable}, weight: 100}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web-canary, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web, rollouts-pod-template-hash: canary-tbd}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web-stable, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web, rollouts-pod-template-hash: stable-tbd}}
"""
    )
)


def ref(kind: str, name: str) -> ObjectRef:
    return ObjectRef(API_VERSION, kind, kind.lower() + "s", NS, name)


SERVICE, ROUTER, CANARY, STABLE = (ref(o["kind"], o["metadata"]["name"]) for o in OBJECTS)


def router(routes: tuple[str, ...] = ()) -> AppMeshRouter:
    config: dict[str, Any] = {
        "virtualService": {"name": "web", "routes": list(routes)},
        "virtualNodeGroup": {
            "canaryVirtualNodeRef": {"name": "web-canary"},
            "stableVirtualNodeRef": {"name": "web-stable"},
        },
    }
    return AppMeshRouter(RouterContext("appMesh", config, "web", NS, "web-stable", "web-canary", {"appMesh": config}))


def world() -> dict[ObjectRef, Any]:
    return {ref(o["kind"], o["metadata"]["name"]): copy.deepcopy(o) for o in OBJECTS}


def apply(result: RouterResult, live: dict[ObjectRef, Any]) -> list[str]:
    """Apply the writes; what they were, in order."""
    done = []
    for write in result.writes:
        assert write.op == "merge-patch"
        live[write.ref] = merge_patch(live[write.ref], write.body)
        done.append(write.ref.name)
    return done


def weights(live: dict[ObjectRef, Any]) -> tuple[int, int]:
    targets = live[ROUTER]["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"]
    return targets[0]["weight"], targets[1]["weight"]


def node_hash(live: dict[ObjectRef, Any], node: ObjectRef) -> str:
    return str(live[node]["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"])


def test_the_virtual_router_is_followed_from_the_virtual_service() -> None:
    r = router()
    assert list(r.objects()) == [SERVICE, CANARY, STABLE]
    live = {k: v for k, v in world().items() if k != ROUTER}
    assert followed_refs([r], live) == [ROUTER]
    assert followed_refs([r], {**live, SERVICE: None}) == []


def test_a_canary_from_first_version_to_promotion_in_a_crash_safe_order() -> None:
    r, live = router(), world()
    # first version: the placeholders become hashes; the stable one carries traffic, so it goes last
    first = r.reconcile(desired(0, stable_hash="aaa", canary_hash="aaa"), live, OWNER)
    assert apply(first, live) == ["web-canary", "web-stable"]
    assert (node_hash(live, CANARY), node_hash(live, STABLE)) == ("canary-hash", "aaa")
    assert live[STABLE]["metadata"]["annotations"] == {MANAGED_BY: "web"}

    # a canary step: the canary VirtualNode selects the new pods before it gets weight
    step = r.reconcile(desired(25), live, OWNER)
    assert step.actual_canary_weight == 0
    assert apply(step, live) == ["web-canary", "web-router"]
    assert step.writes[1].body["metadata"] == {"resourceVersion": "3"}
    assert (node_hash(live, CANARY), weights(live)) == ("bbb", (25, 75))
    assert r.reconcile(desired(25), live, OWNER) == RouterResult(actual_canary_weight=25)

    # a new revision mid-rollout: the weight leaves the old canary pods before the VirtualNode changes
    revision = r.reconcile(desired(25, canary_hash="ccc"), live, OWNER)
    assert revision.actual_canary_weight == 0
    assert apply(revision, live) == ["web-router", "web-canary"]
    assert (weights(live), node_hash(live, CANARY)) == ((0, 100), "ccc")
    apply(r.reconcile(desired(100, canary_hash="ccc"), live, OWNER), live)
    assert weights(live) == (100, 0)

    # the promotion: the stable VirtualNode (no traffic) selects the new version first, then the
    # weights go back to it, then the canary VirtualNode goes to its placeholder
    promoted = desired(0, stable_hash="ccc", canary_hash="ccc")
    result = r.reconcile(promoted, live, OWNER)
    assert result.actual_canary_weight == 100  # the canary VirtualNode still selects the new version
    assert apply(result, live) == ["web-stable", "web-router", "web-canary"]
    assert (node_hash(live, STABLE), weights(live), node_hash(live, CANARY)) == ("ccc", (0, 100), "canary-hash")
    assert r.reconcile(promoted, live, OWNER).writes == ()


def test_max_traffic_weight_becomes_percent_and_routes_filter() -> None:
    live = world()
    live[CANARY]["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"] = "bbb"
    live[STABLE]["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"] = "aaa"
    second = copy.deepcopy(live[ROUTER]["spec"]["routes"][0])
    second["name"] = "other"
    live[ROUTER]["spec"]["routes"].append(second)
    result = router(routes=("primary",)).reconcile(desired(300, max_weight=1000), live, OWNER)
    apply(result, live)
    routes = live[ROUTER]["spec"]["routes"]
    assert [t["weight"] for t in routes[0]["httpRoute"]["action"]["weightedTargets"]] == [30, 70]
    assert [t["weight"] for t in routes[1]["httpRoute"]["action"]["weightedTargets"]] == [0, 100]
    assert router(routes=("primary",)).reconcile(desired(300, max_weight=1000), live, OWNER).actual_canary_weight == 300


def test_problems_name_the_object_the_field_and_the_fix() -> None:
    live = world()
    assert str(router().reconcile(desired(0), {**live, SERVICE: None}, OWNER).problems[0]) == (
        "VirtualService shop/web: spec.strategy.canary.trafficRouting.appMesh.virtualService.name: "
        'VirtualService "web" not found in namespace "shop": create it or fix the name'
    )
    missing_router = router().reconcile(desired(0), {**live, ROUTER: None}, OWNER)
    assert 'VirtualRouter "web-router" (named by VirtualService "web") not found' in str(missing_router.problems[0])
    no_provider = copy.deepcopy(live[SERVICE])
    no_provider["spec"] = {"provider": {"virtualNode": {"virtualNodeRef": {"name": "web-stable"}}}}
    problem = router().reconcile(desired(0), {**live, SERVICE: no_provider}, OWNER).problems[0]
    assert problem.field == "spec.provider.virtualRouter.virtualRouterRef"
    no_node = router().reconcile(desired(0), {**live, CANARY: None}, OWNER)
    assert 'VirtualNode "web-canary" not found' in str(no_node.problems[0])
    assert 'has no route named "nope"' in str(router(routes=("nope",)).reconcile(desired(0), live, OWNER).problems[0])
    one_target = copy.deepcopy(live[ROUTER])
    one_target["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"].pop(0)
    result = router().reconcile(desired(0), {**live, ROUTER: one_target}, OWNER)
    assert 'no route has weightedTargets for both VirtualNode "web-canary" and "web-stable"' in str(result.problems[0])
    assert result.writes == ()


def test_spec_problems() -> None:
    group = {"canaryVirtualNodeRef": {"name": "n"}, "stableVirtualNodeRef": {"name": "n"}}
    config: dict[str, Any] = {"virtualService": {"name": "web"}, "virtualNodeGroup": group}
    r = AppMeshRouter(RouterContext("appMesh", config, "web", NS, "web-stable", "web-canary", {}))
    assert [p.field for p in r.spec_problems()] == ["spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup"]
    assert not r.supports_header_routes() and not r.supports_mirror()
