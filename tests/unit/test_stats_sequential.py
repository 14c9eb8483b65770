"""Sequential error-rate and latency judges: decisions, validity, state, bad input."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountCore, CountTest, validate_counts
from analysis.stats.sequential_latency import (
    LatencyCore,
    LatencyTest,
    LatencyTestConfig,
    exceedance_counts,
    histogram_from_cumulative,
    histogram_from_samples,
)
from analysis.stats.types import Decision, InvalidInput, Shortfall

BOUNDS = tuple(0.01 * 2.0**i for i in range(10))


def _run_counts(cfg: CountTestConfig, ce: np.ndarray, cn: np.ndarray, be: np.ndarray, bn: np.ndarray) -> np.ndarray:
    """Vectorised CountCore over runs; returns the first interval each run FAILs (inf if never)."""
    core = CountCore(cfg)
    runs, t_max = ce.shape
    st = core.zeros((runs,))
    fail = np.full(runs, np.inf)
    for t in range(t_max):
        core.update(st, ce[:, t], ce[:, t] + be[:, t], cn[:, t] / (cn[:, t] + bn[:, t]), cn[:, t] + bn[:, t])
        lf, _ = core.log_e(st)
        hit = (lf >= -math.log(cfg.alpha_fail)) & np.isinf(fail) & (t + 1 >= cfg.min_intervals)
        fail[hit] = t + 1
    return fail


def test_vectorised_core_matches_count_test() -> None:
    rng = np.random.default_rng(1)
    cfg = CountTestConfig()
    t = CountTest(cfg)
    core = CountCore(cfg)
    st = core.zeros((1,))
    for _ in range(12):
        c, b = float(rng.poisson(2.0)), float(rng.poisson(9.0))
        t.update(c, 150, b, 1350)
        core.update(st, np.array([c]), np.array([c + b]), np.array([0.1]), np.array([1500.0]))
    lf, lp = core.log_e(st)
    r = t.result()
    assert r.e_fail == pytest.approx(math.exp(lf[0]))
    assert r.e_pass == pytest.approx(math.exp(lp[0]))


def test_type_one_error_poisson_and_clustered_nulls() -> None:
    """Checked after every interval for 60 intervals, the false-rollback rate stays
    below alpha = 1% on a Poisson null and on strongly clustered errors."""
    rng = np.random.default_rng(2024)
    runs, t_max = 400, 60
    n = rng.poisson(600.0, (runs, t_max)).astype(float)
    m = rng.poisson(5400.0, (runs, t_max)).astype(float)
    ce, be = rng.poisson(n * 0.01).astype(float), rng.poisson(m * 0.01).astype(float)
    fail = _run_counts(CountTestConfig(), ce, n, be, m)
    assert np.isfinite(fail).mean() <= 0.01
    # Errors clustered per version and interval: Gamma(CV 1) multipliers, phi ~ 50.
    g1, g2 = rng.gamma(1.0, 1.0, (runs, t_max)), rng.gamma(1.0, 1.0, (runs, t_max))
    ce, be = rng.poisson(n * 0.01 * g1).astype(float), rng.poisson(m * 0.01 * g2).astype(float)
    robust = _run_counts(CountTestConfig(), ce, n, be, m)
    assert np.isfinite(robust).mean() <= 0.01
    # The plain Poisson test is fooled by the same data: the guard is what saves us.
    naive = _run_counts(CountTestConfig(dispersion=1.0), ce, n, be, m)
    assert np.isfinite(naive).mean() > 0.1


def test_detects_a_doubling_and_passes_a_good_canary() -> None:
    rng = np.random.default_rng(5)
    bad = CountTest()
    for _ in range(60):
        r = bad.update(rng.poisson(24), 1200, rng.poisson(108), 10800)
        if r.decision is Decision.FAIL:
            break
    assert r.decision is Decision.FAIL
    assert r.estimate is not None and 1.3 < r.estimate < 3.5
    assert r.interval is not None and r.interval[0] > 1.0
    assert "canary error rate above" in r.reason and r.p_fail <= 0.01
    good = CountTest()
    for _ in range(60):
        r = good.update(rng.poisson(60), 6000, rng.poisson(540), 54000)
        if r.decision is not Decision.CONTINUE and r.decision is not Decision.NODATA:
            break
    assert r.decision is Decision.PASS
    assert r.interval is not None and r.interval[1] < 2.0
    # Decisions are final.
    assert good.update(600, 6000, 1, 54000).decision is Decision.PASS


def test_minimum_evidence_waits_for_data() -> None:
    t = CountTest(CountTestConfig(min_intervals=3, min_canary_requests=200))
    for _ in range(10):  # a handful of requests, all failing: still no verdict
        r = t.update(5, 5, 0, 900)
    assert r.decision is Decision.NODATA
    assert "waiting for data" in r.reason and "canary 50/200" in r.reason
    # Zero traffic and missing scrapes: no data, never an exception.
    t2 = CountTest()
    assert t2.update(0, 0, 0, 0).decision is Decision.NODATA
    assert t2.update(float("nan"), 10, 1, 100).decision is Decision.NODATA
    assert t2.state.missing == 1


def test_the_shortfall_says_how_many_more_intervals_at_the_pace_seen() -> None:
    t = CountTest(CountTestConfig(min_intervals=3, min_canary_requests=200, min_baseline_requests=200))
    for _ in range(10):
        r = t.update(0, 5, 0, 900)
    assert r.shortfall == Shortfall("requests", 50, 200, 9000, 200, 10, 10, 3)
    assert r.shortfall.intervals_to_go() == 30  # 150 more canary requests at 5 an interval
    assert t.update(0, 1000, 0, 900).shortfall is None  # enough: no shortfall
    early = Shortfall("requests", 900, 200, 900, 200, 1, 1, 3)
    assert early.intervals_to_go() == 2  # minIntervals is what is left
    none_yet = Shortfall("requests", 0, 200, 500, 200, 4, 0, 3)
    assert none_yet.intervals_to_go() is None and none_yet.missing() == ["canary"]
    points = Shortfall("points", 4, 10, 4, 10)
    assert points.intervals_to_go(per_interval=0.5) == 12 and points.text() == "canary 4/10 and baseline 4/10 points"


def test_count_bad_input_is_a_clear_error() -> None:
    t = CountTest()
    for args in [(-1, 10, 0, 10), (11, 10, 0, 10), (float("inf"), 10, 0, 10), ("x", 10, 0, 10)]:
        with pytest.raises(InvalidInput):
            t.update(*args)  # type: ignore[arg-type]
    assert validate_counts(1, 10, 0, 10) == (1.0, 10.0, 0.0, 10.0)
    with pytest.raises(InvalidInput):
        CountTestConfig(alpha_fail=0.0)
    with pytest.raises(InvalidInput):
        CountTestConfig(dispersion=0.5)
    with pytest.raises(InvalidInput):
        CountTest.from_dict({"config": {}, "state": {}})
    with pytest.raises(InvalidInput):
        CountTest.from_dict({"config": CountTestConfig().to_dict(), "state": {"arrays": {"loglik": [1.0]}}})


def test_count_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(9)
    a = CountTest()
    for _ in range(5):
        a.update(rng.poisson(3), 300, rng.poisson(27), 2700)
    b = CountTest.from_dict(json.loads(json.dumps(a.to_dict())))
    for _ in range(5):
        c, e = rng.poisson(3), rng.poisson(27)
        ra, rb = a.update(c, 300, e, 2700), b.update(c, 300, e, 2700)
        assert ra.to_dict() == rb.to_dict()
    json.dumps(ra.to_dict())


def test_histogram_parsing() -> None:
    h, b = histogram_from_cumulative({"0.1": 5, "0.5": 8, "+Inf": 10}) or (None, None)
    assert b == (0.1, 0.5) and h is not None and list(h) == [5.0, 3.0, 2.0]
    assert list(exceedance_counts(h)) == [5.0, 2.0]
    assert histogram_from_cumulative({"0.1": float("nan"), "+Inf": 3}) is None
    with pytest.raises(InvalidInput):
        histogram_from_cumulative({"0.1": 9, "0.5": 2, "+Inf": 10})  # decreasing
    with pytest.raises(InvalidInput):
        histogram_from_cumulative({"0.1": -1, "+Inf": 10})
    with pytest.raises(InvalidInput):
        histogram_from_cumulative({"0.1": 1, "+Inf": 2}, bounds=(0.1, 0.2))
    with pytest.raises(InvalidInput):
        histogram_from_cumulative({})
    assert list(histogram_from_samples([0.05, 0.1, 0.3, 9.0, float("nan")], (0.1, 0.5))) == [2.0, 1.0, 1.0]
    with pytest.raises(InvalidInput):
        histogram_from_samples([-1.0], (0.1,))


def test_latency_detects_variance_only_increase_and_passes_equal() -> None:
    rng = np.random.default_rng(3)
    cfg = LatencyTestConfig(buckets=BOUNDS)
    wide = LatencyTest(cfg)
    for _ in range(30):
        r = wide.update_samples(rng.lognormal(math.log(0.1), 0.8, 200), rng.lognormal(math.log(0.1), 0.5, 1800))
        if r.decision is Decision.FAIL:
            break
    assert r.decision is Decision.FAIL and "slower" in r.reason
    assert r.details["worstBound"] >= 0.16  # the upper tail, not the median
    same = LatencyTest(cfg)
    for _ in range(60):
        r = same.update_samples(rng.lognormal(math.log(0.1), 0.5, 600), rng.lognormal(math.log(0.1), 0.5, 5400))
        if r.decision is Decision.PASS:
            break
    assert r.decision is Decision.PASS
    restored = LatencyTest.from_dict(json.loads(json.dumps(same.to_dict())))
    assert restored.result().decision is Decision.PASS


def test_latency_type_one_error_heavy_tail() -> None:
    rng = np.random.default_rng(11)
    runs, t_max = 300, 40
    bounds = np.array(BOUNDS)
    cfg = LatencyTestConfig(buckets=BOUNDS)
    core = LatencyCore(cfg, bounds.size)
    st = core.zeros((runs,))
    # Pareto(1.1) latencies: no finite variance. Bucket probabilities, multinomial counts.
    cdf = np.where(bounds > 0.02, 1 - (0.02 / bounds) ** 1.1, 0.0)
    p = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    fails = np.zeros(runs, dtype=bool)
    for _ in range(t_max):
        hc = rng.multinomial(120, p, size=runs).astype(float)
        hb = rng.multinomial(1080, p, size=runs).astype(float)
        core.update(st, exceedance_counts(hc), hc.sum(-1), exceedance_counts(hb), hb.sum(-1))
        lf, _, enough = core.judge(st)
        fails |= enough & (lf >= -math.log(cfg.counts.alpha_fail))
    assert fails.mean() <= 0.01


def test_latency_bad_input() -> None:
    t = LatencyTest()
    assert t.result().decision is Decision.NODATA
    with pytest.raises(InvalidInput):
        t.update_samples([0.1], [0.1])  # no bounds configured yet
    r = t.update_histograms(None, {"0.1": 1, "+Inf": 2})
    assert r.decision is Decision.NODATA
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = t.update_histograms({"0.1": 0, "+Inf": 0}, {"0.1": 0, "+Inf": 0})  # zero traffic
        assert r.decision is Decision.NODATA
    with pytest.raises(InvalidInput):
        t.update_histograms({"0.1": 1, "+Inf": 2}, {"0.2": 1, "+Inf": 2})
    with pytest.raises(InvalidInput):
        LatencyTestConfig(buckets=(0.5, 0.1))
    with pytest.raises(InvalidInput):
        LatencyTest.from_dict({"config": LatencyTestConfig(buckets=(0.1,)).to_dict(), "state": {"bounds": [0.1]}})


def _tail_histograms(rng: np.random.Generator, canary_tail: float, intervals: int) -> LatencyTest:
    """A lognormal body (median 0.1 s) with a Pareto tail from 0.3 s: 5% of the baseline's
    requests, ``canary_tail`` of the canary's; 120 canary and 1,080 baseline requests per interval."""
    bounds = np.array(BOUNDS)

    def probs(tail: float) -> np.ndarray:
        body = 0.5 * (1.0 + np.vectorize(math.erf)(np.log(bounds / 0.1) / (0.5 * math.sqrt(2.0))))
        pareto = np.where(bounds > 0.3, 1.0 - (0.3 / bounds) ** 1.5, 0.0)
        cdf = (1.0 - tail) * body + tail * pareto
        return np.diff(np.concatenate([[0.0], cdf, [1.0]]))

    test = LatencyTest(LatencyTestConfig(buckets=BOUNDS))
    pc, pb = probs(canary_tail), probs(0.05)
    for _ in range(intervals):
        hc = rng.multinomial(120, pc).astype(float)
        hb = rng.multinomial(1080, pb).astype(float)
        r = test.update_histograms(_cumulative(hc), _cumulative(hb))
        if r.decision in (Decision.PASS, Decision.FAIL):
            break
    return test


