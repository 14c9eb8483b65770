"""The ALB router against recorded Ingress objects: the action annotation it writes (the AWS Load Balancer
Controller's JSON), rootService / servicePort / annotationPrefix / stickinessConfig, several Ingresses,
maxTrafficWeight, and the problems it reports (naming the object, the field and the fix)."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from rollouts.sandbox.weighted_backends import alb_weighted
from rollouts.traffic.alb import MANAGED_ACTIONS, AlbRouter
from rollouts.traffic.registry import RouterContext, build_routers
from rollouts.traffic.router import HeaderRoute, ObjectRef, WeightDestination
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import apply_merge_patches
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"
ACTION = "alb.ingress.kubernetes.io/actions.web-stable"

INGRESS = yaml.safe_load(
    """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  resourceVersion: "7"
  annotations:
    kubernetes.io/ingress.class: alb
spec:
  rules:
  - http:
      paths:
      - path: /*
        pathType: ImplementationSpecific
        backend:
          service:
            name: web-stable
            port: {name: use-annotation}
"""
)


def router(**config: Any) -> AlbRouter:
    config = {"ingress": "web", "servicePort": 80, **config}
    routing = {"alb": config}
    return AlbRouter(RouterContext("alb", config, "web", NS, "web-stable", "web-canary", routing))


def ref(name: str = "web") -> ObjectRef:
    return ObjectRef("networking.k8s.io/v1", "Ingress", "ingresses", NS, name)


def ingress(name: str = "web", service: str = "web-stable", **annotations: str) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(INGRESS)
    obj["metadata"]["name"] = name
    obj["metadata"]["annotations"].update(annotations)
    obj["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = service
    return obj


def action(obj: dict[str, Any], key: str = ACTION) -> dict[str, Any]:
    text: str = obj["metadata"]["annotations"][key]
    value: dict[str, Any] = json.loads(text)
    return value


def test_writes_the_weighted_forward_action_canary_first() -> None:
    r = router()
    assert list(r.objects()) == [ref()]
    result = r.reconcile(desired(20), {ref(): ingress()}, OWNER)
    assert result.actual_canary_weight == 0 and not result.problems
    after = apply_merge_patches(result, {ref(): ingress()})[ref()]
    assert action(after) == {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"ServiceName": "web-canary", "ServicePort": "80", "Weight": 20},
                {"ServiceName": "web-stable", "ServicePort": "80", "Weight": 80},
            ]
        },
    }
    assert after["metadata"]["annotations"][MANAGED_ACTIONS] == f"web:{ACTION}"
    assert after["spec"] == INGRESS["spec"]  # only annotations change
    again = r.reconcile(desired(20), {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20


def test_root_service_prefix_stickiness_and_max_weight() -> None:
    r = router(
        rootService="web-root",
        annotationPrefix="custom.alb.example.com",
        servicePort=443,
        stickinessConfig={"enabled": True, "durationSeconds": 3600},
    )
    live = ingress(service="web-root")
    result = r.reconcile(desired(30, max_weight=1000), {ref(): live}, OWNER)
    key = "custom.alb.example.com/actions.web-root"
    after = apply_merge_patches(result, {ref(): live})[ref()]
    forward = action(after, key)["ForwardConfig"]
    assert forward["TargetGroups"] == [
        {"ServiceName": "web-canary", "ServicePort": "443", "Weight": 30},
        {"ServiceName": "web-stable", "ServicePort": "443", "Weight": 970},
    ]
    assert forward["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 3600}
    assert r.reconcile(desired(30, max_weight=1000), {ref(): after}, OWNER).actual_canary_weight == 30
    # the sandbox reads the same annotation as the AWS Load Balancer Controller would
    assert alb_weighted(after) == [("shop", "web-canary", 30.0), ("shop", "web-stable", 970.0)]


def test_several_ingresses_agree_before_the_weight_counts() -> None:
    r = router(ingress=None, ingresses=["a", "b"])
    live = {ref("a"): ingress("a"), ref("b"): ingress("b")}
    first = apply_merge_patches(r.reconcile(desired(40), live, OWNER), live)
    assert [action(first[k])["ForwardConfig"]["TargetGroups"][0]["Weight"] for k in (ref("a"), ref("b"))] == [40, 40]
    half = {ref("a"): first[ref("a")], ref("b"): live[ref("b")]}  # a crash between the two writes
    result = r.reconcile(desired(40), half, OWNER)
    assert result.actual_canary_weight is None  # they disagree: the planner waits
    assert [w.ref for w in result.writes] == [ref("b")]


def test_other_rollouts_keep_their_managed_actions() -> None:
    live = ingress(**{MANAGED_ACTIONS: "api:alb.ingress.kubernetes.io/actions.api-stable"})
    after = apply_merge_patches(router().reconcile(desired(0), {ref(): live}, OWNER), {ref(): live})[ref()]
    assert after["metadata"]["annotations"][MANAGED_ACTIONS] == (
        f"api:alb.ingress.kubernetes.io/actions.api-stable,web:{ACTION}"
    )


def test_problems_name_the_object_field_and_fix() -> None:
    missing = router().reconcile(desired(10), {ref(): None}, OWNER)
    assert missing.writes == ()
    assert 'Ingress "web" not found in namespace "shop"' in str(missing.problems[0])
    wrong = router().reconcile(desired(10), {ref(): ingress(service="other")}, OWNER)
    assert 'no rule with backend Service "web-stable"' in str(wrong.problems[0])
    assert "rootService" in str(wrong.problems[0]) and wrong.writes == ()
    direct = ingress()
    direct["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 80}
    port = router().reconcile(desired(10), {ref(): direct}, OWNER)
    assert "port.name" in port.problems[0].field and "use-annotation" in port.problems[0].message
    spec = [str(p) for p in router(ingress=None, servicePort=None).spec_problems()]
    assert any("alb.ingress" in p and "set ingress or ingresses" in p for p in spec)
    assert any("alb.servicePort" in p for p in spec)
    sticky = router(stickinessConfig={"enabled": True, "durationSeconds": 0}).spec_problems()
    assert [p.field for p in sticky] == ["spec.strategy.canary.trafficRouting.alb.stickinessConfig.durationSeconds"]


def test_registered_under_alb_with_header_routes_and_no_mirror() -> None:
    routers, problems = build_routers({"alb": {"ingress": "web", "servicePort": 80}}, "web", NS, "s", "c")
    assert not problems and [r.name for r in routers] == ["alb"]
    assert routers[0].supports_header_routes() and not routers[0].supports_mirror()


BETA = HeaderRoute("beta", ({"headerName": "X-Beta", "headerValue": {"exact": "yes"}},))
GAMMA = HeaderRoute("gamma", ({"headerName": "X-Gamma", "headerValue": {"prefix": "g"}},))


def paths(obj: dict[str, Any]) -> list[str]:
    return [p["backend"]["service"]["name"] for p in obj["spec"]["rules"][0]["http"]["paths"]]


def test_header_routes_add_an_action_a_condition_and_a_path_first() -> None:
    live = {ref(): ingress()}
    managed = ("gamma", "beta")
    want = desired(20, header_routes=(GAMMA, BETA), managed_routes=managed)
    after = apply_merge_patches(router().reconcile(want, live, OWNER), live)[ref()]
    assert paths(after) == ["gamma", "beta", "web-stable"]  # in managedRoutes order, ahead of the split
    new_path = after["spec"]["rules"][0]["http"]["paths"][1]
    assert new_path["backend"]["service"]["port"] == {"name": "use-annotation"} and new_path["path"] == "/*"
    prefix = "alb.ingress.kubernetes.io"
    assert action(after, f"{prefix}/actions.beta")["ForwardConfig"]["TargetGroups"] == [
        {"ServiceName": "web-canary", "ServicePort": "80", "Weight": 100}
    ]
    assert json.loads(after["metadata"]["annotations"][f"{prefix}/conditions.beta"]) == [
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Beta", "Values": ["yes"]}}
    ]
    conditions = json.loads(after["metadata"]["annotations"][f"{prefix}/conditions.gamma"])
    assert conditions[0]["HttpHeaderConfig"]["Values"] == ["g*"]
    managed_notes = after["metadata"]["annotations"][MANAGED_ACTIONS].split(",")
    assert f"web:{prefix}/conditions.beta" in managed_notes and f"web:{ACTION}" in managed_notes
    assert router().reconcile(want, {ref(): after}, OWNER).writes == ()

    # the routes end: their annotations and paths go, the split stays
    ended = desired(20, managed_routes=managed)
    final = apply_merge_patches(router().reconcile(ended, {ref(): after}, OWNER), {ref(): after})[ref()]
    assert paths(final) == ["web-stable"]
    kept = [*INGRESS["metadata"]["annotations"], ACTION, MANAGED_ACTIONS]
    assert sorted(final["metadata"]["annotations"]) == sorted(kept)
    assert final["metadata"]["annotations"][MANAGED_ACTIONS] == f"web:{ACTION}"


def test_a_regex_header_route_is_a_problem() -> None:
    route = HeaderRoute("beta", ({"headerName": "X-Beta", "headerValue": {"regex": "b.*"}},))
    result = router().reconcile(desired(0, header_routes=(route,), managed_routes=("beta",)), {ref(): ingress()}, OWNER)
    assert result.writes == () and "not regular expressions" in result.problems[0].message


def test_experiment_services_are_more_target_groups_out_of_the_stables() -> None:
    r = router()
    running = desired(20, additional=(WeightDestination("exp-baseline", "ccc", 10),))
    after = apply_merge_patches(r.reconcile(running, {ref(): ingress()}, OWNER), {ref(): ingress()})[ref()]
    assert action(after)["ForwardConfig"]["TargetGroups"] == [
        {"ServiceName": "web-canary", "ServicePort": "80", "Weight": 20},
        {"ServiceName": "web-stable", "ServicePort": "80", "Weight": 70},
        {"ServiceName": "exp-baseline", "ServicePort": "80", "Weight": 10},
    ]
    again = r.reconcile(running, {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20
    ended = apply_merge_patches(r.reconcile(desired(20), {ref(): after}, OWNER), {ref(): after})[ref()]
    assert [g["ServiceName"] for g in action(ended)["ForwardConfig"]["TargetGroups"]] == ["web-canary", "web-stable"]
