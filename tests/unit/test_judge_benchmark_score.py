"""The judge benchmark's two-group score (benchmarks/judge/score.py): each run's verdict and the minute it is
final, from the provider's own combination of the two metrics' decisions."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.stats import ScoreVerdict
from benchmarks.judge.judges import Outcome
from benchmarks.judge.score import main, score_runs

INF = np.inf


def outcome(*runs: tuple[float, float]) -> Outcome:
    """(fail_at, pass_at) per run."""
    return Outcome(np.array([r[0] for r in runs]), np.array([r[1] for r in runs]))


ERRORS = outcome((5, INF), (INF, 10), (INF, INF), (INF, 12))
LATENCY = outcome((INF, 20), (30, INF), (INF, 10), (INF, 40))


def test_a_critical_failure_is_final_at_once_and_so_is_one_that_keeps_the_score_below_marginal() -> None:
    assert score_runs(ERRORS, LATENCY, critical=True)[0][0] is ScoreVerdict.FAIL
    assert score_runs(ERRORS, LATENCY, critical=True)[1][0] == 5
    verdicts, minutes = score_runs(ERRORS, LATENCY, critical=False)
    assert (verdicts[0], minutes[0]) == (ScoreVerdict.FAIL, 5)  # at best 0 x 80 + 100 x 20 = 20 < 75


def test_marginal_pass_and_the_final_count() -> None:
    verdicts, minutes = score_runs(ERRORS, LATENCY, critical=True)
    assert (verdicts[1], minutes[1]) == (ScoreVerdict.MARGINAL, 30)  # 100 x 80 + 0 x 20 = 80
    assert (verdicts[2], minutes[2]) == (ScoreVerdict.MARGINAL, 60)  # errors undecided: at best MARGINAL
    assert (verdicts[3], minutes[3]) == (ScoreVerdict.PASS, 40)


def test_the_benchmark_prints_a_row_per_judge_and_cell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--runs", "10"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| err ")]
    assert len(rows) == 6 and sum("score: errors critical" in r for r in rows) == 2
