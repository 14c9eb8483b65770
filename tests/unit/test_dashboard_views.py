"""The dashboard's JSON views (rollouts.cli.dashboard.views): the same facts as `get rollout`, the steps
with the current one marked, and measurements as numeric series (a judge's estimate and interval)."""

from __future__ import annotations

import json
from typing import Any

from rollouts.cli import info as i
from rollouts.cli.dashboard import views
from tests.fixtures.cli_objects import analysisrun, paused_canary, rollout, stamp


def test_the_listing_groups_rollouts_by_namespace_with_what_list_rollouts_shows() -> None:
    ro, replicasets, pods, runs = paused_canary()
    other = rollout("api", namespace="dev", status={"phase": "Healthy", "currentStepIndex": 4})
    listing = views.rollout_listing([ro, other], replicasets, pods, runs)
    assert [group["namespace"] for group in listing] == ["dev", "prod"]
    [row] = listing[1]["rollouts"]
    assert {k: row[k] for k in ("name", "strategy", "status", "message", "step", "setWeight", "actualWeight")} == {
        "name": "demo", "strategy": "Canary", "status": "Paused", "message": "CanaryPauseStep", "step": "1/4",
        "setWeight": "20", "actualWeight": "20",
    }
    assert (row["desired"], row["ready"], row["updated"]) == (5, 5, 1)


def test_the_rollout_page_marks_the_current_step_and_nests_children_by_revision() -> None:
    ro, replicasets, pods, runs = paused_canary()
    page = views.rollout_page(ro, replicasets, pods, runs)
    json.dumps(page)  # all of it is JSON
    assert [(s["text"], s["state"]) for s in page["steps"]] == [
        ("setWeight: 20", "done"), ("pause (until promoted)", "current"), ("setWeight: 50", "pending"),
        ("pause: 30s", "pending"),
    ]
    assert page["status"] == i.rollout_info(ro, replicasets, pods, runs).status == "Paused"
    assert page["paused"] is True and page["aborted"] is False
    assert [rev["revision"] for rev in page["revisions"]] == [3, 2, 1]
    newest = page["revisions"][0]
    assert [rs["name"] for rs in newest["replicasets"]] == ["demo-6f8f9c"]
    assert newest["replicasets"][0]["canary"] is True and len(newest["replicasets"][0]["pods"]) == 1
    assert [run["name"] for run in newest["analysisruns"]] == ["demo-6f8f9c-3-1"]
    assert [im["image"] for im in page["images"]] == ["nginx:1.25", "nginx:1.26"]


def test_steps_past_the_last_are_all_done_and_a_blue_green_has_none() -> None:
    done = rollout(status={"currentStepIndex": 4})
    assert {s["state"] for s in views.steps_view(done)} == {"done"}
    assert views.steps_view(rollout(spec={"strategy": {"blueGreen": {"activeService": "a"}}})) == []
    analysis = rollout(steps=[{"analysis": {"templates": [{"templateName": "rate"}, {"templateName": "lat"}]}}])
    assert views.steps_view(analysis)[0]["text"] == "analysis: rate, lat"


def _measurement(value: str, seconds_ago: float, phase: str = "Successful", **metadata: str) -> dict[str, Any]:
    return {"phase": phase, "value": value, "startedAt": stamp(seconds_ago + 1), "finishedAt": stamp(seconds_ago),
            "metadata": metadata}


def test_measurements_become_numeric_series() -> None:
    points = views.measurement_series([
        _measurement("0.97", 20), _measurement("[0.5]", 10), _measurement("true", 5), _measurement("", 1, "Error"),
    ])
    assert [p["value"] for p in points] == [0.97, 0.5, None, None]
    assert [p["text"] for p in points] == ["0.97", "[0.5]", "true", ""]
    assert points[0]["time"] == stamp(20) and points[3]["phase"] == "Error"


def test_a_judge_series_has_its_estimate_interval_and_decision_and_the_run_says_why() -> None:
    ro, replicasets, pods, _ = paused_canary()
    run = analysisrun(ro, "demo-6f8f9c-3-1", 3, "Running")
    run["spec"]["metrics"] = [{"name": "errors", "provider": {"judge": {"test": "sequential-poisson"}}}]
    run["status"]["metricResults"] = [{"name": "errors", "phase": "Running", "measurements": [
        _measurement("", 20, "Running", decision="continue", reason="not enough evidence yet",
                     quantity="rate ratio", estimate="1.2", interval="[0.8, 2.5]"),
        _measurement("", 10, "Successful", decision="pass", reason="the canary's error rate is no worse",
                     quantity="rate ratio", estimate="0.9", interval="[0.7, 1.1]"),
    ]}]
    page = views.rollout_page(ro, replicasets, pods, [run])
    [metric] = page["revisions"][0]["analysisruns"][0]["metrics"]
    assert [(p["estimate"], p["low"], p["high"], p["decision"]) for p in metric["series"]] == [
        (1.2, 0.8, 2.5, "continue"), (0.9, 0.7, 1.1, "pass"),
    ]
    assert metric["judge"]["decision"] == "pass"
    assert metric["judge"]["reason"] == "the canary's error rate is no worse"
    assert page["judges"][0]["metric"] == "errors"
