"""Step plugins (Argo's `plugin:` canary step) through the entry point group `pyrollouts.step_plugins`: this
module's controller runs with the example plugin of tests/fixtures/step_plugin_example installed on its
path (a package and its .dist-info, as `pip install` leaves them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers
from tests.fixtures.manifests import Step, rollout_manifest
from tests.fixtures.rollout import given
from tests.fixtures.step_plugin_example import ENTRY_POINT, install

pytestmark = [pytest.mark.kubectl, runs_own_controllers]


@pytest.fixture(scope="module")
def controller(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    site = install(tmp_path_factory.mktemp("site"))
    paths = [str(site), cluster.env.get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")]
    env = {**cluster.env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with running_controller(cluster.kubeconfig, env, tmp_path_factory.mktemp("controller")) as proc:
        yield proc


def plugin_steps(**config: Any) -> list[Step]:
    return [{"setWeight": 50}, {"plugin": {"name": ENTRY_POINT, "config": config}}, {"pause": {}}]


def test_a_plugin_step_runs_until_its_plugin_succeeds(cluster: Cluster, controller: ControllerProcess) -> None:
    namespace = given(cluster, "step-plugin")
    rollout = namespace.rollout(rollout_manifest("web", replicas=2, steps=plugin_steps(calls=3)))
    rollout.apply().wait_healthy()
    status = rollout.set_image("nginx:2").wait_status(
        "the pause after the plugin step", lambda st: st.get("currentStepIndex") == 2
    ).wait_paused(step=2).seen
    [entry] = status["canary"]["stepPluginStatuses"]
    assert (entry["index"], entry["name"], entry["phase"], entry["operation"]) == (1, "example", "Successful", "Run")
    assert entry["status"] == {"calls": 3} and entry["executions"] == 3
    assert entry["message"] == "web: done after 3 calls"
    rollout.wait_event("RolloutStepCompleted", "Rollout step 2/3 completed (plugin)")
    rollout.promote().wait_healthy().wait_sizes({"nginx:2": 2})


def test_a_failed_plugin_step_aborts_and_the_plugin_undoes_it(cluster: Cluster, controller: ControllerProcess) -> None:
    namespace = given(cluster, "step-plugin-fail")
    rollout = namespace.rollout(rollout_manifest("web", replicas=2, steps=plugin_steps(fail="smoke test red")))
    rollout.apply().wait_healthy()
    message = rollout.set_image("nginx:2").wait_degraded(timeout=30).seen["message"]
    aborted = 'RolloutAborted: Rollout aborted update to revision 2: Step plugin "example" failed: smoke test red'
    assert message == aborted
    rollout.wait_sizes({"nginx:1": 2}, timeout=30)
    [entry] = rollout.wait_status(
        "the plugin's abort", lambda st: st["canary"]["stepPluginStatuses"][0].get("operation") == "Abort"
    ).status["canary"]["stepPluginStatuses"]
    assert entry["status"] == {"aborted": True} and entry["message"] == "undone"


def test_a_plugin_that_is_not_installed_is_invalid_spec(cluster: Cluster, controller: ControllerProcess) -> None:
    namespace = given(cluster, "step-plugin-missing")
    steps: list[Step] = [{"plugin": {"name": "nope"}}]
    rollout = namespace.rollout(rollout_manifest("web", replicas=1, steps=steps))
    message = rollout.apply().wait_degraded().seen["message"]
    field = "spec.strategy.canary.steps[0].plugin.name"
    assert f'{field}: Invalid value: "nope": no step plugin "nope" is installed' in message
    assert "example" in message  # the installed ones are named
