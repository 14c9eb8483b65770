"""Kayenta-style Mann-Whitney judge: known answers, scipy, R's algorithm, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from analysis.stats.mannwhitney import (
    EffectSizeMeasure,
    MetricConfig,
    NaNStrategy,
    classify,
    clean_values,
    effect_size,
    hodges_lehmann,
    iqr_outlier_mask,
    mann_whitney,
)
from analysis.stats.scoring import ScoredMetric, ScoreThresholds, ScoreVerdict, score
from analysis.stats.types import Classification, Direction, InvalidInput, MetricClassification

# Hollander & Wolfe (1973, p. 69), the example of R's ?wilcox.test.
HW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
HW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]


def r_wilcox_ci(x: np.ndarray, y: np.ndarray, conf: float = 0.95) -> tuple[float, float, float]:
    """Literal transcription of R's stats:::wilcox.test.default, exact=FALSE,
    correct=TRUE, two-sided: uniroot on the corrected z of (x - d, y)."""
    nx, ny = len(x), len(y)

    def wdiff(d: float, zq: float, correct: bool) -> float:
        dr = stats.rankdata(np.concatenate([x - d, y]))
        _, nties = np.unique(dr, return_counts=True)
        dz = dr[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
        corr = np.sign(dz) * 0.5 if correct else 0.0
        sigma = math.sqrt(nx * ny / 12 * ((nx + ny + 1) - (nties**3 - nties).sum() / ((nx + ny) * (nx + ny - 1))))
        return float((dz - corr) / sigma - zq)

    mumin, mumax = x.min() - y.max(), x.max() - y.min()

    def root(zq: float, correct: bool = True) -> float:
        fl, fu = wdiff(mumin, zq, correct), wdiff(mumax, zq, correct)
        if fl <= 0:
            return float(mumin)
        if fu >= 0:
            return float(mumax)
        return float(optimize.brentq(wdiff, mumin, mumax, args=(zq, correct), xtol=1e-6))

    alpha = 1 - conf
    z = stats.norm.ppf(1 - alpha / 2)
    return root(z), root(-z), root(0.0, correct=False)


def test_hollander_wolfe_statistic_and_p_values() -> None:
    r = mann_whitney(HW_X, HW_Y)
    # R: W = 35 for this example (and one-sided exact p = 0.1272).
    assert r.u_statistic == 35.0
    # R's large-sample one-sided p without correction is 0.1103: z = 10 / sqrt(50*16/12).
    assert stats.norm.sf(10 / math.sqrt(50 * 16 / 12)) == pytest.approx(0.1103, abs=5e-5)
    # Two-sided corrected: z = (10 - 0.5) / sqrt(66.667) = 1.1635 -> p = 0.2446.
    assert r.p_value == pytest.approx(0.24462, abs=5e-5)
    ref = stats.mannwhitneyu(HW_X, HW_Y, alternative="two-sided", method="asymptotic")
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_hollander_wolfe_interval_by_hand() -> None:
    # nm = 50, no ties: sd0 = sqrt(50 * 16 / 12) = 8.1650, z = 1.95996:
    # lower = D_(ceil(25 - 0.5 - 16.003)) = D_(9), upper = D_(ceil(25 + 0.5 + 16.003)) = D_(42).
    # Sorted differences x_i - y_j: the 9th is 0.73 - 0.88 = -0.15, the 42nd 1.64 - 0.88 = 0.76;
    # the HL estimate is the mean of the 25th and 26th, (0.30 + 0.31) / 2.
    r = mann_whitney(HW_X, HW_Y)
    assert r.lower == pytest.approx(-0.15)
    assert r.upper == pytest.approx(0.76)
    assert r.estimate == pytest.approx(0.305)
    lo, hi, est = r_wilcox_ci(np.array(HW_X), np.array(HW_Y))
    assert (lo, hi) == pytest.approx((-0.15, 0.76), abs=1e-4)
    # R's uniroot lands anywhere on the flat piece (0.30, 0.31) for the estimate.
    assert 0.30 - 1e-4 <= est <= 0.31 + 1e-4


def test_interval_with_ties_matches_r_algorithm() -> None:
    rng = np.random.default_rng(3)
    for _ in range(15):
        n, m = rng.integers(2, 25, size=2)
        x = np.round(rng.normal(1.0, 1.0, n), 1)  # rounding makes ties
        y = np.round(rng.normal(0.5, 1.0, m), 1)
        if np.unique(np.concatenate([x, y])).size < 2:
            continue
        r = mann_whitney(x, y, conf_level=0.9)
        lo, hi, _ = r_wilcox_ci(x, y, conf=0.9)
        assert r.lower == pytest.approx(lo, abs=1e-4)
        assert r.upper == pytest.approx(hi, abs=1e-4)
        ref = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_hodges_lehmann_brute_force_and_large_samples() -> None:
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (3, 4), (7, 7), (20, 13)]:
        x, y = rng.normal(size=n), rng.normal(size=m)
        assert hodges_lehmann(x, y) == pytest.approx(float(np.median(np.subtract.outer(x, y))))
    # Above the enumeration limit the order statistics come from bisection.
    x, y = rng.lognormal(size=1600), rng.lognormal(size=1500)
    from analysis.stats import mannwhitney as mwmod

    exact = mwmod._kth_difference(np.sort(x), np.sort(y), 1_000_000)
    d = np.sort(np.subtract.outer(x, y).ravel())
    assert exact == d[999_999]
    assert hodges_lehmann(x, y) == pytest.approx(float(np.median(d)))


def test_clean_and_outliers() -> None:
    v = [1.0, float("nan"), 2.0, float("inf"), 3.0]
    assert list(clean_values(v, NaNStrategy.REMOVE)) == [1.0, 2.0, 3.0]
    assert list(clean_values(v, "replace")) == [1.0, 0.0, 2.0, 0.0, 3.0]
    data = np.array([1.0, 1.1, 0.9, 1.0, 1.2, 0.95, 1.05, 50.0])
    mask = iqr_outlier_mask(data, factor=3.0, reduce_sensitivity=False)
    assert list(np.flatnonzero(mask)) == [7]
    with pytest.raises(InvalidInput):
        clean_values(v, "drop")


def test_effect_sizes() -> None:
    x, y = np.array([2.0, 4.0]), np.array([1.0, 2.0])
    assert effect_size(x, y, EffectSizeMeasure.MEAN_RATIO) == 2.0
    assert effect_size(x, y, "cles") == 0.875  # pairs: 2>1, 2=2 (1/2), 4>1, 4>2 -> 3.5/4
    assert effect_size(np.array([1.0]), np.array([0.0]), "meanRatio") == math.inf
    assert effect_size(np.array([0.0]), np.array([0.0]), "meanRatio") == 1.0


def test_classification_high_low_pass() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(100, 5, 40)
    assert classify(base + 30, base, MetricConfig(name="lat")).classification is Classification.HIGH
    # Direction increase ignores a decrease; either catches it.
    assert classify(base - 30, base, MetricConfig()).classification is Classification.PASS
    low = classify(base - 30, base, MetricConfig(direction=Direction.EITHER))
    assert low.classification is Classification.LOW and "lower" in low.reason
    # Effect-size limit: a 30% increase does not reach an allowed increase of 1.5.
    cfg = MetricConfig(allowed_increase=1.5)
    assert classify(base + 30, base, cfg).classification is Classification.PASS
    # Critical: flagged only when the critical increase is reached too.
    crit = classify(base * 2, base, MetricConfig(critical=True, critical_increase=1.5))
    assert crit.classification is Classification.HIGH and crit.critical
    notcrit = classify(base + 30, base, MetricConfig(critical=True, critical_increase=1.5))
    assert notcrit.classification is Classification.HIGH and not notcrit.critical
    same = classify(base, base[::-1])
    assert same.classification is Classification.PASS and "identical" in same.reason
    d = classify(base + 30, base).to_dict()
    assert d["classification"] == "High" and len(d["interval"]) == 2


def test_no_data_and_bad_input_never_leak_numpy_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nd = classify([], [1.0, 2.0])
        assert nd.classification is Classification.NODATA
        nan = classify([float("nan")] * 3, [1.0, 2.0])
        assert nan.classification is Classification.NODATA
        must = classify([float("nan")], [1.0], MetricConfig(must_have_data=True))
        assert must.classification is Classification.NODATA_FAIL
        # Replace strategy turns missing counts into zeros.
        rep = classify([float("nan")] * 5, [0.0] * 5, MetricConfig(nan_strategy=NaNStrategy.REPLACE))
        assert rep.classification is Classification.PASS
        # All tied: no evidence, a Pass, no division by zero.
        assert classify([1.0, 1.0], [1.0, 1.0, 1.0]).classification is Classification.PASS
        single = classify([5.0], [1.0])
        assert single.classification in (Classification.HIGH, Classification.PASS)
    with pytest.raises(InvalidInput):
        mann_whitney([], [1.0])
    with pytest.raises(InvalidInput):
        mann_whitney([1.0, float("nan")], [1.0])
    with pytest.raises(InvalidInput):
        classify([["a"]], [1.0])
    with pytest.raises(InvalidInput):
        MetricConfig(conf_level=1.5)
    with pytest.raises(InvalidInput):
        MetricConfig(direction="sideways")  # type: ignore[arg-type]


def _mc(c: Classification, critical: bool = False) -> MetricClassification:
    return MetricClassification(c, "", critical=critical)


def test_scoring_groups_weights_critical() -> None:
    ms = [
        ScoredMetric("err", "errors", _mc(Classification.PASS)),
        ScoredMetric("5xx", "errors", _mc(Classification.HIGH)),
        ScoredMetric("p50", "latency", _mc(Classification.PASS)),
        ScoredMetric("p99", "latency", _mc(Classification.NODATA)),
    ]
    # Equal weights: errors 50, latency 100 (Nodata not judged) -> 75 = marginal.
    r = score(ms)
    assert r.score == 75.0 and r.verdict is ScoreVerdict.MARGINAL and r.failed_metrics == ("5xx",)
    # errors weighted 80, latency takes the remaining 20 -> 0.8*50 + 0.2*100 = 60.
    r2 = score(ms, {"errors": 80})
    assert r2.score == pytest.approx(60.0) and r2.verdict is ScoreVerdict.FAIL
    r3 = score(ms, thresholds=ScoreThresholds(marginal=50, pass_=70))
    assert r3.verdict is ScoreVerdict.PASS
    crit = [*ms, ScoredMetric("oom", "errors", _mc(Classification.HIGH, critical=True))]
    r4 = score(crit)
    assert r4.score == 0.0 and r4.verdict is ScoreVerdict.FAIL and r4.critical_failures == ("oom",)
    empty = score([ScoredMetric("x", "g", _mc(Classification.NODATA))])
    assert empty.verdict is ScoreVerdict.NODATA and empty.to_dict()["score"] is None
    with pytest.raises(InvalidInput):
        ScoreThresholds(marginal=90, pass_=80)
    with pytest.raises(InvalidInput):
        score(ms, {"errors": float("nan")})
