"""When a judge score is final before every metric decided (`reachable`, `combine`): FAIL once the best
score still reachable stays below ``marginal``, PASS once the worst reaches ``pass`` with no critical
metric undecided."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from analysis.providers.judge.score_spec import ScoreSpec
from analysis.providers.judge.score_verdict import MetricDecision, combine, reachable
from analysis.stats import Classification, Decision, ScoreThresholds, ScoreVerdict

_LABELS = {"pass": (Decision.PASS, Classification.PASS), "fail": (Decision.FAIL, Classification.HIGH),
           "undecided": (Decision.CONTINUE, Classification.NODATA), "nodata": (Decision.NODATA, Classification.NODATA)}


def metric(name: str, group: str, state: str, critical: bool = False) -> MetricDecision:
    decision, label = _LABELS[state]
    return MetricDecision(name, (group,), critical, decision, label, f"{name} {state}")


def spec(weights: Mapping[str, float], marginal: float = 75.0, pass_: float = 95.0) -> ScoreSpec:
    return ScoreSpec((), weights, ScoreThresholds(marginal, pass_))


def test_a_failed_half_weight_group_fails_the_score_before_the_other_half_decides() -> None:
    decisions = [metric("errors", "errors", "fail"), metric("p99", "latency", "undecided"),
                 metric("p50", "latency", "undecided")]
    bounds = reachable(decisions, {"errors": 50, "latency": 50}, ScoreThresholds(75, 95))
    assert bounds.best.score == 50.0 and bounds.worst.score == 0.0
    outcome = combine(decisions, spec({"errors": 50, "latency": 50}), last=False)
    assert outcome.final and outcome.verdict is ScoreVerdict.FAIL
    assert outcome.undecided == ("p99", "p50")
    assert outcome.reason == (
        "FAIL: score 0.0 (marginal 75, pass 95); failed: errors; the best score still reachable, 50.0 with "
        "p99, p50 passing, is below marginal 75"
    )


def test_a_failure_that_the_undecided_metrics_can_still_outweigh_waits() -> None:
    decisions = [metric("errors", "errors", "fail"), metric("p99", "latency", "undecided")]
    outcome = combine(decisions, spec({"errors": 20, "latency": 80}), last=False)
    assert not outcome.final and outcome.reason.startswith("waiting for p99 to decide")
    assert reachable(decisions, {"errors": 20, "latency": 80}, ScoreThresholds(75, 95)).best.score == 80.0


def test_passes_that_any_outcome_keeps_at_pass_promote_before_the_rest_decides() -> None:
    decisions = [metric("errors", "errors", "pass"), metric("timeouts", "errors", "pass"),
                 metric("cpu", "saturation", "undecided")]
    weights = {"errors": 96, "saturation": 4}
    assert reachable(decisions, weights, ScoreThresholds(75, 95)).worst.score == 96.0
    outcome = combine(decisions, spec(weights), last=False)
    assert outcome.final and outcome.verdict is ScoreVerdict.PASS and outcome.result.score == 100.0
    assert outcome.reason.endswith("the worst score still reachable, 96.0 with cpu failing, reaches pass 95")


def test_an_undecided_critical_metric_keeps_a_pass_open() -> None:
    decisions = [metric("errors", "errors", "pass"), metric("cpu", "saturation", "undecided", critical=True)]
    weights = {"errors": 99, "saturation": 1}
    bounds = reachable(decisions, weights, ScoreThresholds(75, 95))
    assert bounds.worst.score == 0.0 and bounds.worst.critical_failures == ("cpu",)
    assert bounds.settled() is None and not combine(decisions, spec(weights), last=False).final


def test_an_undecided_critical_metric_does_not_save_a_score_already_below_marginal() -> None:
    decisions = [metric("errors", "errors", "fail"), metric("cpu", "saturation", "undecided", critical=True)]
    outcome = combine(decisions, spec({"errors": 50, "saturation": 50}), last=False)
    assert outcome.final and outcome.verdict is ScoreVerdict.FAIL


@pytest.mark.parametrize(("weights", "best"), [
    ({"errors": 30, "latency": 30}, 50.0),  # weights summing to 60: normalised, as Kayenta's
    ({"errors": 1, "latency": 1}, 50.0),
    ({"errors": 50}, 50.0),  # latency without a weight shares what is left of 100
    ({}, 50.0),  # no weights: every group weighs the same
    ({"errors": 30}, 70.0),  # latency gets 70 of 100
])
def test_weights_that_do_not_sum_to_100_and_groups_without_weight(weights: dict[str, float], best: float) -> None:
    decisions = [metric("errors", "errors", "fail"), metric("p99", "latency", "undecided")]
    bounds = reachable(decisions, weights, ScoreThresholds(75, 95))
    assert bounds.best.score == pytest.approx(best) and bounds.worst.score == 0.0
    assert bounds.settled() is ScoreVerdict.FAIL


def test_zero_weight_groups_fall_back_to_equal_weights_and_bound_both_ways() -> None:
    """Only zero-weight groups with data: Kayenta's mean of equals; a weighted group's metric still counts."""
    decisions = [metric("a", "a", "pass"), metric("b", "b", "fail"), metric("c", "c", "undecided")]
    bounds = reachable(decisions, {"a": 0, "b": 0, "c": 100}, ScoreThresholds(75, 95))
    assert bounds.best.score == 100.0 and bounds.worst.score == 0.0 and bounds.settled() is None


def test_metrics_that_end_with_no_data_lie_between_the_bounds() -> None:
    """A metric still undecided at the final count is left out; that score is never outside the bounds."""
    decisions = [metric("errors", "errors", "fail"), metric("ok", "latency", "pass"),
                 metric("p99", "latency", "undecided"), metric("p50", "saturation", "undecided")]
    weights = {"errors": 40, "latency": 40, "saturation": 20}
    bounds = reachable(decisions, weights, ScoreThresholds(75, 95))
    assert bounds.best.score is not None and bounds.worst.score is not None
    for ends in ("pass", "fail", "nodata"):
        for other in ("pass", "fail", "nodata"):
            done = [*decisions[:2], metric("p99", "latency", ends), metric("p50", "saturation", other)]
            score = combine(done, spec(weights), last=True).result.score
            assert score is not None and bounds.worst.score <= score <= bounds.best.score, (ends, other)


def test_the_final_count_still_caps_an_unsettled_score_at_marginal() -> None:
    decisions = [metric("errors", "errors", "pass"), metric("p99", "latency", "undecided")]
    outcome = combine(decisions, spec({"errors": 80, "latency": 20}), last=True)
    assert outcome.final and outcome.verdict is ScoreVerdict.MARGINAL
