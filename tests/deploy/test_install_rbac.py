"""`kubectl apply -k deploy/base` on the RBAC sandbox, then the controller as that ServiceAccount (a token
from the TokenRequest API): a canary, a blue/green, a job analysis and an NGINX-routed canary complete
with no 403 anywhere (every router's CRDs installed: their kinds are watched as that ServiceAccount);
without one permission the controller names it and serves the other Rollouts."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from rollouts.main import build_parser
from rollouts.traffic.registry import routed_kinds
from tests.fixtures.bluegreen import bluegreen_manifest, services
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import FORBIDDEN_IN_LOG, ControllerProcess, running_controller
from tests.fixtures.manifests import READY_AFTER, analysis_template, rollout_manifest
from tests.fixtures.rbac import rbac_sandbox_handle, with_token
from tests.fixtures.rollout import given
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import REPO, require_tool
from tests.fixtures.traffic import canary_weight, ingress_manifest, routed_manifests

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

FAST = {READY_AFTER: "0.1s"}
SA_USER = "system:serviceaccount:pyrollouts:pyrollouts"
CONTROLLER_PORT_FLAGS = ("--metrics-port", "--health-port")  # the tests give the controller free ports
ROUTER_CRDS = ("istio.yaml", "smi.yaml", "gateway-api.yaml", "traefik.yaml", "apisix.yaml", "ambassador.yaml",
               "appmesh.yaml")  # fmt: skip


def deployment_flags() -> list[str]:
    """The controller's flags in deploy/base's Deployment that this controller knows (ports aside)."""
    docs = list(yaml.safe_load_all((REPO / "deploy" / "base" / "deployment.yaml").read_text()))
    [container] = docs[0]["spec"]["template"]["spec"]["containers"]
    flags = [a for a in container["args"] if not a.startswith(CONTROLLER_PORT_FLAGS)]
    # A flag another branch adds (say --leader-elect) is in the manifest before this controller knows it.
    _, unknown = build_parser().parse_known_args(["controller", *flags])
    return [a for a in flags if a not in unknown]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """An RBAC sandbox with deploy/base applied by its admin."""
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    with rbac_sandbox_handle(tmp_path_factory.mktemp("rbac"), ready_after=0.1) as handle:
        cluster = Cluster(handle.kubeconfig, kubectl, handle.env())
        cluster.kubectl("apply", "-k", str(REPO / "deploy" / "base"))
        yield handle


@pytest.fixture(scope="module")
def cluster(installed: SandboxHandle) -> Cluster:
    return Cluster(installed.kubeconfig, require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL"), installed.env())


@pytest.fixture(scope="module")
def controller(
    installed: SandboxHandle, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    """`pyrollouts controller` with deploy/base's flags, as the ServiceAccount deploy/base creates."""
    workdir = tmp_path_factory.mktemp("controller")
    token = cluster.kubectl("create", "token", "pyrollouts", "-n", "pyrollouts").stdout.strip()
    kubeconfig = with_token(installed.kubeconfig, workdir / "kubeconfig", token, "pyrollouts")
    env = {**os.environ, "POD_NAMESPACE": "pyrollouts", "POD_NAME": "pyrollouts-test"}
    with running_controller(kubeconfig, env, workdir, deployment_flags()) as proc:
        yield proc


def denials(handle: SandboxHandle) -> list[str]:
    assert handle.threaded.sandbox is not None
    return list(handle.threaded.sandbox.api.denials)


def assert_no_403(handle: SandboxHandle, controller: ControllerProcess) -> None:
    assert handle.threaded.sandbox is not None
    assert handle.threaded.sandbox.api.denial_count == 0, denials(handle)
    logs = controller.logs()
    assert not FORBIDDEN_IN_LOG.search(logs), logs


def served(cluster: Cluster, resource: str) -> bool:
    return cluster.kubectl("get", resource, "-A", check=False).returncode == 0


def test_the_service_account_holds_exactly_what_deploy_base_grants(cluster: Cluster) -> None:
    def can_i(*args: str) -> str:
        return cluster.kubectl("auth", "can-i", *args, "--as", SA_USER, check=False).stdout.strip()

    assert can_i("delete", "rollouts.pyrollouts.io", "-n", "any") == "no"
    assert can_i("patch", "rollouts.pyrollouts.io", "--subresource=status", "-n", "any") == "yes"
    assert can_i("create", "replicasets.apps", "-n", "any") == "yes"
    assert can_i("delete", "services", "-n", "any") == "yes"  # an ended experiment's Services
    assert can_i("update", "services", "-n", "any") == "no"
    assert can_i("delete", "experiments.pyrollouts.io", "-n", "any") == "no"
    assert can_i("patch", "experiments.pyrollouts.io", "--subresource=status", "-n", "any") == "yes"
    assert can_i("get", "secrets", "-n", "any") == "yes"
    assert can_i("list", "secrets", "-n", "any") == "no"
    assert can_i("update", "leases.coordination.k8s.io", "-n", "pyrollouts") == "yes"
    assert can_i("update", "leases.coordination.k8s.io", "-n", "default") == "no"
    # every routing kind is watched (get, list, watch) once its CRD is served, each by its API group
    for crds in ROUTER_CRDS:
        cluster.kubectl("apply", "-f", str(REPO / "examples" / "crds" / crds))
    for kind in routed_kinds():
        resource = f"{kind.plural}.{kind.api_version.rpartition('/')[0]}"
        cluster.wait(f"{resource} to be served", functools.partial(served, cluster, resource))
        assert [can_i(verb, resource, "-n", "any") for verb in ("get", "list", "watch")] == ["yes"] * 3, resource
    assert can_i("patch", "virtualservices.appmesh.k8s.aws", "-n", "any") == "no"  # only read: it names the router


