"""Pure: where the sandbox's simulated clients' requests go when routing objects stand in front of
Services — canary Ingresses (NGINX annotations), Istio VirtualServices (with DestinationRule subsets),
SMI TrafficSplits, Gateway API HTTPRoutes / GRPCRoutes, AWS Load Balancer Controller Ingresses (the
weighted action annotation) and Traefik weighted TraefikServices (`weighted_backends`).

Each routing object is one *entry*: clients send the generator's request rate to it, and it resolves
a request to weighted `Backend`s (a Service, optionally narrowed to a DestinationRule subset's pod
labels). Services that an entry routes to get no direct traffic of their own, so a canary's share of
the requests is the share the router gives it. Requests are labelled with the entry's `service`: the
TrafficSplit's root Service, the stable Ingress's backend (an ALB Ingress's action Service), the
VirtualService's host when it is a Service (else its first destination), the route's first backendRef,
a TraefikService's first Service; or the routing object's
`sandbox.pyrollouts.io/service` annotation.

Simulated requests are `GET /` without headers; annotations on the routing object (for NGINX the
stable Ingress) change that:

    sandbox.pyrollouts.io/request-header           "X-Canary: yes" — a fraction of requests carry it
    sandbox.pyrollouts.io/request-header-fraction  that fraction, 0..1 (default 0.1)
    sandbox.pyrollouts.io/request-path             the path of every request (default "/")

Matching covers what these requests have (path, method, headers); match fields about where a request
comes from (ports, gateways, source labels) count as matching, query parameters never match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rollouts.sandbox.traffic_split import PREFIX
from rollouts.sandbox.weighted_backends import Weighted, alb_action_service, alb_route, traefik_weighted

SERVICE_ANNOTATION = PREFIX + "service"
HEADER_ANNOTATION = PREFIX + "request-header"
HEADER_FRACTION_ANNOTATION = PREFIX + "request-header-fraction"
PATH_ANNOTATION = PREFIX + "request-path"
DEFAULT_HEADER_FRACTION = 0.1

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class SimRequest:
    """One simulated request: header names are lower-case."""

    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """A share of an entry's requests for the ready pods of one Service (that also carry `labels`)."""

    namespace: str
    service: str
    weight: float
    labels: Mapping[str, str] = field(default_factory=dict)
    missing_subset: bool = False  # the route names a subset no DestinationRule defines: no pod answers


@dataclass(frozen=True)
class Entry:
    """One routing object clients send requests to."""

    key: str  # "VirtualService ns/name": what the generator carries fractions under
    namespace: str
    service_label: str
    plain: tuple[Backend, ...]  # where a request without the header goes
    with_header: tuple[Backend, ...]  # where a request with the header goes
    header_fraction: float  # 0 when no header is configured
    covered: frozenset[tuple[str, str]]  # (namespace, Service) pairs that get no direct traffic


