"""Where the sandbox's simulated requests go behind each kind of routing object (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import yaml

from rollouts.sandbox.routing import (
    Entry,
    SimRequest,
    gateway_route_backends,
    pod_shares,
    quantity,
    routing_entries,
    service_of_host,
    virtual_service_backends,
)

NS = "shop"


def pod(name: str, version: str, app: str = "web") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": app, "rollouts-pod-template-hash": version},
        }
    }


# Services and their ready pods: web-stable -> 3 pods of version aaa, web-canary -> 1 pod of bbb,
# web (the root) -> all four.
PODS = {
    "web-stable": [pod("s1", "aaa"), pod("s2", "aaa"), pod("s3", "aaa")],
    "web-canary": [pod("c1", "bbb")],
}
PODS["web"] = PODS["web-stable"] + PODS["web-canary"]


def ready(namespace: str, service: str, labels: Mapping[str, str]) -> Sequence[Mapping[str, Any]]:
    pods = PODS.get(service, []) if namespace == NS else []
    return [p for p in pods if all(p["metadata"]["labels"].get(k) == v for k, v in labels.items())]


def shares(backends: Sequence[Any]) -> dict[str, float]:
    weights, lost = pod_shares(backends, ready)
    out: dict[str, float] = {"lost": lost} if lost else {}
    for p, w in weights:
        version = p["metadata"]["labels"]["rollouts-pod-template-hash"]
        out[version] = out.get(version, 0.0) + w
    return {k: round(v, 6) for k, v in out.items()}


def only(entries: list[Entry]) -> Entry:
    (entry,) = entries
    return entry


def load(text: str) -> dict[str, Any]:
    obj = yaml.safe_load(text)
    assert isinstance(obj, dict)
    return obj


VS = load(
    """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: web
  namespace: shop
  annotations:
    sandbox.pyrollouts.io/request-header: "X-Canary: yes"
    sandbox.pyrollouts.io/request-header-fraction: "0.25"
spec:
  hosts: [web.example.com]
  http:
  - name: by-header
    match: [{headers: {x-canary: {exact: "yes"}}}]
    route: [{destination: {host: web-canary}, weight: 100}]
  - name: primary
    route:
    - {destination: {host: web-stable.shop.svc.cluster.local}, weight: 80}
    - {destination: {host: web-canary}, weight: 20}
"""
)


def test_virtual_service_weights_and_header_route() -> None:
    entry = only(routing_entries(virtual_services=[VS]))
    assert entry.service_label == "web-stable"  # the host is not a Service: the first destination
    assert shares(entry.plain) == {"aaa": 0.8, "bbb": 0.2}
    assert shares(entry.with_header) == {"bbb": 1.0}
    assert entry.header_fraction == 0.25
    assert entry.covered == {(NS, "web-stable"), (NS, "web-canary")}


def test_virtual_service_subsets_follow_the_destination_rule_hash() -> None:
    vs = load(
        """
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route:
    - {destination: {host: web, subset: stable}, weight: 70}
    - {destination: {host: web, subset: canary}, weight: 30}
"""
    )
    dr = load(
        """
metadata: {name: web, namespace: shop}
spec:
  host: web
  subsets:
  - {name: stable, labels: {rollouts-pod-template-hash: aaa}}
  - {name: canary, labels: {rollouts-pod-template-hash: bbb}}
"""
    )
    entry = only(routing_entries(virtual_services=[vs], destination_rules=[dr], service_exists=lambda ns, n: True))
    assert entry.service_label == "web"
    assert shares(entry.plain) == {"aaa": 0.7, "bbb": 0.3}
    # before the controller moves the canary subset, both subsets select the stable pods
    dr["spec"]["subsets"][1]["labels"]["rollouts-pod-template-hash"] = "aaa"
    assert shares(only(routing_entries(virtual_services=[vs], destination_rules=[dr])).plain) == {"aaa": 1.0}
    # an unknown subset: Istio answers 503, no pod sees those requests
    assert shares(only(routing_entries(virtual_services=[vs])).plain) == {"lost": 1.0}


def test_virtual_service_match_semantics() -> None:
    vs = load(
        """
metadata: {name: web, namespace: shop}
spec:
  http:
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: nowhere}}]
  - match: [{headers: {x-user: {regex: "qa-.*"}}, withoutHeaders: {x-skip: {}}}]
    route: [{destination: {host: web-canary}}]
  - route: [{destination: {host: web-stable}}]
"""
    )
    subsets: dict[tuple[str, str, str], dict[str, str]] = {}
    assert [b.service for b in virtual_service_backends(vs, SimRequest(), subsets)] == ["web-stable"]
    assert [b.service for b in virtual_service_backends(vs, SimRequest(path="/admin/x"), subsets)] == ["nowhere"]
    qa = SimRequest(headers={"x-user": "qa-1"})
    assert [b.service for b in virtual_service_backends(vs, qa, subsets)] == ["web-canary"]
    skipped = SimRequest(headers={"x-user": "qa-1", "x-skip": "1"})
    assert [b.service for b in virtual_service_backends(vs, skipped, subsets)] == ["web-stable"]
    # a single destination without a weight takes everything
    assert virtual_service_backends(vs, SimRequest(), subsets)[0].weight == 100.0


def test_http_route_weights_and_header_rule_precedence() -> None:
    route = load(
        """
kind: HTTPRoute
metadata:
  name: web
  namespace: shop
  annotations: {sandbox.pyrollouts.io/request-header: "X-Canary: yes", sandbox.pyrollouts.io/request-path: /api/items}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs:
    - {name: web-stable, port: 80, weight: 80}
    - {name: web-canary, port: 80, weight: 20}
  - name: by-header
    matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: X-Canary, value: "yes"}]}]
    backendRefs: [{name: web-canary, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /apix}}]
    backendRefs: [{name: nowhere}]
