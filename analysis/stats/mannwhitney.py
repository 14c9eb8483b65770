"""Fixed-horizon canary judge in the manner of Kayenta (Netflix ACA judge).

Per metric: clean the two series (NaN strategy), optionally drop IQR outliers,
compare canary (x, n values) with baseline (y, m values) by the Mann-Whitney /
Wilcoxon rank-sum test, and classify High / Low / Pass.

Formulas (normal approximation, as R's ``wilcox.test(exact=FALSE)``):

* ``U = R_x - n(n+1)/2`` with mid-ranks for ties; ``E[U] = nm/2``;
  ``Var U = nm/12 * ((N+1) - sum(t^3 - t) / (N(N-1)))``, ``N = n+m``, ``t`` the tie
  sizes; two-sided ``p = 2 P(Z >= (|U - nm/2| - 1/2) / sd)`` (continuity
  correction). Mann & Whitney (1947); tie correction: Lehmann, *Nonparametrics*
  (1975), ch. 1.
* Location shift ``delta`` (x - delta ~ y): Hodges & Lehmann (1963) estimate =
  median of the ``nm`` pairwise differences ``D_ij = x_i - y_j``.
* Confidence interval: R inverts the corrected z-statistic of the sample
  ``(x - d, y)`` by root finding. For ``d`` strictly between two consecutive
  ordered differences the statistic is ``(nm/2 - j - sign/2) / sd0`` where ``j`` =
  #{D <= d} and ``sd0`` uses only within-sample ties, so the roots are order
  statistics of D and we compute them exactly::

      lower = D_(ceil(nm/2 - 1/2 - z sd0)),  upper = D_(ceil(nm/2 + 1/2 + z sd0))

  with ``z = Phi^-1(1 - alpha/2)``, clamped to ``[D_(1), D_(nm)]`` as R does.
  (Bauer 1972, JASA 67:687; Hollander & Wolfe, *Nonparametric Statistical
  Methods*, 3rd ed., sec. 4.3.)

Classification follows Kayenta's ``MannWhitneyClassifier``: High when the
direction allows an increase, the lower confidence bound exceeds
``tolerance * |estimate|`` and the effect size reaches the allowed increase; Low
symmetrically; otherwise Pass. A critical metric whose effect also reaches the
critical limit is flagged ``critical`` and fails the whole canary.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.stats.types import Classification, Direction, InvalidInput, MetricClassification

__all__ = [
    "EffectSizeMeasure",
    "MannWhitneyResult",
    "MetricConfig",
    "NaNStrategy",
    "classify",
    "clean_values",
    "effect_size",
    "hodges_lehmann",
    "iqr_outlier_mask",
    "mann_whitney",
    "remove_outliers",
]

FloatArray = npt.NDArray[np.float64]

# Above this many pairwise differences we select order statistics by bisection on
# the value (O((n+m) log m) per step) instead of materialising all of them.
_MAX_ENUMERATED_DIFFERENCES = 2_000_000


class NaNStrategy(enum.StrEnum):
    """What to do with missing (NaN or non-finite) points. Kayenta: ``remove`` for
    gauges such as latency, ``replace`` (by 0) for counts, where "no sample" means
    "nothing happened"."""

    REMOVE = "remove"
    REPLACE = "replace"


class EffectSizeMeasure(enum.StrEnum):
    """``meanRatio`` = mean(canary) / mean(baseline) (neutral 1.0); ``cles`` = common
    language effect size P(X > Y) + P(X = Y)/2 = U / nm (McGraw & Wong 1992; neutral
    0.5)."""

    MEAN_RATIO = "meanRatio"
    CLES = "cles"


@dataclass(frozen=True)
class MannWhitneyResult:
    """Rank-sum test of canary (x) against baseline (y)."""

    u_statistic: float  # U of the canary sample
    p_value: float  # two-sided, normal approximation, tie + continuity corrected
    estimate: float  # Hodges-Lehmann shift, canary - baseline
    lower: float  # confidence interval of the shift
    upper: float
    conf_level: float
    n_canary: int
    n_baseline: int


@dataclass(frozen=True)
class MetricConfig:
    """How one metric is judged (Kayenta's canary-config metric fields).

    ``allowed_*`` are the effect-size limits a change must reach to count as High /
    Low (Kayenta ``effectSize.allowedIncrease/allowedDecrease``); ``critical_*`` the
    limits a critical metric must reach to fail the canary outright. ``None`` means
    neutral (1.0 for meanRatio, 0.5 for cles).
    """

    name: str = "metric"
    direction: Direction = Direction.INCREASE
    nan_strategy: NaNStrategy = NaNStrategy.REMOVE
    nan_replacement: float = 0.0
    remove_outliers: bool = False
    outlier_factor: float = 3.0
    critical: bool = False
    must_have_data: bool = False
    effect_measure: EffectSizeMeasure = EffectSizeMeasure.MEAN_RATIO
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    critical_increase: float | None = None
    critical_decrease: float | None = None
    tolerance: float = 0.25
    conf_level: float = 0.95
    group: str = "default"

    def __post_init__(self) -> None:
        if not 0.0 < self.conf_level < 1.0:
            raise InvalidInput(f"conf_level must be in (0, 1), got {self.conf_level}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0.0):
            raise InvalidInput(f"tolerance must be finite and >= 0, got {self.tolerance}")
        if not (math.isfinite(self.outlier_factor) and self.outlier_factor > 0.0):
            raise InvalidInput(f"outlier_factor must be > 0, got {self.outlier_factor}")
        if not math.isfinite(self.nan_replacement):
            raise InvalidInput("nan_replacement must be finite")
        for attr in ("allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease"):
            v = getattr(self, attr)
            if v is not None and not math.isfinite(v):
                raise InvalidInput(f"{attr} must be finite, got {v}")
        # Accept plain strings from YAML as well as the enums.
        object.__setattr__(self, "direction", _enum(Direction, self.direction, "direction"))
        object.__setattr__(self, "nan_strategy", _enum(NaNStrategy, self.nan_strategy, "nan_strategy"))
        object.__setattr__(
            self, "effect_measure", _enum(EffectSizeMeasure, self.effect_measure, "effect_measure")
        )


_E = TypeVar("_E", bound=enum.Enum)


def _enum(cls: type[_E], value: object, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise InvalidInput(f"{what} must be one of {allowed}, got {value!r}") from None


def _as_float_array(values: Iterable[float] | npt.ArrayLike, what: str) -> FloatArray:
    """Coerce to a 1-D float array; anything that is not numbers is an InvalidInput."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what}: not a sequence of numbers ({exc})") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidInput(f"{what}: expected a 1-D series, got shape {arr.shape}")
    return arr


