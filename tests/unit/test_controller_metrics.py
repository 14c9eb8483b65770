"""The controller's /metrics as Argo labels them: rollout phase from the conditions, strategy and router,
provider types, and request labels from API paths (the scenarios in tests/scenarios/test_controller_metrics.py
scrape the whole set with Prometheus)."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.controller.metrics import ANALYSIS_RUN, ROLLOUT, ControllerMetrics, request_labels
from rollouts.controller.state_metrics import provider_type, rollout_phase, strategy_and_router

CLUSTER_TEMPLATE = "/apis/pyrollouts.io/v1alpha1/clusteranalysistemplates/t"


def rollout(*conditions: tuple[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "web"},
        "spec": spec,
        "status": {"conditions": [{"type": t, "reason": r, "status": "True"} for t, r in conditions]},
    }


@pytest.mark.parametrize(
    ("conditions", "phase"),
    [
        ((), "Progressing"),
        ((("Progressing", "ReplicaSetUpdated"),), "Progressing"),
        ((("Progressing", "NewReplicaSetAvailable"),), "Completed"),
        ((("Progressing", "RolloutPaused"),), "Paused"),
        ((("Progressing", "ReplicaSetCreateError"),), "Error"),
        ((("Progressing", "ProgressDeadlineExceeded"),), "Timeout"),
        ((("Progressing", "RolloutAborted"),), "Abort"),
        ((("Progressing", "NewReplicaSetAvailable"), ("InvalidSpec", "InvalidSpec")), "InvalidSpec"),
    ],
)
def test_rollout_phase_is_argos_reading_of_the_progressing_condition(
    conditions: tuple[tuple[str, str], ...], phase: str
) -> None:
    assert rollout_phase(rollout(*conditions)) == phase


def test_strategy_and_traffic_router_labels() -> None:
    assert strategy_and_router(rollout(strategy={"blueGreen": {}})) == ("blueGreen", "")
    assert strategy_and_router(rollout(strategy={})) == ("none", "")
    assert strategy_and_router(rollout(strategy={"canary": {}})) == ("canary", "")
    routed: dict[str, Any] = {"canary": {"trafficRouting": {"nginx": {}, "smi": {}}}}
    assert strategy_and_router(rollout(strategy=routed)) == ("canary", "SMI")  # Argo: the last it checks wins
    plugin: dict[str, Any] = {"canary": {"trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {}}}}}
    assert strategy_and_router(rollout(strategy=plugin)) == ("canary", "")


def test_provider_types_are_argos_names() -> None:
    assert provider_type({"provider": {"prometheus": {}}}) == "Prometheus"
    assert provider_type({"provider": {"plugin": {"x": {}}}}) == "RPCPlugin"
    assert provider_type({"provider": {"judge": {}}}) == "judge"  # ours: Argo has no such provider
    assert provider_type({}) == "Unknown Provider"


@pytest.mark.parametrize(
    ("method", "path", "labels"),
    [
        ("PATCH", "/apis/pyrollouts.io/v1alpha1/namespaces/d/rollouts/web/status", ("rollouts", "d", "web", "Patch")),
        ("GET", "/apis/pyrollouts.io/v1alpha1/namespaces/d/rollouts", ("rollouts", "d", "N/A", "List")),
        (
            "GET",
            CLUSTER_TEMPLATE,
            ("clusteranalysistemplates", "", "t", "Get"),
        ),
        ("POST", "/api/v1/namespaces/d/events", ("events", "d", "N/A", "Create")),
        ("PUT", "/apis/apps/v1/namespaces/d/replicasets/web-1", ("replicasets", "d", "N/A", "Update")),
        ("DELETE", "/api/v1/namespaces/d/pods/p", ("pods", "d", "p", "Delete")),
        ("GET", "/version", ("Unknown", "Unknown", "Unknown", "Unknown")),
    ],
)
def test_request_labels(method: str, path: str, labels: tuple[str, str, str, str]) -> None:
    assert request_labels(method, path) == labels


def test_forget_removes_the_objects_series_and_keeps_the_others() -> None:
    metrics = ControllerMetrics(list, list, lambda: True)
    for name in ("web", "other"):
        metrics.observe_reconcile(ROLLOUT, "ns", name, 0.02, failed=True)
        metrics.event("ns", name, "Normal", "RolloutUpdated")
        metrics.response("PATCH", f"/apis/pyrollouts.io/v1alpha1/namespaces/ns/rollouts/{name}", 200)
    metrics.observe_reconcile(ANALYSIS_RUN, "ns", "web", 0.02)
    metrics.forget(ROLLOUT, "ns", "web")
    text = metrics.render()
    assert 'analysis_run_reconcile_count{name="web",namespace="ns"} 1.0' in text  # not the Rollout's
    rollout_series = [line for line in text.splitlines() if 'name="web"' in line and "analysis_run" not in line]
    assert rollout_series == []
    for family in ("rollout_reconcile_count", "rollout_reconcile_error", "rollout_events_total"):
        assert f'{family}{{name="other"' in text, family


def test_analysis_run_metric_phases_with_dry_run_and_no_result_yet() -> None:
    run = {
        "metadata": {"namespace": "ns", "name": "web-1"},
        "spec": {
            "metrics": [{"name": "up", "provider": {"web": {}}}, {"name": "errors", "provider": {"prometheus": {}}}],
            "dryRun": [{"metricName": "err.*"}],
        },
        "status": {"phase": "Running", "metricResults": [{"name": "up", "phase": "Successful"}]},
    }
    text = ControllerMetrics(list, lambda: [run], lambda: True).render()
    current = {line.split("{", 1)[1] for line in text.splitlines() if line.startswith("analysis_run_metric_phase{")}
    current = {labels for labels in current if labels.endswith("} 1.0")}
    assert current == {
        'dry_run="false",metric="up",name="web-1",namespace="ns",phase="Successful",type="Web"} 1.0',
        'dry_run="true",metric="errors",name="web-1",namespace="ns",phase="Pending",type="Prometheus"} 1.0',
    }
    assert 'analysis_run_info{name="web-1",namespace="ns",phase="Running"} 1.0' in text
