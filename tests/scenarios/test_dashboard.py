"""`kubectl rollouts dashboard` in a real browser (Debian's chromium, driven by Playwright), with the
controller running: the list shows a paused canary, its page marks the current step, the Promote button
sends the plugin's promote, and the page follows the controller to the next step by itself (the
server-sent events of the dashboard's watches)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.dashboard import chromium_page, post, require_browser, running_dashboard
from tests.fixtures.health import serve_health
from tests.fixtures.judge_outcome import SCORE_JUDGE, score_short_of_traffic
from tests.fixtures.manifests import Step, analysis_template, held_template, rollout_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import given

pytestmark = [pytest.mark.slow, pytest.mark.kubectl, pytest.mark.browser]

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 75}]
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
# Set to a path (README's docs/dashboard.png) to save a screenshot of the rollout page.
SCREENSHOT = os.environ.get("PYROLLOUTS_DASHBOARD_SCREENSHOT", "")


@pytest.fixture(scope="module")
def browser_api() -> ModuleType:
    return require_browser()


@pytest.fixture(scope="module")
def plugin(cluster: Cluster, controller: ControllerProcess | None) -> Iterator[Plugin]:
    yield Plugin.on_cluster(cluster)


def test_promote_from_the_browser_advances_a_paused_canary(
    cluster: Cluster, plugin: Plugin, browser_api: ModuleType
) -> None:
    namespace = given(cluster, "dash")
    ns, name = namespace.name, "web"
    with serve_health() as (url, _handler):
        template = analysis_template("success-rate", "canary-hash", {
            "name": "success-rate",
            "interval": "1s",
            "successCondition": "result >= 0.9",
            "provider": {"web": {"url": f"{url}/rate/{{{{args.canary-hash}}}}", "jsonPath": "{$.rate}"}},
        })
        analysis = {"templates": [{"templateName": "success-rate"}], "args": [LATEST]}
        manifest = rollout_manifest(name, replicas=4, steps=STEPS, analysis=analysis)
        rollout = namespace.rollout(manifest, template).apply().wait_healthy()
        rollout.set_image("nginx:2").wait_paused("CanaryPauseStep", step=1)
        _promote_in_the_browser(plugin, browser_api, ns, name)
    rollout.wait_paused("CanaryPauseStep", step=3)
    rollout.wait_sizes({"nginx:1": 2, "nginx:2": 2})


def _promote_in_the_browser(plugin: Plugin, browser_api: ModuleType, ns: str, name: str) -> None:

    with running_dashboard(plugin, "-n", ns) as url, chromium_page(browser_api) as page:
        page.goto(url)
        row = page.locator(f'section[data-namespace="{ns}"] tr[data-rollout="{name}"]')
        row.locator("td.status", has_text="Paused").wait_for()
        assert row.locator("td.step").inner_text() == "1/5"

        row.get_by_role("link", name=name).click()
        page.locator("#rollout-status", has_text="Paused").wait_for()
        assert page.locator("#rollout-step").inner_text() == "1/5"
        assert page.locator("#rollout-message").inner_text() == "CanaryPauseStep"
        current = page.locator("#steps li.current")
        assert current.get_attribute("data-index") == "1" and current.inner_text() == "pause (until promoted)"
        assert page.locator("#steps li.done").all_inner_texts() == ["setWeight: 25"]
        page.locator('.replicaset .tag', has_text="canary").wait_for()
        # The background analysis measures every second: its chart draws each measurement as a point.
        chart = page.locator('.analysisrun .metric[data-metric="success-rate"] svg')
        chart.locator("circle.point").nth(2).wait_for()
        assert chart.get_attribute("aria-label") == "success-rate: measured value"
        if SCREENSHOT:
            Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)

        page.get_by_role("button", name="Promote", exact=True).click()
        page.locator("#action-result", has_text=f"rollout '{name}' promoted").wait_for()
        # The controller moves on to the next pause: the page follows without a reload.
        page.locator("#steps li.current[data-index='3']").wait_for()
        page.locator("#rollout-step", has_text="3/5").wait_for()
        page.locator("#rollout-status", has_text="Paused").wait_for()
        assert page.locator("#rollout-set-weight").inner_text() == "50"


SCORE_METRIC = "canary-score"
SHORT_SCORE_MESSAGE = (
    "InconclusiveAnalysisRun: too little traffic after 30 measurements: error-rate: canary 40/500 and baseline "
    "900/500 requests, 4/3 intervals with traffic; about 46 more intervals (46s) at the pace so far, but 0 "
    "measurements left of count 30: raise count to at least 76, or lower minRequests / minIntervals, or send the "
    "canary more traffic (a larger setWeight)"
)


def test_a_score_short_of_traffic_in_the_rollouts_message_the_plugin_and_the_browser(
    cluster: Cluster, plugin: Plugin, browser_api: ModuleType
) -> None:
    """A judge score ends its final count undecided: `error-rate` (critical) below its minimum evidence,
    `latency-mean` passed. The test plays the analysis controller with the score's own metadata; the
    controller words the paused Rollout's message from its structured outcome, `kubectl rollouts get
    rollout` shows the score with a line per metric, and so does the dashboard's run card."""
    namespace = given(cluster, "dashscore")
    ns, name = namespace.name, "web"
    template = held_template("score", SCORE_METRIC, "canary-hash")
    metric = template["spec"]["metrics"][0]
    del metric["successCondition"]  # a score decides by its verdict
    metric.update(interval="1s", count=30, provider={"judge": SCORE_JUDGE})
    steps: list[Step] = [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "score"}], "args": [LATEST]}}]
    rollout = namespace.rollout(rollout_manifest(name, replicas=2, steps=steps), template).apply().wait_healthy()
    run = rollout.set_image("nginx:2").current_run("canary", "currentStepAnalysisRunStatus")
    metadata = score_short_of_traffic(30)
    stamp = "2026-12-04T12:00:00Z"
    measurement = {"phase": "Inconclusive", "message": metadata["reason"], "value": metadata["estimate"],
                   "metadata": metadata, "startedAt": stamp, "finishedAt": stamp}
    namespace.patch("analysisrun", run, {"status": {
        "phase": "Inconclusive", "startedAt": stamp,
        "message": f'Metric "{SCORE_METRIC}" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)',
        "metricResults": [{"name": SCORE_METRIC, "phase": "Inconclusive", "count": 30, "inconclusive": 1,
                           "measurements": [measurement]}],
    }}, status=True)
    rollout.wait_paused(SHORT_SCORE_MESSAGE)

    shown = plugin.ok("get", "rollout", name, "-n", ns)
    lines = [line.rstrip() for line in shown.splitlines()]
    at = lines.index(f"Judge {run}/{SCORE_METRIC}: marginal")
    assert lines[at + 1].split() == ["Score:", "100", "(pass", "95,", "marginal", "75),", "final"], shown
    assert lines[at + 3].split() == ["Outcome:", "TooLittleTraffic"], shown
    metrics = lines[lines.index("  Metrics:", at) + 1:][:2]
    assert metrics[0].startswith("    error-rate [errors, critical]: Nodata; canary 40/500 and baseline"), shown
    assert metrics[1] == ("    latency-mean [latency]: Pass 0.0012 [-0.003, 0.005]; no significant increase "
                          "(p-value 0.41)"), shown

    with running_dashboard(plugin, "-n", ns) as url, chromium_page(browser_api) as page:
        page.goto(f"{url}#/{ns}/{name}")
        page.locator("#rollout-status", has_text="Paused").wait_for()
        assert page.locator("#rollout-message").inner_text() == SHORT_SCORE_MESSAGE
        score = page.locator(f'.analysisrun .metric[data-metric="{SCORE_METRIC}"] .verdict.score')
        score.wait_for()
        assert score.locator(".score-value").inner_text() == "100"
        assert score.locator(".score-final").inner_text() == ", final"
        assert score.locator(".score-outcome").inner_text() == "TooLittleTraffic"
        errors = score.locator('tr[data-score-metric="error-rate"]')
        assert errors.locator("td.name").inner_text() == "error-rate (critical)"
        assert errors.locator("td.groups").inner_text() == "errors"
        assert errors.locator("td.decision").inner_text() == "Nodata"
        assert errors.locator("td.reason").inner_text().startswith("canary 40/500 and baseline 900/500 requests")
        mean = score.locator('tr[data-score-metric="latency-mean"]')
        cells = [mean.locator(f"td.{c}").inner_text() for c in ("groups", "decision", "estimate", "interval")]
        assert cells == ["latency", "Pass", "0.0012", "[-0.003, 0.005]"], cells


def test_foreign_actions_are_refused_unknown_rollouts_named_and_a_taken_port_reported(
    cluster: Cluster, plugin: Plugin
) -> None:
    namespace = given(cluster, "dashguard")
    rollout = namespace.rollout(rollout_manifest("web", replicas=1, steps=STEPS)).apply().wait_healthy()
    with running_dashboard(plugin, "-n", namespace.name) as url:
        target = f"{url}api/rollouts/{namespace.name}/web/abort"
        for headers in ({}, {"X-Pyrollouts-Dashboard": "1", "Origin": "http://evil.example"}):
            status, body = post(target, headers)
            assert status == 403 and "must come from the dashboard page" in body["error"]
        status, body = post(f"{url}api/rollouts/{namespace.name}/nothere/promote")
        assert status == 400
        assert body["error"] == (
            f'rollout "nothere" not found in namespace "{namespace.name}"; '
            f"list the rollouts there with: kubectl rollouts list rollouts -n {namespace.name}"
        )
        port = url.rsplit(":", 1)[1].strip("/")
        taken = plugin.run("dashboard", "--port", port, "-n", namespace.name, timeout=30)
        assert (taken.returncode, taken.stdout) == (1, "")
        assert taken.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: "), taken.stderr
        assert taken.stderr.endswith("; choose another with --port\n"), taken.stderr
    assert rollout.live()["status"].get("abort") is not True