def clean_values(
    values: Iterable[float] | npt.ArrayLike,
    strategy: NaNStrategy | str = NaNStrategy.REMOVE,
    replacement: float = 0.0,
) -> FloatArray:
    """Apply the NaN strategy. Non-finite values (+-inf) count as missing too: a
    metric series cannot meaningfully hold them."""
    arr = _as_float_array(values, "values")
    strat = _enum(NaNStrategy, strategy, "nan_strategy")
    bad = ~np.isfinite(arr)
    if strat is NaNStrategy.REMOVE:
        return arr[~bad]
    out = arr.copy()
    out[bad] = replacement
    return out


def iqr_outlier_mask(
    values: FloatArray, factor: float = 3.0, reduce_sensitivity: bool = True
) -> npt.NDArray[np.bool_]:
    """Tukey fences ``[Q1 - f IQR, Q3 + f IQR]``; True marks an outlier.

    As Kayenta's ``IQRDetector(factor=3.0, reduceSensitivity=true)``: quantiles by
    the ``p(n+1)`` rule (commons-math legacy = numpy ``weibull``), and with reduced
    sensitivity the fences are widened to at least the 1st/99th percentiles.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.bool_)
    q1, q3 = np.percentile(values, [25.0, 75.0], method="weibull")
    iqr = q3 - q1
    lo, hi = q1 - factor * iqr, q3 + factor * iqr
    if reduce_sensitivity:
        p01, p99 = np.percentile(values, [1.0, 99.0], method="weibull")
        lo, hi = min(lo, p01), max(hi, p99)
    mask: npt.NDArray[np.bool_] = (values < lo) | (values > hi)
    return mask


def remove_outliers(values: FloatArray, factor: float = 3.0, reduce_sensitivity: bool = True) -> FloatArray:
    """The values inside the Tukey fences (see `iqr_outlier_mask`)."""
    return values[~iqr_outlier_mask(values, factor, reduce_sensitivity)]


def _tie_term(sorted_values: FloatArray) -> float:
    """sum(t^3 - t) over the groups of equal values."""
    if sorted_values.size < 2:
        return 0.0
    _, counts = np.unique(sorted_values, return_counts=True)
    t = counts.astype(np.float64)
    return float(np.sum(t**3 - t))


def _rank_sum_u(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    """U of x (mid-ranks) and the tie term of the pooled sample."""
    pooled = np.concatenate([x, y])
    order = np.argsort(pooled, kind="mergesort")
    sorted_pooled = pooled[order]
    # Mid-ranks: for each distinct value the mean of the positions it occupies.
    uniq, first, counts = np.unique(sorted_pooled, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0  # 1-based mean position of the tie group
    ranks_sorted = np.repeat(mid, counts)
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    n = x.size
    u = float(np.sum(ranks[:n]) - n * (n + 1) / 2.0)
    t = counts.astype(np.float64)
    del uniq
    return u, float(np.sum(t**3 - t))


def _kth_difference(xs: FloatArray, ys: FloatArray, k: int) -> float:
    """k-th smallest (1-based) of x_i - y_j, for sorted xs and ys."""
    n, m = xs.size, ys.size
    if n * m <= _MAX_ENUMERATED_DIFFERENCES:
        d = np.subtract.outer(xs, ys).ravel()
        return float(np.partition(d, k - 1)[k - 1])
    # Bisection on the value, counting #{D <= v} row by row with the very float
    # subtraction that defines D (x_i - y_j decreases in j), so no rounding slip.
    lo, hi = float(xs[0] - ys[-1]), float(xs[-1] - ys[0])
    if _count_le(xs, ys, lo)[0] >= k:
        return lo
    for _ in range(200):
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            break
        if _count_le(xs, ys, mid)[0] >= k:
            hi = mid
        else:
            lo = mid
    # Snap to the actual difference: the largest x_i - y_j that is <= hi.
    _, first = _count_le(xs, ys, hi)
    ok = first < m
    return float(np.max(xs[ok] - ys[first[ok]]))


def _count_le(xs: FloatArray, ys: FloatArray, v: float) -> tuple[int, npt.NDArray[np.intp]]:
    """#{(i, j): xs_i - ys_j <= v} and, per row, the first j where that holds."""
    m = ys.size
    lo = np.zeros(xs.size, dtype=np.intp)
    hi = np.full(xs.size, m, dtype=np.intp)
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        cond = (xs - ys[np.minimum(mid, m - 1)]) <= v
        hi = np.where(active & cond, mid, hi)
        lo = np.where(active & ~cond, mid + 1, lo)
    return int(np.sum(m - lo)), lo


