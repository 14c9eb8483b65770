"""Pure: the weighted Services of two routing kinds whose split is a plain list of weights, read as their
own controllers read them (no request matching): an Ingress handled by the AWS Load Balancer Controller
(a backend with port name `use-annotation` forwards by the `<prefix>/actions.<service>` annotation's
target groups) and a Traefik `TraefikService` (`spec.weighted.services`).

Each reader returns `(namespace, Service, weight)` triples, or None when the object does not route
that way; `rollouts.sandbox.routing` turns them into entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

USE_ANNOTATION = "use-annotation"

Weighted = list[tuple[str, str, float]]


def _d(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _weight(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    try:
        return max(float(str(value)), 0.0)
    except ValueError:
        return 0.0


def alb_action_service(ingress: Mapping[str, Any]) -> str | None:
    """The Service name of the first Ingress backend whose port is `use-annotation` (None: no such backend)."""
    spec = _d(ingress.get("spec"))
    backends = [_d(spec.get("defaultBackend"))]
    for rule in map(_d, _l(spec.get("rules"))):
        backends += [_d(p.get("backend")) for p in map(_d, _l(_d(rule.get("http")).get("paths")))]
    for backend in backends:
        service = _d(backend.get("service"))
        if service.get("name") and _d(service.get("port")).get("name") == USE_ANNOTATION:
            return str(service["name"])
    return None


def alb_weighted(ingress: Mapping[str, Any]) -> Weighted | None:
    """The target groups of the action an ALB Ingress forwards to (any annotation prefix: the AWS Load
    Balancer Controller's is a flag). An action without target groups forwards nowhere: []."""
    action_service = alb_action_service(ingress)
    if action_service is None:
        return None
    meta = _d(ingress.get("metadata"))
    namespace = str(meta.get("namespace") or "")
    suffix = f"/actions.{action_service}"
    text = next((str(v) for k, v in _d(meta.get("annotations")).items() if str(k).endswith(suffix)), "")
    try:
        action = _d(json.loads(text)) if text else {}
    except ValueError:
        action = {}
    groups = _l(_d(action.get("ForwardConfig")).get("TargetGroups"))
    return [(namespace, str(_d(g).get("ServiceName") or ""), _weight(_d(g).get("Weight", 0))) for g in groups]


def traefik_weighted(service: Mapping[str, Any]) -> Weighted | None:
    """The Kubernetes Services of a weighted TraefikService (nested TraefikServices are not followed)."""
    weighted = _d(_d(service.get("spec")).get("weighted"))
    if not weighted:
        return None
    namespace = str(_d(service.get("metadata")).get("namespace") or "")
    out: Weighted = []
    for item in map(_d, _l(weighted.get("services"))):
        if item.get("kind", "Service") != "Service":
            continue
        service_namespace = str(item.get("namespace") or namespace)
        out.append((service_namespace, str(item.get("name") or ""), _weight(item.get("weight", 1))))
    return out


__all__ = ["alb_action_service", "alb_weighted", "traefik_weighted"]