def _cumulative(h: np.ndarray) -> dict[str, float]:
    cum = np.cumsum(h)
    out = {f"{b:g}": float(c) for b, c in zip(BOUNDS, cum[:-1], strict=True)}
    out["+Inf"] = float(cum[-1])
    return out


def test_latency_pass_set_leaves_out_bounds_without_evidence_and_names_them() -> None:
    # Heavy tail, no regression: p99 (0.64 s) sees ~2 canary requests a minute, too few to show
    # "< 1.5x" within 30 intervals; the pass covers the bounds that can, and says what it leaves out.
    test = _tail_histograms(np.random.default_rng(5), 0.05, 30)
    r = test.result()
    assert r.decision is Decision.PASS
    assert r.details["passBounds"] == [0.16, 0.32]
    assert r.details["passChecked"] == [0.64]  # ~52 by the horizon: estimated, not shown
    assert 1.28 in r.details["passLeftOut"] and 0.64 not in r.details["passLeftOut"]
    assert "estimated only at 0.64s; not covered: 1.28s" in r.reason and "within 30 intervals" in r.reason
    info = r.details["passInformation"]
    assert info[BOUNDS.index(0.32)] >= 120.0 > info[BOUNDS.index(0.64)] >= 20.0 > info[BOUNDS.index(1.28)]