def _d(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _meta(obj: Obj) -> dict[str, Any]:
    return _d(obj.get("metadata"))


def _annotations(obj: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in _d(_meta(obj).get("annotations")).items()}


def requests_for(obj: Obj) -> tuple[SimRequest, SimRequest | None, float]:
    """The plain request, the request carrying the configured header (None if none), and its fraction."""
    notes = _annotations(obj)
    path = notes.get(PATH_ANNOTATION) or "/"
    plain = SimRequest(path=path)
    header = notes.get(HEADER_ANNOTATION, "")
    name, sep, value = header.partition(":")
    if not sep or not name.strip():
        return plain, None, 0.0
    try:
        fraction = float(notes.get(HEADER_FRACTION_ANNOTATION, DEFAULT_HEADER_FRACTION))
    except ValueError:
        fraction = DEFAULT_HEADER_FRACTION
    fraction = min(max(fraction, 0.0), 1.0) if fraction == fraction else DEFAULT_HEADER_FRACTION
    return plain, SimRequest(path=path, headers={name.strip().lower(): value.strip()}), fraction


# ---------------------------------------------------------------------- string matching


def _istio_string(match: Any, value: str | None) -> bool:
    """Istio StringMatch: exact / prefix / regex (whole value); `{}` only asks that the value exists."""
    if value is None:
        return False
    match = _d(match)
    if "exact" in match:
        return value == str(match["exact"])
    if "prefix" in match:
        return value.startswith(str(match["prefix"]))
    if "regex" in match:
        return _fullmatch(str(match["regex"]), value)
    return True


def _fullmatch(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def _path_prefix(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: whole path elements (`/api` matches `/api` and `/api/x`, not `/apix`)."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


# ---------------------------------------------------------------------- Istio


def service_of_host(host: str, namespace: str) -> tuple[str, str]:
    """(namespace, Service) a mesh host names: `svc`, `svc.ns`, `svc.ns.svc[.cluster.local]`."""
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, host
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1], parts[0]
    return namespace, host  # an external host: no Service of that name, so no pods


def istio_match(match: Any, request: SimRequest) -> bool:
    match = _d(match)
    if match.get("queryParams"):
        return False
    if "uri" in match and not _istio_string(match["uri"], request.path):
        return False
    if "method" in match and not _istio_string(match["method"], request.method):
        return False
    for name, want in _d(match.get("headers")).items():
        if not _istio_string(want, request.headers.get(str(name).lower())):
            return False
    for name, want in _d(match.get("withoutHeaders")).items():
        if _istio_string(want, request.headers.get(str(name).lower())):
            return False
    return True


def virtual_service_route(vs: Obj, request: SimRequest) -> list[Any]:
    """The destinations of the first http route whose matches take `request` (else the first tcp, then
    tls route): what Istio picks, routes being tried in order."""
    spec = _d(vs.get("spec"))
    for route in map(_d, _l(spec.get("http"))):
        matches = _l(route.get("match"))
        if not matches or any(istio_match(m, request) for m in matches):
            return _l(route.get("route"))
    for kind in ("tcp", "tls"):
        routes = _l(spec.get(kind))
        if routes:
            return _l(_d(routes[0]).get("route"))
    return []


def destination_rule_subsets(rules: Iterable[Obj]) -> dict[tuple[str, str, str], dict[str, str]]:
    """(namespace, Service, subset name) -> the subset's pod labels, over DestinationRules."""
    subsets: dict[tuple[str, str, str], dict[str, str]] = {}
    for rule in rules:
        namespace = str(_meta(rule).get("namespace") or "")
        spec = _d(rule.get("spec"))
        ns, service = service_of_host(str(spec.get("host") or ""), namespace)
        for subset in map(_d, _l(spec.get("subsets"))):
            labels = {str(k): str(v) for k, v in _d(subset.get("labels")).items()}
            subsets[(ns, service, str(subset.get("name") or ""))] = labels
    return subsets


def virtual_service_backends(
    vs: Obj, request: SimRequest, subsets: Mapping[tuple[str, str, str], Mapping[str, str]]
) -> list[Backend]:
    namespace = str(_meta(vs).get("namespace") or "")
    destinations = virtual_service_route(vs, request)
    backends = []
    for item in map(_d, destinations):
        dest = _d(item.get("destination"))
        ns, service = service_of_host(str(dest.get("host") or ""), namespace)
        weight = item.get("weight")
        share = float(weight) if isinstance(weight, int | float) else (100.0 if len(destinations) == 1 else 0.0)
        labels: Mapping[str, str] = {}
        missing = False
        if dest.get("subset"):
            found = subsets.get((ns, service, str(dest["subset"])))
            missing = found is None  # Istio answers 503 for an unknown subset
            labels = found or {}
        backends.append(Backend(ns, service, share, dict(labels), missing))
    return backends


def _virtual_service_label(vs: Obj, namespace: str, service_exists: Callable[[str, str], bool]) -> str:
    for host in map(str, _l(_d(vs.get("spec")).get("hosts"))):
        ns, service = service_of_host(host, namespace)
        if ns == namespace and service_exists(ns, service):
            return service
    for route in virtual_service_route(vs, SimRequest())[:1]:
        return service_of_host(str(_d(_d(route).get("destination")).get("host") or ""), namespace)[1]
    return str(_meta(vs).get("name") or "")


# ---------------------------------------------------------------------- Gateway API


def _gateway_match_rank(match: Any, request: SimRequest, grpc: bool) -> tuple[int, int, int, int, int] | None:
    """None if `match` does not take `request`; else its precedence (higher wins): exact path, prefix
    length, method, header count, as the Gateway API orders matches."""
    match = _d(match)
    if match.get("queryParams"):
        return None
    exact, prefix_length, method = 0, 0, 0
    if not grpc:
        path = _d(match.get("path")) or {"type": "PathPrefix", "value": "/"}
        kind, value = str(path.get("type") or "PathPrefix"), str(path.get("value") or "/")
        if kind == "Exact":
            if request.path != value:
                return None
            exact = 1
        elif kind == "RegularExpression":
            if not _fullmatch(value, request.path):
                return None
        elif not _path_prefix(value, request.path):
            return None
        else:
            prefix_length = len(value)
        if match.get("method"):
            if str(match["method"]) != request.method:
                return None
            method = 1
    headers = [_d(h) for h in _l(match.get("headers"))]
    for header in headers:
        got = request.headers.get(str(header.get("name") or "").lower())
        want = str(header.get("value") or "")
        if got is None:
            return None
        if str(header.get("type") or "Exact") == "RegularExpression":
            if not _fullmatch(want, got):
                return None
        elif got != want:
            return None
    return (exact, prefix_length, method, len(headers), 0)


def gateway_route_rule(route: Obj, request: SimRequest) -> dict[str, Any] | None:
    """The rule of an HTTPRoute / GRPCRoute that takes `request`: the most specific match wins, then
    the earlier rule."""
    grpc = route.get("kind") == "GRPCRoute"
    best: tuple[tuple[int, int, int, int, int], int] | None = None
    rules = [_d(r) for r in _l(_d(route.get("spec")).get("rules"))]
    for index, rule in enumerate(rules):
        matches = _l(rule.get("matches")) or [{}]
        for match in matches:
            rank = _gateway_match_rank(match, request, grpc)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, index)
    return rules[best[1]] if best is not None else None


def gateway_route_backends(route: Obj, request: SimRequest) -> list[Backend]:
    namespace = str(_meta(route).get("namespace") or "")
    rule = gateway_route_rule(route, request)
    if rule is None:
        return []
    backends = []
    for ref in map(_d, _l(rule.get("backendRefs"))):
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
            continue
        weight = ref.get("weight", 1)
        share = float(weight) if isinstance(weight, int | float) else 0.0
        backends.append(Backend(str(ref.get("namespace") or namespace), str(ref.get("name") or ""), share))
    return backends


# ---------------------------------------------------------------------- SMI


def quantity(value: Any) -> float:
    """A TrafficSplit weight: an integer, or (v1alpha1) a quantity such as "500m". Unreadable: 0."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    scale = 1.0
    if text.endswith("m"):
        text, scale = text[:-1], 0.001
    try:
        return max(float(text) * scale, 0.0)
    except ValueError:
        return 0.0


def traffic_split_backends(split: Obj, request: SimRequest | None = None) -> list[Backend]:
    """The TrafficSplit's backends (the same for every request: SMI matches are not simulated)."""
    del request
    namespace = str(_meta(split).get("namespace") or "")
    return [
        Backend(namespace, str(b.get("service") or ""), quantity(b.get("weight", 0)))
        for b in map(_d, _l(_d(split.get("spec")).get("backends")))
    ]


# ---------------------------------------------------------------------- NGINX Ingress


def canary_prefix(ingress: Obj) -> str | None:
    """The annotation prefix of a canary Ingress (`<prefix>/canary: "true"`), None for a stable one."""
    for key, value in _annotations(ingress).items():
        if key.endswith("/canary") and value.strip().lower() == "true":
            return key[: -len("/canary")]
    return None


def ingress_service(ingress: Obj) -> str:
    spec = _d(ingress.get("spec"))
    for rule in map(_d, _l(spec.get("rules"))):
        for path in map(_d, _l(_d(rule.get("http")).get("paths"))):
            name = _d(_d(path.get("backend")).get("service")).get("name")
            if name:
                return str(name)
    return str(_d(_d(spec.get("defaultBackend")).get("service")).get("name") or "")


def ingress_hosts(ingress: Obj) -> frozenset[str]:
    return frozenset(str(_d(r).get("host") or "") for r in _l(_d(ingress.get("spec")).get("rules"))) or frozenset({""})


def nginx_canary_share(canary: Obj, request: SimRequest) -> float:
    """The share (0..1) of `request`s NGINX sends to a canary Ingress: by header first, then weight."""
    prefix = canary_prefix(canary) or ""
    notes = _annotations(canary)
    header = notes.get(f"{prefix}/canary-by-header")
    if header:
        got = request.headers.get(header.lower())
        value = notes.get(f"{prefix}/canary-by-header-value")
        pattern = notes.get(f"{prefix}/canary-by-header-pattern")
        if got is not None:
            if value:
                if got == value:
                    return 1.0
            elif pattern:
                if _fullmatch(pattern, got):
                    return 1.0
            elif got == "always":
                return 1.0
            elif got == "never":
                return 0.0
    total = quantity(notes.get(f"{prefix}/canary-weight-total", 100)) or 100.0
    weight = quantity(notes.get(f"{prefix}/canary-weight", 0))
    return min(max(weight / total, 0.0), 1.0)


def ingress_backends(stable: Obj, canary: Obj | None, request: SimRequest) -> list[Backend]:
    namespace = str(_meta(stable).get("namespace") or "")
    backends = [Backend(namespace, ingress_service(stable), 1.0)]
    if canary is not None:
        share = nginx_canary_share(canary, request)
        backends = [Backend(namespace, ingress_service(stable), 1.0 - share)]
        backends.append(Backend(namespace, ingress_service(canary), share))
    return backends


def weighted_backends(weighted: Weighted, request: SimRequest | None = None) -> list[Backend]:
    """TraefikServices: the same weights for every request."""
    del request
    return [Backend(namespace, service, weight) for namespace, service, weight in weighted]


def alb_backends(ingress: Obj, request: SimRequest) -> list[Backend]:
    """An ALB Ingress: the action of the first path whose pattern and conditions take the request."""
    weighted = alb_route(ingress, request.path, request.headers, request.method)
    return [Backend(namespace, service, weight) for namespace, service, weight in weighted]


# ---------------------------------------------------------------------- entries


def build_entry(
    kind: str,
    obj: Obj,
    label: str | None,
    resolve: Callable[[SimRequest], list[Backend]],
    extra_covered: Iterable[tuple[str, str]] = (),
) -> Entry:
    meta = _meta(obj)
    namespace = str(meta.get("namespace") or "")
    plain_request, header_request, fraction = requests_for(obj)
    plain = tuple(resolve(plain_request))
    if label is None:  # the first backend a plain request can reach (list the stable Service first)
        label = plain[0].service if plain else str(meta.get("name") or "")
    label = _annotations(obj).get(SERVICE_ANNOTATION) or label
    with_header = tuple(resolve(header_request)) if header_request is not None else plain
    covered = {(b.namespace, b.service) for b in (*plain, *with_header)} | set(extra_covered)
    return Entry(
        key=f"{kind} {namespace}/{meta.get('name')}",
        namespace=namespace,
        service_label=label,
        plain=plain,
        with_header=with_header,
        header_fraction=fraction if header_request is not None else 0.0,
        covered=frozenset(covered),
    )


def _ingress_entries(ingresses: Sequence[Obj]) -> list[Entry]:
    """One entry per stable Ingress: an ALB Ingress by its actions, else with its NGINX canary Ingress."""
    entries = []
    canaries = [i for i in ingresses if canary_prefix(i) is not None]
    for stable in (i for i in ingresses if canary_prefix(i) is None):
        ns = str(_meta(stable).get("namespace") or "")
        action = alb_action_service(stable)
        if action is not None:  # an AWS Load Balancer Controller Ingress: its actions' target groups
            entries.append(build_entry("Ingress", stable, action, partial(alb_backends, stable), [(ns, action)]))
            continue
        hosts = ingress_hosts(stable)
        canary = next(
            (c for c in canaries if str(_meta(c).get("namespace") or "") == ns and ingress_hosts(c) & hosts), None
        )
        resolve = partial(ingress_backends, stable, canary)
        entries.append(build_entry("Ingress", stable, ingress_service(stable), resolve))
    return entries


def routing_entries(
    virtual_services: Sequence[Obj] = (),
    destination_rules: Sequence[Obj] = (),
    gateway_routes: Sequence[Obj] = (),
    traffic_splits: Sequence[Obj] = (),
    ingresses: Sequence[Obj] = (),
    traefik_services: Sequence[Obj] = (),
    service_exists: Callable[[str, str], bool] = lambda ns, name: False,
) -> list[Entry]:
    """Every routing object as an entry (objects being deleted are skipped)."""

    def live(objs: Sequence[Obj]) -> list[Obj]:
        return [o for o in objs if not _meta(o).get("deletionTimestamp")]

    entries: list[Entry] = []
    subsets = destination_rule_subsets(live(destination_rules))
    for vs in live(virtual_services):
        ns = str(_meta(vs).get("namespace") or "")
        label = _virtual_service_label(vs, ns, service_exists)
        entries.append(
            build_entry(
                "VirtualService", vs, label, partial(virtual_service_backends, vs, subsets=subsets), [(ns, label)]
            )
        )
    for route in live(gateway_routes):
        kind = str(route.get("kind") or "HTTPRoute")
        entries.append(build_entry(kind, route, None, partial(gateway_route_backends, route)))
    for split in live(traffic_splits):
        ns = str(_meta(split).get("namespace") or "")
        root = str(_d(split.get("spec")).get("service") or "")
        entries.append(build_entry("TrafficSplit", split, root, partial(traffic_split_backends, split), [(ns, root)]))
    entries += _ingress_entries(live(ingresses))
    for service in live(traefik_services):
        traefik = traefik_weighted(service)
        if traefik is not None:
            entries.append(build_entry("TraefikService", service, None, partial(weighted_backends, traefik)))
    return entries


def pod_shares(
    backends: Sequence[Backend], ready: Callable[[str, str, Mapping[str, str]], Sequence[Mapping[str, Any]]]
) -> tuple[list[tuple[Mapping[str, Any], float]], float]:
    """Spread the backends' weights over their ready pods (`ready(namespace, service, labels)`), equally
    within a backend. Returns ([(pod, share)], lost share): the shares of backends without a ready pod
    are requests no pod answers (a real proxy returns 503). Shares sum to 1 with the lost one; all
    zero when no backend has weight."""
    total = sum(max(b.weight, 0.0) for b in backends)
    if total <= 0:
        return [], 0.0
    shares: dict[str, tuple[Mapping[str, Any], float]] = {}
    lost = 0.0
    for backend in backends:
        share = max(backend.weight, 0.0) / total
        if share == 0:
            continue
        pods = [] if backend.missing_subset else ready(backend.namespace, backend.service, backend.labels)
        if not pods:
            lost += share
            continue
        for pod in pods:
            key = f"{_meta(pod).get('namespace')}/{_meta(pod).get('name')}"
            previous = shares.get(key, (pod, 0.0))[1]
            shares[key] = (pod, previous + share / len(pods))
    return [shares[k] for k in sorted(shares)], lost


__all__ = [
    "Backend",
    "Entry",
    "SimRequest",
    "gateway_route_backends",
    "ingress_backends",
    "pod_shares",
    "routing_entries",
    "traffic_split_backends",
    "virtual_service_backends",
]
