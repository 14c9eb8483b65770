"""Istio: weights of VirtualService routes (host-level), DestinationRule subsets (subset-level), and
the managed header and mirror routes of `setHeaderRoute` / `setMirrorRoute`.

Host-level: the named `http`, `tls` and `tcp` routes of each VirtualService have one destination
whose host is the stable Service and one whose host is the canary Service; their weights become
stable/canary. Subset-level (`destinationRule` set): the destinations are told apart by subset name
instead, and the DestinationRule's subsets select pods by `rollouts-pod-template-hash`; the canary
subset moves to the new hash only once the new ReplicaSet is available, so weight given to the canary
subset never lands on pods that cannot answer.

At an experiment step each weighted template's Service gets a destination of its own (by host, in
either mode) in every split route, its weight taken from the stable's; it goes when the experiment ends.

Subsets named in `destinationRule.additionalSubsetNames` keep the weight someone else gave them; it comes
out of the stable's share (Argo's).

Istio needs a route's weights to add up to 100, so a `maxTrafficWeight` other than 100 is scaled to
percent. Every write is a JSON merge patch carrying the `resourceVersion` it was computed from: a
concurrent change gives a 409 and the next reconcile starts over.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rollouts.traffic.objects import as_dict, as_list
from rollouts.traffic.registry import RouterContext, missing_services
from rollouts.traffic.router import (
    DesiredTraffic,
    HeaderRoute,
    MirrorRoute,
    ObjectRef,
    ObjectWrite,
    Owner,
    RoutedKind,
    RouterResult,
    RoutingProblem,
)

API_VERSION = "networking.istio.io/v1beta1"
HASH_LABEL = "rollouts-pod-template-hash"
FIELD = "spec.strategy.canary.trafficRouting.istio"
ROUTE_KINDS = ("http", "tls", "tcp")  # the route lists of a VirtualService spec, in the order they are weighed

Json = dict[str, Any]


@dataclass(frozen=True)
class VirtualServiceEntry:
    """One `virtualService` / `virtualServices[]` entry of the Rollout."""

    ref: ObjectRef
    field: str  # where the entry sits in the Rollout, for messages
    routes: tuple[str, ...]
    tls_routes: tuple[Mapping[str, Any], ...]
    tcp_routes: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class SubsetNames:
    stable: str
    canary: str
    additional: tuple[str, ...] = ()  # destinationRule.additionalSubsetNames: weights someone else sets


def split_name(name: str, namespace: str) -> tuple[str, str]:
    """`name` or `name.namespace` (as Argo accepts for a VirtualService in another namespace)."""
    if "." in name:
        short, _, other = name.partition(".")
        return short, other
    return name, namespace


class IstioRouter:
    """The `trafficRouting.istio` entry of one Rollout."""

    name = "istio"
    KINDS: ClassVar[tuple[RoutedKind, ...]] = (
        RoutedKind(API_VERSION, "VirtualService", "virtualservices"),
        RoutedKind(API_VERSION, "DestinationRule", "destinationrules"),
    )

    def __init__(self, context: RouterContext) -> None:
        self.context = context
        self.entry = as_dict(context.config)
        namespace = self.namespace = context.namespace
        self.virtual_services = self._virtual_services()
        dr = as_dict(self.entry.get("destinationRule"))
        self.destination_rule: ObjectRef | None = None
        self.subsets: SubsetNames | None = None
        if dr.get("name"):
            dr_name, dr_ns = split_name(str(dr["name"]), namespace)
            self.destination_rule = ObjectRef(API_VERSION, "DestinationRule", "destinationrules", dr_ns, dr_name)
            self.subsets = SubsetNames(
                str(dr.get("stableSubsetName") or ""),
                str(dr.get("canarySubsetName") or ""),
                tuple(str(n) for n in as_list(dr.get("additionalSubsetNames"))),
            )

    def _virtual_services(self) -> tuple[VirtualServiceEntry, ...]:
        single = self.entry.get("virtualService")
        many = self.entry.get("virtualServices")
        found: list[tuple[str, Json]] = []
        if isinstance(single, Mapping):
            found.append((f"{FIELD}.virtualService", dict(single)))
        for i, item in enumerate(as_list(many)):
            found.append((f"{FIELD}.virtualServices[{i}]", as_dict(item)))
        entries = []
        for field, item in found:
            name, ns = split_name(str(item.get("name") or ""), self.namespace)
            entries.append(
                VirtualServiceEntry(
                    ref=ObjectRef(API_VERSION, "VirtualService", "virtualservices", ns, name),
                    field=field,
                    routes=tuple(str(r) for r in as_list(item.get("routes"))),
                    tls_routes=tuple(as_dict(r) for r in as_list(item.get("tlsRoutes"))),
                    tcp_routes=tuple(as_dict(r) for r in as_list(item.get("tcpRoutes"))),
                )
            )
        return tuple(entries)

    # ------------------------------------------------------------------ protocol

    def objects(self) -> Sequence[ObjectRef]:
        refs = [vs.ref for vs in self.virtual_services]
        if self.destination_rule is not None:
            refs.append(self.destination_rule)
        return refs

    def routes_additional_destinations(self) -> bool:
        return True

    def supports_mirror(self) -> bool:
        return True

    def supports_header_routes(self) -> bool:
        return True

    def spec_problems(self) -> Sequence[RoutingProblem]:
        # host-level routes tell stable from canary by Service; subset-level ones by subset
        problems = list(missing_services(self.context)) if self.subsets is None else []
        has_single = isinstance(self.entry.get("virtualService"), Mapping)
        has_many = bool(as_list(self.entry.get("virtualServices")))
        if has_single and has_many:
            problems.append(RoutingProblem(None, FIELD, "set either virtualService or virtualServices, not both"))
        if not has_single and not has_many:
            problems.append(
                RoutingProblem(
                    None, FIELD, "name the VirtualService to route with: virtualService.name or virtualServices[]"
                )
            )
        for vs in self.virtual_services:
            if not vs.ref.name:
                problems.append(RoutingProblem(None, f"{vs.field}.name", "the VirtualService name is empty"))
            if len(self.virtual_services) > 1 and not (vs.routes or vs.tls_routes or vs.tcp_routes):
                problems.append(
                    RoutingProblem(
                        None, f"{vs.field}.routes", "with several VirtualServices, name the routes of each one"
                    )
                )
        if self.subsets is not None:
            dr_field = f"{FIELD}.destinationRule"
            if not self.subsets.stable or not self.subsets.canary:
                problems.append(RoutingProblem(None, dr_field, "set both canarySubsetName and stableSubsetName"))
            elif self.subsets.stable == self.subsets.canary:
                problems.append(
                    RoutingProblem(None, f"{dr_field}.canarySubsetName", "the canary and stable subsets must differ")
                )
        return problems

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        problems: list[RoutingProblem] = list(self.spec_problems())
        problems += _unmanaged_route_problems(desired)
        dr_writes: list[ObjectWrite] = []
        vs_writes: list[ObjectWrite] = []
        live_weights: list[int] = []
        canary_points_at_new_version = True

        if self.destination_rule is not None and self.subsets is not None:
            dr_write, dr_problems, canary_points_at_new_version = self._destination_rule(
                desired, live.get(self.destination_rule)
            )
            problems += dr_problems
            if dr_write is not None:
                dr_writes.append(dr_write)

        for vs in self.virtual_services:
            vs_write, vs_problems, weights = self._virtual_service(vs, desired, live.get(vs.ref))
            problems += vs_problems
            live_weights += weights
            if vs_write is not None:
                vs_writes.append(vs_write)

        # Whatever crashes between the two writes, the canary subset never gets more than the weight
        # asked for: the subsets move first while the weights only grow (Argo's order); when the
        # canary subset routes more than that now, the weights come down first.
        if any(w > desired.canary_weight for w in live_weights):
            writes = vs_writes + dr_writes
        else:
            writes = dr_writes + vs_writes

        if problems:
            return RouterResult(writes=(), actual_canary_weight=None, problems=tuple(problems))
        actual = _actual_weight(live_weights, desired)
        if actual is not None and not canary_points_at_new_version:
            actual = 0  # the canary subset still selects the old pods: nothing reaches the new version
        return RouterResult(
            writes=tuple(writes),
            actual_canary_weight=actual,
            notes={"canarySubsetReady": canary_points_at_new_version} if self.subsets else {},
        )

    # ------------------------------------------------------------------ DestinationRule

    def _destination_rule(
        self, desired: DesiredTraffic, obj: Mapping[str, Any] | None
    ) -> tuple[ObjectWrite | None, list[RoutingProblem], bool]:
        assert self.destination_rule is not None and self.subsets is not None
        ref = self.destination_rule
        if obj is None:
            return (
                None,
                [
                    RoutingProblem(
                        ref,
                        f"{FIELD}.destinationRule.name",
                        "the DestinationRule does not exist: create it or fix the name",
                    )
                ],
                False,
            )
        subsets = copy.deepcopy(as_list(as_dict(obj.get("spec")).get("subsets")))
        by_name = {str(as_dict(s).get("name")): i for i, s in enumerate(subsets)}
        problems = []
        for role, name in (("stableSubsetName", self.subsets.stable), ("canarySubsetName", self.subsets.canary)):
            if name not in by_name:
                problems.append(
                    RoutingProblem(
                        ref,
                        "spec.subsets",
                        f"no subset named {name!r} ({FIELD}.destinationRule.{role}): add it to the DestinationRule",
                    )
                )
        if problems:
            return None, problems, False
        stable, canary = subsets[by_name[self.subsets.stable]], subsets[by_name[self.subsets.canary]]
        canary_hash_now = str(as_dict(canary.get("labels")).get(HASH_LABEL, ""))
        changed = False
        if desired.stable_hash:
            changed |= _set_hash(stable, desired.stable_hash)
        if desired.canary_hash and desired.canary_available:
            changed |= _set_hash(canary, desired.canary_hash)
        points_at_new = not desired.canary_hash or canary_hash_now == desired.canary_hash
        write = None
        if changed:
            write = ObjectWrite(
                ref,
                "merge-patch",
                {"metadata": _rv(obj), "spec": {"subsets": subsets}},
                why=f"subsets {self.subsets.stable}={desired.stable_hash} {self.subsets.canary}="
                f"{desired.canary_hash if desired.canary_available else canary_hash_now}",
            )
        return write, [], points_at_new

    # ------------------------------------------------------------------ VirtualService

    def _role(self, destination: Mapping[str, Any], desired: DesiredTraffic, namespace: str) -> str | None:
        dest = as_dict(destination.get("destination"))
        if self.subsets is not None:
            subset = dest.get("subset")
            if subset == self.subsets.stable:
                return "stable"
            if subset == self.subsets.canary:
                return "canary"
            return None
        host = str(dest.get("host") or "")
        if desired.stable_service and _same_service(host, desired.stable_service, namespace):
            return "stable"
        if desired.canary_service and _same_service(host, desired.canary_service, namespace):
            return "canary"
        return None

    def _virtual_service(
        self, vs: VirtualServiceEntry, desired: DesiredTraffic, obj: Mapping[str, Any] | None
    ) -> tuple[ObjectWrite | None, list[RoutingProblem], list[int]]:
        """The write that sets the weights (and the managed routes) of one VirtualService, the problems
        that prevent it, and the canary weight each of its split routes gives now."""
        if obj is None:
            return (
                None,
                [
                    RoutingProblem(
                        vs.ref, f"{vs.field}.name", "the VirtualService does not exist: create it or fix the name"
                    )
                ],
                [],
            )
        spec = as_dict(obj.get("spec"))
        routes = {kind: copy.deepcopy(as_list(spec.get(kind))) for kind in ROUTE_KINDS}
        problems: list[RoutingProblem] = []
        http_indexes = _http_indexes(vs, routes["http"], set(desired.managed_routes), problems)
        weighted: list[tuple[str, int]] = [
            *(("http", i) for i in http_indexes),
            *(("tls", i) for i in _matching_indexes(vs, routes["tls"], vs.tls_routes, "tls", "tlsRoutes", problems)),
            *(("tcp", i) for i in _matching_indexes(vs, routes["tcp"], vs.tcp_routes, "tcp", "tcpRoutes", problems)),
        ]
        percent = round(desired.canary_weight * 100 / desired.max_weight) if desired.max_weight > 0 else 0
        live_percents: list[int] = []
        canary_destination: Json | None = None
        for kind, index in weighted:
            split = self._split_route(vs, kind, routes[kind], index, desired, percent)
            if isinstance(split, RoutingProblem):
                problems.append(split)
                continue
            live_percent, route_canary = split
            live_percents.append(live_percent)
            if canary_destination is None and kind == "http":
                canary_destination = route_canary
        if problems:
            return None, problems, []

        http = _with_active_routes(vs, routes["http"], http_indexes, desired, canary_destination)
        if isinstance(http, RoutingProblem):
            return None, [http], []
        routes["http"] = http
        new_spec: Json = {kind: new for kind, new in routes.items() if new != as_list(spec.get(kind))}
        write = None
        if new_spec:
            write = ObjectWrite(
                vs.ref,
                "merge-patch",
                {"metadata": _rv(obj), "spec": new_spec},
                why=f"canary weight {percent}%",
            )
        scale = desired.max_weight / 100
        return write, [], [round(p * scale) for p in live_percents]

    def _split_route(
        self, vs: VirtualServiceEntry, kind: str, routes: list[Any], index: int, desired: DesiredTraffic, percent: int
    ) -> RoutingProblem | tuple[int, Json | None]:
        """Give route `index` of `routes` (in place) `percent` to the canary and the rest to the stable
        destination; its canary percent before that, and its canary destination. A problem when it
        lacks either destination."""
        route = as_dict(routes[index])
        destinations = as_list(route.get("route"))
        roles = [self._role(as_dict(d), desired, self.namespace) for d in destinations]
        if "stable" not in roles or "canary" not in roles:
            label = route.get("name") or f"#{index}"
            wanted = (
                f"subsets {self.subsets.stable!r} and {self.subsets.canary!r}"
                if self.subsets
                else f"hosts {desired.stable_service!r} (stable) and {desired.canary_service!r} (canary)"
            )
            return RoutingProblem(
                vs.ref,
                f"spec.{kind}[{index}].route",
                f"{kind} route {label} must have a destination for each of the {wanted}",
            )
        live_percent = _live_percent(destinations, roles)
        canary_destination: Json | None = None
        extra = self._additional_percents(desired)
        held = self._additional_subsets_percent(destinations)
        new_destinations = []
        for dest, role in zip(destinations, roles, strict=True):
            dest = dict(dest)
            host = str(as_dict(dest.get("destination")).get("host") or "")
            if role == "canary":
                dest["weight"] = percent
                if canary_destination is None:
                    canary_destination = copy.deepcopy(as_dict(dest.get("destination")))
            elif role == "stable":
                dest["weight"] = max(0, 100 - percent - sum(extra.values()) - held)
            elif (service := self._service_of(host, extra)) is not None:
                dest["weight"] = extra.pop(service)
            elif self._service_of(host, desired.retired_services) is not None:
                continue  # an experiment that ended: its destination goes
            new_destinations.append(dest)
        new_destinations += [{"destination": {"host": name}, "weight": weight} for name, weight in extra.items()]
        routes[index] = {**route, "route": new_destinations}
        return live_percent, canary_destination

    def _additional_percents(self, desired: DesiredTraffic) -> dict[str, int]:
        """Each experiment Service's percent of the route (Istio weights are out of 100)."""
        scale = 100 / desired.max_weight if desired.max_weight > 0 else 0
        return {d.service_name: round(d.weight * scale) for d in desired.additional}

    def _additional_subsets_percent(self, destinations: list[Any]) -> int:
        """What the route gives subsets of ``destinationRule.additionalSubsetNames``: someone else's to set,
        kept as they are and taken out of the stable's share (Argo's)."""
        if self.subsets is None or not self.subsets.additional:
            return 0
        total = 0
        for dest in map(as_dict, destinations):
            weight = dest.get("weight")
            if as_dict(dest.get("destination")).get("subset") in self.subsets.additional and isinstance(weight, int):
                total += weight
        return total

    def _service_of(self, host: str, services: Iterable[str]) -> str | None:
        """The one of ``services`` that ``host`` names, if any."""
        return next((s for s in services if _same_service(host, s, self.namespace)), None)


