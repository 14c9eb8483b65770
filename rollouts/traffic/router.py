"""The protocol every traffic router implements, and the values that cross it.

A router is pure. The reconciler fetches the objects the router names (`Router.objects`), hands
them back with the split it wants (`DesiredTraffic`), and carries out the `ObjectWrite`s the router
returns, in order. The router also reads back what the objects say now (`RouterResult.actual`), so
the planner moves on only once the split it asked for is in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One routing object. `plural` and `api_version` are what the API path needs."""

    api_version: str  # "networking.k8s.io/v1", "networking.istio.io/v1beta1", ...
    kind: str  # "Ingress", "VirtualService", ...
    plural: str  # "ingresses", "virtualservices", ...
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class RoutedKind:
    """A kind of object a router reads: the controller watches it while the API server serves it."""

    api_version: str
    kind: str
    plural: str


@dataclass(frozen=True)
class HeaderRoute:
    """An active `setHeaderRoute` step: requests matching `matches` go 100% to the canary."""

    name: str
    matches: tuple[Mapping[str, Any], ...]  # Argo's `match` list: {headerName, headerValue: {exact|prefix|regex}}


@dataclass(frozen=True)
class MirrorRoute:
    """An active `setMirrorRoute` step: matching requests are copied to the canary."""

    name: str
    matches: tuple[Mapping[str, Any], ...]  # Argo's `match` list (method/path/headers)
    percentage: int  # 0..100


@dataclass(frozen=True)
class WeightDestination:
    """A share of the traffic for one more Service: an experiment template's (Argo's ``additionalDestinations``)."""

    service_name: str
    pod_template_hash: str
    weight: int  # in units of max_weight, like canary_weight

    def status(self) -> dict[str, Any]:
        return {"serviceName": self.service_name, "podTemplateHash": self.pod_template_hash, "weight": self.weight}


@dataclass(frozen=True)
class DesiredTraffic:
    """The split the planner wants now."""

    canary_weight: int  # 0..max_weight
    max_weight: int  # trafficRouting.maxTrafficWeight, default 100
    stable_service: str
    canary_service: str
    stable_hash: str  # rollouts-pod-template-hash of the stable ReplicaSet ("" if none)
    canary_hash: str  # of the new ReplicaSet ("" if none)
    canary_available: bool  # the new ReplicaSet is fully available (subset-level routing waits for it)
    header_routes: tuple[HeaderRoute, ...] = ()
    mirror_routes: tuple[MirrorRoute, ...] = ()
    managed_routes: tuple[str, ...] = ()  # trafficRouting.managedRoutes names, in order
    additional: tuple[WeightDestination, ...] = ()  # the running experiment step's weighted templates
    # Services an earlier experiment step routed to: their destinations go (not in `additional` any more)
    retired_services: frozenset[str] = frozenset()

    @property
    def stable_weight(self) -> int:
        """What is left for the stable: the canary's and every additional destination's share taken out."""
        return self.max_weight - self.canary_weight - sum(d.weight for d in self.additional)


@dataclass(frozen=True)
class Owner:
    """The Rollout, for ownerReferences on objects a router creates."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


WriteOp = Literal["create", "merge-patch", "json-patch", "delete"]


@dataclass(frozen=True)
class ObjectWrite:
    """One API write: `body` is the manifest (create), a JSON merge patch, or a JSON patch list."""

    ref: ObjectRef
    op: WriteOp
    body: Any
    why: str = ""


@dataclass(frozen=True)
class RoutingProblem:
    """Why a router cannot do its job: names the object and field, and the fix."""

    ref: ObjectRef | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.ref.describe()}: " if self.ref else ""
        return f"{where}{self.field}: {self.message}"


@dataclass(frozen=True)
class RouterResult:
    """What one router wants written, and what its objects say now (before the writes)."""

    writes: tuple[ObjectWrite, ...] = ()
    actual_canary_weight: int | None = None  # as the live objects route it; None: cannot tell
    problems: tuple[RoutingProblem, ...] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)  # router-specific facts for status/plugin


class Router(Protocol):
    """One `trafficRouting` entry (nginx, istio, smi, gatewayAPI)."""

    name: str  # the key under trafficRouting: "nginx", "istio", "smi", "plugins/gatewayAPI" ...
    # Every kind `objects()` may name: the controller watches them (while served) and reads the objects
    # from its cache; a kind not listed here is read with a GET on every pass.
    KINDS: ClassVar[tuple[RoutedKind, ...]]

    def objects(self) -> Sequence[ObjectRef]:
        """The objects this router reads (and may create): fetched by the reconciler, absent ones as None."""
        ...

    def spec_problems(self) -> Sequence[RoutingProblem]:
        """Problems in the Rollout's own `trafficRouting` entry, found without looking at the cluster."""
        ...

    def reconcile(
        self,
        desired: DesiredTraffic,
        live: Mapping[ObjectRef, Mapping[str, Any] | None],
        owner: Owner,
    ) -> RouterResult:
        """The writes that bring `live` to `desired` (none if already there), and the live weight."""
        ...

    def supports_mirror(self) -> bool: ...

    def supports_header_routes(self) -> bool: ...


@runtime_checkable
class RoutesAdditionalDestinations(Protocol):
    """A router that can give an experiment template's Service its own share of the traffic
    (``DesiredTraffic.additional``), taken out of the stable's share."""

    def routes_additional_destinations(self) -> bool: ...


@runtime_checkable
class FollowsReferences(Protocol):
    """A router whose objects name more objects it needs (App Mesh: the VirtualService names its
    VirtualRouter). The reconciler reads `objects()`, then these, before `reconcile`."""

    def followed_objects(self, live: Mapping[ObjectRef, Mapping[str, Any] | None]) -> Sequence[ObjectRef]:
        """The objects that `live` (the objects of `objects()`) points at."""
        ...
