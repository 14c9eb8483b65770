"""The error-rate test's PASS side at its margin: a valid test at alphaPass however often it is looked at
(issue 22, branch s23-seqbound: the PASS side's counterpart of the FAIL side's type-one-error test)."""

from __future__ import annotations

import math

import numpy as np

from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountCore


def test_the_pass_side_stays_below_alpha_pass_at_the_margin() -> None:
    """Poisson counts with the canary at the margin (1.5x), looked at after every interval for 60:
    the exact mixture (fixed weights) passes at most alphaPass of the runs (Ville; 2.6% of these)."""
    cfg = CountTestConfig(dispersion=1.0)
    core = CountCore(cfg)
    rng = np.random.default_rng(11)
    runs = 2000
    st = core.zeros((runs,))
    passed = np.zeros(runs, dtype=bool)
    for _ in range(60):
        n = rng.poisson(120.0, runs).astype(float)
        m = rng.poisson(1080.0, runs).astype(float)
        c = rng.poisson(n * 0.01 * 1.5).astype(float)
        b = rng.poisson(m * 0.01).astype(float)
        core.update(st, c, c + b, n / (n + m), n + m)
        _, lp = core.log_e(st)
        passed |= lp >= -math.log(cfg.alpha_pass)
    assert passed.mean() <= cfg.alpha_pass
