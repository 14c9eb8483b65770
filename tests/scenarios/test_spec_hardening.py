"""Issue 16 items 2 and 3 end to end on the sandbox: specs the API server accepts but the controller must not
trust end Degraded / Invalid / Error with a message naming the field; a ReplicaSet the API server refuses
puts its message on the Rollout; a trickling provider does not hold its run past its timeout nor delay
another run; a 10 MB answer leaves the AnalysisRun small.

Every case here is one the sandbox accepts whatever it checks of integer formats (the int32 cases are
unit tests: tests/unit/test_spec_hardening.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.kube import json_object
from tests.fixtures.manifests import GROUP, VERSION, rollout_manifest
from tests.fixtures.rollout import given
from tests.fixtures.slow_http import SlowHttp, slow_http_server

OBJECT_LIMIT = 1536 * 1024  # etcd's object limit, about 1.5 MiB


@pytest.fixture(scope="module")
def slow() -> Iterator[SlowHttp]:
    with slow_http_server() as server:
        yield server


def run_manifest(name: str, metrics: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisRun", "metadata": {"name": name},
            "spec": {"metrics": metrics, **spec}}


def web_metric(name: str, url: str, timeout: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "successCondition": "result.data.ok == true",
            "provider": {"web": {"url": url, "timeoutSeconds": timeout}}, **extra}


def get_run(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "analysisruns", name))


def wait_run(cluster: Cluster, ns: str, name: str, phases: tuple[str, ...], timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = get_run(cluster, ns, name)
        return run if (run.get("status") or {}).get("phase") in phases else None

    return cluster.wait(f"analysisrun {ns}/{name} to be {'/'.join(phases)}", check, timeout, interval=0.1)


@pytest.mark.parametrize(
    ("case", "change", "words"),
    [
        ("experiment", {"steps": [{"experiment": {"templates": []}}]},
         "spec.strategy.canary.steps[0].experiment.templates: Required value"),
        ("no-templates", {"steps": [{"setWeight": 50}], "analysis": {"templates": []}},
         "spec.strategy.canary.analysis.templates: Required value"),
        ("unavailable", {"steps": [{"setWeight": 50}], "maxUnavailable": "150%"},
         'spec.strategy.canary.maxUnavailable: Invalid value: "150%": must not be greater than 100%'),
    ],
)
def test_accepted_but_untrustworthy_specs_are_invalid_spec(
    cluster: Cluster, controller: ControllerProcess | None, case: str, change: dict[str, Any], words: str
) -> None:
    manifest = rollout_manifest("web", replicas=1)
    manifest["spec"]["strategy"]["canary"].update(change)
    rollout = given(cluster, f"harden-{case}").rollout(manifest).apply()
    status = rollout.wait_degraded().seen
    assert status["message"].startswith('InvalidSpec: The Rollout "web" is invalid: ') and words in status["message"]
    rollout.wait_for("InvalidSpec event", lambda: any(r == "InvalidSpec" and words in m for r, m in rollout.events()))
    assert rollout.replicasets() == []


def test_a_replicaset_the_api_refuses_degrades_the_rollout_with_its_message(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    manifest = rollout_manifest("web", replicas=1)
    manifest["spec"]["template"]["spec"]["containers"] = "nginx"  # the Rollout's schema keeps the pod template open
    rollout = given(cluster, "harden-refused").rollout(manifest).apply()
    status = rollout.wait_degraded(timeout=30).seen
    assert status["message"].startswith("ReplicaSetCreateError: Failed to create new replica set")
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "ReplicaSetCreateError")
    assert "containers" in progressing["message"]  # the API server's own words
    rollout.wait_for("ReplicaSetCreateError event", lambda: "ReplicaSetCreateError" in rollout.reasons())


def test_invalid_templates_and_runs(cluster: Cluster, controller: ControllerProcess | None, slow: SlowHttp) -> None:
    ns = given(cluster, "harden-analysis")
    template = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
                "spec": {"metrics": [{"name": "m", "count": -1, "provider": {"prometheus": {
                    "address": "not a url", "query": "up"}}}]}}
    ns.apply(template, run_manifest("empty", []),
             run_manifest("undeclared", [web_metric("m", f"{slow.url}/ok?x={{{{args.nope}}}}", 5)]))

    def invalid() -> str | None:
        obj = ns.custom_object(GROUP, VERSION, "analysistemplates", "t") or {}
        cond = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Invalid"), None)
        return str(cond["message"]) if cond is not None and cond["status"] == "True" else None

    message = cluster.wait("the template's Invalid condition", invalid, 20)
    assert "spec.metrics[0].count: Invalid value: -1" in message
    assert 'spec.metrics[0].provider.prometheus.address: Invalid value: "not a url": not a URL' in message
    empty = wait_run(cluster, ns.name, "empty", ("Error",))
    assert "spec.metrics: at least one metric is required" in empty["status"]["message"]
    undeclared = wait_run(cluster, ns.name, "undeclared", ("Error",))
    assert 'argument "nope" ({{args.nope}}) is not declared in spec.args' in undeclared["status"]["message"]


def test_a_trickling_provider_neither_outlives_its_timeout_nor_delays_another_run(
    cluster: Cluster, controller: ControllerProcess | None, slow: SlowHttp
) -> None:
    ns = given(cluster, "harden-trickle")
    ns.apply(run_manifest("trickling", [web_metric("slow", f"{slow.url}/trickle", 15, consecutiveErrorLimit=0)]),
             run_manifest("normal", [web_metric("ok", f"{slow.url}/ok", 5, interval="0.2s", count=3)]))
    normal = wait_run(cluster, ns.name, "normal", ("Successful", "Failed", "Error", "Inconclusive"))
    assert normal["status"]["phase"] == "Successful"
    # the normal run was done while the trickle still held the other one's measurement
    assert (get_run(cluster, ns.name, "trickling").get("status") or {}).get("phase") in (None, "Pending", "Running")
    trickling = wait_run(cluster, ns.name, "trickling", ("Error",), timeout=60)
    measured = trickling["status"]["metricResults"][0]["measurements"][0]
    assert measured["message"].endswith("/trickle timed out after 15s"), measured


def test_a_10_mb_answer_leaves_the_run_small(cluster: Cluster, controller: ControllerProcess | None,
                                             slow: SlowHttp) -> None:
    ns = given(cluster, "harden-big")
    metric = web_metric("big", f"{slow.url}/big", 30, interval="0.5s", count=3)
    ns.apply(run_manifest("big", [metric], measurementRetention=[{"metricName": "big", "limit": 1000}]))
    run = wait_run(cluster, ns.name, "big", ("Successful", "Failed", "Error", "Inconclusive"), timeout=60)
    assert run["status"]["phase"] == "Successful"
    measurements = run["status"]["metricResults"][0]["measurements"]
    assert len(measurements) == 3 and all("[truncated from" in m["value"] for m in measurements)
    assert len(json.dumps(run)) < OBJECT_LIMIT // 10


def test_argument_values_are_checked_once_substituted(cluster: Cluster, controller: ControllerProcess | None,
                                                      slow: SlowHttp) -> None:
    ns = given(cluster, "harden-args")
    metric = web_metric("m", f"{slow.url}/ok", 5, count="{{args.times}}", interval="1s")
    ns.apply(run_manifest("negative", [metric], args=[{"name": "times", "value": "-1"}]))
    run = wait_run(cluster, ns.name, "negative", ("Error",))
    assert "spec.metrics[0].count: Invalid value: -1" in run["status"]["message"]
