"""The error-rate test's PASS prior (issue 22, branch s23-seqbound): no point just inside the margin,
still a valid test at alphaPass, states saved with the old prior keep it, the latency test unchanged."""

from __future__ import annotations

import json
import math

import numpy as np

from analysis.stats.count_config import DEFAULT_PASS_ALTERNATIVES, CountTestConfig
from analysis.stats.sequential_counts import CountCore, CountTest
from analysis.stats.sequential_latency import LatencyTestConfig
from analysis.stats.types import Decision

# The PASS prior before 2026-12-04 (ratios to the PASS boundary: weights).
OLD_PRIOR = ((1 / 1.25, 1.0), (1 / 1.5, 2.0), (1 / 2.0, 2.0), (1 / 3.0, 1.0), (1 / 5.0, 1.0))


def _decided(test: CountTest, intervals: list[tuple[int, int, int, int]]) -> tuple[str, int] | None:
    for i, counts in enumerate(intervals, start=1):
        r = test.update(*counts)
        if r.decision in (Decision.PASS, Decision.FAIL):
            return r.decision.value, i
    return None


def _steady_canary_at_the_baseline_rate(seed: int) -> list[tuple[int, int, int, int]]:
    # 20 rps, 10% share, 1% errors on both versions: the benchmark's steady null cell.
    rng = np.random.default_rng(seed)
    return [(int(rng.poisson(1.2)), 120, int(rng.poisson(10.8)), 1080) for _ in range(60)]


def test_the_pass_prior_has_no_point_just_inside_the_margin() -> None:
    ratios = sorted(r for r, _ in DEFAULT_PASS_ALTERNATIVES)
    # The point nearest the boundary is a canary at the baseline's own rate (1/1.5 of a 1.5 margin).
    assert math.isclose(ratios[-1], 1 / 1.5)
    assert CountTestConfig().pass_alternatives == DEFAULT_PASS_ALTERNATIVES


def test_a_canary_at_the_baseline_rate_passes_sooner_than_with_the_old_prior() -> None:
    data = _steady_canary_at_the_baseline_rate(3)
    now = _decided(CountTest(), data)
    before = _decided(CountTest(CountTestConfig(pass_alternatives=OLD_PRIOR)), data)
    assert now == ("pass", 25)
    assert before == ("pass", 26)


def test_the_pass_side_stays_below_alpha_pass_at_the_margin() -> None:
    """Poisson counts with the canary at the margin (1.5x), looked at after every interval for 60:
    the exact mixture (fixed weights) passes at most alphaPass of the runs (Ville; 2.9% of these)."""
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


def test_a_state_saved_with_the_old_prior_keeps_it_and_continues() -> None:
    data = _steady_canary_at_the_baseline_rate(3)
    live = CountTest(CountTestConfig(pass_alternatives=OLD_PRIOR))
    for counts in data[:10]:
        live.update(*counts)
    saved = json.loads(json.dumps(live.to_dict()))
    restored = CountTest.from_dict(saved)
    assert restored.config.pass_alternatives == OLD_PRIOR
    for counts in data[10:]:
        assert restored.update(*counts).to_dict() == live.update(*counts).to_dict()
    assert restored.state.decision == "pass" and restored.state.decided_at == 26


def test_the_latency_test_keeps_the_prior_its_pass_set_was_measured_with() -> None:
    assert LatencyTestConfig().counts.pass_alternatives == OLD_PRIOR
