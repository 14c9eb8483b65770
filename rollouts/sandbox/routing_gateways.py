"""Pure: where simulated requests go through the gateway and mesh kinds beyond the four of `routing`:
Apache APISIX `ApisixRoute`s, Ambassador / Emissary `Mapping`s and AWS App Mesh VirtualServices.

APISIX: every ApisixRoute with an `http` rule that has no `match.exprs` is an entry. A request to it
is served by the rule of highest `priority` (on a tie, the one with exprs) among the rules of the
namespace's ApisixRoutes that match the same hosts and paths and whose exprs all hold for the request;
the rule's backends share it by `weight` (unset: APISIX's 100). Exprs on headers and the path are
simulated (`Equal`, `NotEqual`, `RegexMatch`, `RegexNotMatch`, `In`, `NotIn`); other subjects
(query, cookie) never match, as the simulated requests carry none.

Ambassador: the Mappings of a namespace with the same host (`hostname`, else `host`, else any) and
`prefix` are one entry (named after the first unweighted one, the stable Mapping). A Mapping with a
`weight` gets that percent of the requests, the unweighted ones share the rest equally (weights over
100 are cut at 100). `service` is `[scheme://]name[.namespace][:port]`. Not simulated: matches on
headers, methods, regex prefixes and hosts (every request takes the Mapping).

App Mesh: every `appmesh.k8s.aws` VirtualService provided by a VirtualRouter is an entry (labelled with
the first part of its `awsName`, else its name). A request takes the VirtualRouter's route of lowest
`priority` (unset: last; then in order) whose match holds (http/http2 `prefix` and `headers` with
exact/prefix/suffix/regex, `invert`; grpc and tcp routes take everything), and its `weightedTargets`
share it by weight. A target VirtualNode's share goes to the ready pods of the Service its
`serviceDiscovery.dns.hostname` names that also match its `podSelector.matchLabels` (so its
pod-template hash decides which version answers); a VirtualNode without DNS discovery (Cloud Map)
answers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from rollouts.sandbox.routing import Backend, Entry, Obj, SimRequest, build_entry, service_of_host

APISIX_DEFAULT_WEIGHT = 100.0


def _d(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _namespace(obj: Obj) -> str:
    return str(_d(obj.get("metadata")).get("namespace") or "")


def _live(objs: Sequence[Obj]) -> list[Obj]:
    return [o for o in objs if not _d(o.get("metadata")).get("deletionTimestamp")]


# ---------------------------------------------------------------------- APISIX


def _apisix_subject(expr: Mapping[str, Any], request: SimRequest) -> str | None:
    subject = _d(expr.get("subject"))
    scope = str(subject.get("scope") or "").lower()
    if scope == "header":
        return request.headers.get(str(subject.get("name") or "").lower())
    if scope == "path":
        return request.path
    return None


def apisix_expr_holds(expr: Any, request: SimRequest) -> bool:
    """One `match.exprs` item against a request (an unknown operator never holds)."""
    expr = _d(expr)
    value = _apisix_subject(expr, request)
    op = str(expr.get("op") or "")
    want = str(expr.get("value") or "")
    choices = [str(v) for v in _l(expr.get("set"))]
    if op in ("NotEqual", "RegexNotMatch", "NotIn"):
        positive = {"NotEqual": "Equal", "RegexNotMatch": "RegexMatch", "NotIn": "In"}[op]
        return value is not None and not apisix_expr_holds({**expr, "op": positive}, request)
    if value is None:
        return False
    if op == "Equal":
        return value == want
    if op == "In":
        return value in choices
    if op == "RegexMatch":
        try:
            return re.search(want, value) is not None
        except re.error:
            return False
    return False


def _apisix_place(namespace: str, rule: Mapping[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Which requests a rule is about before its exprs: namespace, hosts and paths."""
    match = _d(rule.get("match"))
    return namespace, tuple(sorted(map(str, _l(match.get("hosts"))))), tuple(sorted(map(str, _l(match.get("paths")))))


