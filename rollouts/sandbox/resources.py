"""The kinds the sandbox serves: built-in ones and those registered by CustomResourceDefinitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScaleSpec:
    """Where a `/scale` subresource reads and writes replicas (as in a CRD's `subresources.scale`)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    scale: ScaleSpec | None = None
    # Schema of a custom resource (openAPIV3Schema); None for built-in kinds.
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    served_versions: tuple[str, ...] = ()
    builtin: bool = True
    extra_field_selectors: tuple[str, ...] = ()
    # Sub-paths (besides status/scale) that exist only to be listed in discovery.
    extra_subresources: tuple[str, ...] = field(default=())
    # What discovery lists; the review kinds are answered on create and never stored.
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def key(self) -> str:
        """Storage key, shared by every served version of the resource."""
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def qualified_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def at_version(self, version: str) -> ResourceType:
        from dataclasses import replace

        return replace(self, version=version)


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: Iterable[str] = (),
    status: bool = False,
    scale: bool = False,
    selectors: Iterable[str] = (),
    categories: Iterable[str] = (),
    extra: Iterable[str] = (),
    verbs: Iterable[str] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=tuple(short),
        categories=tuple(categories),
        has_status=status,
        scale=ScaleSpec(label_selector_path=".status.selector") if scale else None,
        served_versions=(version,),
        extra_field_selectors=tuple(selectors),
        extra_subresources=tuple(extra),
        verbs=tuple(verbs),
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], status=True, selectors=["status.phase"]
    ),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        short=["po"],
        status=True,
        categories=["all"],
        selectors=["status.phase", "spec.nodeName", "spec.restartPolicy", "status.podIP"],
    ),
    _builtin("", "v1", "services", "Service", short=["svc"], status=True, categories=["all"]),
    _builtin("", "v1", "endpoints", "Endpoints", short=["ep"]),
    _builtin("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    _builtin("", "v1", "secrets", "Secret", selectors=["type"]),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"], extra=["token"]),
    _builtin(
        "",
        "v1",
        "events",
        "Event",
        short=["ev"],
        selectors=[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    ),
    _builtin(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        short=["ev"],
        selectors=["regarding.kind", "regarding.namespace", "regarding.name", "reason", "type"],
    ),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", short=["rs"], status=True, scale=True, categories=["all"]),
    _builtin("apps", "v1", "deployments", "Deployment", short=["deploy"], status=True, scale=True, categories=["all"]),
    _builtin("batch", "v1", "jobs", "Job", status=True, categories=["all"], selectors=["status.successful"]),
    _builtin("networking.k8s.io", "v1", "ingresses", "Ingress", short=["ing"], status=True),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=["hpa"],
        status=True,
        categories=["all"],
    ),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=["create"],
    ),
    _builtin(
        "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False, verbs=["create"]
    ),
    _builtin(
        "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False, verbs=["create"]
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=["crd", "crds"],
        status=True,
    ),
)

# Group preference order in discovery, as a real server lists them.
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "authorization.k8s.io",
    "authentication.k8s.io",
    "apiextensions.k8s.io",
)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = tuple(v["name"] for v in spec.get("versions") or [] if v.get("served", True))
    out: list[ResourceType] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in subresources,
                scale=ScaleSpec(
                    spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas"),
                    status_replicas_path=scale.get("statusReplicasPath", ".status.replicas"),
                    label_selector_path=scale.get("labelSelectorPath"),
                )
                if scale is not None
                else None,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                served_versions=served,
                builtin=False,
            )
        )
    return out


class Registry:
    """Lookup of resource types by group/version/plural, by kind, and by storage key."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN_TYPES:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._by_gvr[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_crd(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_key(self, key: str) -> ResourceType | None:
        """Any served version of the resource stored under `key` (group/plural)."""
        group, _, plural = key.partition("/")
        for (g, _v, p), rtype in self._by_gvr.items():
            if g == group and p == plural:
                return rtype
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for (g, v, _p), rtype in self._by_gvr.items():
            if g == group and v == version and rtype.kind == kind:
                return rtype
        return None

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, core group first, then as registered."""
        found: dict[str, list[str]] = {}
        for g, v, _p in self._by_gvr:
            versions = found.setdefault(g, [])
            if v not in versions:
                versions.append(v)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return dict(sorted(found.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for (g, v, _p), t in self._by_gvr.items() if g == group and v == version]
