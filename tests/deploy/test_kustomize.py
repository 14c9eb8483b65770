"""deploy/ as kubectl's built-in kustomize renders it: the base, the namespaced and monitoring overlays."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.schema import load_crds
from rollouts.traffic.registry import routed_kinds
from tests.fixtures.tools import REPO, require_tool

pytestmark = pytest.mark.kubectl

Objects = dict[tuple[str, str], dict[str, Any]]


def render(overlay: str) -> Objects:
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def controller_container(objects: Objects) -> dict[str, Any]:
    [container] = objects[("Deployment", "pyrollouts")]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return [value] if isinstance(value, str) else []


def test_base_installs_the_crds_from_crds_without_a_copy() -> None:
    objects = render("base")
    crds = {name for kind, name in objects if kind == "CustomResourceDefinition"}
    assert crds == {crd["metadata"]["name"] for crd in load_crds()}
    assert not [p for p in (REPO / "deploy").rglob("*.yaml") if "openAPIV3Schema" in p.read_text()]


def test_base_objects_and_namespace() -> None:
    objects = render("base")
    assert {k for k in objects if k[0] != "CustomResourceDefinition"} == {
        ("Namespace", "pyrollouts"),
        ("ServiceAccount", "pyrollouts"),
        ("ClusterRole", "pyrollouts"),
        ("ClusterRoleBinding", "pyrollouts"),
        ("Role", "pyrollouts-leader-election"),
        ("RoleBinding", "pyrollouts-leader-election"),
        ("Deployment", "pyrollouts"),
        ("Service", "pyrollouts-metrics"),
    }
    for (kind, _), obj in objects.items():
        if kind not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "pyrollouts", kind
    [subject] = objects[("ClusterRoleBinding", "pyrollouts")]["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "pyrollouts", "namespace": "pyrollouts"}


def test_the_cluster_role_has_no_wildcards() -> None:
    rules = render("base")[("ClusterRole", "pyrollouts")]["rules"]
    assert rules and not [s for s in all_strings(rules) if "*" in s]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("pyrollouts.io", "rollouts/status", "patch") in granted
    assert ("", "secrets", "list") not in granted  # the web provider GETs the one Secret it names
    leases = render("base")[("Role", "pyrollouts-leader-election")]["rules"]
    assert {"coordination.k8s.io"} <= {g for rule in leases for g in rule["apiGroups"]}


def test_the_deployment_runs_two_hardened_replicas_with_leader_election() -> None:
    objects = render("base")
    deployment = objects[("Deployment", "pyrollouts")]
    pod = deployment["spec"]["template"]["spec"]
    container = controller_container(objects)
    assert deployment["spec"]["replicas"] == 2
    assert "--leader-elect" in container["args"]
    assert pod["serviceAccountName"] == "pyrollouts"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8090, "health": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    service = objects[("Service", "pyrollouts-metrics")]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8090, "targetPort": "metrics"}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_namespaced_overlay_uses_a_role_and_one_namespace() -> None:
    objects = render("namespaced")
    # kopf lists and watches Namespaces and CRDs before it starts; nothing else is cluster-wide
    assert objects[("ClusterRole", "pyrollouts")]["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
    ]
    role = objects[("Role", "pyrollouts")]
    assert role["metadata"]["namespace"] == "pyrollouts"
    assert not [s for s in all_strings(role["rules"]) if "*" in s or s.startswith("cluster")]
    base_rules = render("base")[("ClusterRole", "pyrollouts")]["rules"]
    namespaced = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    cluster_scoped = ("clusteranalysistemplates", "customresourcedefinitions")
    expected = {
        (r, v)
        for rule in base_rules
        for r in rule["resources"]
        for v in rule["verbs"]
        if not r.startswith(cluster_scoped)
    }
    assert namespaced == expected  # the Role keeps step with the ClusterRole
    assert objects[("RoleBinding", "pyrollouts")]["roleRef"]["name"] == "pyrollouts"
    assert "--namespace=$(POD_NAMESPACE)" in controller_container(objects)["args"]


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every rule."""
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.mark.parametrize(
    "overlay, role", [("base", ("ClusterRole", "pyrollouts")), ("namespaced", ("Role", "pyrollouts"))]
)
def test_every_routed_kind_may_be_read_and_watched(overlay: str, role: tuple[str, str]) -> None:
    """The controller watches every kind a built-in router reads (their KINDS): the roles grant get, list and
    watch on each, by API group (App Mesh's virtualservices are not Istio's)."""
    rules = granted(render(overlay)[role]["rules"])
    for kind in routed_kinds():
        group = kind.api_version.rpartition("/")[0]
        for verb in ("get", "list", "watch"):
            assert (group, kind.plural, verb) in rules, (overlay, group, kind.plural, verb)


def test_monitoring_overlay_adds_a_service_monitor_and_alerts(tmp_path: Path) -> None:
    objects = render("monitoring")
    monitor = objects[("ServiceMonitor", "pyrollouts")]
    service = objects[("Service", "pyrollouts-metrics")]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    rule = objects[("PrometheusRule", "pyrollouts")]
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "PyrolloutsControllerDown" in alerts and len(alerts) >= 3


@pytest.mark.prometheus
def test_the_example_alerts_are_valid_prometheus_rules(promtool_binary: str, tmp_path: Path) -> None:
    rule = render("monitoring")[("PrometheusRule", "pyrollouts")]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([promtool_binary, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_argocd_overlay_adds_the_lua_health_checks_to_argocd_cm() -> None:
    """deploy/argocd renders argocd-cm (no hash suffix: Argo CD reads that exact name) with the Lua files."""
    [(key, configmap)] = render("argocd").items()
    assert key == ("ConfigMap", "argocd-cm") and configmap["metadata"]["namespace"] == "argocd"
    assert configmap["data"] == {
        f"resource.customizations.health.pyrollouts.io_{kind}": (REPO / "deploy" / "argocd" / lua).read_text()
        for kind, lua in (
            ("Rollout", "health-rollout.lua"),
            ("AnalysisRun", "health-run.lua"),
            ("Experiment", "health-run.lua"),
        )
    }