# ---------------------------------------------------------------------- helpers


def _rv(obj: Mapping[str, Any]) -> Json:
    rv = as_dict(obj.get("metadata")).get("resourceVersion")
    return {"resourceVersion": rv} if rv else {}


def _set_hash(subset: Json, value: str) -> bool:
    labels = dict(as_dict(subset.get("labels")))
    if labels.get(HASH_LABEL) == value:
        return False
    labels[HASH_LABEL] = value
    subset["labels"] = labels
    return True


def _same_service(host: str, service: str, namespace: str) -> bool:
    """A destination host names the Service by its short name or any qualified form of it."""
    qualified = (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )
    return host in qualified


def _live_percent(destinations: list[Any], roles: list[str | None]) -> int:
    """The canary's percent as Istio reads the route: a lone destination without a weight gets 100."""
    for dest, role in zip(destinations, roles, strict=True):
        if role == "canary":
            weight = as_dict(dest).get("weight")
            if weight is None:
                return 100 if len(destinations) == 1 else 0
            return weight if isinstance(weight, int) and not isinstance(weight, bool) else 0
    return 0


def _actual_weight(weights: list[int], desired: DesiredTraffic) -> int | None:
    """One weight for all routes: the one they agree on, else the first that differs from the plan."""
    if not weights:
        return None
    for weight in weights:
        if weight != desired.canary_weight:
            return weight
    return weights[0]


