"""Seeded simulator of canary vs baseline streams, vectorised over runs.

One interval = one minute (one analysis measurement). Everything a judge sees is
what Prometheus would give per interval: request and error counts per version,
and latency histograms (cumulative bucket counts) per version.

Traffic: total requests per interval = Poisson(rps * 60 * load_t) where load_t
is 1 (steady), a diurnal wave (0.2x..1.8x over a random-phase 120-minute period:
a fast-forwarded day, so a 60-minute analysis sees most of it) or bursty (each
minute 5x with probability 0.1). The canary gets a share ``share`` of it.
Errors: Poisson(requests * rate * G) with G = 1 (Poisson) or, for clustered
errors, Gamma(mean 1, CV ``cv``) drawn independently per version and interval
(so the two versions' counts are overdispersed and independent; a cell may cluster the canary's
errors alone, ``canary_cv``, the baseline's history then showing none). Missing
intervals (failed scrape) are NaN for both versions.
Latency: per version and interval, bucket counts ~ Multinomial(requests,
bucket probabilities of the interval's latency distribution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]

# Latency histogram bucket upper bounds (seconds), what a user would configure.
LATENCY_BUCKETS: tuple[float, ...] = tuple(0.01 * 2.0**i for i in range(12))  # 10 ms .. 20.48 s


@dataclass(frozen=True)
class Traffic:
    rps: float = 20.0
    share: float = 0.10
    pattern: str = "steady"  # steady | diurnal | bursty
    missing: float = 0.0  # probability an interval is missing


def simulate_traffic(tr: Traffic, runs: int, intervals: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Requests per interval for canary and baseline, shape (runs, intervals)."""
    t = np.arange(intervals, dtype=np.float64)
    if tr.pattern == "steady":
        load = np.ones((runs, intervals))
    elif tr.pattern == "diurnal":
        phase = rng.uniform(0, 2 * math.pi, size=(runs, 1))
        load = 1.0 + 0.8 * np.sin(2 * math.pi * t / 120.0 + phase)
    elif tr.pattern == "bursty":
        load = np.where(rng.random((runs, intervals)) < 0.1, 5.0, 1.0)
    else:
        raise ValueError(tr.pattern)
    mean = tr.rps * 60.0 * load
    n = rng.poisson(mean * tr.share).astype(np.float64)
    m = rng.poisson(mean * (1 - tr.share)).astype(np.float64)
    return n, m