"""
    )
    entry = only(routing_entries(gateway_routes=[route]))
    assert entry.service_label == "web-stable"
    assert shares(entry.plain) == {"aaa": 0.8, "bbb": 0.2}
    assert shares(entry.with_header) == {"bbb": 1.0}
    assert entry.header_fraction == 0.1
    assert gateway_route_backends(route, SimRequest(path="/other")) == []
    assert [b.service for b in gateway_route_backends(route, SimRequest(path="/apix"))] == ["nowhere"]


def test_grpc_route_unset_weights_count_one() -> None:
    route = load(
        """
kind: GRPCRoute
metadata: {name: web, namespace: shop}
spec:
  rules:
  - backendRefs: [{name: web-stable, port: 9090}, {name: web-canary, port: 9090}]
"""
    )
    assert shares(only(routing_entries(gateway_routes=[route])).plain) == {"aaa": 0.5, "bbb": 0.5}


def test_traffic_split_backends_and_root_service() -> None:
    split = load(
        """
metadata: {name: web, namespace: shop}
spec:
  service: web
  backends:
  - {service: web-stable, weight: 800m}
  - {service: web-canary, weight: 200m}
"""
    )
    entry = only(routing_entries(traffic_splits=[split]))
    assert entry.service_label == "web"
    assert shares(entry.plain) == {"aaa": 0.8, "bbb": 0.2}
    assert entry.covered == {(NS, "web"), (NS, "web-stable"), (NS, "web-canary")}
    assert quantity("1") == 1.0 and quantity("bad") == 0.0 and quantity(5) == 5.0


def ingress(name: str, service: str, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [{"path": "/", "backend": {"service": {"name": service, "port": {"number": 80}}}}]
                    },
                }
            ]
        },
    }


@pytest.mark.parametrize(
    ("annotations", "plain", "header"),
    [
        ({"canary-weight": "20"}, {"aaa": 0.8, "bbb": 0.2}, {"aaa": 0.8, "bbb": 0.2}),
        ({"canary-weight": "50", "canary-weight-total": "200"}, {"aaa": 0.75, "bbb": 0.25}, {"aaa": 0.75, "bbb": 0.25}),
        ({"canary-weight": "0", "canary-by-header": "X-Canary"}, {"aaa": 1.0}, {"bbb": 1.0}),
        (
            {"canary-weight": "100", "canary-by-header": "X-Canary", "canary-by-header-value": "no"},
            {"bbb": 1.0},
            {"bbb": 1.0},
        ),
        (
            {"canary-weight": "0", "canary-by-header": "X-Canary", "canary-by-header-pattern": "al.*"},
            {"aaa": 1.0},
            {"bbb": 1.0},
        ),
    ],
)
def test_nginx_canary_ingress(annotations: dict[str, str], plain: dict[str, float], header: dict[str, float]) -> None:
    prefix = "nginx.ingress.kubernetes.io"
    stable = ingress("web", "web-stable", **{"sandbox.pyrollouts.io/request-header": "X-Canary: always"})
    canary = ingress(
        "web-web-canary",
        "web-canary",
        **{f"{prefix}/canary": "true"},
        **{f"{prefix}/{k}": v for k, v in annotations.items()},
    )
    entry = only(routing_entries(ingresses=[stable, canary]))
    assert entry.service_label == "web-stable"
    assert shares(entry.plain) == plain
    assert shares(entry.with_header) == header


def test_stable_ingress_alone_and_a_canary_for_another_host() -> None:
    other = ingress("other-canary", "web-canary", **{"nginx.ingress.kubernetes.io/canary": "true"})
    other["spec"]["rules"][0]["host"] = "other.example.com"
    entry = only(routing_entries(ingresses=[ingress("web", "web-stable"), other]))
    assert shares(entry.plain) == {"aaa": 1.0}


def test_objects_being_deleted_and_hosts() -> None:
    doomed = {**VS, "metadata": {**VS["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert routing_entries(virtual_services=[doomed]) == []
    assert service_of_host("web", "a") == ("a", "web")
    assert service_of_host("web.b", "a") == ("b", "web")
    assert service_of_host("web.b.svc.cluster.local", "a") == ("b", "web")
    assert service_of_host("web.example.com", "a") == ("a", "web.example.com")


def test_service_label_annotation_and_no_weight() -> None:
    route = load(
        """
kind: HTTPRoute
metadata: {name: web, namespace: shop, annotations: {sandbox.pyrollouts.io/service: web}}
spec:
  rules: [{backendRefs: [{name: web-stable, weight: 0}, {name: web-canary, weight: 0}]}]
"""
    )
    entry = only(routing_entries(gateway_routes=[route]))
    assert entry.service_label == "web"
    assert pod_shares(entry.plain, ready) == ([], 0.0)


def test_virtual_service_without_http_routes_uses_its_tcp_then_tls_route() -> None:
    vs = load(
        """
metadata: {name: web, namespace: shop}
spec:
  tls:
  - match: [{port: 443, sniHosts: [web.example.com]}]
    route: [{destination: {host: nowhere}}]
  tcp:
  - match: [{port: 9000}]
    route:
    - {destination: {host: web-stable}, weight: 90}
    - {destination: {host: web-canary}, weight: 10}
"""
    )
    assert shares(only(routing_entries(virtual_services=[vs])).plain) == {"aaa": 0.9, "bbb": 0.1}
    del vs["spec"]["tcp"]
    assert shares(only(routing_entries(virtual_services=[vs])).plain) == {"lost": 1.0}