def apisix_backends(rules: Sequence[Mapping[str, Any]], namespace: str, request: SimRequest) -> list[Backend]:
    """The backends of the rule that takes `request` among `rules` (all about the same place)."""
    taking = [r for r in rules if all(apisix_expr_holds(e, request) for e in _l(_d(r.get("match")).get("exprs")))]
    if not taking:
        return []

    def rank(rule: Mapping[str, Any]) -> tuple[int, bool]:
        priority = rule.get("priority")
        return (priority if isinstance(priority, int) else 0, bool(_l(_d(rule.get("match")).get("exprs"))))

    best = max(taking, key=rank)
    backends = []
    for backend in map(_d, _l(best.get("backends"))):
        weight = backend.get("weight", APISIX_DEFAULT_WEIGHT)
        share = float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) else 0.0
        backends.append(Backend(namespace, str(backend.get("serviceName") or ""), share))
    return backends


def apisix_entries(routes: Sequence[Obj]) -> list[Entry]:
    """One entry per ApisixRoute with a rule without exprs (its first such rule)."""
    routes = _live(routes)
    rules = [(_namespace(route), _d(rule)) for route in routes for rule in _l(_d(route.get("spec")).get("http"))]
    entries = []
    for route in routes:
        namespace = _namespace(route)
        base = next(
            (_d(r) for r in _l(_d(route.get("spec")).get("http")) if not _l(_d(_d(r).get("match")).get("exprs"))),
            None,
        )
        if base is None:
            continue
        place = _apisix_place(namespace, base)
        same = [rule for ns, rule in rules if _apisix_place(ns, rule) == place]
        entries.append(build_entry("ApisixRoute", route, None, partial(apisix_backends, same, namespace)))
    return entries


# ---------------------------------------------------------------------- Ambassador


def mapping_service(mapping: Obj) -> tuple[str, str]:
    """(namespace, Service) of a Mapping's `service`: `[scheme://]name[.namespace][:port]`."""
    text = str(_d(mapping.get("spec")).get("service") or "")
    text = text.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] if text else ""
    name, _, namespace = text.partition(".")
    return (namespace.split(".")[0] or _namespace(mapping)), name


def mapping_backends(mappings: Sequence[Obj], request: SimRequest | None = None) -> list[Backend]:
    """The Mappings of one host and prefix as weighted backends (Ambassador's canary weights)."""
    del request
    weighted: list[tuple[Obj, float]] = []
    plain: list[Obj] = []
    for mapping in mappings:
        weight = _d(mapping.get("spec")).get("weight")
        if isinstance(weight, int | float) and not isinstance(weight, bool):
            weighted.append((mapping, min(max(float(weight), 0.0), 100.0)))
        else:
            plain.append(mapping)
    rest = max(100.0 - sum(w for _, w in weighted), 0.0)
    backends = [Backend(*mapping_service(m), rest / len(plain)) for m in plain]
    return backends + [Backend(*mapping_service(m), w) for m, w in weighted]


def mapping_entries(mappings: Sequence[Obj]) -> list[Entry]:
    groups: dict[tuple[str, str, str], list[Obj]] = {}
    for mapping in _live(mappings):
        spec = _d(mapping.get("spec"))
        host = str(spec.get("hostname") or spec.get("host") or "*")
        groups.setdefault((_namespace(mapping), host, str(spec.get("prefix") or "/")), []).append(mapping)
    entries = []
    for group in groups.values():
        first = next((m for m in group if "weight" not in _d(m.get("spec"))), group[0])
        label = mapping_service(first)[1]
        entries.append(build_entry("Mapping", first, label, partial(mapping_backends, group)))
    return entries


# ---------------------------------------------------------------------- App Mesh

APPMESH_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")


def _appmesh_header_holds(header: Mapping[str, Any], request: SimRequest) -> bool:
    value = request.headers.get(str(header.get("name") or "").lower())
    match = _d(header.get("match"))
    if not match:
        holds = value is not None
    elif value is None:
        holds = False
    elif "exact" in match:
        holds = value == str(match["exact"])
    elif "prefix" in match:
        holds = value.startswith(str(match["prefix"]))
    elif "suffix" in match:
        holds = value.endswith(str(match["suffix"]))
    elif "regex" in match:
        try:
            holds = re.fullmatch(str(match["regex"]), value) is not None
        except re.error:
            holds = False
    else:
        holds = False  # range: the simulated requests carry no numbers
    return holds != bool(header.get("invert"))


