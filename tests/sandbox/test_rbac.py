"""The RBAC sandbox through the real kubectl: TokenRequest, `auth can-i`, the 403 Status, impersonation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.rbac import https_client, rbac_sandbox_handle, with_token
from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import REPO, require_tool

pytestmark = pytest.mark.kubectl

NS = "team"
SA_USER = f"system:serviceaccount:{NS}:deployer"

POLICY = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: deployer, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: rollouts-editor, namespace: {NS}}}
rules:
- apiGroups: [pyrollouts.io]
  resources: [rollouts]
  verbs: [get, list, watch, create, patch]
- apiGroups: [pyrollouts.io]
  resources: [rollouts/status]
  verbs: [get]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
  resourceNames: [settings]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: deployer-edits-rollouts, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: rollouts-editor}}
subjects:
- {{kind: ServiceAccount, name: deployer, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: metrics-reader}}
rules:
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: deployer-reads-metrics}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}}
subjects:
- {{kind: ServiceAccount, name: deployer, namespace: {NS}}}
"""


ROLLOUT = {
    "apiVersion": "pyrollouts.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        },
        "strategy": {"canary": {"steps": [{"pause": {}}]}},
    },
}


@pytest.fixture(scope="module")
def rbac_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with rbac_sandbox_handle(tmp_path_factory.mktemp("rbac")) as handle:
        yield handle