def test_latency_heavier_tail_is_not_passed_on_the_bounds_left_in() -> None:
    # The tail doubles (5% -> 10%): the body's bound 0.16 s moves by only 1.2x (inside the 1.5x
    # margin), but 0.32 s carries enough evidence to be in the pass set, so the canary FAILs.
    for seed in range(3):
        r = _tail_histograms(np.random.default_rng(seed), 0.10, 60).result()
        assert r.decision is Decision.FAIL, r.reason


def test_latency_pass_is_held_while_a_bound_outside_the_set_shows_a_slowdown() -> None:
    cfg = LatencyTestConfig(buckets=(0.1, 0.2, 0.4), pass_min_information=10_000.0, pass_check_information=1e6)
    core = LatencyCore(cfg, 3)
    st = core.zeros()
    # The middle bound (pooled ~20%) is the only one in the range; the top bound (pooled ~2%)
    # is 4x worse on the canary: its own FAIL e-value holds the pass.
    for _ in range(20):
        core.update(st, np.array([55.0, 20.0, 8.0]), np.array(100.0), np.array([500.0, 180.0, 16.0]), np.array(900.0))
    lf_all, _ = core.core.log_e(st)
    assert core.pass_held(st, lf_all)
    _, lp, _ = core.judge(st)
    assert lp <= 0.0
    st2 = core.zeros()
    for _ in range(20):
        core.update(st2, np.array([55.0, 20.0, 2.0]), np.array(100.0), np.array([500.0, 180.0, 18.0]), np.array(900.0))
    lf2, _ = core.core.log_e(st2)
    assert not core.pass_held(st2, lf2)
    assert core.judge(st2)[1] > 0.0


