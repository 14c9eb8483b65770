"""Argo's `workloadRef` without `spec.selector`: the Rollout takes the referenced Deployment's selector
(Argo's own workloadRef examples have none)."""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import deployment, rollout_manifest
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl


def test_workload_ref_without_a_selector_takes_the_deployments(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    namespace = given(cluster, "workload-selector")
    namespace.apply(deployment("legacy", replicas=2, image="nginx:1"))
    ro = rollout_manifest("legacy", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}])
    del ro["spec"]["template"], ro["spec"]["selector"]
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy"}
    rollout = namespace.rollout(ro).apply().wait_healthy().wait_sizes({"nginx:1": 2})
    assert rollout.status["selector"] == "app=legacy"
    assert rollout.scale_subresource()["status"]["selector"] == "app=legacy"
    [rs] = rollout.replicasets()
    assert rs["spec"]["selector"]["matchLabels"]["app"] == "legacy"

    namespace.patch(
        "deployment",
        "legacy",
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
        patch_type="json",
    )
    rollout.wait_paused().wait_sizes({"nginx:1": 1, "nginx:2": 1})
    rollout.promote().wait_healthy().wait_sizes({"nginx:2": 2})


def test_workload_ref_to_a_missing_deployment_names_it(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "workload-missing")
    ro = rollout_manifest("legacy", replicas=2)
    del ro["spec"]["template"], ro["spec"]["selector"]
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy"}
    message = namespace.rollout(ro).apply().wait_degraded().seen["message"]
    assert 'Deployment "legacy" not found in namespace' in message, message
    assert "spec.selector" not in message, message