def appmesh_route_holds(route: Mapping[str, Any], request: SimRequest) -> bool:
    kind = next((k for k in APPMESH_ROUTE_TYPES if k in route), None)
    if kind in ("grpcRoute", "tcpRoute"):
        return True
    if kind is None:
        return False
    match = _d(_d(route.get(kind)).get("match"))
    if not request.path.startswith(str(match.get("prefix") or "/")):
        return False
    return all(_appmesh_header_holds(_d(h), request) for h in _l(match.get("headers")))


def virtual_router_backends(
    router: Obj, nodes: Mapping[tuple[str, str], Obj], request: SimRequest
) -> list[Backend]:
    namespace = _namespace(router)
    routes = [_d(r) for r in _l(_d(router.get("spec")).get("routes"))]
    ordered = sorted(
        routes, key=lambda r: r["priority"] if isinstance(r.get("priority"), int) else 1001
    )  # a stable sort: routes of one priority keep their order
    route = next((r for r in ordered if appmesh_route_holds(r, request)), None)
    if route is None:
        return []
    kind = next(k for k in APPMESH_ROUTE_TYPES if k in route)
    backends = []
    for target in map(_d, _l(_d(_d(route.get(kind)).get("action")).get("weightedTargets"))):
        ref = _d(target.get("virtualNodeRef"))
        weight = target.get("weight")
        share = float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) else 0.0
        node = nodes.get((str(ref.get("namespace") or namespace), str(ref.get("name") or "")))
        dns = _d(_d(_d(node or {}).get("spec")).get("serviceDiscovery")).get("dns")
        host = str(_d(dns).get("hostname") or "")
        if node is None or not host:
            backends.append(Backend(namespace, str(ref.get("name") or ""), share, missing_subset=True))
            continue
        labels = {str(k): str(v) for k, v in _d(_d(_d(node.get("spec")).get("podSelector")).get("matchLabels")).items()}
        ns, service = service_of_host(host, _namespace(node))
        backends.append(Backend(ns, service, share, labels))
    return backends


def appmesh_entries(
    virtual_services: Sequence[Obj], virtual_routers: Sequence[Obj], virtual_nodes: Sequence[Obj]
) -> list[Entry]:
    routers = {(_namespace(r), str(_d(r.get("metadata")).get("name"))): r for r in _live(virtual_routers)}
    nodes = {(_namespace(n), str(_d(n.get("metadata")).get("name"))): n for n in _live(virtual_nodes)}
    entries = []
    for service in _live(virtual_services):
        namespace = _namespace(service)
        ref = _d(_d(_d(_d(service.get("spec")).get("provider")).get("virtualRouter")).get("virtualRouterRef"))
        router = routers.get((str(ref.get("namespace") or namespace), str(ref.get("name") or "")))
        if router is None:
            continue
        spec = _d(service.get("spec"))
        label = str(spec.get("awsName") or "").split(".")[0] or str(_d(service.get("metadata")).get("name"))
        resolve = partial(virtual_router_backends, router, nodes)
        entries.append(build_entry("AppMesh VirtualService", service, label, resolve, [(namespace, label)]))
    return entries


def gateway_entries(
    apisix_routes: Sequence[Obj] = (),
    mappings: Sequence[Obj] = (),
    mesh_services: Sequence[Obj] = (),
    mesh_routers: Sequence[Obj] = (),
    mesh_nodes: Sequence[Obj] = (),
) -> list[Entry]:
    """Every routing object of these kinds as an entry (objects being deleted are skipped)."""
    return (
        apisix_entries(apisix_routes)
        + mapping_entries(mappings)
        + appmesh_entries(mesh_services, mesh_routers, mesh_nodes)
    )


__all__ = [
    "apisix_backends",
    "apisix_entries",
    "apisix_expr_holds",
    "appmesh_entries",
    "appmesh_route_holds",
    "gateway_entries",
    "mapping_backends",
    "mapping_entries",
    "mapping_service",
    "virtual_router_backends",
]
