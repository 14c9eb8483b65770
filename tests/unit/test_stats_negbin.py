"""The negative-binomial guard of the error-rate test: known answers, coverage, state, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from analysis.stats.count_config import CountTestConfig
from analysis.stats.negbin_guard import CANARY_MIN_INTERVALS, NB_A_GRID
from analysis.stats.sequential_counts import CountCore, CountTest
from analysis.stats.types import Decision, InvalidInput


def _one(core: CountCore, st: dict[str, np.ndarray], c: float, k: float, share: float, requests: float) -> None:
    core.update(st, np.array([c]), np.array([k]), np.array([share]), np.array([requests]))


def test_interval_evidence_is_divided_by_the_nb2_score_dispersion() -> None:
    """phi = 1 + 2 a B, B = mu_c mu_b / (mu_c + mu_b), with the baseline's past rate."""
    core = CountCore(CountTestConfig())
    st = core.zeros((1,))
    # Past: 100 baseline errors in 9000 baseline requests (rate 1/90), 10% share.
    _one(core, st, 10.0, 110.0, 0.1, 10000.0)
    before = st["tl_fail"].copy()
    _one(core, st, 2.0, 11.0, 0.1, 1000.0)  # this interval: rate 11/1000 - 1 sd < 1/90
    p = 100.0 / 9000.0
    mu_c, mu_b = 100.0 * p, 900.0 * p
    big_b = mu_c * mu_b / (mu_c + mu_b)
    theta0 = 0.1
    j = int(np.flatnonzero(core.fail_off == round(math.log(2.0) / core.config.grid_step))[0])
    theta1 = 1.0 / (1.0 + math.exp(-(math.log(theta0 / (1 - theta0)) + core.lam[core.i_fail + core.fail_off[j]])))
    dl = 2.0 * math.log(theta1 / theta0) + 9.0 * math.log((1 - theta1) / (1 - theta0))
    for h, a in enumerate(NB_A_GRID):
        got = st["tl_fail"][0, h, j] - before[0, h, j]
        assert got == pytest.approx(dl / (1.0 + 2.0 * a * big_b), rel=1e-9)


def test_baseline_likelihood_is_the_negative_binomial_of_scipy() -> None:
    core = CountCore(CountTestConfig())
    st = core.zeros((1,))
    _one(core, st, 0.0, 50.0, 0.5, 10000.0)  # past: baseline rate 50/5000
    before = st["nb_ll"].copy()
    _one(core, st, 3.0, 20.0, 0.5, 10000.0)  # baseline count 17, mean 50
    got = (st["nb_ll"] - before)[0]
    mu, y = 50.0, 17.0
    want0 = stats.poisson.logpmf(y, mu) + math.lgamma(y + 1)
    assert got[0] == pytest.approx(want0)
    for h, a in enumerate(NB_A_GRID[1:], start=1):
        r = 1.0 / a
        want = stats.nbinom.logpmf(y, r, r / (r + mu)) + math.lgamma(y + 1)
        assert got[h] == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_dispersion_bound_starts_cautious_and_covers_the_truth() -> None:
    rng = np.random.default_rng(11)
    core = CountCore(CountTestConfig())
    runs = 300
    st = core.zeros((runs,))
    # No data: the largest dispersion of the grid.
    assert np.all(core.nb_upper_index(st) == len(NB_A_GRID) - 1)
    pois = core.zeros((runs,))
    covered = np.ones(runs, dtype=bool)
    for _ in range(40):
        g = rng.gamma(1.0, 1.0, runs)  # CV 1: a = 1
        b = rng.poisson(50.0 * g).astype(float)
        _one_batch = (np.zeros(runs), b, np.full(runs, 0.5), np.full(runs, 10000.0))
        core.update(st, *_one_batch)
        covered &= np.asarray(NB_A_GRID)[core.nb_upper_index(st)] >= 1.0
        bp = rng.poisson(50.0, runs).astype(float)
        core.update(pois, np.zeros(runs), bp, np.full(runs, 0.5), np.full(runs, 10000.0))
    # Time-uniform: at every one of the 40 looks, in nearly all runs (level 99%).
    assert covered.mean() >= 0.97
    # Poisson counts: after 40 intervals of ~50 errors the bound is small.
    assert np.median(np.asarray(NB_A_GRID)[core.nb_upper_index(pois)]) <= 0.04


