"""Who is asking and may they: bearer tokens, TokenRequest, impersonation, access reviews.

`Access` holds the sandbox's authentication state (the admin token of the kubeconfig, ServiceAccount
tokens issued through the TokenRequest API) and answers with `rbac.authorize` over the RBAC objects
in the store. With `authorization="open"` (the default, for the demo) every request is allowed and
any token (or none) is accepted; `"rbac"` authenticates tokens and enforces bindings.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollouts.sandbox import rbac
from rollouts.sandbox.errors import ApiError, Cause, bad_request, invalid, not_found
from rollouts.sandbox.rbac import Attributes, Decision, UserInfo
from rollouts.sandbox.store import Store

ADMIN_TOKEN = "sandbox"
ADMIN = UserInfo("sandbox-admin", (rbac.SUPERUSER_GROUP, rbac.AUTHENTICATED))
ANONYMOUS = UserInfo(rbac.ANONYMOUS, (rbac.UNAUTHENTICATED,))
AUTHORIZATION_MODES = ("open", "rbac")
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"

_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules,
    }


def _group_binding(name: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": rbac.RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


# The defaults a real cluster bootstraps that every client needs (discovery, can-i, whoami), and cluster-admin.
BOOTSTRAP_CLUSTER_ROLES = (
    _cluster_role(
        "cluster-admin",
        [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    ),
    _cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
    _cluster_role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_URLS, "verbs": ["get"]}]),
    _cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        ],
    ),
)
BOOTSTRAP_CLUSTER_ROLE_BINDINGS = (
    _group_binding("system:discovery", [rbac.AUTHENTICATED]),
    _group_binding("system:basic-user", [rbac.AUTHENTICATED]),
    _group_binding("system:public-info-viewer", [rbac.AUTHENTICATED, rbac.UNAUTHENTICATED]),
)


@dataclass(frozen=True)
class IssuedToken:
    namespace: str
    service_account: str
    uid: str
    expires: float


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"


def _timestamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Access:
    """Authentication and authorization of the sandbox's requests."""

    def __init__(self, store: Store, authorization: str = "open", min_token_seconds: int = MIN_TOKEN_SECONDS) -> None:
        if authorization not in AUTHORIZATION_MODES:
            raise ValueError(f"unknown authorization mode {authorization!r}: one of {', '.join(AUTHORIZATION_MODES)}")
        self.store = store
        self.enforcing = authorization == "rbac"
        # A real API server refuses TokenRequests under 10 minutes; tests of credential refresh lower it.
        self.min_token_seconds = min_token_seconds
        self._tokens: dict[str, IssuedToken] = {}
        if self.enforcing:
            self._bootstrap()

    def _bootstrap(self) -> None:
        registry = self.store.registry
        roles = registry.get(rbac.RBAC_GROUP, "v1", "clusterroles")
        bindings = registry.get(rbac.RBAC_GROUP, "v1", "clusterrolebindings")
        assert roles is not None and bindings is not None
        for role in BOOTSTRAP_CLUSTER_ROLES:
            self.store.create_internal(roles, "", role)
        for binding in BOOTSTRAP_CLUSTER_ROLE_BINDINGS:
            self.store.create_internal(bindings, "", binding)

    # ------------------------------------------------------------------ authentication

    def authenticate(self, authorization_header: str) -> UserInfo:
        """The user a request's `Authorization` header names; 401 for a token nobody issued."""
        if not self.enforcing:
            return ADMIN
        if not authorization_header:
            return ANONYMOUS
        scheme, _, token = authorization_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        token = token.strip()
        if token == ADMIN_TOKEN:
            return ADMIN
        issued = self._tokens.get(token)
        if issued is None or issued.expires <= self.store.clock():
            raise unauthorized()
        account = self._service_account(issued.namespace, issued.service_account)
        if account is None or account["metadata"].get("uid") != issued.uid:
            raise unauthorized()  # a bound token dies with its ServiceAccount
        return rbac.service_account_user(issued.namespace, issued.service_account)

    def _service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        rtype = self.store.registry.get("", "v1", "serviceaccounts")
        assert rtype is not None
        return self.store.find(rtype, namespace, name)

    def impersonate(self, requester: UserInfo, user: str, groups: list[str]) -> UserInfo:
        """The user a request acts as under `Impersonate-User`/`Impersonate-Group`, each checked
        against the requester's `impersonate` permission."""
        if not user:
            if groups:
                raise bad_request("requested impersonation of groups without impersonating a user")
            return requester
        account = rbac.split_service_account(user)
        if account is not None:
            self._check_impersonation(requester, "serviceaccounts", account[1], account[0])
        else:
            self._check_impersonation(requester, "users", user, "")
        for group in groups:
            self._check_impersonation(requester, "groups", group, "")
        if not groups and account is not None:
            groups = list(rbac.service_account_user(*account).groups)
        marker = rbac.UNAUTHENTICATED if user == rbac.ANONYMOUS else rbac.AUTHENTICATED
        return UserInfo(user, tuple(dict.fromkeys([*groups, marker])))

    def _check_impersonation(self, requester: UserInfo, resource: str, name: str, namespace: str) -> None:
        attrs = Attributes(requester, "impersonate", True, namespace=namespace, resource=resource, name=name)
        self.require(attrs)

    # ------------------------------------------------------------------ authorization

    def policy(self) -> rbac.Policy:
        registry = self.store.registry

        def objects(plural: str) -> list[dict[str, Any]]:
            rtype = registry.get(rbac.RBAC_GROUP, "v1", plural)
            assert rtype is not None
            return self.store.objects(rtype)

        return rbac.Policy(
            roles={(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in objects("roles")},
            cluster_roles={r["metadata"]["name"]: r for r in objects("clusterroles")},
            role_bindings=objects("rolebindings"),
            cluster_role_bindings=objects("clusterrolebindings"),
        )

    def decide(self, attrs: Attributes) -> Decision:
        if not self.enforcing:
            return Decision(True, "")
        return rbac.authorize(self.policy(), attrs)

    def require(self, attrs: Attributes) -> None:
        """Raise the API server's 403 unless the request is allowed."""
        decision = self.decide(attrs)
        if not decision.allowed:
            raise ApiError(
                403, "Forbidden", rbac.forbidden_message(attrs, decision.reason), rbac.forbidden_details(attrs)
            )

    # ------------------------------------------------------------------ API objects answered, not stored

    def token_request(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer POST .../serviceaccounts/NAME/token with a TokenRequest carrying a fresh token."""
        account = self._service_account(namespace, name)
        if account is None:
            raise not_found("serviceaccounts", "", name)
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
        if seconds < self.min_token_seconds:
            shortest = _duration(self.min_token_seconds)
            raise invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [
                    Cause(
                        "spec.expirationSeconds",
                        "FieldValueInvalid",
                        f"Invalid value: {seconds}: may not specify a duration less than {shortest}",
                    )
                ],
            )
        now = self.store.clock()
        token = secrets.token_urlsafe(32)
        self._tokens[token] = IssuedToken(namespace, name, account["metadata"].get("uid", ""), now + seconds)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": _timestamp(now)},
            "spec": {
                "audiences": spec.get("audiences") or [DEFAULT_AUDIENCE],
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {"token": token, "expirationTimestamp": _timestamp(now + seconds)},
        }

    def access_review(self, requester: UserInfo, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a SelfSubjectAccessReview (for the requester) or SubjectAccessReview (for spec.user)."""
        spec = dict(body.get("spec") or {})
        if kind == "SubjectAccessReview":
            if not spec.get("user") and not spec.get("groups"):
                raise invalid(
                    "SubjectAccessReview",
                    "authorization.k8s.io",
                    "",
                    [
                        Cause(
                            "spec.user",
                            "FieldValueRequired",
                            "Required value: at least one of user or group must be specified",
                        )
                    ],
                )
            subject = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()))
        else:
            subject = requester
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if resource:
            attrs = Attributes(
                subject,
                resource.get("verb", ""),
                True,
                namespace=resource.get("namespace", ""),
                api_group=resource.get("group", ""),
                api_version=resource.get("version", ""),
                resource=resource.get("resource", ""),
                subresource=resource.get("subresource", ""),
                name=resource.get("name", ""),
            )
        elif non_resource:
            attrs = Attributes(subject, non_resource.get("verb", ""), False, path=non_resource.get("path", ""))
        else:
            raise invalid(
                kind,
                "authorization.k8s.io",
                "",
                [
                    Cause(
                        "spec.resourceAttributes",
                        "FieldValueRequired",
                        "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    )
                ],
            )
        decision = self.decide(attrs) if self.enforcing else Decision(True, "")
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return {
            "kind": kind,
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def self_subject_review(self, requester: UserInfo) -> dict[str, Any]:
        """Answer `kubectl auth whoami`."""
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": requester.name, "groups": list(requester.groups)}},
        }


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized", {})