def hodges_lehmann(canary: FloatArray, baseline: FloatArray) -> float:
    """Hodges-Lehmann shift: median of all pairwise differences canary_i - baseline_j."""
    xs, ys = np.sort(canary), np.sort(baseline)
    if xs.size == 0 or ys.size == 0:
        raise InvalidInput("hodges_lehmann needs at least one value in each sample")
    nm = xs.size * ys.size
    if nm % 2 == 1:
        return _kth_difference(xs, ys, (nm + 1) // 2)
    return 0.5 * (_kth_difference(xs, ys, nm // 2) + _kth_difference(xs, ys, nm // 2 + 1))


def mann_whitney(
    canary: Iterable[float] | npt.ArrayLike,
    baseline: Iterable[float] | npt.ArrayLike,
    conf_level: float = 0.95,
) -> MannWhitneyResult:
    """Two-sided rank-sum test, Hodges-Lehmann shift and its confidence interval.

    Matches ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` for the p-value
    and R's ``wilcox.test(x, y, conf.int=TRUE, exact=FALSE)`` for the interval (R
    finds the same order statistics by ``uniroot`` to 1e-4). Inputs must be finite
    and non-empty (use `clean_values` first).
    """
    x = _as_float_array(canary, "canary")
    y = _as_float_array(baseline, "baseline")
    if x.size == 0 or y.size == 0:
        raise InvalidInput("mann_whitney needs at least one value in each sample")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInput("mann_whitney needs finite values (apply a NaN strategy first)")
    if not 0.0 < conf_level < 1.0:
        raise InvalidInput(f"conf_level must be in (0, 1), got {conf_level}")
    n, m = x.size, y.size
    nm = n * m
    big_n = n + m
    u, ties = _rank_sum_u(x, y)
    var_u = nm / 12.0 * ((big_n + 1) - ties / (big_n * (big_n - 1))) if big_n > 1 else 0.0
    dz = u - nm / 2.0
    if var_u <= 0.0:
        p = 1.0  # every value tied: no evidence either way
    else:
        z = max(abs(dz) - 0.5, 0.0) / math.sqrt(var_u)
        p = min(1.0, float(2.0 * special.ndtr(-z)))

    xs, ys = np.sort(x), np.sort(y)
    # Ties inside each sample persist for every shift d; ties across samples only
    # occur at d = some D_ij, which the root never sits strictly inside.
    within_ties = _tie_term(xs) + _tie_term(ys)
    var0 = nm / 12.0 * ((big_n + 1) - within_ties / (big_n * (big_n - 1))) if big_n > 1 else 0.0
    sd0 = math.sqrt(max(var0, 0.0))
    zq = float(special.ndtri(1.0 - (1.0 - conf_level) / 2.0))
    k_lo = min(max(math.ceil(nm / 2.0 - 0.5 - zq * sd0), 1), nm)
    k_hi = min(max(math.ceil(nm / 2.0 + 0.5 + zq * sd0), 1), nm)
    lower = _kth_difference(xs, ys, k_lo)
    upper = _kth_difference(xs, ys, k_hi)
    est = hodges_lehmann(xs, ys)
    return MannWhitneyResult(
        u_statistic=u,
        p_value=p,
        estimate=est,
        lower=lower,
        upper=upper,
        conf_level=conf_level,
        n_canary=n,
        n_baseline=m,
    )


def effect_size(canary: FloatArray, baseline: FloatArray, measure: EffectSizeMeasure | str) -> float:
    """Mean ratio canary/baseline (inf when only the baseline mean is 0, 1 when both
    are) or CLES = U/nm."""
    meas = _enum(EffectSizeMeasure, measure, "effect_measure")
    if canary.size == 0 or baseline.size == 0:
        raise InvalidInput("effect_size needs at least one value in each sample")
    if meas is EffectSizeMeasure.CLES:
        u, _ = _rank_sum_u(canary, baseline)
        return u / (canary.size * baseline.size)
    mc, mb = float(np.mean(canary)), float(np.mean(baseline))
    if mb == 0.0:
        return 1.0 if mc == 0.0 else math.copysign(math.inf, mc)
    return mc / mb


def _neutral(measure: EffectSizeMeasure) -> float:
    return 0.5 if measure is EffectSizeMeasure.CLES else 1.0


def classify(
    canary: Iterable[float] | npt.ArrayLike,
    baseline: Iterable[float] | npt.ArrayLike,
    config: MetricConfig | None = None,
) -> MetricClassification:
    """Kayenta-style classification of one metric: High / Low / Pass / Nodata.

    Never raises for missing data: an empty series (after the NaN strategy and
    outlier removal) is Nodata (NodataFailMetric when ``must_have_data``).
    """
    cfg = config or MetricConfig()
    x = clean_values(canary, cfg.nan_strategy, cfg.nan_replacement)
    y = clean_values(baseline, cfg.nan_strategy, cfg.nan_replacement)
    if cfg.remove_outliers:
        x = remove_outliers(x, cfg.outlier_factor)
        y = remove_outliers(y, cfg.outlier_factor)
    if x.size == 0 or y.size == 0:
        which = "canary" if x.size == 0 else "baseline"
        if y.size == 0 and x.size == 0:
            which = "canary and baseline"
        reason = f"{cfg.name}: no data for the {which}"
        if cfg.must_have_data:
            return MetricClassification(
                Classification.NODATA_FAIL, reason + " (metric must have data)", critical=cfg.critical,
                n_canary=int(x.size), n_baseline=int(y.size),
            )
        return MetricClassification(
            Classification.NODATA, reason, n_canary=int(x.size), n_baseline=int(y.size)
        )
    n, m = int(x.size), int(y.size)
    if np.array_equal(np.sort(x), np.sort(y)):
        return MetricClassification(
            Classification.PASS, f"{cfg.name}: canary and baseline data are identical",
            estimate=0.0, interval=(0.0, 0.0), p_value=1.0,
            effect_size=_neutral(cfg.effect_measure), n_canary=n, n_baseline=m,
        )

    mw = mann_whitney(x, y, cfg.conf_level)
    eff = effect_size(x, y, cfg.effect_measure)
    neutral = _neutral(cfg.effect_measure)
    allowed_inc = neutral if cfg.allowed_increase is None else cfg.allowed_increase
    allowed_dec = neutral if cfg.allowed_decrease is None else cfg.allowed_decrease
    critical_inc = neutral if cfg.critical_increase is None else cfg.critical_increase
    critical_dec = neutral if cfg.critical_decrease is None else cfg.critical_decrease
    # Kayenta's tolerance: the interval must clear a fraction of |estimate|, so a
    # shift that is significant but tiny relative to itself does not count.
    bound = cfg.tolerance * abs(mw.estimate)
    up = cfg.direction in (Direction.INCREASE, Direction.EITHER)
    down = cfg.direction in (Direction.DECREASE, Direction.EITHER)
    is_high = up and mw.lower > bound and eff >= allowed_inc
    is_low = down and mw.upper < -bound and eff <= allowed_dec
    level = f"{100 * cfg.conf_level:g}%"
    desc = (
        f"shift {mw.estimate:.4g} ({level} CI [{mw.lower:.4g}, {mw.upper:.4g}]), "
        f"{cfg.effect_measure.value} {eff:.4g}, p={mw.p_value:.3g}, n={n}/{m}"
    )
    base = MetricClassification(
        Classification.PASS,
        f"{cfg.name}: no significant difference: {desc}",
        estimate=mw.estimate,
        interval=(mw.lower, mw.upper),
        p_value=mw.p_value,
        effect_size=eff,
        n_canary=n,
        n_baseline=m,
    )
    if is_high:
        crit = cfg.critical and eff >= critical_inc
        tag = " (critical)" if crit else ""
        return replace(
            base,
            classification=Classification.HIGH,
            reason=f"{cfg.name}: canary higher than baseline{tag}: {desc}",
            critical=crit,
        )
    if is_low:
        crit = cfg.critical and eff <= critical_dec
        tag = " (critical)" if crit else ""
        return replace(
            base,
            classification=Classification.LOW,
            reason=f"{cfg.name}: canary lower than baseline{tag}: {desc}",
            critical=crit,
        )
    return base