def _missing_mask(tr: Traffic, runs: int, intervals: int, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    mask: npt.NDArray[np.bool_] = rng.random((runs, intervals)) < tr.missing
    return mask


@dataclass(frozen=True)
class ErrorCell:
    name: str
    traffic: Traffic
    rate: float  # baseline error rate
    ratio: float = 1.0  # canary / baseline
    cv: float = 0.0  # per-interval clustering of errors (Gamma CV), per version
    regression: bool = False
    canary_cv: float | None = None  # the canary's own clustering when it differs from the baseline's
    tags: tuple[str, ...] = field(default=())


@dataclass
class CountData:
    ce: FloatArray  # canary errors (runs, T); NaN = missing
    cn: FloatArray  # canary requests
    be: FloatArray
    bn: FloatArray


def _clustering(cv: float, runs: int, intervals: int, rng: np.random.Generator) -> FloatArray:
    """Per-interval error-rate multipliers: Gamma(mean 1, CV ``cv``), or 1 without clustering."""
    if cv <= 0:
        return np.ones((runs, intervals))
    k = 1.0 / cv**2
    out: FloatArray = rng.gamma(k, 1.0 / k, size=(runs, intervals))
    return out


def simulate_errors(cell: ErrorCell, runs: int, intervals: int, rng: np.random.Generator) -> CountData:
    n, m = simulate_traffic(cell.traffic, runs, intervals, rng)
    canary_cv = cell.cv if cell.canary_cv is None else cell.canary_cv
    ce = rng.poisson(n * cell.rate * cell.ratio * _clustering(canary_cv, runs, intervals, rng)).astype(np.float64)
    be = rng.poisson(m * cell.rate * _clustering(cell.cv, runs, intervals, rng)).astype(np.float64)
    ce, be = np.minimum(ce, n), np.minimum(be, m)
    miss = _missing_mask(cell.traffic, runs, intervals, rng)
    for a in (ce, n, be, m):
        a[miss] = np.nan
    return CountData(ce, n, be, m)


HISTORY_INTERVALS = 24 * 60  # a day of the stable version before the canary (baselineHistory: 24h)


def simulate_stable_history(
    cell: ErrorCell, runs: int, intervals: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """The stable version's errors and requests per interval before the canary started:
    all the traffic, the same error rate and the same clustering; no missing intervals."""
    tr = cell.traffic
    canary, rest = simulate_traffic(Traffic(tr.rps, 0.5, tr.pattern), runs, intervals, rng)
    requests = canary + rest
    mult = _clustering(cell.cv, runs, intervals, rng)
    errors = np.minimum(rng.poisson(requests * cell.rate * mult).astype(np.float64), requests)
    return errors, requests


# --- latency -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyDist:
    """A latency law: a mixture of lognormals (median seconds, sigma, weight) and an
    optional Pareto tail (weight, x_min seconds, alpha)."""

    parts: tuple[tuple[float, float, float], ...] = ((0.1, 0.5, 1.0),)
    pareto: tuple[float, float, float] | None = None

    def cdf(self, x: FloatArray, scale: FloatArray | float = 1.0) -> FloatArray:
        """P(latency <= x) when all latencies are multiplied by ``scale``."""
        xs = np.asarray(x) / scale
        total = sum(w for _, _, w in self.parts) + (self.pareto[0] if self.pareto else 0.0)
        out = np.zeros(np.broadcast(xs).shape)
        with np.errstate(divide="ignore"):
            lx = np.log(np.maximum(xs, 1e-300))
        for med, sig, w in self.parts:
            out = out + w * special.ndtr((lx - math.log(med)) / sig)
        if self.pareto:
            w, xm, a = self.pareto
            out = out + w * np.where(xs > xm, 1.0 - (xm / np.maximum(xs, xm)) ** a, 0.0)
        res: FloatArray = out / total
        return res


@dataclass(frozen=True)
class LatencyCell:
    name: str
    traffic: Traffic
    baseline: LatencyDist
    canary: LatencyDist | None = None  # None: same as baseline
    slow_intervals: float = 0.0  # probability a canary interval is `slow_factor` x slower
    slow_factor: float = 100.0
    diurnal_latency: bool = False  # latency scale follows load (both versions)
    regression: bool = False
    tags: tuple[str, ...] = field(default=())


@dataclass
class HistData:
    """Per-interval bucket counts (non-cumulative, last = above the top bound)."""

    canary: FloatArray  # (runs, T, B+1); NaN rows = missing
    baseline: FloatArray
    bounds: FloatArray


def _bucket_probs(dist: LatencyDist, bounds: FloatArray, scale: FloatArray) -> FloatArray:
    """(…, B+1) probabilities of each bucket; ``scale`` (…) multiplies latencies."""
    cdf = dist.cdf(bounds, scale[..., None])
    cdf = np.concatenate([np.zeros((*scale.shape, 1)), cdf, np.ones((*scale.shape, 1))], axis=-1)
    p: FloatArray = np.clip(np.diff(cdf, axis=-1), 0.0, 1.0)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def simulate_latency(cell: LatencyCell, runs: int, intervals: int, rng: np.random.Generator) -> HistData:
    bounds = np.array(LATENCY_BUCKETS)
    n, m = simulate_traffic(cell.traffic, runs, intervals, rng)
    if cell.diurnal_latency:
        # Latency grows with load, the same for both versions.
        load = (n + m) / np.maximum(np.mean(n + m, axis=1, keepdims=True), 1.0)
        scale = 0.7 + 0.3 * load
    else:
        scale = np.ones((runs, intervals))
    cdist = cell.canary or cell.baseline
    cscale = scale.copy()
    if cell.slow_intervals > 0:
        slow = rng.random((runs, intervals)) < cell.slow_intervals
        cscale = np.where(slow, cscale * cell.slow_factor, cscale)
    pc = _bucket_probs(cdist, bounds, cscale)
    pb = _bucket_probs(cell.baseline, bounds, scale)
    hc = rng.multinomial(n.astype(np.int64), pc).astype(np.float64)
    hb = rng.multinomial(m.astype(np.int64), pb).astype(np.float64)
    miss = _missing_mask(cell.traffic, runs, intervals, rng)
    hc[miss] = np.nan
    hb[miss] = np.nan
    return HistData(hc, hb, bounds)


def histogram_mean(h: FloatArray, bounds: FloatArray) -> FloatArray:
    """Mean latency per interval from bucket counts (geometric bucket midpoints,
    1.5x the top bound for the overflow bucket): what sum/count would give."""
    lo = np.concatenate([[bounds[0] / 2], bounds])
    hi = np.concatenate([bounds, [bounds[-1] * 2.25]])
    mid = np.sqrt(lo * hi)
    tot = h.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = (h * mid).sum(axis=-1) / tot
    return np.where(tot > 0, out, np.nan)


def histogram_quantile(h: FloatArray, bounds: FloatArray, q: float) -> FloatArray:
    """Prometheus histogram_quantile: linear interpolation inside the bucket (the
    overflow bucket returns the top bound)."""
    cum = np.cumsum(h, axis=-1)
    tot = cum[..., -1]
    rank = q * tot
    idx = np.argmax(cum >= rank[..., None], axis=-1)
    lo_b = np.concatenate([[0.0], bounds])
    upper = np.concatenate([bounds, [bounds[-1]]])
    prev = np.where(idx > 0, np.take_along_axis(cum, np.maximum(idx - 1, 0)[..., None], -1)[..., 0], 0.0)
    cnt = np.take_along_axis(h, idx[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(cnt > 0, (rank - prev) / cnt, 1.0)
    val = lo_b[idx] + (upper[idx] - lo_b[idx]) * frac
    val = np.where(idx >= bounds.size, bounds[-1], val)
    out: FloatArray = np.where(tot > 0, val, np.nan)
    return out


def latency_from_requests(
    n: FloatArray, m: FloatArray, canary: LatencyDist, baseline: LatencyDist, rng: np.random.Generator
) -> HistData:
    """Latency histograms of given traffic (canary ``n``, baseline ``m`` requests per interval, NaN =
    missing): each interval's requests drawn into the buckets of its version's law, so an error cell's
    traffic also carries latency (the joint error + latency judge)."""
    bounds = np.array(LATENCY_BUCKETS)
    ones = np.ones(n.shape)
    missing = ~(np.isfinite(n) & np.isfinite(m))
    hc = rng.multinomial(np.nan_to_num(n).astype(np.int64), _bucket_probs(canary, bounds, ones)).astype(np.float64)
    hb = rng.multinomial(np.nan_to_num(m).astype(np.int64), _bucket_probs(baseline, bounds, ones)).astype(np.float64)
    hc[missing] = np.nan
    hb[missing] = np.nan
    return HistData(hc, hb, bounds)
