"""The judges under test, each vectorised over runs.

Every judge returns, per run, the interval (1-based minute) at which it decided
and what: ``fail_at`` (np.inf when it never failed) and ``pass_at`` (np.inf when
it never promoted early). A run that reaches the end of the window undecided is
promoted then (Argo/Kayenta semantics: the analysis succeeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.providers.judge.spec import MannWhitneySettings
from analysis.providers.judge.verdicts import mann_whitney_verdict
from analysis.stats import Decision
from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountCore
from analysis.stats.sequential_latency import LatencyTestConfig, exceedance_counts

FloatArray = npt.NDArray[np.float64]


@dataclass
class Outcome:
    fail_at: FloatArray  # (runs,)
    pass_at: FloatArray  # (runs,)


def _first(cond: npt.NDArray[np.bool_]) -> FloatArray:
    """1-based index of the first True along the last axis, inf if none."""
    any_ = cond.any(axis=-1)
    idx = np.argmax(cond, axis=-1).astype(np.float64) + 1.0
    out: FloatArray = np.where(any_, idx, np.inf)
    return out


# --- ours ----------------------------------------------------------------------------------


def sequential_counts(
    ce: FloatArray,
    cn: FloatArray,
    be: FloatArray,
    bn: FloatArray,
    config: CountTestConfig | None = None,
    history: tuple[FloatArray, FloatArray] | None = None,
    core: CountCore | None = None,
) -> Outcome:
    """The library's CountTest, run on every interval, vectorised over runs (same
    CountCore arithmetic and the same minimum-evidence gate as CountTest).
    ``history``: the stable version's (errors, requests) per interval before the
    canary, (runs, H), fed to the dispersion bound as CountTest.prime_baseline does.
    ``core``: a CountCore to run instead of the library's (a variant under study; ``config`` is its own)."""
    core = core or CountCore(config or CountTestConfig())
    cfg = core.config
    runs, T = ce.shape
    st = core.zeros((runs,))
    if history is not None:
        for h in range(history[0].shape[1]):
            core.prime_baseline(st, history[0][:, h], history[1][:, h])
    lf_all = np.full((runs, T), -np.inf)
    lp_all = np.full((runs, T), -np.inf)
    traffic_iv = np.zeros(runs)
    ncum = np.zeros(runs)
    mcum = np.zeros(runs)
    for t in range(T):
        ok = np.isfinite(ce[:, t]) & np.isfinite(be[:, t])
        c = np.where(ok, ce[:, t], 0.0)
        e = np.where(ok, be[:, t], 0.0)
        n = np.where(ok, cn[:, t], 0.0)
        m = np.where(ok, bn[:, t], 0.0)
        both = (n > 0) & (m > 0)
        share = np.where(both, n / np.where(both, n + m, 1.0), 0.0)
        core.update(st, c, c + e, share, n + m)
        traffic_iv += both
        ncum += n
        mcum += m
        enough = (traffic_iv >= cfg.min_intervals) & (ncum >= cfg.min_canary_requests) & (
            mcum >= cfg.min_baseline_requests
        )
        lf, lp = core.log_e(st)
        lf_all[:, t] = np.where(enough, lf, -np.inf)
        lp_all[:, t] = np.where(enough, lp, -np.inf)
    fail_at = _first(lf_all >= -math.log(cfg.alpha_fail))
    pass_at = _first(lp_all >= -math.log(cfg.alpha_pass))
    # FAIL wins a tie; a decision is final.
    pass_at = np.where(pass_at < fail_at, pass_at, np.inf)
    fail_at = np.where(fail_at <= pass_at, fail_at, np.inf)
    return Outcome(fail_at, pass_at)