def test_sparse_mostly_zero_counts_are_failed() -> None:
    """0.02% baseline, 10x on the canary, 300 canary requests a minute: most
    intervals hold no error at all."""
    rng = np.random.default_rng(3)
    failed = 0
    for _ in range(20):
        t = CountTest()
        for _ in range(30):
            r = t.update(rng.poisson(300 * 0.002), 300, rng.poisson(2700 * 0.0002), 2700)
            if r.decision is Decision.FAIL:
                failed += 1
                break
    assert failed >= 17


@pytest.mark.slow
def test_clustered_null_is_not_failed_and_reports_the_dispersion() -> None:
    rng = np.random.default_rng(8)
    fails = 0
    for _ in range(25):
        t = CountTest()
        for _ in range(60):
            g1, g2 = rng.gamma(1.0, 1.0), rng.gamma(1.0, 1.0)
            r = t.update(rng.poisson(150 * g1), 3000, rng.poisson(150 * g2), 3000)
            fails += r.decision is Decision.FAIL
            if r.decision is not Decision.CONTINUE and r.decision is not Decision.NODATA:
                break
    assert fails == 0
    assert r.details["dispersion"] > 10.0 and "dispersion" in r.reason


def test_guard_config_and_old_states() -> None:
    assert CountTestConfig().guard == "negbin"
    for bad in ({"guard": "nb"}, {"dispersion_level": 1.0}, {"dispersion_level": float("nan")},
                {"dispersion_level": 0.1}):
        with pytest.raises(InvalidInput):
            CountTestConfig(**bad)
    # A state saved before the guard existed (no "guard", no NB arrays) keeps the t guard.
    old = CountTest(CountTestConfig(guard="t"))
    old.update(3, 600, 20, 5400)
    saved = old.to_dict()
    del saved["config"]["guard"], saved["config"]["dispersionLevel"]
    back = CountTest.from_dict(saved)
    assert back.config.guard == "t" and back.update(2, 600, 22, 5400).decision is Decision.NODATA
    # The new guard round-trips with its arrays; a state missing them is a clear error.
    new = CountTest()
    new.update(3, 600, 20, 5400)
    d = new.to_dict()
    assert CountTest.from_dict(d).to_dict() == d
    del d["state"]["arrays"]["nb_ll"]
    with pytest.raises(InvalidInput, match="nb_ll"):
        CountTest.from_dict(d)


def _canary_bursts(t: CountTest, rng: np.random.Generator, cv: float, ratio: float, steps: int) -> Decision:
    """20 rps at 10% share, 1% errors: the canary's rate times a Gamma(mean 1, CV ``cv``) factor each
    interval, the baseline Poisson (its history too, so the baseline shows no clustering)."""
    t.prime_baseline(list(rng.poisson(12.0, 240).astype(float)), [1200.0] * 240)
    r = t.result()
    for _ in range(steps):
        g = rng.gamma(1.0 / cv**2, cv**2) if cv else 1.0
        r = t.update(rng.poisson(1.2 * ratio * g), 120, rng.poisson(10.8), 1080)
        if r.decision in (Decision.FAIL, Decision.PASS):
            break
    return r.decision


@pytest.mark.slow
def test_errors_clustered_in_the_canary_alone_are_guarded_by_its_own_dispersion() -> None:
    """A release that fails in bursts (CV 1.5) at the baseline's mean rate: the baseline's bound sees no
    clustering, the canary's own counts do. Without their estimate (the old assumption, 0) the
    same streams are failed far more often."""
    fails = {}
    for n in (10, 0):
        rng = np.random.default_rng(5)
        outcomes = [
            _canary_bursts(CountTest(CountTestConfig(canary_dispersion_intervals=n)), rng, 1.5, 1.0, 40)
            for _ in range(200)
        ]
        fails[n] = outcomes.count(Decision.FAIL)
    assert fails[10] <= 2 and fails[0] >= fails[10] + 8, fails


