"""The NGINX router against recorded Ingress objects: the canary Ingress it creates, the patches it
writes, the weight it reads back, and what it refuses."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.sandbox.patches import merge_patch as merge
from rollouts.traffic.nginx import NginxRouter, canary_ingress_name
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import HeaderRoute, ObjectRef
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"
P = "nginx.ingress.kubernetes.io"


def ref(name: str) -> ObjectRef:
    return ObjectRef("networking.k8s.io/v1", "Ingress", "ingresses", NS, name)


STABLE = yaml.safe_load(
    """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  resourceVersion: "12"
  annotations:
    kubernetes.io/ingress.class: nginx
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  ingressClassName: nginx
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-stable, port: {name: http}}}
      - path: /static
        pathType: Prefix
        backend: {service: {name: assets, port: {number: 80}}}
  - host: admin.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: admin, port: {number: 80}}}
"""
)

# what the router creates for STABLE at weight 10 (recorded once, checked field by field by hand)
CANARY_AT_10 = yaml.safe_load(
    """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web-web-canary
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: nginx
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: "10"
  ownerReferences:
  - apiVersion: pyrollouts.io/v1alpha1
    kind: Rollout
    name: web
    uid: uid-1
    controller: true
    blockOwnerDeletion: true
spec:
  ingressClassName: nginx
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-canary, port: {name: http}}}
"""
)


def router(**config: Any) -> NginxRouter:
    routing = {"nginx": {"stableIngress": "web", **config}}
    return NginxRouter(RouterContext("nginx", routing["nginx"], "web", NS, "web-stable", "web-canary", routing))


def live(canary: dict[str, Any] | None = None, stable: dict[str, Any] | None = STABLE) -> dict[ObjectRef, Any]:
    return {ref("web"): copy.deepcopy(stable), ref("web-web-canary"): copy.deepcopy(canary)}


def existing(weight: int) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(CANARY_AT_10)
    obj["metadata"]["annotations"][f"{P}/canary-weight"] = str(weight)
    obj["metadata"]["resourceVersion"] = "40"
    return obj


def test_objects_are_the_stable_and_canary_ingresses() -> None:
    assert list(router().objects()) == [ref("web"), ref("web-web-canary")]
    assert canary_ingress_name("web", "x" * 300) == ("web-" + "x" * 300)[:253]


def test_creates_the_canary_ingress_with_only_the_stable_services_rules() -> None:
    result = router().reconcile(desired(10), live(), OWNER)
    assert result.problems == ()
    assert result.actual_canary_weight == 0
    [write] = result.writes
    assert (write.op, write.ref) == ("create", ref("web-web-canary"))
    assert write.body == CANARY_AT_10


def test_moves_the_weight_with_one_annotation_patch() -> None:
    result = router().reconcile(desired(30), live(existing(10)), OWNER)
    assert result.actual_canary_weight == 10
    [write] = result.writes
    assert write.op == "merge-patch"
    assert write.body == {"metadata": {"annotations": {f"{P}/canary-weight": "30"}}}
    patched = merge(existing(10), write.body)
    assert router().reconcile(desired(30), live(patched), OWNER).writes == ()


def test_nothing_to_write_at_the_desired_weight() -> None:
    result = router().reconcile(desired(10), live(existing(10)), OWNER)
    assert result.writes == () and result.actual_canary_weight == 10


def test_stable_ingress_changes_reach_the_canary_ingress() -> None:
    stable = copy.deepcopy(STABLE)
    stable["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/v2"
    [write] = router().reconcile(desired(10), live(existing(10), stable), OWNER).writes
    assert write.body["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/v2"
    assert write.body["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-canary"


def test_prefix_additional_and_canary_annotations_and_max_weight() -> None:
    r = router(
        annotationPrefix="custom.nginx.org",
        additionalIngressAnnotations={"canary-by-header": "X-Canary"},
        canaryIngressAnnotations={"example.com/team": "shop"},
    )
    [write] = r.reconcile(desired(250, max_weight=1000), live(), OWNER).writes
    assert write.body["metadata"]["annotations"] == {
        "kubernetes.io/ingress.class": "nginx",
        "custom.nginx.org/canary": "true",
        "custom.nginx.org/canary-weight": "250",
        "custom.nginx.org/canary-weight-total": "1000",
        "custom.nginx.org/canary-by-header": "X-Canary",
        "example.com/team": "shop",
    }


def test_canary_weight_total_goes_when_max_weight_is_back_to_100() -> None:
    canary = existing(10)
    canary["metadata"]["annotations"][f"{P}/canary-weight-total"] = "1000"
    [write] = router().reconcile(desired(10), live(canary), OWNER).writes
    assert write.body == {"metadata": {"annotations": {f"{P}/canary-weight-total": None}}}


def test_header_route_becomes_canary_by_header_and_goes_again() -> None:
    route = HeaderRoute("beta", ({"headerName": "X-Beta", "headerValue": {"exact": "yes"}},))
    [write] = router().reconcile(desired(10, header_routes=(route,)), live(existing(10)), OWNER).writes
    assert write.body == {
        "metadata": {"annotations": {f"{P}/canary-by-header": "X-Beta", f"{P}/canary-by-header-value": "yes"}}
    }
    with_route = merge(existing(10), write.body)
    [removal] = router().reconcile(desired(10), live(with_route), OWNER).writes
    assert removal.body == {
        "metadata": {"annotations": {f"{P}/canary-by-header": None, f"{P}/canary-by-header-value": None}}
    }
    prefix = HeaderRoute("beta", ({"headerName": "X-Beta", "headerValue": {"prefix": "a.b"}},))
    [write] = router().reconcile(desired(10, header_routes=(prefix,)), live(existing(10)), OWNER).writes
    assert write.body["metadata"]["annotations"][f"{P}/canary-by-header-pattern"] == r"^a\.b.*"


def test_two_header_routes_are_refused() -> None:
    routes = tuple(HeaderRoute(n, ({"headerName": n, "headerValue": {"exact": "1"}},)) for n in ("a", "b"))
    result = router().reconcile(desired(10, header_routes=routes), live(existing(10)), OWNER)
    assert result.writes == ()
    assert "one header at a time" in str(result.problems[0])


def test_stable_ingress_without_a_rule_for_the_stable_service() -> None:
    stable = copy.deepcopy(STABLE)
    stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "elsewhere"
    result = router().reconcile(desired(10), live(None, stable), OWNER)
    assert result.writes == ()
    [problem] = result.problems
    assert problem.ref == ref("web") and problem.field == "spec.rules"
    assert 'Ingress "web" has no rules using Service "web-stable"' in problem.message


def test_missing_stable_ingress_and_a_canary_ingress_owned_by_someone_else() -> None:
    result = router().reconcile(desired(10), live(None, None), OWNER)
    assert result.writes == ()
    where = "Ingress shop/web: spec.strategy.canary.trafficRouting.nginx.stableIngress"
    assert str(result.problems[0]).startswith(where)
    theirs = existing(10)
    theirs["metadata"]["ownerReferences"] = [{"uid": "other", "controller": True}]
    result = router().reconcile(desired(30), live(theirs), OWNER)
    assert result.writes == ()
    assert "is not owned by Rollout" in str(result.problems[0])


def test_several_stable_ingresses() -> None:
    other = copy.deepcopy(STABLE)
    other["metadata"]["name"] = "web-internal"
    routing = {"nginx": {"stableIngresses": ["web", "web-internal"]}}
    r = NginxRouter(RouterContext("nginx", routing["nginx"], "web", NS, "web-stable", "web-canary", routing))
    objects = {
        ref("web"): STABLE,
        ref("web-internal"): other,
        ref("web-web-canary"): existing(10),
        ref("web-web-internal-canary"): None,
    }
    result = r.reconcile(desired(10), objects, OWNER)
    assert result.actual_canary_weight is None  # the two disagree (10 and none yet)
    [write] = result.writes
    assert (write.op, write.ref.name) == ("create", "web-web-internal-canary")


def test_spec_problems() -> None:
    routing: dict[str, Any] = {"nginx": {}}
    r = NginxRouter(RouterContext("nginx", routing["nginx"], "web", NS, "", "web-canary", routing))
    fields = [p.field for p in r.spec_problems()]
    assert fields == ["spec.strategy.canary.stableService", "spec.strategy.canary.trafficRouting.nginx.stableIngress"]
    assert r.supports_header_routes() and not r.supports_mirror()
