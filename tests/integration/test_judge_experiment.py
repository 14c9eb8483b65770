"""The judge against a fresh baseline from the Rollout's experiment step (Kayenta's recommendation), with a
real Prometheus and the real controller: the step runs a baseline (the stable's pod template) and a canary
side by side, each with a Service the sandbox sends simulated traffic to, and the judge's queries select
the two templates' pods by `{{templates.NAME.podTemplateHash}}` (examples/canary-with-judge-experiment.yaml's
AnalysisTemplate, measured every second here). A canary with three times the baseline's error rate fails
the judge, the Experiment and the update; an identical one passes and the Rollout is promoted."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.prometheus import PrometheusServer
from tests.fixtures.judge_world import judge_sandbox_fixture, judged_by_prometheus_fixture  # noqa: F401  (`sandbox`, `controller`)
from tests.fixtures.manifests import READY_AFTER, rollout_manifest
from tests.fixtures.sandbox import ROLLOUTS_API as API
from tests.fixtures.sandbox import RolloutsApi
from tests.fixtures.tools import REPO
from tests.fixtures.tools import poll as wait

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

EXAMPLE = REPO / "examples" / "canary-with-judge-experiment.yaml"
ERROR_RATE = "sandbox.pyrollouts.io/error-rate"


def example_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """The example's AnalysisTemplate (measuring every second, for a test) and its Rollout."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(EXAMPLE.read_text())}
    template = copy.deepcopy(docs["AnalysisTemplate"])
    (metric,) = template["spec"]["metrics"]
    metric.update(interval="1s", count=90)
    metric["provider"]["judge"].update(alpha=0.001, minRequests=500)
    return template, docs["Rollout"]


def judged_rollout(name: str, example: dict[str, Any]) -> dict[str, Any]:
    """A Rollout whose only step is the example's experiment, without its router: each template's Service
    gets the sandbox's simulated requests directly."""
    (step, *_) = example["spec"]["strategy"]["canary"]["steps"]
    experiment = copy.deepcopy(step["experiment"])
    for template in experiment["templates"]:
        del template["weight"]
        template["service"] = {}
    experiment["scaleDownDelaySeconds"] = 0
    annotations = {READY_AFTER: "0.1s", ERROR_RATE: "0.1"}
    return rollout_manifest(name, 2, [{"experiment": experiment}], "app:1", container="app", annotations=annotations)


class Env(RolloutsApi):
    def experiment(self, name: str) -> dict[str, Any]:
        return self.get(f"{API}/{self.ns}/experiments/{name}")

    def start_canary(self, name: str, error_rate: str) -> dict[str, Any]:
        """A Healthy first version, then a new one with `error_rate`: its experiment, once the judge's run exists."""
        template, example = example_documents()
        self.create(f"{API}/{self.ns}/analysistemplates", template)
        self.create(f"{API}/{self.ns}/rollouts", judged_rollout(name, example))
        self.wait_phase(name, "Healthy", 30)
        self.patch_rollout(
            name,
            [
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "app:2"},
                {"op": "replace", "path": "/spec/template/metadata/annotations/sandbox.pyrollouts.io~1error-rate",
                 "value": error_rate},
            ],
        )  # fmt: skip

        def running() -> dict[str, Any] | None:
            current = (self.status(name).get("canary") or {}).get("currentExperiment")
            exp = self.experiment(str(current)) if current else {}
            runs = (exp.get("status") or {}).get("analysisRuns") or []
            return exp if runs else None

        return wait("the experiment's judge run", running, 60)

    def finished_experiment(self, name: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            exp = self.experiment(name)
            return exp if (exp.get("status") or {}).get("phase") in ("Successful", "Failed", "Error") else None

        return wait(f"experiment {name} to end", done, 90, interval=0.5)

    def judge_run(self, experiment: dict[str, Any]) -> dict[str, Any]:
        return self.run(f"{experiment['metadata']['name']}-judge")


@pytest.fixture
def env(sandbox: ThreadedSandbox, controller: PrometheusServer, request: pytest.FixtureRequest) -> Iterator[Env]:
    ns = f"judge-exp-{request.node.name.removeprefix('test_')[:20].replace('_', '-')}".rstrip("-")
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        env = Env(client, ns)
        env.new_namespace()
        yield env


def hashes(experiment: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["podTemplateHash"] for t in experiment["status"]["templateStatuses"]}


def test_the_judge_fails_a_canary_against_its_fresh_baseline(env: Env) -> None:
    exp = env.start_canary("worse", "0.3")
    name = exp["metadata"]["name"]
    run = env.judge_run(exp)
    # the judge compares the experiment's two templates, not the Rollout's stable ReplicaSet
    args = {a["name"]: a.get("value") for a in run["spec"]["args"]}
    assert args == {"canary-hash": hashes(exp)["canary"], "baseline-hash": hashes(exp)["baseline"]}
    st = env.status("worse")
    assert args["baseline-hash"] != st["stableRS"] and args["canary-hash"] != st["currentPodHash"]

    exp = env.finished_experiment(name)
    assert exp["status"]["phase"] == "Failed", exp["status"]
    run = env.judge_run(exp)
    (result,) = run["status"]["metricResults"]
    last = result["measurements"][-1]
    assert last["phase"] == "Failed" and last["metadata"]["decision"] == "fail", last
    assert float(last["metadata"]["baselineRequests"]) >= 500, last
    st = env.wait_phase("worse", "Degraded", 30)
    assert st.get("abort") is True and f"Experiment '{name}' ended Failed" in st["message"], st["message"]


def test_the_judge_passes_an_identical_canary_and_the_rollout_goes_on(env: Env) -> None:
    exp = env.start_canary("same", "0.1")
    exp = env.finished_experiment(exp["metadata"]["name"])
    assert exp["status"]["phase"] == "Successful", exp["status"]
    (result,) = env.judge_run(exp)["status"]["metricResults"]
    assert result["measurements"][-1]["metadata"]["decision"] == "pass", result
    env.wait_promoted("same", 60)