def test_latency_pass_waits_for_a_checked_bound_and_its_estimate_below_the_margin() -> None:
    # The top bound (pooled ~2%: information 54 by the horizon, below 100 and above 10) is checked:
    # it must first gather 10 (information so far), then be estimated below 1.5x.
    cfg = LatencyTestConfig(buckets=(0.1, 0.2, 0.4), pass_min_information=100.0, pass_check_information=10.0)
    core = LatencyCore(cfg, 3)

    def run(canary_top: float, intervals: int) -> tuple[dict[str, np.ndarray], float, bool]:
        st = core.zeros()
        for _ in range(intervals):
            core.update(
                st, np.array([55.0, 20.0, canary_top]), np.array(100.0), np.array([500.0, 180.0, 18.0]), np.array(900.0)
            )
        lf, _ = core.core.log_e(st)
        return st, float(np.max(lf)), bool(core.pass_held(st, lf))

    st, _, held = run(2.0, 3)  # 3 intervals: information so far 5.4 < 10
    assert core.pass_checked(st).tolist() == [False, False, True] and held
    _, _, held = run(2.0, 8)  # 14.4 gathered, estimate 1x: no longer held
    assert not held
    _, lf_max, held = run(3.0, 8)  # estimate 1.5x: held by the estimate alone
    assert held and lf_max < math.log(20.0)