def _http_indexes(
    vs: VirtualServiceEntry, http: list[Any], managed: set[str], problems: list[RoutingProblem]
) -> list[int]:
    """The `http` routes to split: those `routes` names, else the one route that is not a managed one
    (when the entry names no tls or tcp routes either)."""
    if vs.routes:
        names = [str(as_dict(r).get("name", "")) for r in http]
        indexes = []
        for route_name in vs.routes:
            if route_name not in names:
                problems.append(
                    RoutingProblem(
                        vs.ref,
                        f"{vs.field}.routes",
                        f"no HTTP route named {route_name!r} in spec.http: add it to the VirtualService"
                        " or fix the list",
                    )
                )
            else:
                indexes.append(names.index(route_name))
        return indexes
    if vs.tls_routes or vs.tcp_routes:
        return []
    own = [i for i, r in enumerate(http) if as_dict(r).get("name") not in managed]
    if len(own) != 1:
        problems.append(
            RoutingProblem(
                vs.ref,
                f"{vs.field}.routes",
                f"spec.http has {len(own)} routes: name the ones to split in {vs.field}.routes",
            )
        )
        return []
    return own


def _with_active_routes(
    vs: VirtualServiceEntry,
    http: list[Any],
    http_indexes: list[int],
    desired: DesiredTraffic,
    canary_destination: Json | None,
) -> list[Any] | RoutingProblem:
    """`http` with the managed routes as `desired` has them (header and mirror routes to the canary
    destination), or unchanged when there are none; a problem when no split HTTP route has a canary."""
    active = bool(desired.header_routes or desired.mirror_routes)
    if not desired.managed_routes and not active:
        return http
    if canary_destination is None and active:
        return RoutingProblem(
            vs.ref,
            f"{vs.field}.routes",
            "header and mirror routes need an HTTP route to the canary; name one in routes",
        )
    first_route = as_list(as_dict(http[http_indexes[0]]).get("route")) if http_indexes else []
    return _with_managed_routes(http, desired, canary_destination or {}, first_route)


