"""The reference SPRTs of the sequential bound (benchmarks/judge/sequential_bound.py): the PASS minute
worked out by hand, and their false passes at the margin within alphaPass where their model holds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.judge.sequential_bound import binomial_pass, oracle_pass
from benchmarks.judge.simulate import CountData

RATE, MARGIN, ALPHA = 0.01, 1.5, 0.05


def test_the_oracle_passes_when_its_likelihood_ratio_reaches_one_over_alpha() -> None:
    # 600 canary requests a minute at 1%: mu = 6 a minute. No errors: log LR = 0.5 * 6 = 3 nats a minute,
    # log 20 = 2.996: the first minute passes; 6 errors a minute: 3 - 6 log 1.5 < 0, never.
    cn = np.full((2, 5), 600.0)
    ce = np.array([[0.0] * 5, [6.0] * 5])
    assert oracle_pass(ce, cn, RATE, 0.0, MARGIN, ALPHA).tolist() == [1.0, math.inf]
    # Clustered, a = 1 (NB2 with r = 1): P(0) = 1 / (1 + mu), so a quiet minute is worth only
    # log(10 / 7) = 0.357 nats: 8 minutes hold 2.85, the 9th passes.
    quiet = np.zeros((1, 12))
    assert oracle_pass(quiet, np.full((1, 12), 600.0), RATE, 1.0, MARGIN, ALPHA).tolist() == [9.0]
    # A missing minute adds nothing.
    ce_missing = ce[:1].copy()
    ce_missing[0, 0] = np.nan
    assert oracle_pass(ce_missing, cn[:1], RATE, 0.0, MARGIN, ALPHA).tolist() == [2.0]


def test_the_conditional_binomial_test_reads_the_canary_share_of_the_errors() -> None:
    # Equal traffic: theta = 1/2 at 1x, 0.6 at 1.5x. Per interval with c canary errors of k:
    # c log(0.5 / 0.6) + (k - c) log(0.5 / 0.4).
    n = np.full((1, 60), 1000.0)
    d = CountData(ce=np.full((1, 60), 5.0), cn=n, be=np.full((1, 60), 5.0), bn=n)
    step = 5 * math.log(0.5 / 0.6) + 5 * math.log(0.5 / 0.4)
    want = math.ceil(-math.log(ALPHA) / step)
    assert binomial_pass(d, MARGIN, ALPHA).tolist() == [float(want)]


@pytest.mark.parametrize("which", ["oracle", "binomial"])
def test_poisson_counts_at_the_margin_pass_at_most_alpha_of_the_time(which: str) -> None:
    rng = np.random.default_rng(7)
    runs, minutes = 4000, 60
    cn = rng.poisson(120.0, (runs, minutes)).astype(np.float64)
    bn = rng.poisson(1080.0, (runs, minutes)).astype(np.float64)
    ce = rng.poisson(cn * RATE * MARGIN).astype(np.float64)
    be = rng.poisson(bn * RATE).astype(np.float64)
    if which == "oracle":
        passed = oracle_pass(ce, cn, RATE, 0.0, MARGIN, ALPHA)
    else:
        passed = binomial_pass(CountData(ce, cn, be, bn), MARGIN, ALPHA)
    rate = float(np.isfinite(passed).mean())
    # Ville: <= 5% for every look; the SPRT's overshoot keeps it well below (about 3% here).
    assert 0.005 < rate <= ALPHA