def test_latency_pass_set_falls_back_to_the_best_informed_bound() -> None:
    # Low traffic: no bound reaches the information needed; the pass tests the in-range bound
    # with the most information alone (not none, which would never promote early).
    cfg = LatencyTestConfig(buckets=(0.08, 0.16, 0.32))
    core = LatencyCore(cfg, 3)
    st = core.zeros()
    core.update(st, np.array([4.0, 1.0, 0.0]), np.array(6.0), np.array([76.0, 20.0, 1.0]), np.array(114.0))
    assert core.pass_set(st).tolist() == [False, True, False]
    assert float(core.information(st)[1]) < cfg.pass_min_information


def test_latency_config_saved_before_the_evidence_rule_keeps_its_pass_set() -> None:
    saved = LatencyTestConfig(buckets=BOUNDS).to_dict()
    assert saved["passMinInformation"] == 120.0 and saved["passHorizon"] == 30
    assert saved["passCheckInformation"] == 20.0
    for key in ("passMinInformation", "passHorizon", "passCheckInformation"):
        del saved[key]
    saved["passExceedanceRange"] = [0.01, 0.5]
    old = LatencyTestConfig.from_dict(saved)
    assert old.pass_min_information == 0.0 and old.pass_check_information == 0.0
    assert old.pass_exceedance_range == (0.01, 0.5)
    core = LatencyCore(old, 3)
    st = core.zeros()
    core.update(st, np.array([20.0, 2.0, 0.0]), np.array(100.0), np.array([180.0, 10.0, 0.0]), np.array(900.0))
    assert core.pass_set(st).tolist() == [True, True, False]  # the range alone, as before
    assert not core.pass_checked(st).any()
    # A whole test saved mid-run before the rule: loads, keeps its arrays and its old pass set.
    running = _tail_histograms(np.random.default_rng(5), 0.05, 5).to_dict()
    for key in ("passMinInformation", "passHorizon", "passCheckInformation"):
        del running["config"][key]
    running["config"]["passExceedanceRange"] = [0.01, 0.5]
    restored = LatencyTest.from_dict(json.loads(json.dumps(running)))
    assert restored.state.intervals == 5 and restored.config.pass_min_information == 0.0
    assert restored.result().details["passBounds"] == [0.16, 0.32, 0.64]
    with pytest.raises(InvalidInput, match="pass_min_information"):
        LatencyTestConfig(pass_min_information=-1.0)
    with pytest.raises(InvalidInput, match="pass_check_information"):
        LatencyTestConfig(pass_check_information=math.nan)
    with pytest.raises(InvalidInput, match="pass_horizon"):
        LatencyTestConfig(pass_horizon=0)