def sequential_latency(hc: FloatArray, hb: FloatArray, config: LatencyTestConfig | None = None) -> Outcome:
    """The library's LatencyTest (one count test per bucket boundary), vectorised."""
    from analysis.stats.sequential_latency import LatencyCore

    cfg = config or LatencyTestConfig()
    runs, T, nb = hc.shape
    core = LatencyCore(cfg, nb - 1)
    st = core.zeros((runs,))
    lf_all = np.full((runs, T), -np.inf)
    lp_all = np.full((runs, T), -np.inf)
    for t in range(T):
        ok = np.isfinite(hc[:, t, 0]) & np.isfinite(hb[:, t, 0])
        c = np.where(ok[:, None], hc[:, t], 0.0)
        b = np.where(ok[:, None], hb[:, t], 0.0)
        core.update(st, exceedance_counts(c), c.sum(-1), exceedance_counts(b), b.sum(-1))
        lf, lp, enough = core.judge(st)
        lf_all[:, t] = np.where(enough, lf, -np.inf)
        lp_all[:, t] = np.where(enough, lp, -np.inf)
    fail_at = _first(lf_all >= -math.log(cfg.counts.alpha_fail))
    pass_at = _first(lp_all >= -math.log(cfg.counts.alpha_pass))
    pass_at = np.where(pass_at < fail_at, pass_at, np.inf)
    fail_at = np.where(fail_at <= pass_at, fail_at, np.inf)
    return Outcome(fail_at, pass_at)


# --- oracle --------------------------------------------------------------------------------


def oracle_sprt(ce: FloatArray, cn: FloatArray, rate: float, ratio: float, alpha: float = 0.01) -> Outcome:
    """Wald's SPRT of canary rate = ``rate`` vs ``ratio * rate``, knowing both true
    rates (so it needs no baseline): log LR = sum c log(ratio) - n rate (ratio - 1).
    Rejects at log(1/alpha), the same level as ours."""
    c = np.nan_to_num(ce)
    n = np.nan_to_num(cn)
    llr = np.cumsum(c * math.log(ratio) - n * rate * (ratio - 1.0), axis=1)
    return Outcome(_first(llr >= -math.log(alpha)), np.full(ce.shape[0], np.inf))


# --- thresholds (Argo / Flagger) -----------------------------------------------------------


def threshold_judge(values: FloatArray, limit: float, failures_to_fail: int) -> Outcome:
    """A measurement per interval; it fails when the canary's value exceeds ``limit``;
    the analysis fails at the ``failures_to_fail``-th failed measurement. Missing
    values (no data) are inconclusive and do not count. Argo: failureLimit=k means
    fail at k+1 failures; Flagger: threshold=k fails at the k-th failed check."""
    bad = np.nan_to_num(values, nan=-np.inf) > limit
    count = np.cumsum(bad, axis=1)
    return Outcome(_first(count >= failures_to_fail), np.full(values.shape[0], np.inf))


# --- Kayenta-style Mann-Whitney, vectorised ------------------------------------------------


def _tie_terms(a: FloatArray) -> FloatArray:
    """sum(t^3 - t) over tie groups, per row of a row-sorted array (no NaN)."""
    runs, n = a.shape
    if n < 2:
        return np.zeros(runs)
    start = np.ones_like(a, dtype=bool)
    start[:, 1:] = a[:, 1:] != a[:, :-1]
    gid = np.cumsum(start, axis=1) - 1 + (np.arange(runs) * n)[:, None]
    counts = np.bincount(gid.ravel(), minlength=runs * n).astype(np.float64)
    terms: FloatArray = (counts**3 - counts).reshape(runs, n).sum(axis=1)
    return terms


