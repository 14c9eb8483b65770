"""RBAC evaluation as kube-apiserver's RBAC authorizer does it: rules + request attributes -> decision.

Pure: no store, no HTTP. `request_attributes` turns a method and path into the attributes the
authorizer sees (k8s.io/apiserver's RequestInfoFactory); `authorize` walks ClusterRoleBindings, then
the RoleBindings of the request's namespace, and allows on the first rule that covers the request;
`forbidden_message` words a denial exactly as the API server does. Aggregated ClusterRoles are not
expanded (their `rules` are used as stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
RBAC_GROUP = "rbac.authorization.k8s.io"

# Path segments after /namespaces/NAME that are subresources of the namespace, not resources in it.
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a ServiceAccount token authenticates as, with the groups the API server adds."""
    return UserInfo(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:NS:NAME` user, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    return (namespace, name) if sep and namespace and name and ":" not in name else None


@dataclass(frozen=True)
class Attributes:
    """What the authorizer is asked: who does which verb to what (or to which non-resource path)."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def request_attributes(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request, parsed as kube-apiserver's RequestInfoFactory parses them."""
    parts = [p for p in path.split("/") if p]
    non_resource = Attributes(user, method.lower(), False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("true", "1") else "list"
        field_selector = query.get("fieldSelector", "")
        if field_selector.startswith("metadata.name=") and "," not in field_selector:
            name = field_selector.removeprefix("metadata.name=")
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, namespace, group, version, resource, subresource, name)


@dataclass(frozen=True)
class Rule:
    """One PolicyRule of a Role or ClusterRole."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_manifest(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(
            tuple(rule.get("verbs") or ()),
            tuple(rule.get("apiGroups") or ()),
            tuple(rule.get("resources") or ()),
            tuple(rule.get("resourceNames") or ()),
            tuple(rule.get("nonResourceURLs") or ()),
        )

    def allows(self, attrs: Attributes) -> bool:
        if not _matches(self.verbs, attrs.verb):
            return False
        if not attrs.resource_request:
            return any(_url_matches(url, attrs.path) for url in self.non_resource_urls)
        return (
            _matches(self.api_groups, attrs.api_group)
            and self._resource_matches(attrs)
            and (not self.resource_names or attrs.name in self.resource_names)
        )

    def _resource_matches(self, attrs: Attributes) -> bool:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        for resource in self.resources:
            if resource in ("*", combined):
                return True
            if attrs.subresource and resource == f"*/{attrs.subresource}":
                return True
        return False


def _matches(allowed: Iterable[str], value: str) -> bool:
    return any(a in ("*", value) for a in allowed)


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url == "*" or rule_url == path:
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


@dataclass(frozen=True)
class Policy:
    """The RBAC objects of the cluster, as stored manifests."""

    roles: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)  # (namespace, name)
    cluster_roles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    role_bindings: Sequence[Mapping[str, Any]] = ()
    cluster_role_bindings: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Allowed: which binding allowed it; denied: the bindings whose role is missing (else "").
    reason: str = ""


def _subject_matches(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    return False


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name", "")}/{subject.get("namespace") or binding_namespace}"'
    return f'{subject.get("kind")} "{subject.get("name", "")}"'


def _bound_rules(
    policy: Policy, binding: Mapping[str, Any], namespace: str
) -> tuple[Mapping[str, Any] | None, str, str]:
    """(role manifest or None, role kind, role name) a binding refers to."""
    ref = binding.get("roleRef") or {}
    kind, name = ref.get("kind", ""), ref.get("name", "")
    if kind == "ClusterRole":
        return policy.cluster_roles.get(name), kind, name
    return policy.roles.get((namespace, name)), kind, name


def authorize(policy: Policy, attrs: Attributes) -> Decision:
    """Allowed if the user is a superuser or any rule bound to them covers the request."""
    if SUPERUSER_GROUP in attrs.user.groups:
        return Decision(True, f'allowed by the "{SUPERUSER_GROUP}" group')
    missing: list[str] = []
    scoped: list[tuple[str, Mapping[str, Any]]] = [("ClusterRoleBinding", b) for b in policy.cluster_role_bindings]
    if attrs.namespace:
        scoped += [
            ("RoleBinding", b)
            for b in policy.role_bindings
            if (b.get("metadata") or {}).get("namespace") == attrs.namespace
        ]
    for binding_kind, binding in scoped:
        meta = binding.get("metadata") or {}
        binding_ns = meta.get("namespace", "")
        subject = next((s for s in binding.get("subjects") or [] if _subject_matches(s, attrs.user, binding_ns)), None)
        if subject is None:
            continue
        role, role_kind, role_name = _bound_rules(policy, binding, binding_ns)
        if role is None:
            plural = "clusterrole" if role_kind == "ClusterRole" else "role"
            missing.append(f'{plural}.{RBAC_GROUP} "{role_name}" not found')
            continue
        if any(Rule.from_manifest(r).allows(attrs) for r in role.get("rules") or []):
            where = f'"{meta.get("name", "")}/{binding_ns}"' if binding_ns else f'"{meta.get("name", "")}"'
            return Decision(
                True,
                f'RBAC: allowed by {binding_kind} {where} of {role_kind} "{role_name}" to '
                f"{_describe_subject(subject, binding_ns)}",
            )
    return Decision(False, f"RBAC: {', '.join(missing)}" if missing else "")


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """The `Status.message` of a 403, in kube-apiserver's words (responsewriters.forbiddenMessage
    wrapped by errors.NewForbidden)."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        text = f'{who} cannot {attrs.verb} path "{attrs.path}"'
        return f"forbidden: {text}: {reason}" if reason else f"forbidden: {text}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    text = f'{who} cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {scope}'
    if reason:
        text = f"{text}: {reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return f"{subject} is forbidden: {text}"


def forbidden_details(attrs: Attributes) -> dict[str, Any]:
    """`Status.details` of a 403: the resource (as `kind`), its group and the object's name."""
    if not attrs.resource_request:
        return {}
    details: dict[str, Any] = {"kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.api_group:
        details["group"] = attrs.api_group
    return details
