"""Argo's args, resolved before validation: templated integers and durations in a template's metric
(`failureLimit: "{{args.failure-limit}}"` ...), and a `fieldRef` arg that cannot resolve for a revision
(the AnalysisRun's Error, not the Rollout's InvalidSpec)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.health import HealthHandler, serve_health
from tests.fixtures.manifests import API_VERSION, Manifest, Step, rollout_manifest
from tests.fixtures.rollout import given

pytestmark = pytest.mark.kubectl

TEMPLATED_ARGS = ("failure-limit", "count", "inconclusive-limit", "error-limit", "interval", "delay", "path")


def templated_template(url: str) -> Manifest:
    """Every integer and duration of the metric comes from an arg, as in Argo's examples."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {"name": "templated"},
        "spec": {
            "args": [{"name": name} for name in TEMPLATED_ARGS],
            "metrics": [{
                "name": "up",
                "count": "{{args.count}}",
                "interval": "{{args.interval}}",
                "initialDelay": "{{args.delay}}",
                "failureLimit": "{{args.failure-limit}}",
                "inconclusiveLimit": "{{args.inconclusive-limit}}",
                "consecutiveErrorLimit": "{{args.error-limit}}",
                "successCondition": "result == true",
                "provider": {"web": {"url": url + "/{{args.path}}", "jsonPath": "{$.ok}"}},
            }],
        },
    }


def step_args(**values: str) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


@pytest.fixture
def health() -> Iterator[tuple[str, type[HealthHandler]]]:
    with serve_health() as served:
        yield served


def test_templated_integers_and_durations_resolve_before_validation(
    cluster: Cluster, controller: ControllerProcess | None, health: tuple[str, type[HealthHandler]]
) -> None:
    url, handler = health
    namespace = given(cluster, "args-templated")
    args = step_args(**{"failure-limit": "1", "count": "3", "inconclusive-limit": "0", "error-limit": "2",
                        "interval": "1s", "delay": "0s", "path": "health"})
    steps: list[Step] = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "templated"}], "args": args}}]
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps), templated_template(url))
    rollout.apply().wait_healthy()

    rollout.set_image("nginx:2").wait_healthy(timeout=40)
    [run] = namespace.analysis_runs().values()
    assert run["status"]["phase"] == "Successful", run["status"]
    result = run["status"]["metricResults"][0]
    assert (result["count"], result["successful"]) == (3, 3)
    assert handler.seen.count("/health") == 3

    # failureLimit 1 from the arg: two failures are needed to fail the metric
    handler.healthy = False
    message = rollout.set_image("nginx:3").wait_degraded(timeout=40).seen["message"]
    assert "failed (2) > failureLimit (1)" in message, message


def test_missing_arg_is_argos_error(cluster: Cluster, controller: ControllerProcess | None,
                                    health: tuple[str, type[HealthHandler]]) -> None:
    url, _ = health
    namespace = given(cluster, "args-missing")
    args = step_args(count="1", interval="1s", delay="0s", path="health")  # no failure-limit...
    steps: list[Step] = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "templated"}], "args": args}}]
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps), templated_template(url))
    message = rollout.apply().wait_degraded().seen["message"]
    assert message.startswith("InvalidSpec: "), message
    assert "args.failure-limit was not resolved" in message, message


def test_field_ref_that_cannot_resolve_is_the_runs_error(
    cluster: Cluster, controller: ControllerProcess | None, health: tuple[str, type[HealthHandler]]
) -> None:
    url, _ = health
    namespace = given(cluster, "args-fieldref")
    template: Manifest = {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {"name": "owner"},
        "spec": {"args": [{"name": "team"}], "metrics": [{
            "name": "up", "successCondition": "result == true",
            "provider": {"web": {"url": url + "/health?team={{args.team}}", "jsonPath": "{$.ok}"}},
        }]},
    }
    team = {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}}
    steps: list[Step] = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "owner"}], "args": [team]}}]
    rollout = namespace.rollout(rollout_manifest("web", replicas=4, steps=steps), template)
    rollout.apply().wait_healthy()  # revision 1 runs no analysis: Healthy, as in Argo

    message = rollout.set_image("nginx:2").wait_degraded(timeout=30).seen["message"]
    assert message.startswith("RolloutAborted: "), message
    [run] = namespace.analysis_runs().values()
    assert run["status"]["phase"] == "Error"
    assert "metadata.labels['team']" in run["status"]["message"], run["status"]
    assert "args.team" in message, message
    rollout.wait_sizes({"nginx:1": 4})
