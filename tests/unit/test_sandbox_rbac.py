"""The sandbox's RBAC evaluation (rollouts.sandbox.rbac): request attributes, rule matching, bindings,
and the API server's wording of a denial."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.sandbox.rbac import (
    Attributes,
    Policy,
    Rule,
    UserInfo,
    authorize,
    forbidden_message,
    request_attributes,
    service_account_user,
)

SA = service_account_user("ns", "sa")


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "pods", "", "", "ns")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "pods", "", "", "ns")),
        ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "pods", "", "p", "ns")),
        ("DELETE", "/api/v1/namespaces/ns/pods", {}, ("deletecollection", "", "pods", "", "", "ns")),
        (
            "PATCH",
            "/apis/pyrollouts.io/v1alpha1/namespaces/ns/rollouts/web/status",
            {},
            ("patch", "pyrollouts.io", "rollouts", "status", "web", "ns"),
        ),
        (
            "POST",
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            {},
            ("create", "", "serviceaccounts", "token", "sa", "ns"),
        ),
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
        ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "namespaces", "finalize", "ns", "ns")),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "apps", "deployments", "", "", "")),
        (
            "GET",
            "/api/v1/namespaces/ns/pods",
            {"fieldSelector": "metadata.name=p"},
            ("list", "", "pods", "", "p", "ns"),
        ),
    ],
)
def test_request_attributes_of_resource_paths(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    attrs = request_attributes(SA, method, path, query)
    assert attrs.resource_request
    assert (attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.name, attrs.namespace) == expected


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/healthz", "/metrics"])
def test_discovery_and_other_paths_are_non_resource_requests(path: str) -> None:
    attrs = request_attributes(SA, "GET", path, {})
    assert not attrs.resource_request and attrs.verb == "get" and attrs.path == path


def _attrs(verb: str, resource: str, subresource: str = "", name: str = "", group: str = "") -> Attributes:
    return Attributes(
        SA, verb, True, namespace="ns", api_group=group, resource=resource, subresource=subresource, name=name
    )


def test_rule_matches_group_resource_subresource_verb_and_name() -> None:
    rule = Rule.from_manifest(
        {"apiGroups": ["pyrollouts.io"], "resources": ["rollouts/status"], "verbs": ["patch"], "resourceNames": ["web"]}
    )
    assert rule.allows(_attrs("patch", "rollouts", "status", "web", "pyrollouts.io"))
    assert not rule.allows(_attrs("patch", "rollouts", "", "web", "pyrollouts.io"))  # the object, not its status
    assert not rule.allows(_attrs("patch", "rollouts", "status", "api", "pyrollouts.io"))  # another name
    assert not rule.allows(_attrs("update", "rollouts", "status", "web", "pyrollouts.io"))
    assert not rule.allows(_attrs("patch", "rollouts", "status", "web", "argoproj.io"))


def test_wildcards_and_star_slash_subresource() -> None:
    assert Rule(("*",), ("*",), ("*",)).allows(_attrs("delete", "pods", name="p"))
    assert Rule(("get",), ("",), ("*/scale",)).allows(_attrs("get", "replicasets", "scale", "rs"))
    assert not Rule(("get",), ("",), ("*/scale",)).allows(_attrs("get", "replicasets", "", "rs"))


def test_non_resource_urls_match_exactly_or_by_trailing_star() -> None:
    rule = Rule(("get",), non_resource_urls=("/healthz", "/apis/*"))
    assert rule.allows(Attributes(SA, "get", False, path="/healthz"))
    assert rule.allows(Attributes(SA, "get", False, path="/apis/apps/v1"))
    assert not rule.allows(Attributes(SA, "get", False, path="/healthz/ping"))
    assert not rule.allows(Attributes(SA, "post", False, path="/healthz"))
    assert not rule.allows(_attrs("get", "pods"))  # resource requests need resource rules


def _binding(kind: str, name: str, role_kind: str, role: str, subject: dict[str, Any], ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": meta, "roleRef": {"kind": role_kind, "name": role}, "subjects": [subject]}


READ_PODS = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
SA_SUBJECT = {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}


def test_role_binding_grants_only_in_its_namespace() -> None:
    policy = Policy(
        roles={("ns", "reader"): READ_PODS},
        role_bindings=[_binding("RoleBinding", "rb", "Role", "reader", SA_SUBJECT, "ns")],
    )
    allowed = authorize(policy, _attrs("list", "pods"))
    assert allowed.allowed
    assert allowed.reason == 'RBAC: allowed by RoleBinding "rb/ns" of Role "reader" to ServiceAccount "sa/ns"'
    other = Attributes(SA, "list", True, namespace="other", resource="pods")
    assert not authorize(policy, other).allowed
    assert not authorize(policy, _attrs("delete", "pods", name="p")).allowed


def test_cluster_role_through_a_role_binding_is_scoped_to_the_namespace() -> None:
    policy = Policy(
        cluster_roles={"reader": READ_PODS},
        role_bindings=[_binding("RoleBinding", "rb", "ClusterRole", "reader", SA_SUBJECT, "ns")],
    )
    assert authorize(policy, _attrs("get", "pods", name="p")).allowed
    assert not authorize(policy, Attributes(SA, "list", True, resource="pods")).allowed  # cluster scope


def test_cluster_role_binding_by_group_and_user() -> None:
    policy = Policy(
        cluster_roles={"reader": READ_PODS},
        cluster_role_bindings=[
            _binding("ClusterRoleBinding", "by-group", "ClusterRole", "reader", {"kind": "Group", "name": "readers"})
        ],
    )
    reader = UserInfo("jane", ("readers",))
    assert authorize(policy, Attributes(reader, "list", True, resource="pods")).allowed
    assert not authorize(policy, Attributes(UserInfo("joe"), "list", True, resource="pods")).allowed


def test_superusers_need_no_binding() -> None:
    admin = UserInfo("admin", ("system:masters",))
    assert authorize(Policy(), Attributes(admin, "delete", True, resource="nodes")).allowed


def test_a_binding_to_a_missing_role_is_named_in_the_denial() -> None:
    policy = Policy(role_bindings=[_binding("RoleBinding", "rb", "Role", "gone", SA_SUBJECT, "ns")])
    decision = authorize(policy, _attrs("list", "pods"))
    assert not decision.allowed
    assert decision.reason == 'RBAC: role.rbac.authorization.k8s.io "gone" not found'


def test_forbidden_message_in_the_api_servers_words() -> None:
    status_patch = Attributes(SA, "patch", True, namespace="ns", api_group="pyrollouts.io", resource="rollouts",
                              subresource="status", name="web")  # fmt: skip
    assert forbidden_message(status_patch) == (
        'rollouts.pyrollouts.io "web" is forbidden: User "system:serviceaccount:ns:sa" cannot patch resource '
        '"rollouts/status" in API group "pyrollouts.io" in the namespace "ns"'
    )
    cluster_list = Attributes(SA, "list", True, resource="namespaces")
    assert forbidden_message(cluster_list) == (
        'namespaces is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "namespaces" in API '
        'group "" at the cluster scope'
    )
    path = Attributes(SA, "get", False, path="/metrics")
    assert forbidden_message(path) == 'forbidden: User "system:serviceaccount:ns:sa" cannot get path "/metrics"'
