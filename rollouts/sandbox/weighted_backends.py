"""Pure: the weighted Services behind two routing kinds whose split is a list of weights, read as their
own controllers read them: an Ingress handled by the AWS Load Balancer Controller (a backend with port
name `use-annotation` forwards by the `<prefix>/actions.<service>` annotation's target groups, when the
`<prefix>/conditions.<service>` annotation's header and method conditions take the request; paths are
tried in order) and a Traefik `TraefikService` (`spec.weighted.services`, the same for every request).

Each reader returns `(namespace, Service, weight)` triples; `rollouts.sandbox.routing` turns them into
entries.
"""

from __future__ import annotations

import fnmatch
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


def _alb_paths(ingress: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Ingress's paths in rule order, then its default backend (as a path matching everything)."""
    spec = _d(ingress.get("spec"))
    paths = []
    for rule in map(_d, _l(spec.get("rules"))):
        paths += [_d(p) for p in _l(_d(rule.get("http")).get("paths"))]
    if spec.get("defaultBackend"):
        paths.append({"path": "/*", "pathType": "ImplementationSpecific", "backend": spec["defaultBackend"]})
    return paths


def _service_port(path: Mapping[str, Any]) -> tuple[str, str]:
    service = _d(_d(path.get("backend")).get("service"))
    return str(service.get("name") or ""), str(_d(service.get("port")).get("name") or "")


def _annotation(ingress: Mapping[str, Any], suffix: str) -> Any:
    """The JSON of the annotation ending in `suffix` (any prefix), None when absent or unreadable."""
    notes = _d(_d(ingress.get("metadata")).get("annotations"))
    text = next((str(v) for k, v in notes.items() if str(k).endswith(suffix)), "")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def alb_action_service(ingress: Mapping[str, Any]) -> str | None:
    """The action an ALB Ingress splits by: the first `use-annotation` backend without conditions (None:
    the Ingress does not route by annotations)."""
    actions = [name for name, port in map(_service_port, _alb_paths(ingress)) if port == USE_ANNOTATION]
    if not actions:
        return None
    return next((a for a in actions if _annotation(ingress, f"/conditions.{a}") is None), actions[0])


def _path_matches(path: Mapping[str, Any], request_path: str) -> bool:
    value = str(path.get("path") or "/")
    kind = str(path.get("pathType") or "ImplementationSpecific")
    if kind == "Exact":
        return request_path == value
    if kind == "Prefix":
        value = value.rstrip("/")
        return not value or request_path == value or request_path.startswith(value + "/")
    return fnmatch.fnmatchcase(request_path, value) or fnmatch.fnmatchcase(request_path + "/", value)


def _conditions_hold(conditions: Any, headers: Mapping[str, str], method: str) -> bool:
    """ALB rule conditions: http-header (values with * and ? wildcards, case-insensitive) and
    http-request-method; conditions about where a request comes from count as holding."""
    for condition in map(_d, _l(conditions)):
        if condition.get("Field") == "http-header":
            config = _d(condition.get("HttpHeaderConfig"))
            got = headers.get(str(config.get("HttpHeaderName") or "").lower())
            wanted = [str(v).lower() for v in _l(config.get("Values"))]
            if got is None or not any(fnmatch.fnmatchcase(got.lower(), w) for w in wanted):
                return False
        elif condition.get("Field") == "http-request-method":
            methods = [str(m) for m in _l(_d(condition.get("HttpRequestMethodConfig")).get("Values"))]
            if method not in methods:
                return False
    return True


def alb_route(ingress: Mapping[str, Any], path: str, headers: Mapping[str, str], method: str = "GET") -> Weighted:
    """Where an ALB sends one request: the first path (in order) whose pattern and conditions take it, to
    its action's target groups (a `use-annotation` backend) or its Service. Nothing takes it: []."""
    namespace = str(_d(ingress.get("metadata")).get("namespace") or "")
    for item in _alb_paths(ingress):
        service, port = _service_port(item)
        if not _path_matches(item, path):
            continue
        if port != USE_ANNOTATION:
            return [(namespace, service, 1.0)]
        if not _conditions_hold(_annotation(ingress, f"/conditions.{service}"), headers, method):
            continue
        groups = _l(_d(_d(_annotation(ingress, f"/actions.{service}")).get("ForwardConfig")).get("TargetGroups"))
        return [(namespace, str(_d(g).get("ServiceName") or ""), _weight(_d(g).get("Weight", 0))) for g in groups]
    return []


def alb_weighted(ingress: Mapping[str, Any]) -> Weighted | None:
    """Where an ALB Ingress sends `GET /` without headers (None: it does not route by annotations)."""
    return None if alb_action_service(ingress) is None else alb_route(ingress, "/", {})


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


__all__ = ["alb_action_service", "alb_route", "alb_weighted", "traefik_weighted"]