def _matching_indexes(
    vs: VirtualServiceEntry,
    routes: list[Any],
    wanted: tuple[Mapping[str, Any], ...],
    kind: str,
    field: str,
    problems: list[RoutingProblem],
) -> list[int]:
    """The `tls` / `tcp` routes a `tlsRoutes` / `tcpRoutes` entry names, by port (and SNI hosts)."""
    indexes: list[int] = []
    for n, want in enumerate(wanted):
        port = want.get("port")
        sni = set(as_list(want.get("sniHosts")))
        found = None
        for i, route in enumerate(routes):
            for match in as_list(as_dict(route).get("match")):
                match = as_dict(match)
                if port is not None and match.get("port") != port:
                    continue
                if sni and not sni <= set(as_list(match.get("sniHosts"))):
                    continue
                found = i
                break
            if found is not None:
                break
        if found is None:
            what = f"port {port}" if port is not None else "any port"
            if sni:
                what += f" and SNI hosts {sorted(sni)}"
            problems.append(
                RoutingProblem(vs.ref, f"{vs.field}.{field}[{n}]", f"no {kind} route in spec.{kind} matches {what}")
            )
        elif found not in indexes:
            indexes.append(found)
    return indexes


def _unmanaged_route_problems(desired: DesiredTraffic) -> list[RoutingProblem]:
    managed = set(desired.managed_routes)
    routes: tuple[HeaderRoute | MirrorRoute, ...] = (*desired.header_routes, *desired.mirror_routes)
    return [
        RoutingProblem(
            None,
            "spec.strategy.canary.trafficRouting.managedRoutes",
            f"route {route.name!r} is not listed in managedRoutes: add it there",
        )
        for route in routes
        if route.name not in managed
    ]