def test_canary_dispersion_stays_out_of_the_way_of_poisson_canaries_and_real_regressions() -> None:
    rng = np.random.default_rng(9)
    t = CountTest()
    assert _canary_bursts(t, rng, 0.0, 3.0, 40) is Decision.FAIL
    arr = t._load()
    assert float(t.core.canary_a(arr)[()]) == 0.0  # 3x at a steady rate is a ratio, not clustering
    assert t.to_dict()["config"]["canaryDispersionIntervals"] == 10
    quiet = CountTest()
    assert _canary_bursts(quiet, rng, 0.0, 1.0, 60) is not Decision.FAIL


def test_canary_dispersion_config_and_states_saved_before_it() -> None:
    for bad in ({"canary_dispersion_intervals": -1}, {"canary_dispersion_intervals": 2.5},
                {"canary_dispersion_gain": float("nan")}, {"canary_dispersion_gain": -1.0}):
        with pytest.raises(InvalidInput, match="canary_dispersion"):
            CountTestConfig(**bad)
    # A state saved before the canary's own estimate existed: no config keys, no canary arrays.
    old = CountTest(CountTestConfig(canary_dispersion_intervals=0))
    old.update(3, 600, 20, 5400)
    saved = old.to_dict()
    del saved["config"]["canaryDispersionIntervals"], saved["config"]["canaryDispersionGain"]
    assert "nbc_ll" not in saved["state"]["arrays"]
    back = CountTest.from_dict(saved)
    assert back.config.canary_dispersion_intervals == 0 and back.update(2, 600, 22, 5400).decision is Decision.NODATA
    new = CountTest()
    new.update(3, 600, 20, 5400)
    d = new.to_dict()
    assert CountTest.from_dict(d).to_dict() == d
    del d["state"]["arrays"]["nbc_ll"]
    with pytest.raises(InvalidInput, match="nbc_ll"):
        CountTest.from_dict(d)


def test_degenerate_intervals_give_a_verdict_never_a_numpy_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = CountTest()
        assert t.update(0, 0, 0, 0).decision is Decision.NODATA  # zero traffic
        assert t.update(0, 100, 0, 0).decision is Decision.NODATA  # no baseline traffic
        for _ in range(5):
            r = t.update(0, 1000, 0, 9000)  # no errors at all
        assert r.decision is Decision.CONTINUE and r.estimate is None
        assert math.isfinite(r.e_fail) and math.isfinite(r.e_pass)
        r = t.update(1000, 1000, 0, 9000)  # every canary request fails
        r = t.update(float("nan"), 1000, 0, 9000)  # a missing scrape
        assert r.decision in (Decision.FAIL, Decision.CONTINUE)
        for args in [(-1, 10, 0, 10), (float("inf"), 10, 0, 10), (0, 10, 11, 10)]:
            with pytest.raises(InvalidInput):
                t.update(*args)


GARBAGE: tuple[object, ...] = (
    0, 1, 7.5, 1e6, 1e308, -1, -0.0, float("nan"), float("inf"), float("-inf"), None, "3", "x", [1], {}, True,
)