def mw_high(x: FloatArray, y: FloatArray, confs: tuple[float, ...], tolerance: float = 0.25) -> npt.NDArray[np.bool_]:
    """Kayenta's High classification (direction increase, meanRatio >= 1), per run and
    per confidence level: lower CI bound > tolerance * |HL estimate|. x (runs, n),
    y (runs, m), finite. Returns (runs, len(confs))."""
    runs, n = x.shape
    m = y.shape[1]
    nm = n * m
    xs, ys = np.sort(x, axis=1), np.sort(y, axis=1)
    d = (xs[:, :, None] - ys[:, None, :]).reshape(runs, nm)
    big_n = n + m
    ties = _tie_terms(xs) + _tie_terms(ys)
    sd0 = np.sqrt(nm / 12.0 * ((big_n + 1) - ties / (big_n * (big_n - 1))))
    ks = []
    for conf in confs:
        z = float(special.ndtri(1 - (1 - conf) / 2))
        ks.append(np.clip(np.ceil(nm / 2.0 - 0.5 - z * sd0), 1, nm).astype(np.int64) - 1)
    med_k = sorted({(nm - 1) // 2, nm // 2})
    kth = np.unique(np.concatenate([np.concatenate(ks), np.array(med_k)]))
    part = np.partition(d, kth, axis=1)
    est = 0.5 * (part[:, (nm - 1) // 2] + part[:, nm // 2])
    mean_x, mean_y = x.mean(axis=1), y.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mean_y == 0, np.where(mean_x > 0, np.inf, 1.0), mean_x / mean_y)
    identical = np.all(xs == ys, axis=1) if n == m else np.zeros(runs, dtype=bool)
    out = np.zeros((runs, len(confs)), dtype=bool)
    for j, k in enumerate(ks):
        lower = np.take_along_axis(part, k[:, None], axis=1)[:, 0]
        out[:, j] = (lower > tolerance * np.abs(est)) & (ratio >= 1.0) & ~identical
    return out


def kayenta_high(xc: FloatArray, xb: FloatArray, confs: tuple[float, ...]) -> npt.NDArray[np.bool_]:
    """Kayenta-style High verdicts on per-interval metric points (NaN strategy:
    remove, pairwise), for the window of the first t intervals, t = 1..T:
    shape (runs, T + 1, len(confs)); index 0 and windows of < 2 points are False."""
    runs, T = xc.shape
    high = np.zeros((runs, T + 1, len(confs)), dtype=bool)
    for t in range(2, T + 1):
        a, b = xc[:, :t], xb[:, :t]
        ok = np.isfinite(a) & np.isfinite(b)
        nvalid = ok.sum(axis=1)
        # Group runs by their number of valid points so each group is rectangular.
        for nv in np.unique(nvalid):
            if nv < 2:
                continue
            rows = np.flatnonzero(nvalid == nv)
            aa = a[rows][ok[rows]].reshape(rows.size, nv)
            bb = b[rows][ok[rows]].reshape(rows.size, nv)
            high[rows, t] = mw_high(aa, bb, confs)
    return high


def kayenta_every(high: npt.NDArray[np.bool_], conf_index: int, start: int) -> Outcome:
    """Re-run at every interval from ``start`` on; fail at the first High."""
    h = high[:, :, conf_index].copy()
    h[:, :start] = False
    fail = np.where(h.any(axis=1), np.argmax(h, axis=1).astype(np.float64), np.inf)
    return Outcome(fail, np.full(h.shape[0], np.inf))


def kayenta_full(high: npt.NDArray[np.bool_], conf_index: int) -> Outcome:
    """One run on the full window."""
    T = high.shape[1] - 1
    fail = np.where(high[:, T, conf_index], float(T), np.inf)
    return Outcome(fail, np.full(high.shape[0], np.inf))


# --- the provider's mann-whitney test as examples/ configures it ----------------------------


def provider_mann_whitney(xc: FloatArray, xb: FloatArray, settings: MannWhitneySettings, count: int) -> Outcome:
    """The `judge` provider's `mann-whitney` verdicts (the provider's own code), one measurement per
    interval: measurement k sees the k - 1 points since the run started (the default window), a
    regression fails at the first measurement that shows it (``failEarly``), the final measurement
    ``count`` passes or fails. Minutes count from the run's start: measurement k is at minute k - 1.
    Pass is only at the final measurement, so ``pass_at`` is ``count - 1`` for a run that passed."""
    runs = xc.shape[0]
    fail_at = np.full(runs, np.inf)
    pass_at = np.full(runs, np.inf)
    first = max(settings.min_points + 1, 2)
    for r in range(runs):
        for k in range(first, count + 1):
            verdict = mann_whitney_verdict(settings, list(xc[r, : k - 1]), list(xb[r, : k - 1]), k == count, "w")
            if verdict.decision is Decision.FAIL:
                fail_at[r] = k - 1
                break
            if verdict.decision is Decision.PASS:
                pass_at[r] = k - 1
                break
    return Outcome(fail_at, pass_at)
