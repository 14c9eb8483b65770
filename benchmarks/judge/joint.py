"""The ``sequential`` judge with latency queries (issue 22): the error-rate and the latency test on the same
traffic, and ``promoteOnLatencyWhenSparse``'s rule (:mod:`analysis.stats.sparse_errors`), vectorised over
runs with the library's ``CountCore`` / ``LatencyCore``.

    .venv/bin/python -m benchmarks.judge.joint [--runs 1000] [--only TEXT] [--rule-only]
        [--sparse-power P [P ...]] [--sparse-max-fail-evidence E [E ...]] [--sparse-horizon N]

prints, per error cell (its traffic also drawn into latency histograms of one lognormal law for both
versions: no latency change), early promotion and rollbacks of the variants of the rule the README
documents and of the alternatives it was measured against. ``python -m benchmarks.judge`` shows the
chosen rule's row ("ours + latency when sparse") beside the other judges. The ``--sparse-*`` options are
the spec's ``sparseErrorsPower``, ``sparseErrorsMaxFailEvidence`` and ``sparseErrorsHorizon``, read by the
provider's own parser into the rule's settings (default: the provider's; the benchmark's metric has no
``count``, so the horizon is ``DEFAULT_HORIZON`` unless set).
"""

from __future__ import annotations

import argparse
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.providers.judge.fields import JudgeSpecError
from analysis.providers.judge.spec import sparse_rule
from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountCore
from analysis.stats.sequential_latency import LatencyCore, LatencyTestConfig, exceedance_counts
from analysis.stats.sparse_errors import (
    DEFAULT_HORIZON,
    SparseRule,
    errors_needed,
    expected_errors,
    promotes_on_latency,
)
from benchmarks.judge.cells import CELLS, LOGNORMAL
from benchmarks.judge.judges import Outcome
from benchmarks.judge.simulate import (
    HISTORY_INTERVALS,
    CountData,
    ErrorCell,
    HistData,
    latency_from_requests,
    simulate_errors,
    simulate_stable_history,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
LABEL = "ours + latency when sparse"


@dataclass
class Trace:
    """Per run and interval (runs, T): each test's decision so far and the sparse rule's inputs."""

    count_fail: FloatArray  # first interval the error-rate test failed (inf: never), as the library decides
    count_pass: FloatArray
    latency_fail: FloatArray
    latency_pass: FloatArray
    continuing: BoolArray  # (runs, T): the error-rate test past its minimum evidence
    e_fail: FloatArray  # (runs, T)
    expected: FloatArray  # (runs, T): effective canary errors expected by the last interval
    excess: FloatArray  # (runs, T): canary errors so far over those the baseline's rate predicts
    canary_errors: FloatArray  # (runs, T): so far
    at_baseline: FloatArray  # (runs, T): canary errors so far at the baseline's rate


def _first(cond: BoolArray) -> FloatArray:
    idx = np.argmax(cond, axis=-1).astype(np.float64) + 1.0
    out: FloatArray = np.where(cond.any(axis=-1), idx, np.inf)
    return out


def _decided(lf: FloatArray, lp: FloatArray, alpha_fail: float, alpha_pass: float) -> tuple[FloatArray, FloatArray]:
    """First FAIL and PASS crossings (FAIL wins a tie; a decision is final)."""
    fail_at, pass_at = _first(lf >= -math.log(alpha_fail)), _first(lp >= -math.log(alpha_pass))
    return np.where(fail_at <= pass_at, fail_at, np.inf), np.where(pass_at < fail_at, pass_at, np.inf)


def trace(d: CountData, h: HistData, history: tuple[FloatArray, FloatArray] | None, horizon: int) -> Trace:
    """Both tests over every interval, with their defaults (the count test with the stable's history)."""
    cfg, lcfg = CountTestConfig(), LatencyTestConfig()
    core, lcore = CountCore(cfg), LatencyCore(lcfg, h.bounds.size)
    runs, T = d.ce.shape
    st, lst = core.zeros((runs,)), lcore.zeros((runs,))
    if history is not None:
        for i in range(history[0].shape[1]):
            core.prime_baseline(st, history[0][:, i], history[1][:, i])
    shape = (runs, T)
    lf, lp, llf, llp, e_fail, expected, excess, cerr, at_base = (np.full(shape, -np.inf) for _ in range(9))
    continuing = np.zeros(shape, dtype=bool)
    traffic, ncum, mcum, bcum, ccum = (np.zeros(runs) for _ in range(5))
    for t in range(T):
        ok = np.isfinite(d.ce[:, t]) & np.isfinite(d.be[:, t])
        c, e = np.where(ok, d.ce[:, t], 0.0), np.where(ok, d.be[:, t], 0.0)
        n, m = np.where(ok, d.cn[:, t], 0.0), np.where(ok, d.bn[:, t], 0.0)
        both = (n > 0) & (m > 0)
        core.update(st, c, c + e, np.where(both, n / np.where(both, n + m, 1.0), 0.0), n + m)
        traffic, ncum, mcum, bcum, ccum = traffic + both, ncum + n, mcum + m, bcum + e, ccum + c
        enough = (traffic >= cfg.min_intervals) & (ncum >= cfg.min_canary_requests)
        enough &= mcum >= cfg.min_baseline_requests
        f, p = core.log_e(st)
        lf[:, t], lp[:, t] = np.where(enough, f, -np.inf), np.where(enough, p, -np.inf)
        continuing[:, t] = enough
        e_fail[:, t] = np.exp(np.minimum(f, 700.0))
        rate = bcum / np.where(mcum > 0, mcum, 1.0)
        left = np.full(runs, float(max(horizon - (t + 1), 0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            excess[:, t] = np.where(ccum > 0, ccum / (rate * ncum), 0.0)
        cerr[:, t], at_base[:, t] = ccum, rate * ncum
        expected[:, t] = expected_errors(rate, ncum, np.full(runs, t + 1.0), left, core.nb_dispersion(st))
        hok = np.isfinite(h.canary[:, t, 0]) & np.isfinite(h.baseline[:, t, 0])
        hc, hb = np.where(hok[:, None], h.canary[:, t], 0.0), np.where(hok[:, None], h.baseline[:, t], 0.0)
        lcore.update(lst, exceedance_counts(hc), hc.sum(-1), exceedance_counts(hb), hb.sum(-1))
        a, b, lenough = lcore.judge(lst)
        llf[:, t], llp[:, t] = np.where(lenough, a, -np.inf), np.where(lenough, b, -np.inf)
    count_fail, count_pass = _decided(lf, lp, cfg.alpha_fail, cfg.alpha_pass)
    latency_fail, latency_pass = _decided(llf, llp, lcfg.counts.alpha_fail, lcfg.counts.alpha_pass)
    return Trace(
        count_fail, count_pass, latency_fail, latency_pass, continuing, e_fail, expected, excess, cerr, at_base
    )


# A rule: (trace, the intervals 1..T) -> (runs, T): where the error side lets a passed latency test promote.
Rule = Callable[[Trace, FloatArray], BoolArray]
NEEDED = errors_needed(CountTestConfig().pass_ratio, CountTestConfig().alpha_pass)
SETTLE = CountTestConfig().canary_dispersion_intervals


def _undecided(tr: Trace, minute: FloatArray) -> BoolArray:
    out: BoolArray = (tr.count_fail[:, None] > minute) & (tr.count_pass[:, None] > minute) & tr.continuing
    return out


def rule_with(settings: SparseRule) -> Rule:
    """``promoteOnLatencyWhenSparse`` as the provider applies it (:func:`promotes_on_latency`) with these
    settings' power and fail e-value ceiling (their horizon is the trace's: :func:`horizon_of`)."""
    needed = errors_needed(CountTestConfig().pass_ratio, CountTestConfig().alpha_pass, settings.power)

    def rule(tr: Trace, minute: FloatArray) -> BoolArray:
        out: BoolArray = _undecided(tr, minute) & promotes_on_latency(
            tr.e_fail, minute[None, :], tr.expected, needed, SETTLE, settings.max_fail_evidence
        )
        return out

    return rule


def horizon_of(settings: SparseRule) -> int:
    """The intervals the rule looks ahead to in the benchmark, whose metric has no ``count``."""
    return DEFAULT_HORIZON if settings.horizon is None else settings.horizon


the_rule = rule_with(SparseRule())


def alternative(limit: float, settle: int = 0, excess: float = math.inf, ceiling: float = 0.0) -> Rule:
    """Rules measured against it: fail e-value <= ``limit``, from interval ``settle``, the canary's errors so
    far at most ``excess`` x what the baseline's rate predicts, and (``ceiling``) its errors so far showing
    its rate below ``ceiling`` x the baseline's (one-sided Poisson test at 1%)."""

    def rule(tr: Trace, minute: FloatArray) -> BoolArray:
        ok = _undecided(tr, minute) & (tr.e_fail <= limit) & (tr.excess <= excess) & (tr.expected < NEEDED)
        ok &= minute[None, :] >= settle
        if ceiling:
            ok &= stats.poisson.cdf(tr.canary_errors, ceiling * tr.at_baseline) <= 0.01
        out: BoolArray = ok
        return out

    return rule


def joint(tr: Trace, rule: Rule | None) -> Outcome:
    """The metric's decisions: FAIL when either test failed; PASS when both passed or (``rule``) the latency
    test passed and the rule lets it; a FAIL at the same interval wins."""
    T = tr.continuing.shape[1]
    minute = np.arange(1, T + 1, dtype=np.float64)
    fail_at = np.minimum(tr.count_fail, tr.latency_fail)
    pass_at = np.maximum(tr.count_pass, tr.latency_pass)
    if rule is not None:
        latency_passed = tr.latency_pass[:, None] <= minute
        pass_at = np.minimum(pass_at, _first(latency_passed & rule(tr, minute)))
    return Outcome(np.where(fail_at <= pass_at, fail_at, np.inf), np.where(pass_at < fail_at, pass_at, np.inf))


def latency_alone(tr: Trace, minute: FloatArray) -> BoolArray:
    """No error-side condition but the settle window: what any setting of the rule can reach at most."""
    out: BoolArray = _undecided(tr, minute) & (minute[None, :] >= SETTLE)
    return out


CEILING = f"ceiling: the latency test's pass alone, from interval {SETTLE} (any error counts)"


def rule_label(settings: SparseRule) -> str:
    return (
        f"{LABEL} (the rule: power {settings.power:g}, fail e-value <= {settings.max_fail_evidence:g}, "
        f"horizon {horizon_of(settings)}, from interval {SETTLE})"
    )


def variants(settings: tuple[SparseRule, ...], rule_only: bool = False) -> tuple[tuple[str, Rule | None], ...]:
    """The rule with each of ``settings``, what any setting can reach at most and (unless ``rule_only``)
    the rules it was measured against (those at the defaults' power)."""
    rules: tuple[tuple[str, Rule | None], ...] = (
        *((rule_label(s), rule_with(s)) for s in settings), (CEILING, latency_alone),
    )
    if rule_only:
        return rules
    return (
        ("both must pass (latency queries, no flag)", None),
        *rules,
        ("the same from the first interval", alternative(1.0)),
        (f"fail e-value <= 0.5, from interval {SETTLE}", alternative(0.5, SETTLE)),
        (f"fail e-value <= 1, shown below 10x at 1%, from interval {SETTLE}",
         alternative(1.0, SETTLE, ceiling=10.0)),
        (f"fail e-value <= 1, canary errors <= 1.5x the baseline's rate, from interval {SETTLE}",
         alternative(1.0, SETTLE, excess=1.5)),
    )


def settings_from(
    powers: list[float] | None, max_fail_evidences: list[float] | None, horizon: int | None
) -> tuple[SparseRule, ...]:
    """Every combination of the ``--sparse-*`` options, each read as the spec fields they stand for by the
    provider's parser (JudgeSpecError names a bad field); an option not given is left to the provider's
    default. All share one horizon: the trace's expected errors depend on it, the rest only on the rule."""
    out = []
    unset: list[float | None] = [None]
    for power in powers or unset:
        for evidence in max_fail_evidences or unset:
            fields = (
                ("sparseErrorsPower", power), ("sparseErrorsMaxFailEvidence", evidence),
                ("sparseErrorsHorizon", horizon),
            )
            out.append(sparse_rule({key: value for key, value in fields if value is not None}))
    return tuple(out)


def trace_when_sparse(
    d: CountData, history: tuple[FloatArray, FloatArray], latency_key: tuple[int, ...], horizon: int
) -> Trace:
    """Both tests on a cell's own draws, for ``python -m benchmarks.judge``: latency histograms of the same
    traffic (no latency change) from a generator of their own (``latency_key``:
    :func:`benchmarks.judge.chunks.chunk_seeds`). ``joint(trace, the_rule)`` is the row "ours + latency
    when sparse"; ``count_fail`` / ``count_pass`` are the error-rate test alone, as
    :func:`benchmarks.judge.judges.sequential_counts` decides it with the same history."""
    lat_rng = np.random.default_rng(list(latency_key))
    h = latency_from_requests(d.cn, d.bn, LOGNORMAL, LOGNORMAL, lat_rng)
    return trace(d, h, history, horizon)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge.joint", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--only", default="")
    ap.add_argument("--rule-only", action="store_true", help="print only the rule's row per cell")
    ap.add_argument("--sparse-power", type=float, nargs="+",
                    help="sparseErrorsPower, one or more (default: the provider's)")
    ap.add_argument("--sparse-max-fail-evidence", type=float, nargs="+",
                    help="sparseErrorsMaxFailEvidence, one or more (default: the provider's)")
    ap.add_argument("--sparse-horizon", type=int, help=f"sparseErrorsHorizon (default: {DEFAULT_HORIZON})")
    args = ap.parse_args(argv)
    try:
        settings = settings_from(args.sparse_power, args.sparse_max_fail_evidence, args.sparse_horizon)
    except JudgeSpecError as err:
        ap.error(str(err))
    rows = variants(settings, args.rule_only)
    print("| cell | judge | rollback % | early promote <= 30 min % | early promote % | median min |")
    print("|---|---|---:|---:|---:|---:|")
    for cell in CELLS:
        spec = cell.spec
        if not isinstance(spec, ErrorCell) or args.only not in cell.name:
            continue
        rng = np.random.default_rng([args.seed, zlib.crc32(cell.name.encode())])
        d = simulate_errors(spec, args.runs, 60, rng)
        history = simulate_stable_history(spec, args.runs, HISTORY_INTERVALS, rng)
        lat_rng = np.random.default_rng([args.seed, zlib.crc32(cell.name.encode()), 1])
        h = latency_from_requests(d.cn, d.bn, LOGNORMAL, LOGNORMAL, lat_rng)
        tr = trace(d, h, history, horizon_of(settings[0]))
        for name, rule in rows:
            o = joint(tr, rule)
            decided = np.minimum(np.minimum(o.fail_at, o.pass_at), 60)
            print(
                f"| {cell.name} | {name} | {100 * np.isfinite(o.fail_at).mean():.1f} | "
                f"{100 * (o.pass_at <= 30).mean():.1f} | {100 * np.isfinite(o.pass_at).mean():.1f} | "
                f"{np.median(decided):g} |", flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
