"""Where the sandbox's simulated requests go behind an ALB Ingress (its weighted action annotation) and a
weighted TraefikService (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.sandbox.routing import Backend, Entry, pod_shares, routing_entries

NS = "shop"
VERSIONS = {"web-stable": "aaa", "web-canary": "bbb"}  # one ready pod each, of these versions


def ready(namespace: str, service: str, labels: Mapping[str, str]) -> Sequence[Mapping[str, Any]]:
    version = VERSIONS.get(service)
    return [{"metadata": {"name": service, "namespace": namespace, "version": version}}] if version else []


def shares(backends: Sequence[Backend]) -> dict[str, float]:
    """The share of the requests each version gets."""
    weights, _ = pod_shares(backends, ready)
    return {p["metadata"]["version"]: round(w, 6) for p, w in weights}


def only(entries: list[Entry]) -> Entry:
    (entry,) = entries
    return entry


def alb_ingress(port: dict[str, Any], **annotations: str) -> dict[str, Any]:
    backend = {"service": {"name": "web-root", "port": port}}
    return {
        "metadata": {"name": "web", "namespace": NS, "annotations": annotations},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": backend}]}}]},
    }


def action(canary: int, stable: int) -> str:
    groups = [
        {"ServiceName": "web-canary", "ServicePort": "80", "Weight": canary},
        {"ServiceName": "web-stable", "ServicePort": "80", "Weight": stable},
    ]
    return json.dumps({"Type": "forward", "ForwardConfig": {"TargetGroups": groups}})


def test_alb_ingress_follows_the_action_weights_under_any_prefix() -> None:
    for prefix in ("alb.ingress.kubernetes.io", "custom.example.com"):
        ingress = alb_ingress({"name": "use-annotation"}, **{f"{prefix}/actions.web-root": action(30, 70)})
        entry = only(routing_entries(ingresses=[ingress]))
        assert entry.key == "Ingress shop/web" and entry.service_label == "web-root"
        assert shares(entry.plain) == {"aaa": 0.7, "bbb": 0.3}
        # clients reach the root Service only through the load balancer: no direct traffic of its own
        assert entry.covered == {(NS, "web-root"), (NS, "web-canary"), (NS, "web-stable")}


def test_alb_ingress_without_an_action_forwards_nowhere_and_a_plain_backend_is_plain() -> None:
    silent = only(routing_entries(ingresses=[alb_ingress({"name": "use-annotation"})]))
    assert silent.plain == ()
    direct = only(routing_entries(ingresses=[alb_ingress({"number": 80})]))
    assert [b.service for b in direct.plain] == ["web-root"]


def test_weighted_traefik_service() -> None:
    service = {
        "kind": "TraefikService",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "weighted": {
                "services": [
                    {"name": "web-stable", "port": 80, "weight": 75},
                    {"name": "web-canary", "port": 80, "weight": 25},
                    {"name": "nested", "kind": "TraefikService", "weight": 50},
                ]
            }
        },
    }
    entry = only(routing_entries(traefik_services=[service]))
    assert entry.key == "TraefikService shop/web" and entry.service_label == "web-stable"
    assert shares(entry.plain) == {"aaa": 0.75, "bbb": 0.25}
    mirroring = {**service, "spec": {"mirroring": {"name": "web-stable"}}}
    assert routing_entries(traefik_services=[mirroring]) == []


def test_alb_header_condition_path_goes_first_for_requests_that_carry_the_header() -> None:
    prefix = "alb.ingress.kubernetes.io"
    ingress = alb_ingress(
        {"name": "use-annotation"},
        **{
            f"{prefix}/actions.web-root": action(10, 90),
            f"{prefix}/actions.beta": action(100, 0),
            f"{prefix}/conditions.beta": json.dumps(
                [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Beta", "Values": ["y*"]}}]
            ),
            "sandbox.pyrollouts.io/request-header": "X-Beta: yes",
            "sandbox.pyrollouts.io/request-header-fraction": "0.5",
        },
    )
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    paths.insert(0, {"path": "/*", "backend": {"service": {"name": "beta", "port": {"name": "use-annotation"}}}})
    entry = only(routing_entries(ingresses=[ingress]))
    assert entry.service_label == "web-root"  # the split's action, not the header route's
    assert shares(entry.plain) == {"aaa": 0.9, "bbb": 0.1}
    assert shares(entry.with_header) == {"bbb": 1.0} and entry.header_fraction == 0.5