@pytest.fixture(scope="module")
def admin(rbac_sandbox: SandboxHandle) -> Kubectl:
    kubectl = Kubectl(require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL"), rbac_sandbox)
    kubectl.run("apply", "-f", str(REPO / "crds"))
    kubectl.run("apply", "-f", "-", input=POLICY)
    return kubectl


@pytest.fixture(scope="module")
def token(admin: Kubectl) -> str:
    return admin.run("create", "token", "deployer", "-n", NS).stdout.strip()


@pytest.fixture(scope="module")
def deployer(admin: Kubectl, token: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl presenting the ServiceAccount's token."""
    workdir = tmp_path_factory.mktemp("deployer")
    kubeconfig = with_token(admin.handle.kubeconfig, workdir / "kubeconfig", token, NS)
    return Kubectl(admin.binary, SandboxHandle(admin.handle.threaded, kubeconfig, workdir / "kube-cache"))


def can_i(kubectl: Kubectl, *args: str) -> str:
    result = kubectl.run("auth", "can-i", *args, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.strip()


def test_the_kubeconfig_user_is_all_powerful(admin: Kubectl) -> None:
    assert can_i(admin, "delete", "nodes") == "yes"
    assert can_i(admin, "*", "*", "--all-namespaces") == "yes"
    whoami = admin.run("auth", "whoami", "-o", "json").stdout
    assert "system:masters" in json.loads(whoami)["status"]["userInfo"]["groups"]


def test_can_i_as_a_service_account(admin: Kubectl) -> None:
    as_sa = ("--as", SA_USER, "-n", NS)
    assert can_i(admin, "patch", "rollouts.pyrollouts.io", *as_sa) == "yes"
    assert can_i(admin, "delete", "rollouts.pyrollouts.io", *as_sa) == "no"
    assert can_i(admin, "get", "rollouts.pyrollouts.io", "--subresource=status", *as_sa) == "yes"
    assert can_i(admin, "patch", "rollouts.pyrollouts.io", "--subresource=status", *as_sa) == "no"
    assert can_i(admin, "get", "configmap/settings", *as_sa) == "yes"
    assert can_i(admin, "get", "configmap/other", *as_sa) == "no"
    assert can_i(admin, "list", "rollouts.pyrollouts.io", "--as", SA_USER, "-n", "default") == "no"
    assert can_i(admin, "get", "/metrics", "--as", SA_USER) == "yes"
    assert can_i(admin, "get", "/debug", "--as", SA_USER) == "no"


def test_the_token_works_within_its_role(deployer: Kubectl) -> None:
    assert deployer.run("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == SA_USER
    assert "No resources found" in deployer.run("get", "rollouts").stderr
    assert can_i(deployer, "create", "rollouts.pyrollouts.io") == "yes"
    assert can_i(deployer, "create", "deployments") == "no"


def test_a_denied_write_answers_the_api_servers_forbidden_status(
    admin: Kubectl, deployer: Kubectl, rbac_sandbox: SandboxHandle, token: str
) -> None:
    name = "web"
    admin.run("apply", "-n", NS, "-f", "-", input=yaml.safe_dump(ROLLOUT))
    with https_client(rbac_sandbox, token) as client:
        response = client.patch(
            f"/apis/pyrollouts.io/v1alpha1/namespaces/{NS}/rollouts/{name}/status",
            content=b'{"status":{"message":"x"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert response.status_code == 403
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'rollouts.pyrollouts.io "{name}" is forbidden: User "{SA_USER}" cannot patch resource '
        f'"rollouts/status" in API group "pyrollouts.io" in the namespace "{NS}"',
        "reason": "Forbidden",
        "details": {"name": name, "group": "pyrollouts.io", "kind": "rollouts"},
        "code": 403,
    }
    result = deployer.run("delete", "rollout", name, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): rollouts.pyrollouts.io "{name}" is forbidden: User "{SA_USER}" cannot '
        f'delete resource "rollouts" in API group "pyrollouts.io" in the namespace "{NS}"'
    )


def test_an_unknown_token_is_unauthorized(rbac_sandbox: SandboxHandle, admin: Kubectl) -> None:
    with https_client(rbac_sandbox, "not-a-token") as client:
        response = client.get("/api/v1/namespaces")
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"
    result = admin.run("get", "pods", "--token", "not-a-token", check=False)
    assert "You must be logged in to the server (Unauthorized)" in result.stderr


def test_tokens_of_a_deleted_service_account_stop_working(admin: Kubectl, rbac_sandbox: SandboxHandle) -> None:
    admin.run("create", "serviceaccount", "short-lived", "-n", NS)
    token = admin.run("create", "token", "short-lived", "-n", NS, "--duration", "10m").stdout.strip()
    with https_client(rbac_sandbox, token) as client:
        assert client.get("/api").status_code == 200
        admin.run("delete", "serviceaccount", "short-lived", "-n", NS)
        assert client.get("/api").status_code == 401
    result = admin.run("create", "token", "missing", "-n", NS, check=False)
    assert 'serviceaccounts "missing" not found' in result.stderr


def test_impersonation_is_checked_against_the_impersonate_verb(admin: Kubectl, deployer: Kubectl) -> None:
    result = deployer.run("get", "rollouts", "--as", "jane", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f'users "jane" is forbidden: User "{SA_USER}" cannot impersonate resource "users" in API group "" at the '
        "cluster scope"
    )
    admin.run(
        "create", "clusterrole", "impersonate-jane", "--verb=impersonate", "--resource=users",
        "--resource-name=jane",
    )  # fmt: skip
    admin.run(
        "create", "clusterrolebinding", "deployer-as-jane", "--clusterrole=impersonate-jane",
        f"--serviceaccount={NS}:deployer",
    )  # fmt: skip
    whoami = deployer.run("auth", "whoami", "--as", "jane", "-o", "json").stdout
    assert json.loads(whoami)["status"]["userInfo"]["username"] == "jane"
    assert can_i(deployer, "list", "rollouts.pyrollouts.io", "--as", "jane") == "no"  # jane has no role
    group = deployer.run("get", "rollouts", "--as", "jane", "--as-group", "admins", check=False)
    assert 'groups "admins" is forbidden' in group.stderr


def test_subject_access_review_for_another_user(admin: Kubectl) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SA_USER,
            "resourceAttributes": {"namespace": NS, "verb": "watch", "group": "pyrollouts.io", "resource": "rollouts"},
        },
    }
    answer = json.loads(admin.run("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert answer["status"]["allowed"] is True
    assert answer["status"]["reason"] == (
        f'RBAC: allowed by RoleBinding "deployer-edits-rollouts/{NS}" of Role "rollouts-editor" to '
        f'ServiceAccount "deployer/{NS}"'
    )


def test_the_open_sandbox_still_allows_everything(kubectl: Kubectl) -> None:
    assert can_i(kubectl, "delete", "nodes", "--as", "nobody") == "yes"


def test_cli_flag_starts_an_https_rbac_sandbox(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--authorization", "rbac", "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "sandbox API server at https://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
        env = {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
        no = subprocess.run(
            [kubectl, "auth", "can-i", "list", "pods", "--as", "system:serviceaccount:default:default"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert (no.returncode, no.stdout.strip()) == (1, "no"), no.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_token_requests_are_validated_and_denials_are_listed(admin: Kubectl, rbac_sandbox: SandboxHandle) -> None:
    short = admin.run("create", "token", "deployer", "-n", NS, "--duration", "5m", check=False)
    assert short.returncode == 1
    assert "may not specify a duration less than 10 minutes" in short.stderr
    with https_client(rbac_sandbox, "not-a-token") as stranger:
        assert stranger.get("/api").status_code == 401
    with https_client(rbac_sandbox) as client:
        answer = client.get("/sandbox/denials").json()
    assert answer["count"] >= len(answer["messages"]) > 0
    assert answer["messages"][-1] == "Unauthorized"
