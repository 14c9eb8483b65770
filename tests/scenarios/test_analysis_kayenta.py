"""kayenta metrics end to end: AnalysisRuns on the sandbox, measured by the controller against a local server
speaking Kayenta's canary API (start an execution, look at it 15 s later, judge its score)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.fixtures.analysis_runs import closed_port, metric_result, run_manifest, template_manifest, wait_done
from tests.fixtures.cluster import Cluster
from tests.fixtures.kayenta_server import ACCOUNTS, APPLICATION, Kayenta, kayenta_server
from tests.fixtures.kube import json_object
from tests.fixtures.manifests import GROUP, VERSION
from tests.fixtures.tools import REPO


@pytest.fixture(scope="module")
def kayenta() -> Iterator[Kayenta]:
    with kayenta_server() as server:
        server.scores.update({"good": 96, "meh": 80, "bad": 30})
        yield server


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: Any) -> str:
    return cluster.new_namespace("kayenta")


def kayenta_metric(address: str, config: str, **extra: Any) -> dict[str, Any]:
    scope = {"scope": "app=guestbook", "step": 60, "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:10:00Z"}
    return {"name": "kayenta", "provider": {"kayenta": {
        "address": address, "application": APPLICATION, "canaryConfigName": config, **ACCOUNTS,
        "threshold": {"pass": 90, "marginal": 75},
        "scopes": [{"name": "default", "controlScope": scope, "experimentScope": {**scope, "scope": "app=canary"}}],
    }}, **extra}


def test_scores_decide_and_faults_are_errors(cluster: Cluster, ns: str, kayenta: Kayenta) -> None:
    # All at once: each waits the 15 s Kayenta needs before its result is looked at.
    cluster.apply(ns, run_manifest("k-good", [kayenta_metric(kayenta.url, "good")]),
                  run_manifest("k-meh", [kayenta_metric(kayenta.url, "meh")]),
                  run_manifest("k-bad", [kayenta_metric(kayenta.url, "bad")]),
                  run_manifest("k-unknown", [kayenta_metric(kayenta.url, "nope", consecutiveErrorLimit=0)]),
                  run_manifest("k-down", [kayenta_metric(f"http://127.0.0.1:{closed_port()}", "good",
                                                         interval="1s", count=3, consecutiveErrorLimit=1)]))
    phases = {name: wait_done(cluster, ns, name, timeout=45) for name in
              ("k-good", "k-meh", "k-bad", "k-unknown", "k-down")}
    assert {name: run["status"]["phase"] for name, run in phases.items()} == {
        "k-good": "Successful", "k-meh": "Inconclusive", "k-bad": "Failed", "k-unknown": "Error", "k-down": "Error"}
    good = metric_result(phases["k-good"], "kayenta")["measurements"][0]
    assert good["value"] == "96" and good["metadata"]["canaryExecutionId"].startswith("exec-")
    assert 'no canary config "nope"' in metric_result(phases["k-unknown"], "kayenta")["measurements"][0]["message"]
    down = metric_result(phases["k-down"], "kayenta")
    assert down["consecutiveError"] == 2 and "cannot reach Kayenta" in down["measurements"][-1]["message"]


def test_the_example_template_is_accepted_and_a_bad_one_named(cluster: Cluster, ns: str) -> None:
    example = yaml.safe_load((REPO / "examples" / "analysis-template-kayenta.yaml").read_text())
    bad = kayenta_metric("http://kayenta:8090", "good")
    bad["provider"]["kayenta"]["threshold"] = {"pass": 70, "marginal": 80}
    cluster.apply(ns, example, template_manifest("k-bad-template", [bad]))

    def invalid(name: str) -> str | None:
        template = json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "analysistemplates",
                                                                           name))
        found = {c["type"]: c for c in (template.get("status") or {}).get("conditions") or []}
        return f"{found['Invalid']['status']}: {found['Invalid'].get('message', '')}" if "Invalid" in found else None

    assert cluster.wait("the example checked", lambda: invalid(example["metadata"]["name"]), 15).startswith("False")
    message = cluster.wait("the bad template checked", lambda: invalid("k-bad-template"), 15)
    assert "spec.metrics[0].provider.kayenta.threshold.marginal: Invalid value: 80: at most pass (70)" in message
