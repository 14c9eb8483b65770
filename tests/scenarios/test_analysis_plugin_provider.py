"""Metric provider plugins end to end: the sample plugin (examples/metric-plugin) installed beside a
controller (a dist-info on its PYTHONPATH) measures AnalysisRuns written as Argo's ``provider.plugin``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.fixtures.analysis_runs import events, metric_result, run_manifest, template_manifest, wait_done
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers
from tests.fixtures.metric_plugin import PLUGIN_NAME, PLUGIN_SOURCE, install_sample_plugin

pytestmark = runs_own_controllers


@pytest.fixture(scope="module")
def controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    site = install_sample_plugin(tmp_path_factory.mktemp("plugin") / "site")
    path = os.pathsep.join(p for p in (str(site), cluster.env.get("PYTHONPATH", "")) if p)
    with running_controller(cluster.kubeconfig, {**cluster.env, "PYTHONPATH": path},
                            tmp_path_factory.mktemp("controller")) as proc:
        yield proc


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess) -> str:
    return cluster.new_namespace("plug")


def plugin_metric(name: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"plugin": {PLUGIN_NAME: config}}, **extra}


def test_the_example_template_runs_with_the_installed_plugin(cluster: Cluster, ns: str) -> None:
    template = yaml.safe_load((PLUGIN_SOURCE / "template.yaml").read_text())
    cluster.apply(ns, template)
    run = run_manifest("from-template", template["spec"]["metrics"], args=[{"name": "level", "value": "0.25"}])
    run["spec"]["metrics"][0].update(interval="1s", count=2)
    cluster.apply(ns, run)
    done = wait_done(cluster, ns, "from-template")
    assert done["status"]["phase"] == "Successful", done["status"]
    measurements = metric_result(done, "level")["measurements"]
    assert [m["value"] for m in measurements] == ["0.25", "0.25"]
    assert measurements[0]["metadata"] == {"plugin": PLUGIN_NAME}


def test_failure_and_a_plugins_error(cluster: Cluster, ns: str) -> None:
    # A secret argument is substituted at measurement time only, past the plugin's spec check: the plugin
    # raises, and its message reaches the status with the secret value hidden.
    cluster.kubectl("create", "secret", "generic", "level", "-n", ns, "--from-literal=text=lots-of-it")
    metrics = [plugin_metric("high", {"value": "2"}, successCondition="result < 1"),
               plugin_metric("broken", {"value": "{{args.text}}"}, consecutiveErrorLimit=0)]
    args = [{"name": "text", "valueFrom": {"secretKeyRef": {"name": "level", "key": "text"}}}]
    cluster.apply(ns, run_manifest("outcomes", metrics, args=args))
    run = wait_done(cluster, ns, "outcomes")
    assert metric_result(run, "high")["phase"] == "Failed", run["status"]
    assert metric_result(run, "broken")["measurements"][0]["message"] == (
        f"metric provider plugin \"{PLUGIN_NAME}\" failed: ValueError: could not convert string to float: '*****'")


def test_bad_plugin_specs_are_rejected_naming_the_field(cluster: Cluster, ns: str) -> None:
    bad_value = plugin_metric("bad", {"value": "lots"})
    absent = {"name": "absent", "provider": {"plugin": {"example.com/absent": {}}}}
    cluster.apply(ns, template_manifest("plugin-broken", [bad_value]), run_manifest("absent", [absent]))
    run = wait_done(cluster, ns, "absent")
    assert run["status"]["message"].startswith(
        'InvalidSpec: spec.metrics[0].provider.plugin.example.com/absent: plugin "example.com/absent" is not installed')

    def invalid_event() -> str | None:
        for event in events(cluster, ns):
            if event["involvedObject"]["name"] == "plugin-broken" and event["reason"] == "InvalidSpec":
                return str(event["message"])
        return None

    message = cluster.wait("an InvalidSpec Event", invalid_event, 10)
    assert message.startswith(f'spec.metrics[0].provider.plugin.{PLUGIN_NAME}.value: Invalid value: "lots"')