def test_garbage_counts_give_a_verdict_or_a_clear_error() -> None:
    """Random mixes of odd values: a SequentialResult or InvalidInput, nothing else,
    and no numpy warning; the state stays loadable after each."""
    rng = np.random.default_rng(17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for guard in ("negbin", "t"):
            t = CountTest(CountTestConfig(guard=guard))
            verdicts = 0
            for _ in range(300):
                args = [GARBAGE[i] for i in rng.integers(0, len(GARBAGE), 4)]
                try:
                    r = t.update(*args)
                except InvalidInput as exc:
                    assert str(exc)
                    continue
                assert r.decision in tuple(Decision)
                assert math.isfinite(r.e_fail) or r.e_fail == math.inf
                t = CountTest.from_dict(t.to_dict())
                verdicts += 1
            assert verdicts >= 10  # the mix is not all rejected


def test_garbage_histograms_give_a_verdict_or_a_clear_error() -> None:
    from analysis.stats.sequential_latency import LatencyTest

    rng = np.random.default_rng(23)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = LatencyTest()
        verdicts = 0
        for _ in range(200):
            def hist() -> object:
                if rng.random() < 0.1:
                    return None
                les = ["0.1", "0.5", "+Inf"] if rng.random() < 0.8 else ["0.2", "+Inf"]
                return {le: GARBAGE[int(rng.integers(0, len(GARBAGE)))] for le in les}

            try:
                r = t.update_histograms(hist(), hist())  # type: ignore[arg-type]
            except InvalidInput as exc:
                assert str(exc)
                continue
            assert r.decision in tuple(Decision)
            verdicts += 1
        assert verdicts >= 5


def _history(
    rng: np.random.Generator, intervals: int, cv: float, rate: float = 0.01
) -> tuple[list[float], list[float]]:
    requests = np.full(intervals, 1200.0)
    mult = rng.gamma(1 / cv**2, cv**2, intervals) if cv > 0 else np.ones(intervals)
    return rng.poisson(requests * rate * mult).astype(float).tolist(), requests.tolist()


def test_stable_history_tightens_the_bound_only_as_far_as_the_data_allow() -> None:
    rng = np.random.default_rng(5)
    fresh = CountTest()
    poisson = CountTest()
    assert poisson.prime_baseline(*_history(rng, 1440, 0.0)) == 1440
    clustered = CountTest()
    clustered.prime_baseline(*_history(rng, 1440, 1.0))

    def temper_a(t: CountTest) -> float:
        return float(NB_A_GRID[int(t.core.nb_temper_index(t._load()))])

    # No data: the most cautious a. A quiet day: close to Poisson. A clustered day (true a = 1):
    # the bound stays at or above the truth.
    assert temper_a(fresh) == NB_A_GRID[-1]
    assert temper_a(poisson) <= 0.02
    assert temper_a(clustered) >= 1.0
    # The same 2x stream: with a quiet history the guard costs (almost) nothing, without it a lot.
    stream = np.random.default_rng(6)
    for _ in range(12):
        n, m = 120.0, 1080.0
        c, b = float(stream.poisson(n * 0.02)), float(stream.poisson(m * 0.01))
        r_fresh, r_primed = fresh.update(c, n, b, m), poisson.update(c, n, b, m)
        r_plain = clustered.update(c, n, b, m)
    assert r_primed.e_fail > r_fresh.e_fail and r_primed.e_fail > r_plain.e_fail
    assert r_primed.details["historyIntervals"] == 1440 and r_fresh.details["historyIntervals"] == 0
    assert "historyIntervals" in poisson.to_dict()["state"]
    assert CountTest.from_dict(poisson.to_dict()).state.history_intervals == 1440


def test_history_is_given_once_before_the_canary_and_checked() -> None:
    t = CountTest()
    with pytest.raises(InvalidInput, match="2 error counts but 1 request counts"):
        t.prime_baseline([1.0, 2.0], [100.0])
    with pytest.raises(InvalidInput, match="negative"):
        t.prime_baseline([-1.0], [100.0])
    # Missing (NaN) and empty intervals are skipped.
    assert CountTest().prime_baseline([1.0, math.nan, 0.0, 2.0], [100.0, 100.0, 0.0, 100.0]) == 2
    t = CountTest()
    t.update(1, 100, 2, 900)
    with pytest.raises(InvalidInput, match="once, before the first interval"):
        t.prime_baseline([1.0], [100.0])
    # Tests that do not bound the dispersion from the baseline ignore it.
    assert CountTest(CountTestConfig(dispersion=1.0)).prime_baseline([1.0], [100.0]) == 0
    assert CountTest(CountTestConfig(guard="t")).prime_baseline([1.0], [100.0]) == 0
    # States saved before the history existed load with none.
    saved = CountTest().to_dict()
    del saved["state"]["historyIntervals"]
    assert CountTest.from_dict(saved).state.history_intervals == 0


def _cautious_intervals(config: CountTestConfig, canary_requests: float, steps: int = 12) -> int:
    """After how many intervals the canary's dispersion is no longer above 0, for a canary whose counts
    are steady at about the baseline's 1% rate (its best fit is Poisson, a_c = 0; its cautious end is
    above 0 until the steady counts rule clustering out)."""
    t = CountTest(config)
    t.prime_baseline([12.0] * 240, [1200.0] * 240)
    cautious = 0
    for _ in range(steps):
        t.update(round(0.01 * canary_requests), canary_requests, 10.0, 1000.0)
        cautious += float(t.core.canary_a(t._load())[()]) > 0.0
    return cautious


def test_the_cautious_window_ends_once_the_canarys_traffic_would_show_enough_errors() -> None:
    """1.2 expected canary errors an interval: the traffic does not shorten the window; 30 an interval:
    the window ends at the floor of 3 intervals (not after the single interval that holds 12 expected
    errors); a window in intervals only (0) holds the cautious end for 9 intervals there."""
    in_intervals = CountTestConfig(canary_dispersion_events=0.0)
    assert _cautious_intervals(CountTestConfig(), 120.0) == _cautious_intervals(in_intervals, 120.0) >= 8
    assert _cautious_intervals(CountTestConfig(), 3000.0) == CANARY_MIN_INTERVALS - 1
    assert _cautious_intervals(in_intervals, 3000.0) >= 8
    with pytest.raises(InvalidInput, match="canary_dispersion_events"):
        CountTestConfig(canary_dispersion_events=-1.0)


def test_a_state_saved_before_the_traffic_window_keeps_its_window_in_intervals() -> None:
    t = CountTest()
    t.update(3, 600, 20, 5400)
    saved = t.to_dict()
    assert saved["config"]["canaryDispersionEvents"] == 12.0
    del saved["config"]["canaryDispersionEvents"]
    assert CountTest.from_dict(saved).config.canary_dispersion_events == 0.0



def test_the_pass_test_keeps_the_canarys_cautious_dispersion_longer_than_the_fail_test() -> None:
    """The same canary clustering alone (CV 1) better than the baseline (1.2 expected errors an
    interval), judged with the PASS test's window 1.5x as long (15 intervals / 18 expected errors) and on
    one window (10 / 12) for both tests: the FAIL e-values are the same at every interval; the PASS
    e-values too while both windows hold the cautious end; between the two windows' ends the one window's
    PASS e-value (tempered by the best fit) reaches 1 / alphaPass, the longer window's (still by the
    cautious end) does not."""
    assert CountTestConfig().pass_canary_dispersion_window == (15, 18.0)
    default, one_window = CountTest(), CountTest(CountTestConfig(pass_canary_dispersion_scale=1.0))
    history = list(np.random.default_rng(3).poisson(12.0, 240).astype(float))
    for t in (default, one_window):
        t.prime_baseline(history, [1200.0] * 240)
    rng = np.random.default_rng(11)
    pairs = []
    for _ in range(15):
        counts = (float(rng.poisson(1.2 * 0.7 * rng.gamma(1.0, 1.0))), 120.0, float(rng.poisson(10.8)), 1080.0)
        new, old = default.update(*counts), one_window.update(*counts)
        assert new.e_fail == old.e_fail
        pairs.append((new.e_pass, old.e_pass))
    assert all(n == o for n, o in pairs[:9]), pairs
    after = pairs[9:14]  # the FAIL window over, the PASS window not yet
    assert max(o for _, o in after) >= 20.0 > max(n for n, _ in after), pairs  # 1 / alphaPass


def test_a_state_saved_before_the_pass_window_judges_both_tests_on_one_window() -> None:
    t = CountTest()
    t.update(3, 600, 20, 5400)
    saved = t.to_dict()
    assert saved["config"]["passCanaryDispersionScale"] == 1.5
    assert CountTest.from_dict(saved).to_dict() == saved
    del saved["config"]["passCanaryDispersionScale"]
    back = CountTest.from_dict(saved)
    assert back.config.pass_canary_dispersion_window == (10, 12.0)
    assert back.update(2, 600, 22, 5400).decision is Decision.NODATA
    for bad in (0.5, math.inf, float("nan")):
        with pytest.raises(InvalidInput, match="pass_canary_dispersion_scale"):
            CountTestConfig(pass_canary_dispersion_scale=bad)