def test_canary_with_services(installed: SandboxHandle, cluster: Cluster, controller: ControllerProcess) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    ns = given(cluster, "canary")
    rollout = ns.rollout(
        rollout_manifest("web", 2, steps, annotations=FAST, canaryService="web-canary", stableService="web-stable"),
        *[{"apiVersion": "v1", "kind": "Service", "metadata": {"name": n},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}} for n in ("web-canary", "web-stable")],
    )  # fmt: skip
    rollout.apply().wait_healthy(timeout=30)
    rollout.set_image("nginx:2").wait_paused(timeout=30)
    rollout.promote().wait_healthy(timeout=30)
    assert rollout.sizes() == {"nginx:2": 2}
    assert_no_403(installed, controller)


def test_blue_green(installed: SandboxHandle, cluster: Cluster, controller: ControllerProcess) -> None:
    ns = given(cluster, "bluegreen")
    rollout = ns.rollout(bluegreen_manifest(annotations=FAST, scaleDownDelaySeconds=1), *services())
    rollout.apply().wait_healthy(timeout=30)
    rollout.set_image("nginx:2").wait_healthy(timeout=30)
    rollout.wait_sizes({"nginx:2": 2}, timeout=30)
    assert ns.selected("web-active") == rollout.hash_of("nginx:2")
    assert_no_403(installed, controller)


def job_metric() -> dict[str, Any]:
    return {"name": "smoke", "provider": {"job": {"spec": {"backoffLimit": 0, "template": {
        "metadata": {"annotations": FAST},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox", "args": ["true"]}]},
    }}}}}  # fmt: skip


def test_job_analysis(installed: SandboxHandle, cluster: Cluster, controller: ControllerProcess) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "smoke"}], "args": [{"name": "x", "value": "1"}]}},
    ]
    ns = given(cluster, "analysis")
    rollout = ns.rollout(
        rollout_manifest("web", 2, steps, annotations=FAST), analysis_template("smoke", "x", job_metric())
    )
    rollout.apply().wait_healthy(timeout=30)
    rollout.set_image("nginx:2").wait_healthy(timeout=60)
    runs = ns.analysis_runs()
    assert runs and all(r["status"]["phase"] == "Successful" for r in runs.values()), runs
    assert_no_403(installed, controller)


def test_nginx_routed_canary(installed: SandboxHandle, cluster: Cluster, controller: ControllerProcess) -> None:
    routing = {"nginx": {"stableIngress": "web"}}
    ns = given(cluster, "routed")
    objects = [
        ingress_manifest("web", "web-stable"),
        *routed_manifests(routing, [{"setWeight": 20}, {"pause": {}}], replicas=2),
    ]
    rollout = ns.rollout_of(objects)
    rollout.apply().wait_healthy(timeout=30)
    rollout.set_image("nginx:2").wait_paused(timeout=30)
    assert canary_weight(ns) == 20
    rollout.promote().wait_healthy(timeout=30)
    assert_no_403(installed, controller)


def test_a_missing_permission_is_named_and_the_rest_is_served(
    installed: SandboxHandle, cluster: Cluster, controller: ControllerProcess
) -> None:
    role = yaml.safe_load((REPO / "deploy" / "base" / "clusterrole.yaml").read_text())
    [services_rule] = [r for r in role["rules"] if r["resources"] == ["services"]]
    services_rule["verbs"].remove("patch")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    try:
        blocked = given(cluster, "blocked").rollout(bluegreen_manifest(annotations=FAST), *services())
        blocked.apply()
        # The first Service the blue/green switches is the preview one.
        want = (
            f'services "web-preview" is forbidden: User "{SA_USER}" cannot patch resource "services" in API group "" '
            f'in the namespace "{blocked.ns}"'
        )
        blocked.wait_for(
            "an Event naming the missing permission",
            lambda: any(r == "MissingPermission" and want in m for r, m in blocked.events()),
            timeout=30,
        )
        assert want in controller.logs()

        served = given(cluster, "served").rollout(rollout_manifest("web", 2, [{"setWeight": 50}], annotations=FAST))
        served.apply().wait_healthy(timeout=30)
        served.set_image("nginx:2").wait_healthy(timeout=30)
        assert served.sizes() == {"nginx:2": 2}
        assert all(SA_USER in d and '"services"' in d for d in denials(installed))
    finally:  # the rule back, for whatever runs next on this sandbox (this test runs last in the file)
        cluster.kubectl("apply", "-f", str(REPO / "deploy" / "base" / "clusterrole.yaml"))
