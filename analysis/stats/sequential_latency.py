"""Anytime-valid sequential test of canary vs baseline latency distributions.

Input per interval: a latency histogram per version (Prometheus
``increase(http_request_duration_seconds_bucket[interval])``: ``le -> cumulative
count``), or raw samples which are binned on the configured bounds.

Test. For every bucket bound ``le_j`` the requests slower than ``le_j`` are
"events", and the error-rate machinery of `sequential_counts` compares the
canary's exceedance rate ``P_c(X > le_j)`` with the baseline's, conditionally
on the interval's total number of exceedances (Lindon & Malek 2022), with the
same quasi-likelihood dispersion correction for exceedances that cluster in
time. This is a test of the whole distribution on the histogram's grid -- the
discrete analogue of comparing time-uniform DKW confidence bands (Howard &
Ramdas 2022, "Sequential estimation of quantiles with applications to A/B
testing and best-arm identification", Bernoulli 28:1704): a regression of any
quantile moves the exceedance rate at the bounds around it. It therefore sees
what a location test (Mann-Whitney on per-interval means) misses: a variance-only
increase raises the exceedances above the upper quantiles; an intermittent
100x slowdown makes nearly every canary request exceed. Indicators are bounded,
so heavy tails do not hurt.

* FAIL: the canary is slower at some bound. The bounds' e-processes are combined
  as a portfolio that starts as their equal-weight average (an average of
  e-processes is an e-process: Vovk & Wang 2021, "E-values: calibration,
  combination and applications", AoS 49:1736) and moves the stake of the bounds
  that cannot gather evidence to those that can; FAIL when it reaches
  ``1/alpha_fail``. A bound is informative when its pooled exceedance fraction is
  at most ``fail_max_exceedance`` and its information by ``pass_horizon`` (below)
  reaches ``fail_min_information``; before each interval, every other bound's
  stake above ``fail_floor / J`` is spread equally over the informative ones, and
  each stake then grows with its own bound's e-value (buy and hold). With twelve
  bounds of which two (p83, p99) carry a lognormal's upper half, a regression at
  one of them needs the evidence of a 0.46 stake instead of a 1/12 one.
  Validity: the stakes before interval t depend on intervals < t only, and each
  bound's e-value is a test martingale in the binomial mixture (exactly, for
  Poisson counts) or in the t Bayes factor (for clustered counts), so the
  combined wealth ``M_t = M_{t-1} sum_j w_jt E_jt / E_j,t-1`` with predictable
  weights ``w_jt`` summing to 1 is again a test martingale (Shafer & Vovk 2019,
  "Game-Theoretic Foundations for Probability and Finance", ch. 1: a forecaster's
  capital under any predictable strategy; Ramdas, Grunwald, Vovk & Shafer 2023,
  "Game-theoretic statistics and safe anytime-valid inference", Stat. Sci.
  38:576). Both portfolios are kept and the FAIL e-value is their minimum, which
  is below whichever is right, as for one bound (`CountCore.log_e`); Ville's
  inequality bounds the false rollbacks by ``alpha_fail``. ``fail_floor`` 1 keeps
  the equal weights (configs saved before the portfolio load so; the minimum of
  the two averages is at least the earlier average of per-bound minima).
* PASS (non-inferiority): for every bound in the pass set, the canary's
  exceedance rate is shown below ``pass_ratio`` x the baseline's
  (intersection-union test: each at ``alpha_pass``, no correction needed). The
  pass set is chosen by the evidence each bound can gather: a bound whose pooled
  exceedance fraction lies in ``pass_exceedance_range`` (by default p50..p99.9)
  and whose test information by ``pass_horizon`` intervals -- the expected canary
  exceedances times the baseline's traffic share, ``k theta (1 - theta)`` of the
  conditional binomial -- reaches ``pass_min_information``. A bound below that
  cannot show non-inferiority within the horizon in most runs (measured in
  BENCHMARKS.md, "The latency test's pass set") and would only hold the pass
  back. When no bound in the range has enough information, the one with the
  most is tested alone. In-range bounds outside the pass set that reach
  ``pass_check_information`` by the horizon are checked: no PASS until each has
  gathered that much information and is estimated below the margin (a p99 that
  doubles at modest traffic holds the pass until FAIL catches it). No PASS
  either while any bound's own FAIL e-value is at ``1/alpha_pass``. The reason
  names the bounds shown, the bounds only estimated, and the slower ones not
  covered; FAIL watches every bound until the verdict.
* Estimate / interval: the exceedance-rate ratio at the bound with the most
  evidence of a slowdown, with its confidence sequence at ``alpha_ci / J``
  (Bonferroni over the J bounds, so it stays valid for the selected bound).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.stats.count_config import CountTestConfig
from analysis.stats.logspace import logsumexp
from analysis.stats.sequential_counts import CountCore, load_arrays, save_arrays
from analysis.stats.types import Decision, InvalidInput, SequentialResult, Shortfall

__all__ = [
    "LatencyCore",
    "LatencyTest",
    "LatencyTestConfig",
    "LatencyTestState",
    "exceedance_counts",
    "histogram_from_cumulative",
    "histogram_from_samples",
]

FloatArray = npt.NDArray[np.float64]


# The pass set's evidence rule (see the module docstring). 120: below about that much
# information by the horizon a bound shows "< 1.5x" at alpha 5% in fewer than 80% of
# no-regression runs (measured per bound in BENCHMARKS.md, "The latency test's pass set").
# 30 intervals: issue 22's target, early promotion within 30 one-minute intervals.
DEFAULT_PASS_MIN_INFORMATION = 120.0
DEFAULT_PASS_HORIZON = 30
# A bound with less than that by the horizon but at least this much is checked instead: no pass
# until it has gathered this much information and its estimated ratio is below the margin (the
# estimate of ~20 events is within +-50% at about 2 sd). Below this, a bound is not covered.
DEFAULT_PASS_CHECK_INFORMATION = 20.0
# The FAIL portfolio (see the module docstring). A bound is informative when its pooled exceedance
# fraction is at most 0.5 (above it the canary's exceedances cannot double; the mixture's smallest
# alternative, 1.5x, is out of reach above 2/3) and it gathers 10 units of information by the
# horizon (the p99 at 20 rps and 10% gathers 32; 40 would leave it out: 18% caught within 30 min
# instead of 44% in a 600-run trial). Every bound keeps a tenth of its first stake: a regression
# where the pooled data put little evidence (a p99.9) still fails, on 10x the evidence of the
# equal average.
DEFAULT_FAIL_MIN_INFORMATION = 10.0
DEFAULT_FAIL_MAX_EXCEEDANCE = 0.5
DEFAULT_FAIL_FLOOR = 0.1


def _default_counts() -> CountTestConfig:
    # A coarser grid than for error rates: there is one grid per bucket bound.
    # The t guard: exceedance counts are large and their clustering is not the
    # baseline-NB2 kind the error-rate guard models (see sequential_counts).
    return CountTestConfig(grid_step=math.log(2.0) / 8.0, grid_span=math.log(256.0), guard="t")


@dataclass(frozen=True)
class LatencyTestConfig:
    """``buckets``: the bounds (seconds) to test; None takes the finite ``le`` of
    the first histogram. ``counts``: alphas, ratios, minimum evidence and grid of
    the per-bound tests (``fail_ratio`` / ``pass_ratio`` are on exceedance rates)."""

    buckets: tuple[float, ...] | None = None
    counts: CountTestConfig = field(default_factory=_default_counts)
    pass_exceedance_range: tuple[float, float] = (0.001, 0.5)
    pass_min_information: float = DEFAULT_PASS_MIN_INFORMATION
    pass_horizon: int = DEFAULT_PASS_HORIZON
    pass_check_information: float = DEFAULT_PASS_CHECK_INFORMATION
    fail_min_information: float = DEFAULT_FAIL_MIN_INFORMATION
    fail_max_exceedance: float = DEFAULT_FAIL_MAX_EXCEEDANCE
    fail_floor: float = DEFAULT_FAIL_FLOOR

    def __post_init__(self) -> None:
        if self.buckets is not None:
            _check_bounds(self.buckets)
        lo, hi = self.pass_exceedance_range
        if not (0.0 < lo < hi <= 1.0):
            raise InvalidInput("pass_exceedance_range must satisfy 0 < lo < hi <= 1")
        if not (math.isfinite(self.pass_min_information) and self.pass_min_information >= 0.0):
            raise InvalidInput(f"pass_min_information must be finite and >= 0, got {self.pass_min_information!r}")
        if not (math.isfinite(self.pass_check_information) and self.pass_check_information >= 0.0):
            raise InvalidInput(
                f"pass_check_information must be finite and >= 0, got {self.pass_check_information!r}"
            )
        if not (math.isfinite(self.fail_min_information) and self.fail_min_information >= 0.0):
            raise InvalidInput(f"fail_min_information must be finite and >= 0, got {self.fail_min_information!r}")
        if not (0.0 < self.fail_max_exceedance <= 1.0):
            raise InvalidInput(f"fail_max_exceedance must be in (0, 1], got {self.fail_max_exceedance!r}")
        if not (0.0 < self.fail_floor <= 1.0):
            raise InvalidInput(f"fail_floor must be in (0, 1], got {self.fail_floor!r}")
        if not (isinstance(self.pass_horizon, int) and 1 <= self.pass_horizon <= 100_000):
            raise InvalidInput(f"pass_horizon must be a whole number of intervals >= 1, got {self.pass_horizon!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": None if self.buckets is None else list(self.buckets),
            "counts": self.counts.to_dict(),
            "passExceedanceRange": list(self.pass_exceedance_range),
            "passMinInformation": self.pass_min_information,
            "passHorizon": self.pass_horizon,
            "passCheckInformation": self.pass_check_information,
            "failMinInformation": self.fail_min_information,
            "failMaxExceedance": self.fail_max_exceedance,
            "failFloor": self.fail_floor,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyTestConfig:
        try:
            b = d["buckets"]
            lo, hi = d["passExceedanceRange"]
            # Configs saved before the evidence rule existed keep their pass set: the range alone;
            # before the FAIL portfolio, their equal-weight average (floor 1 moves no stake).
            return cls(
                buckets=None if b is None else tuple(float(x) for x in b),
                counts=CountTestConfig.from_dict(d["counts"]),
                pass_exceedance_range=(float(lo), float(hi)),
                pass_min_information=float(d.get("passMinInformation", 0.0)),
                pass_horizon=int(d.get("passHorizon", DEFAULT_PASS_HORIZON)),
                pass_check_information=float(d.get("passCheckInformation", 0.0)),
                fail_min_information=float(d.get("failMinInformation", DEFAULT_FAIL_MIN_INFORMATION)),
                fail_max_exceedance=float(d.get("failMaxExceedance", DEFAULT_FAIL_MAX_EXCEEDANCE)),
                fail_floor=float(d.get("failFloor", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"bad latency-test config: {exc!r}") from None


def _check_bounds(bounds: Sequence[float]) -> None:
    b = np.asarray(bounds, dtype=np.float64)
    if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)) or np.any(np.diff(b) <= 0):
        raise InvalidInput("bucket bounds must be a non-empty, finite, strictly increasing list")


def exceedance_counts(hist: FloatArray) -> FloatArray:
    """Requests above each bound from non-cumulative bucket counts (..., B+1) whose
    last entry is the overflow bucket: shape (..., B)."""
    cum = np.cumsum(hist, axis=-1)
    out: FloatArray = cum[..., -1:] - cum[..., :-1]
    return out


def _parse_le(key: object) -> float:
    if isinstance(key, str):
        k = key.strip()
        if k.lower() in ("+inf", "inf"):
            return math.inf
        try:
            return float(k)
        except ValueError:
            raise InvalidInput(f"bad bucket bound {key!r}") from None
    if isinstance(key, int | float):
        return float(key)
    raise InvalidInput(f"bad bucket bound {key!r}")


def histogram_from_cumulative(
    buckets: Mapping[Any, float], bounds: Sequence[float] | None = None
) -> tuple[FloatArray, tuple[float, ...]] | None:
    """Prometheus ``le -> cumulative count`` to non-cumulative counts on ``bounds``
    (default: the finite ``le`` given) plus the overflow bucket. Returns None for a
    missing interval (any NaN). Without ``+Inf`` the largest count is the total.
    Bounds not present in the histogram are an InvalidInput (buckets cannot be split).
    Small decreases (``increase()`` extrapolation noise, < 1% of the total) are
    smoothed out; larger ones are an InvalidInput."""
    if not isinstance(buckets, Mapping) or not buckets:
        raise InvalidInput("histogram must be a non-empty mapping le -> cumulative count")
    items: list[tuple[float, float]] = []
    for k, v in buckets.items():
        le = _parse_le(k)
        try:
            c = float(v)
        except (TypeError, ValueError):
            raise InvalidInput(f"bucket {k!r}: count must be a number, got {v!r}") from None
        if math.isnan(c):
            return None
        if math.isinf(c) or c < 0:
            raise InvalidInput(f"bucket {k!r}: count must be finite and >= 0, got {c}")
        if math.isnan(le):
            raise InvalidInput(f"bad bucket bound {k!r}")
        items.append((le, c))
    items.sort()
    les = np.array([le for le, _ in items])
    cum = np.array([c for _, c in items])
    if np.any(np.diff(les) == 0):
        raise InvalidInput("duplicate bucket bounds")
    total = float(cum[-1]) if math.isinf(les[-1]) else float(cum.max())
    fixed = np.maximum.accumulate(cum)
    if np.any(fixed - cum > 0.01 * max(total, 1.0) + 1e-9):
        raise InvalidInput("cumulative bucket counts decrease with le")
    total = max(total, float(fixed[-1]))
    finite = ~np.isinf(les)
    have = dict(zip(les[finite].tolist(), fixed[finite].tolist(), strict=True))
    use = tuple(have) if bounds is None else tuple(float(b) for b in bounds)
    if not use:
        raise InvalidInput("histogram has no finite bucket bound")
    missing = [b for b in use if b not in have]
    if missing:
        raise InvalidInput(f"histogram lacks the configured bounds {missing[:5]}")
    cum_use = np.array([have[b] for b in use] + [total])
    hist: FloatArray = np.diff(np.concatenate([[0.0], np.minimum(cum_use, total)]))
    return np.maximum(hist, 0.0), use


def histogram_from_samples(samples: Iterable[float] | npt.ArrayLike, bounds: Sequence[float]) -> FloatArray:
    """Bin raw latencies (seconds) like a Prometheus histogram (``le``: value <= bound).
    NaN samples are dropped; negative or infinite ones are an InvalidInput."""
    try:
        x = np.asarray(samples, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInput("latency samples must be numbers") from None
    x = x[~np.isnan(x)]
    if np.any(np.isinf(x)) or np.any(x < 0):
        raise InvalidInput("latency samples must be finite and >= 0")
    b = np.asarray(bounds, dtype=np.float64)
    idx = np.searchsorted(b, x, side="left")
    out: FloatArray = np.bincount(idx, minlength=b.size + 1).astype(np.float64)
    return out


class LatencyCore:
    """One `CountCore` per bound, vectorised: state arrays (..., J, G)."""

    def __init__(self, config: LatencyTestConfig, n_bounds: int) -> None:
        self.config = config
        self.core = CountCore(config.counts)
        self.n_bounds = n_bounds

    def zeros(self, shape: tuple[int, ...] = ()) -> dict[str, FloatArray]:
        st = self.core.zeros((*shape, self.n_bounds))
        st["exc"] = np.zeros((*shape, self.n_bounds))  # pooled exceedances (both versions)
        st["total"] = np.zeros(shape)  # pooled requests
        st["cn"] = np.zeros(shape)
        st["bn"] = np.zeros(shape)
        st["traffic"] = np.zeros(shape)
        st.update(self.portfolio_from(st))
        return st

    def portfolio_from(self, st: dict[str, FloatArray]) -> dict[str, FloatArray]:
        """The FAIL portfolio's arrays as the equal-weight average of the bounds' e-values so far
        (a fresh state, or one saved before the portfolio existed): ``fail_wealth`` (..., 2, J) log
        stakes per component [binomial, guard], ``fail_last`` the components' log e-values they
        last grew with, ``fail_released`` (..., J) 1 where a bound has given up its stake."""
        last = self.fail_components(st)
        return {
            "fail_wealth": last - math.log(self.n_bounds),
            "fail_last": last,
            "fail_released": np.zeros((*last.shape[:-2], self.n_bounds)),
        }

    def fail_components(self, st: dict[str, FloatArray]) -> FloatArray:
        """(..., 2, J) each bound's FAIL log e-value by component: the binomial mixture and the
        dispersion guard's (t Bayes factor or tempered mixture); `CountCore.log_e` is their minimum."""
        core = self.core
        ll = st["loglik"]
        df = ll[..., core.i_fail + core.fail_off] - ll[..., core.i_fail, None]
        if self.config.counts.dispersion is not None:
            one = logsumexp(df / float(self.config.counts.dispersion) + core.fail_logw)
            return np.stack([one, one], axis=-2)
        binomial = logsumexp(df + core.fail_logw)
        if core.negbin:
            h = core.temper_grid_index(st)[..., None, None]
            tf = np.take_along_axis(st["tl_fail"], h, axis=-2)[..., 0, :]
            guard = logsumexp(tf + core.fail_logw)
        else:
            guard = core.log_bf_t(st)[..., 0]
        out: FloatArray = np.stack([binomial, guard], axis=-2)
        return out

    def fail_informative(self, st: dict[str, FloatArray]) -> npt.NDArray[np.bool_]:
        """(..., J) bounds the FAIL portfolio invests in: pooled exceedance fraction at most
        ``fail_max_exceedance`` and information by the horizon at least ``fail_min_information``."""
        frac = st["exc"] / np.maximum(st["total"], 1.0)[..., None]
        out: npt.NDArray[np.bool_] = (frac <= self.config.fail_max_exceedance) & (
            self.information(st) >= self.config.fail_min_information
        )
        return out

    def _release(self, st: dict[str, FloatArray]) -> None:
        """Before an interval (from earlier intervals only): once the data suffice for a verdict,
        each bound not informative gives ``1 - fail_floor`` of its stake, once, in equal parts to the
        informative bounds. Stakes move; the total (the FAIL e-value) does not."""
        floor = self.config.fail_floor
        if floor >= 1.0:
            return
        informative = self.fail_informative(st)
        receivers = informative.sum(axis=-1)
        release = (self._enough(st) & (receivers > 0))[..., None] & ~informative & (st["fail_released"] < 0.5)
        if not np.any(release):
            return
        wealth = st["fail_wealth"]
        rel = release[..., None, :]
        with np.errstate(divide="ignore"):  # rows releasing nothing move log 0
            moved = logsumexp(np.where(rel, wealth + math.log1p(-floor), -np.inf), axis=-1)  # (..., 2)
        share = moved - np.log(np.maximum(receivers, 1))[..., None]
        gets = informative[..., None, :] & np.any(release, axis=-1)[..., None, None]
        wealth = np.where(rel, wealth + math.log(floor), wealth)
        st["fail_wealth"] = np.where(gets, np.logaddexp(wealth, share[..., None]), wealth)
        st["fail_released"] = np.where(release, 1.0, st["fail_released"])

    def _enough(self, st: dict[str, FloatArray]) -> npt.NDArray[np.bool_]:
        cfg = self.config.counts
        out: npt.NDArray[np.bool_] = (
            (st["traffic"] >= cfg.min_intervals)
            & (st["cn"] >= cfg.min_canary_requests)
            & (st["bn"] >= cfg.min_baseline_requests)
        )
        return out

    def update(self, st: dict[str, FloatArray], ce: FloatArray, cn: FloatArray, be: FloatArray, bn: FloatArray) -> None:
        """``ce``/``be`` (..., J) exceedances; ``cn``/``bn`` (...) requests."""
        self._release(st)
        both = (cn > 0) & (bn > 0)
        share = np.where(both, cn / np.where(both, cn + bn, 1.0), 0.0)
        per_bound_share = np.broadcast_to(share[..., None], ce.shape)
        per_bound_requests = np.broadcast_to((cn + bn)[..., None], ce.shape)
        self.core.update(st, ce, ce + be, per_bound_share, per_bound_requests)
        st["exc"] += ce + be
        st["total"] += cn + bn
        st["cn"] += cn
        st["bn"] += bn
        st["traffic"] += both
        # Each stake grows with its bound's e-value (buy and hold): log w += log e_t - log e_{t-1}.
        now = self.fail_components(st)
        st["fail_wealth"] = st["fail_wealth"] + (now - st["fail_last"])
        st["fail_last"] = now

    def judge(self, st: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """(log e_fail (the portfolio, min over components), log e_pass (IUT min over eligible
        bounds), enough)."""
        lf, lp = self.core.log_e(st)
        lf_comb = np.min(logsumexp(st["fail_wealth"], axis=-1), axis=-1)
        elig = self.pass_set(st)
        lp_min = np.min(np.where(elig, lp, np.inf), axis=-1)
        lp_comb = np.where(elig.any(axis=-1), lp_min, -np.inf)
        # A bound outside the pass set may hold the only sign of a slowdown (a heavier tail):
        # see `pass_held`. min(e, 1) is still an e-value, so this only makes the pass more cautious.
        held = self.pass_held(st, lf)
        lp_comb = np.where(held, np.minimum(lp_comb, 0.0), lp_comb)
        return lf_comb, lp_comb, self._enough(st)

    def pass_held(self, st: dict[str, FloatArray], lf: FloatArray) -> npt.NDArray[np.bool_]:
        """(...) True while some bound's FAIL e-value ``lf`` (..., J) reaches ``1/alpha_pass``, or
        a checked bound (`pass_checked`) has not yet gathered ``pass_check_information`` or is
        estimated at or above the pass margin."""
        shows_slowdown = np.any(lf >= -math.log(self.config.counts.alpha_pass), axis=-1)
        checked = self.pass_checked(st)
        gathered = self.information(st, horizon=False) >= self.config.pass_check_information
        below_margin = self.core.estimate({"loglik": st["loglik"]}) < self.core.lam[self.core.i_pass]
        out: npt.NDArray[np.bool_] = shows_slowdown | np.any(checked & ~(gathered & below_margin), axis=-1)
        return out

    def pass_checked(self, st: dict[str, FloatArray]) -> npt.NDArray[np.bool_]:
        """(..., J) in-range bounds outside the pass set that gather ``pass_check_information``
        by the horizon: not shown non-inferior, but no pass while their estimate is above the margin."""
        info = self.information(st)
        out: npt.NDArray[np.bool_] = (
            self._in_range(st) & ~self.pass_set(st) & (info >= self.config.pass_check_information)
        )
        return out

    def _in_range(self, st: dict[str, FloatArray]) -> npt.NDArray[np.bool_]:
        frac = st["exc"] / np.maximum(st["total"], 1.0)[..., None]
        lo, hi = self.config.pass_exceedance_range
        out: npt.NDArray[np.bool_] = (frac >= lo) & (frac <= hi)
        return out

    def information(self, st: dict[str, FloatArray], horizon: bool = True) -> FloatArray:
        """(..., J) each bound's test information (the conditional binomial's ``k theta (1 - theta)``):
        pooled exceedance fraction x canary requests x the baseline's share; expected by the horizon
        at the pace seen (canary requests per interval with traffic x ``pass_horizon``), or so far."""
        frac = st["exc"] / np.maximum(st["total"], 1.0)[..., None]
        canary = st["cn"] / np.maximum(st["traffic"], 1.0) * self.config.pass_horizon if horizon else st["cn"]
        baseline_share = st["bn"] / np.maximum(st["cn"] + st["bn"], 1.0)
        out: FloatArray = frac * (canary * baseline_share)[..., None]
        return out

    def pass_set(self, st: dict[str, FloatArray]) -> npt.NDArray[np.bool_]:
        """(..., J) the bounds the PASS must cover: in ``pass_exceedance_range`` with
        ``pass_min_information``; if none has it, the in-range bound with the most."""
        in_range = self._in_range(st)
        info = self.information(st)
        elig = in_range & (info >= self.config.pass_min_information)
        ranked = np.where(in_range, info, -np.inf)
        best = np.arange(self.n_bounds) == np.argmax(ranked, axis=-1)[..., None]
        fallback = best & in_range & ~elig.any(axis=-1, keepdims=True)
        out: npt.NDArray[np.bool_] = elig | fallback
        return out


@dataclass
class LatencyTestState:
    bounds: list[float] | None = None
    arrays: dict[str, Any] = field(default_factory=dict)
    intervals: int = 0
    missing: int = 0
    max_log_e_fail: float = 0.0
    max_log_e_pass: float = 0.0
    decision: str | None = None
    decided_at: int | None = None
    decided_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bounds": self.bounds,
            "arrays": self.arrays,
            "intervals": self.intervals,
            "missing": self.missing,
            "maxLogEFail": self.max_log_e_fail,
            "maxLogEPass": self.max_log_e_pass,
            "decision": self.decision,
            "decidedAt": self.decided_at,
            "decidedReason": self.decided_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyTestState:
        try:
            st = cls(
                bounds=None if d["bounds"] is None else [float(b) for b in d["bounds"]],
                arrays={str(k): v for k, v in d["arrays"].items()},
                intervals=int(d["intervals"]),
                missing=int(d["missing"]),
                max_log_e_fail=float(d["maxLogEFail"]),
                max_log_e_pass=float(d["maxLogEPass"]),
                decision=d.get("decision"),
                decided_at=None if d.get("decidedAt") is None else int(d["decidedAt"]),
                decided_reason=d.get("decidedReason"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"bad latency-test state: {exc!r}") from None
        if st.decision is not None and st.decision not in (Decision.FAIL.value, Decision.PASS.value):
            raise InvalidInput(f"bad decision in state: {st.decision!r}")
        return st


class LatencyTest:
    """Sequential latency judge for one metric (see the module docstring)::

        t = LatencyTest(LatencyTestConfig(buckets=(0.05, 0.1, 0.25, 0.5, 1.0)))
        r = t.update_histograms({"0.05": 10, ..., "+Inf": 600}, {...})
        r = t.update_samples(canary_latencies, baseline_latencies)
    """

    def __init__(self, config: LatencyTestConfig | None = None, state: LatencyTestState | None = None) -> None:
        self.config = config or LatencyTestConfig()
        self.state = state or LatencyTestState()
        if self.state.bounds is None and self.config.buckets is not None:
            self.state.bounds = list(self.config.buckets)
        self._core: LatencyCore | None = None
        if self.state.bounds is not None:
            _check_bounds(self.state.bounds)
            self._core = LatencyCore(self.config, len(self.state.bounds))
            if not self.state.arrays:
                self._save(self._core.zeros())
            self._check_arrays()

    def _check_arrays(self) -> None:
        self._load()

    def _save(self, st: dict[str, FloatArray]) -> None:
        self.state.arrays = dict(save_arrays(st))

    def _load(self) -> dict[str, FloatArray]:
        assert self._core is not None
        reference = self._core.zeros()
        portfolio = ("fail_wealth", "fail_last", "fail_released")
        if all(k not in self.state.arrays for k in portfolio):
            # Saved before the FAIL portfolio: continue from the equal-weight average it held.
            st = load_arrays(self.state.arrays, {k: v for k, v in reference.items() if k not in portfolio},
                             "latency-test")
            st.update(self._core.portfolio_from(st))
            return st
        return load_arrays(self.state.arrays, reference, "latency-test")

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyTest:
        if not isinstance(d, dict) or "config" not in d or "state" not in d:
            raise InvalidInput("expected a dict with 'config' and 'state'")
        return cls(LatencyTestConfig.from_dict(d["config"]), LatencyTestState.from_dict(d["state"]))

    def update_histograms(
        self, canary: Mapping[Any, float] | None, baseline: Mapping[Any, float] | None
    ) -> SequentialResult:
        """One interval of Prometheus histograms (``le -> cumulative count``); None or
        any NaN count = missing interval."""
        bounds = self.state.bounds
        hc = None if canary is None else histogram_from_cumulative(canary, bounds)
        b_bounds = bounds if bounds else (hc[1] if hc else None)
        hb = None if baseline is None else histogram_from_cumulative(baseline, b_bounds)
        if hc is not None and hb is not None and hc[1] != hb[1]:
            raise InvalidInput("canary and baseline histograms have different bucket bounds")
        if hc is None or hb is None:
            return self._add(None, None)
        if self.state.bounds is None:
            self.state.bounds = list(hc[1])
            self._core = LatencyCore(self.config, len(hc[1]))
            self._save(self._core.zeros())
        return self._add(hc[0], hb[0])

    def update_samples(
        self, canary: Iterable[float] | npt.ArrayLike, baseline: Iterable[float] | npt.ArrayLike
    ) -> SequentialResult:
        """One interval of raw latencies (seconds), binned on the configured bounds."""
        if self.state.bounds is None:
            raise InvalidInput("raw samples need configured bucket bounds (LatencyTestConfig.buckets)")
        return self._add(
            histogram_from_samples(canary, self.state.bounds), histogram_from_samples(baseline, self.state.bounds)
        )

    def _add(self, hc: FloatArray | None, hb: FloatArray | None) -> SequentialResult:
        s = self.state
        s.intervals += 1
        if hc is None or hb is None or self._core is None:
            s.missing += 1
            return self.result()
        st = self._load()
        self._core.update(st, exceedance_counts(hc), np.array(hc.sum()), exceedance_counts(hb), np.array(hb.sum()))
        self._save(st)
        return self.result()

    def result(self) -> SequentialResult:
        cfg, s = self.config.counts, self.state
        quantity = "latency exceedance-rate ratio canary/baseline"
        if self._core is None or s.bounds is None:
            return SequentialResult(
                Decision.NODATA, "waiting for data: no histogram seen yet", quantity, None, None,
                1.0, 1.0, 1.0, 1.0, s.intervals, 0.0, 0.0, {"missingIntervals": s.missing},
                Shortfall("requests", 0.0, cfg.min_canary_requests, 0.0, cfg.min_baseline_requests, s.intervals, 0,
                          cfg.min_intervals),
            )
        st = self._load()
        lcore, core = self._core, self._core.core
        lf_c, lp_c, enough_a = lcore.judge(st)
        phi, dof = core.dispersion(st)
        lf_all, _ = core.log_e(st)
        lf, lp, enough = float(lf_c), float(lp_c), bool(enough_a)
        bounds = s.bounds
        # Report the bound with the most evidence of a slowdown (ties: the one with most events).
        j = int(np.argmax(lf_all + 1e-9 * st["exc"]))
        cn, bn = float(st["cn"]), float(st["bn"])
        frac = st["exc"] / max(float(st["total"]), 1.0)
        have = float(st["exc"][j]) > 0
        est = math.exp(float(core.estimate({"loglik": st["loglik"][j]}))) if have else None
        # Bonferroni over bounds keeps the interval valid for the selected bound.
        ci_core = CountCore(_with_alpha_ci(cfg, cfg.alpha_ci / len(bounds)))
        phi_j = float(core.fitted_dispersion(phi[j]))
        interval = ci_core.confidence_set(st["loglik"][j], phi_j, float(dof[j])) if have else (0.0, math.inf)
        in_set = lcore.pass_set(st).tolist()
        elig = [b for b, keep in zip(bounds, in_set, strict=True) if keep]
        checked_mask = lcore.pass_checked(st).tolist()
        checked = [b for b, c in zip(bounds, checked_mask, strict=True) if c]
        # Slower bounds than the pass set's slowest that the PASS does not cover (FAIL still watches them).
        left_out = [
            b
            for b, keep, c in zip(bounds, in_set, checked_mask, strict=True)
            if elig and b > elig[-1] and not keep and not c
        ]
        details: dict[str, Any] = {
            "bounds": list(bounds),
            "pooledExceedance": [float(x) for x in frac],
            "eFailPerBound": [math.exp(min(float(x), 700.0)) for x in lf_all],
            "worstBound": bounds[j],
            "passBounds": elig,
            "passChecked": checked,
            "passLeftOut": left_out,
            "passInformation": [float(x) for x in lcore.information(st)],
            "missingIntervals": s.missing,
        }
        if enough:
            s.max_log_e_fail = max(s.max_log_e_fail, lf)
            s.max_log_e_pass = max(s.max_log_e_pass, lp)
        summary = f"{cn:g} canary / {bn:g} baseline requests"
        if est is not None:
            hi_txt = "inf" if math.isinf(interval[1]) else f"{interval[1]:.3g}"
            summary = (
                f"P(latency > {bounds[j]:g}s) ratio {est:.3g} "
                f"(CS [{interval[0]:.3g}, {hi_txt}]), pooled {100 * float(frac[j]):.3g}%; " + summary
            )
        if s.decision is None and enough:
            if lf >= -math.log(cfg.alpha_fail):
                s.decision, s.decided_at = Decision.FAIL.value, s.intervals
                s.decided_reason = f"canary slower than baseline (e-value {math.exp(min(lf, 700)):.3g})"
            elif lp >= -math.log(cfg.alpha_pass):
                s.decision, s.decided_at = Decision.PASS.value, s.intervals
                s.decided_reason = (
                    f"canary exceedance rates shown below {math.exp(core.lam[core.i_pass]):.3g}x baseline at "
                    f"bounds {', '.join(f'{b:g}s' for b in elig)}" + _left_out_text(checked, left_out, self.config)
                )
        shortfall: Shortfall | None = None
        if s.decision is not None:
            decision = Decision(s.decision)
            reason = f"{s.decided_reason} at interval {s.decided_at}: {summary}"
        elif not enough:
            decision = Decision.NODATA
            shortfall = Shortfall(
                "requests", cn, cfg.min_canary_requests, bn, cfg.min_baseline_requests, s.intervals,
                int(st["traffic"]), cfg.min_intervals,
            )
            reason = f"waiting for data: {shortfall.text()}"
        else:
            decision = Decision.CONTINUE
            reason = (
                f"no decision yet (e-values fail {math.exp(min(lf, 700)):.3g}, "
                f"pass {math.exp(min(lp, 700)) if math.isfinite(lp) else 0:.3g}): {summary}"
            )
        return SequentialResult(
            decision=decision,
            reason=reason,
            quantity=quantity,
            estimate=est,
            interval=interval,
            e_fail=math.exp(min(lf, 700.0)),
            e_pass=math.exp(min(lp, 700.0)) if math.isfinite(lp) else 0.0,
            p_fail=min(1.0, math.exp(-s.max_log_e_fail)),
            p_pass=min(1.0, math.exp(-s.max_log_e_pass)),
            intervals_seen=s.intervals,
            canary_total=cn,
            baseline_total=bn,
            details=details,
            shortfall=shortfall,
        )


def _left_out_text(checked: Sequence[float], left_out: Sequence[float], config: LatencyTestConfig) -> str:
    """What the pass does not show, and why: too few slower requests within the horizon."""
    parts = []
    if checked:
        parts.append(f"estimated only at {', '.join(f'{b:g}s' for b in checked)}")
    if left_out:
        parts.append(f"not covered: {', '.join(f'{b:g}s' for b in left_out)}")
    if not parts:
        return ""
    return (
        f" ({'; '.join(parts)}: too few slower requests to show it within {config.pass_horizon} intervals; "
        "watched for a slowdown until this verdict)"
    )


def _with_alpha_ci(cfg: CountTestConfig, alpha: float) -> CountTestConfig:
    d = cfg.to_dict()
    d["alphaCi"] = alpha
    return CountTestConfig.from_dict(d)