def _lognormal_probs(bounds: np.ndarray, extra_tail: float = 0.0) -> np.ndarray:
    """Bucket probabilities of a lognormal (median 0.1 s, sigma 0.5), with ``extra_tail`` of the
    requests moved to a Pareto(1.5) tail from 0.32 s (the p99): the p99's exceedances double at 1%."""
    body = 0.5 * (1.0 + np.vectorize(math.erf)(np.log(bounds / 0.1) / (0.5 * math.sqrt(2.0))))
    pareto = np.where(bounds > 0.32, 1.0 - (0.32 / bounds) ** 1.5, 0.0)
    cdf = (1.0 - extra_tail) * body + extra_tail * pareto
    out: np.ndarray = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return out


def _first_fail(cfg: LatencyTestConfig, extra_tail: float, runs: int, intervals: int, seed: int) -> np.ndarray:
    """Vectorised LatencyCore on 20 rps at a 10% canary share; the first interval each run FAILs."""
    rng = np.random.default_rng(seed)
    bounds = np.array(BOUNDS)
    core = LatencyCore(cfg, bounds.size)
    st = core.zeros((runs,))
    pc, pb = _lognormal_probs(bounds, extra_tail), _lognormal_probs(bounds)
    first = np.full(runs, np.inf)
    for t in range(intervals):
        hc = rng.multinomial(120, pc, size=runs).astype(float)
        hb = rng.multinomial(1080, pb, size=runs).astype(float)
        core.update(st, exceedance_counts(hc), hc.sum(-1), exceedance_counts(hb), hb.sum(-1))
        lf, _, enough = core.judge(st)
        first = np.where(np.isinf(first) & enough & (lf >= -math.log(cfg.counts.alpha_fail)), t + 1, first)
    return first


def test_latency_fail_portfolio_catches_a_p99_only_regression_sooner() -> None:
    # Only the p99 bound (0.32 s) moves; of the ten bounds two carry the lognormal's upper half.
    # The portfolio puts the other bounds' stakes on those two: the p99's stake is 0.5 where the
    # equal average (fail_floor 1) gives it 0.1.
    portfolio = _first_fail(LatencyTestConfig(buckets=BOUNDS), 0.01, 300, 30, seed=21)
    equal = _first_fail(LatencyTestConfig(buckets=BOUNDS, fail_floor=1.0), 0.01, 300, 30, seed=21)
    assert np.isfinite(portfolio).mean() >= np.isfinite(equal).mean() + 0.08
    assert np.isfinite(portfolio).mean() >= 0.4


