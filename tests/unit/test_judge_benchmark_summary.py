"""The judge benchmark's summary: Wilson intervals and the per-cell target lines (benchmarks/judge/summary.py)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.judge.cells import CELLS
from benchmarks.judge.judges import Outcome
from benchmarks.judge.summary import OURS, null_lines, wilson


def test_wilson_matches_the_published_formula() -> None:
    # 5 of 1,000: R's binom::binom.wilson gives [0.002137, 0.011651]; 0 of 1,000: upper z^2 / (n + z^2).
    assert wilson(5, 1000) == pytest.approx((0.0021375, 0.0116510), abs=1e-6)
    lo, hi = wilson(0, 1000)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(1.959964**2 / (1000 + 1.959964**2))
    assert wilson(10, 20) == pytest.approx((0.29930, 0.70070), abs=1e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_a_null_cell_meets_its_targets_only_when_the_interval_and_early_promotion_do() -> None:
    cell = next(c for c in CELLS if not c.regression)
    runs = 1000
    never = np.full(runs, np.inf)
    early = np.full(runs, 10.0)
    (good,) = null_lines([cell], {cell.name: {OURS: Outcome(never, early)}})
    assert "0/1000 = 0.00% (95% Wilson [0.00%, 0.38%])" in good and good.endswith("met") and "not met" not in good
    fails = never.copy()
    fails[:3] = 5.0  # 0.3%, but the interval reaches above 0.5%
    (bad,) = null_lines([cell], {cell.name: {OURS: Outcome(fails, early)}})
    assert "3/1000 = 0.30%" in bad and bad.endswith("not met")


def test_power_bound_of_the_fixed_sample_test() -> None:
    from benchmarks.judge.power_bound import clustered_power, rows, ump_power

    # 36 expected canary errors: reject "mean >= 54" at 5% when the count is <= 41 (P(Pois(54) <= 41) =
    # 0.0400, <= 42: 0.0545); power P(Pois(36) <= 41) = 0.8217.
    assert ump_power(36.0, 1.5, 0.05) == pytest.approx(0.8217, abs=1e-3)
    assert ump_power(1.8, 1.5, 0.05) == 0.0  # P(0 errors | 2.7 expected) = 6.7%: even 0 is not rare enough
    assert clustered_power(36.0, 1.5, 0.05, 2.2) < ump_power(36.0, 1.5, 0.05)
    table = rows(1.5, 30, 0.05)
    assert any(line.startswith("| err null: steady 20rps, 10%, 1% | 36.0 | 82% | 1.00 | 82% |") for line in table)
    assert table[-1].endswith("80% power at 1.5x: 32.5")
