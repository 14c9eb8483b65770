"""The dashboard's chart of a judge metric in a real browser (Debian's chromium, driven by Playwright),
against the sandbox with statuses written by the test (no controller runs): the estimate over time with
its interval as a band, why the judge decided, and a new measurement drawn without a reload."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures.dashboard import chromium_page, require_browser, running_dashboard
from tests.fixtures.plugin import PAUSED, Plugin, apply, create_rollout
from tests.fixtures.sandbox import Kubectl
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.browser]

AR = "analysisruns.pyrollouts.io"
PASS_REASON = "the canary's error rate is shown below 1.5x the baseline's (e-value 41 >= 20)"


@pytest.fixture(scope="module")
def browser_api() -> ModuleType:
    return require_browser()


@pytest.fixture(scope="module")
def plugin(kubectl: Kubectl) -> Iterator[Plugin]:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    yield Plugin.on_sandbox(kubectl)


def _judged(seconds_ago: int, decision: str, estimate: str, interval: str, reason: str) -> dict[str, Any]:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "phase": "Successful" if decision == "pass" else "Running",
        "startedAt": at,
        "finishedAt": at,
        "metadata": {"decision": decision, "reason": reason, "quantity": "error-rate ratio canary/baseline",
                     "estimate": estimate, "interval": interval, "evidence": "e-value fail 0.2, pass 41"},
    }


def _write_run_status(kubectl: Kubectl, name: str, measurements: list[dict[str, Any]]) -> None:
    status = {"phase": "Running", "metricResults": [
        {"name": "error-rate", "phase": "Running", "count": len(measurements), "measurements": measurements},
    ]}
    kubectl.run("patch", AR, name, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))


def test_a_judge_metric_is_charted_with_its_interval_and_verdict(
    kubectl: Kubectl, plugin: Plugin, browser_api: ModuleType
) -> None:
    ro = create_rollout(kubectl, "judged", PAUSED)
    run_name = "judged-c2c2c2-2"
    apply(kubectl, {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": run_name,
            "annotations": {"rollouts.pyrollouts.io/revision": "2"},
            "ownerReferences": [{"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout", "name": "judged",
                                 "uid": ro["metadata"]["uid"], "controller": True}],
        },
        "spec": {"metrics": [{"name": "error-rate", "interval": "30s",
                              "provider": {"judge": {"test": "sequential"}}}]},
    })
    waiting = "not enough evidence yet: 120 of 200 requests per version"
    measurements = [
        _judged(90, "continue", "1.8", "[0.6, 4.1]", waiting),
        _judged(60, "continue", "1.2", "[0.7, 2.2]", "neither bound crossed yet"),
    ]
    _write_run_status(kubectl, run_name, measurements)

    with running_dashboard(plugin, "-n", "default") as url, chromium_page(browser_api) as page:
        page.goto(f"{url}#/default/judged")
        metric = page.locator(f'.analysisrun[data-analysisrun="{run_name}"] .metric[data-metric="error-rate"]')
        chart = metric.locator("svg")
        chart.locator("circle.point").nth(1).wait_for()
        assert chart.get_attribute("aria-label") == "error-rate: estimate and interval"
        assert chart.locator("polygon.interval").count() == 1
        assert metric.locator(".verdict").inner_text().startswith("continue — neither bound crossed yet")

        # A new measurement (the judge decides): drawn from the watch, without a reload.
        _write_run_status(kubectl, run_name, [*measurements, _judged(30, "pass", "0.9", "[0.6, 1.3]", PASS_REASON)])
        chart.locator("circle.point").nth(2).wait_for()
        metric.locator(".verdict", has_text=f"pass — {PASS_REASON}").wait_for()
        assert "error-rate ratio canary/baseline: 0.9 [0.6, 1.3]" in metric.locator(".verdict").inner_text()
