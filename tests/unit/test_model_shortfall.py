"""The paused Rollout's "too little traffic" words from its current runs' structured judge outcome
(rollouts/model/shortfall.py): which runs and metrics are read, and what is ignored."""

from __future__ import annotations

import json
from typing import Any

from analysis.outcome import Needs
from rollouts.model.shortfall import analysis_shortfall
from tests.fixtures.judge_outcome import THIN_CANARY, THIN_CANARY_TEXT, end_inconclusive, short_of_traffic


def run(name: str, metadata: dict[str, str], judge: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": name}, "spec": {"metrics": [{"name": "m", "provider": {}}]}}
    end_inconclusive(out, metadata, "words")
    if not judge:
        out["spec"]["metrics"][0]["provider"] = {"web": {"url": "http://x"}}
    return out


def status(**runs: str) -> dict[str, Any]:
    """Status naming current runs: key (e.g. currentStepAnalysisRunStatus) -> run name, all Inconclusive."""
    sections: dict[str, Any] = {}
    for key, name in runs.items():
        section = "blueGreen" if key.startswith(("pre", "post")) else "canary"
        sections.setdefault(section, {})[key] = {"name": name, "status": "Inconclusive"}
    return sections


def test_the_current_step_runs_outcome_in_words() -> None:
    runs = [run("step", short_of_traffic())]
    assert analysis_shortfall(status(currentStepAnalysisRunStatus="step"), runs) == THIN_CANARY_TEXT


def test_a_run_that_is_not_current_or_not_inconclusive_is_not_read() -> None:
    runs = [run("old", short_of_traffic())]
    assert analysis_shortfall(status(currentStepAnalysisRunStatus="new"), runs) == ""
    st = status(currentStepAnalysisRunStatus="old")
    st["canary"]["currentStepAnalysisRunStatus"]["status"] = "Successful"
    assert analysis_shortfall(st, runs) == ""


def test_no_outcome_key_or_unreadable_needs_or_another_provider_says_nothing() -> None:
    without_outcome = {"decision": "nodata", "needed": THIN_CANARY.to_json()}
    unreadable = {**short_of_traffic(), "needed": '{"unit": "requests"}'}
    unknown = {**short_of_traffic(), "outcome": "TooLittleSomething"}
    for metadata in (without_outcome, unreadable, unknown):
        assert analysis_shortfall(status(currentStepAnalysisRunStatus="r"), [run("r", metadata)]) == "", metadata
    web = run("r", short_of_traffic(), judge=False)
    assert analysis_shortfall(status(currentStepAnalysisRunStatus="r"), [web]) == ""


def test_step_and_background_runs_both_short_are_both_named_once_each() -> None:
    points = Needs("points", (4, 10), (11, 10), (0, 0), 6, 60.0, 12, 12)
    runs = [run("step", short_of_traffic()), run("bg", short_of_traffic(points))]
    st = status(currentStepAnalysisRunStatus="step", currentBackgroundAnalysisRunStatus="bg")
    text = analysis_shortfall(st, runs)
    assert text.startswith(f"{THIN_CANARY_TEXT}; too little data after 12 measurements: canary 4/10 "), text
    same = status(currentStepAnalysisRunStatus="step", currentBackgroundAnalysisRunStatus="step")
    assert analysis_shortfall(same, runs) == THIN_CANARY_TEXT


def test_a_scores_short_metrics_come_from_their_metric_entries() -> None:
    other = Needs("requests", (0, 500), (0, 500), (0, 3), None, 1.0, 5, 5)
    metadata = {
        "outcome": "TooLittleTraffic",
        "metric.errors": json.dumps({"label": "Nodata", "needed": THIN_CANARY.to_dict()}),
        "metric.latency": json.dumps({"label": "Nodata", "needed": other.to_dict()}),
        "metric.mean": json.dumps({"label": "Pass"}),
        "metric.legacy": "Pass: written before metric entries were JSON",
    }
    text = analysis_shortfall(status(prePromotionAnalysisRunStatus="pre"), [run("pre", metadata)])
    figures = THIN_CANARY_TEXT.removeprefix("too little traffic after 5 measurements: ")
    assert text == (f"too little traffic after 5 measurements: errors: {figures}. latency: canary 0/500 and "
                    f"baseline 0/500 requests, 0/3 intervals with traffic; {other.still_needed()}"), text