def test_latency_fail_portfolio_moves_stakes_to_the_informative_bounds() -> None:
    cfg = LatencyTestConfig(buckets=BOUNDS)
    core = LatencyCore(cfg, len(BOUNDS))
    st = core.zeros()
    bounds = np.array(BOUNDS)
    p = _lognormal_probs(bounds)
    hc, hb = 120.0 * p, 1080.0 * p
    for _ in range(cfg.counts.min_intervals):
        core.update(st, exceedance_counts(hc), np.array(120.0), exceedance_counts(hb), np.array(1080.0))
    assert not st["fail_released"].any()  # nothing moves before the data suffice for a verdict
    informative = core.fail_informative(st)
    assert bounds[informative].tolist() == [0.16, 0.32]  # 0.01..0.08: > 50% exceed; 0.64 up: rare
    before = np.exp(st["fail_wealth"])
    e_fail, _, _ = core.judge(st)
    # An interval without traffic: the stakes move, no e-value changes.
    none = np.zeros(len(BOUNDS))
    core.update(st, none, np.array(0.0), none, np.array(0.0))
    after = np.exp(st["fail_wealth"])
    assert after.sum(axis=-1) == pytest.approx(before.sum(axis=-1))
    assert float(core.judge(st)[0]) == pytest.approx(float(e_fail))
    assert (st["fail_released"] > 0.5).tolist() == (~informative).tolist()
    assert after[:, ~informative] == pytest.approx(cfg.fail_floor * before[:, ~informative])
    gained = after[:, informative] - before[:, informative]
    assert gained == pytest.approx(np.repeat(gained[:, :1], 2, axis=1))
    assert gained.sum(axis=-1) == pytest.approx((1.0 - cfg.fail_floor) * before[:, ~informative].sum(axis=-1))
    # Once only: a second empty interval moves nothing.
    core.update(st, none, np.array(0.0), none, np.array(0.0))
    assert np.exp(st["fail_wealth"]) == pytest.approx(after)


def test_latency_fail_portfolio_keeps_false_rollbacks_below_alpha() -> None:
    first = _first_fail(LatencyTestConfig(buckets=BOUNDS), 0.0, 400, 60, seed=22)
    assert np.isfinite(first).mean() <= 0.01


def test_latency_state_saved_before_the_fail_portfolio_loads_and_continues() -> None:
    running = _tail_histograms(np.random.default_rng(5), 0.05, 5).to_dict()
    before = LatencyTest.from_dict(json.loads(json.dumps(running))).result()
    for key in ("failMinInformation", "failMaxExceedance", "failFloor"):
        del running["config"][key]
    for key in ("fail_wealth", "fail_last", "fail_released"):
        del running["state"]["arrays"][key]
    restored = LatencyTest.from_dict(json.loads(json.dumps(running)))
    assert restored.config.fail_floor == 1.0  # equal weights, as it was saved
    r = restored.result()
    assert restored.state.intervals == 5 and r.decision is before.decision
    assert r.details["eFailPerBound"] == before.details["eFailPerBound"]
    rng = np.random.default_rng(6)
    p = _lognormal_probs(np.array(BOUNDS))
    r = restored.update_histograms(
        _cumulative(rng.multinomial(120, p).astype(float)), _cumulative(rng.multinomial(1080, p).astype(float))
    )
    assert r.intervals_seen == 6 and "fail_wealth" in restored.state.arrays
    half = LatencyTest.from_dict(json.loads(json.dumps(running)))
    half.state.arrays["fail_last"] = [[0.0] * len(BOUNDS)] * 2
    with pytest.raises(InvalidInput, match="fail_wealth"):
        LatencyTest(half.config, half.state)


def test_latency_fail_portfolio_config_checks() -> None:
    with pytest.raises(InvalidInput, match="fail_floor"):
        LatencyTestConfig(fail_floor=0.0)
    with pytest.raises(InvalidInput, match="fail_max_exceedance"):
        LatencyTestConfig(fail_max_exceedance=1.5)
    with pytest.raises(InvalidInput, match="fail_min_information"):
        LatencyTestConfig(fail_min_information=-1.0)
    saved = LatencyTestConfig(buckets=BOUNDS, fail_floor=0.5).to_dict()
    assert LatencyTestConfig.from_dict(saved).fail_floor == 0.5