def _string_match(value: Mapping[str, Any]) -> Json:
    return {k: value[k] for k in ("exact", "prefix", "regex") if k in value}


def header_route(route: HeaderRoute, canary_destination: Mapping[str, Any]) -> Json:
    """An http route sending the requests that match any of the header matches 100% to the canary."""
    return {
        "name": route.name,
        "match": [
            {"headers": {str(m.get("headerName")): _string_match(as_dict(m.get("headerValue")))}} for m in route.matches
        ],
        "route": [{"destination": copy.deepcopy(dict(canary_destination)), "weight": 100}],
    }


def mirror_route(route: MirrorRoute, canary_destination: Mapping[str, Any], destinations: list[Any]) -> Json:
    """An http route that serves the matching requests as the split route does, and mirrors a
    percentage of them to the canary."""
    matches = []
    for m in route.matches:
        m = as_dict(m)
        match: Json = {}
        if "method" in m:
            match["method"] = _string_match(as_dict(m["method"]))
        if "path" in m:
            match["uri"] = _string_match(as_dict(m["path"]))
        if m.get("headers"):
            match["headers"] = {str(k): _string_match(as_dict(v)) for k, v in as_dict(m["headers"]).items()}
        matches.append(match)
    built: Json = {"name": route.name}
    if matches:
        built["match"] = matches
    built["route"] = copy.deepcopy(destinations)
    built["mirror"] = copy.deepcopy(dict(canary_destination))
    built["mirrorPercentage"] = {"value": float(route.percentage)}
    return built


def _with_managed_routes(
    http: list[Any], desired: DesiredTraffic, canary_destination: Mapping[str, Any], destinations: list[Any]
) -> list[Any]:
    """Drop the managed routes, then put the active ones first, in `managedRoutes` order."""
    managed = set(desired.managed_routes)
    rest = [r for r in http if as_dict(r).get("name") not in managed]
    headers = {r.name: r for r in desired.header_routes}
    mirrors = {r.name: r for r in desired.mirror_routes}
    first: list[Any] = []
    for name in desired.managed_routes:
        if name in headers:
            first.append(header_route(headers[name], canary_destination))
        elif name in mirrors:
            first.append(mirror_route(mirrors[name], canary_destination, destinations))
    return first + rest


__all__ = ["API_VERSION", "IstioRouter", "header_route", "mirror_route", "split_name"]
