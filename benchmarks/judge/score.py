"""Judge benchmark, the multi-metric score: a two-group score (Kayenta's canary config) on the 2x error
cell and its null twin, against the error test alone.

    .venv/bin/python -m benchmarks.judge.score [--runs 1000] [--seed 20240601]

Group ``errors`` (weight 80): the sequential error-rate test on the cell's counts (the same draws as the
main benchmark's "ours (sequential)" row). Group ``latency`` (weight 20): the sequential latency test on a
no-regression latency stream ("lat null: lognormal 20rps, 10%"). Thresholds pass 95 / marginal 75. Each
run's verdict comes from the provider's own combination
(:func:`analysis.providers.judge.score_verdict.combine`) at the first minute the score is final: a critical
failure at once, a failure that keeps the score below marginal whatever the other metric does, passes
that keep it at pass whatever it does, both metrics decided, else minute 60 (the final count).
"""

from __future__ import annotations

import argparse
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.providers.judge.score_spec import ScoreMetricSpec, ScoreSpec
from analysis.providers.judge.score_verdict import MetricDecision, classification_of, combine
from analysis.stats import Decision, ScoreThresholds, ScoreVerdict
from benchmarks.judge.cells import CELLS, LOGNORMAL
from benchmarks.judge.judges import Outcome, sequential_counts, sequential_latency
from benchmarks.judge.simulate import (
    HISTORY_INTERVALS,
    ErrorCell,
    LatencyCell,
    Traffic,
    simulate_errors,
    simulate_latency,
    simulate_stable_history,
)
from benchmarks.judge.summary import fmt_t

T = 60
SCORE_CELLS = ("err 2x: steady 20rps, 10%, 1%", "err null: steady 20rps, 10%, 1%")
LATENCY_NULL = LatencyCell("lat null: lognormal 20rps, 10%", Traffic(20, 0.10), LOGNORMAL)
WEIGHTS = {"errors": 80.0, "latency": 20.0}
THRESHOLDS = ScoreThresholds(marginal=75.0, pass_=95.0)


@dataclass(frozen=True)
class ScoreRow:
    cell: str
    judge: str
    verdicts: dict[ScoreVerdict, float]  # share of runs
    median: float  # minutes to the final verdict
    p90: float


def _spec(critical: bool) -> ScoreSpec:
    return ScoreSpec(
        (ScoreMetricSpec("errors", ("errors",), critical, {}), ScoreMetricSpec("latency", ("latency",), False, {})),
        WEIGHTS, THRESHOLDS,
    )


def _decision(o: Outcome, run: int, minute: float) -> Decision:
    """A metric's decision as of ``minute``."""
    if o.fail_at[run] <= minute:
        return Decision.FAIL
    if o.pass_at[run] <= minute:
        return Decision.PASS
    return Decision.CONTINUE


def score_runs(errors: Outcome, latency: Outcome, critical: bool) -> tuple[list[ScoreVerdict], list[float]]:
    """Each run's final verdict and the minute it became final."""
    spec = _spec(critical)
    verdicts: list[ScoreVerdict] = []
    minutes: list[float] = []
    for run in range(errors.fail_at.size):
        # The score can only become final at a minute one of the metrics decides, or at the final count.
        moments = sorted({float(t) for o in (errors, latency) for t in (o.fail_at[run], o.pass_at[run]) if t <= T})
        for when in [*moments, float(T)]:
            decisions = [
                MetricDecision(m.name, m.groups, m.critical, d, classification_of(d, "sequential", {}), "")
                for m, d in zip(spec.metrics, (_decision(errors, run, when), _decision(latency, run, when)),
                                strict=True)
            ]
            outcome = combine(decisions, spec, last=when >= T)
            if outcome.final:
                break
        assert outcome.final, outcome
        verdicts.append(outcome.verdict)
        minutes.append(when)
    return verdicts, minutes


def _row(cell: str, judge: str, verdicts: Sequence[ScoreVerdict], minutes: Sequence[float]) -> ScoreRow:
    shares = {v: sum(1 for x in verdicts if x is v) / len(verdicts) for v in ScoreVerdict}
    return ScoreRow(cell, judge, shares, float(np.median(minutes)), float(np.percentile(minutes, 90)))


def _alone(cell: str, errors: Outcome) -> ScoreRow:
    """The error test alone, as a one-metric judge decides: fail, pass, or undecided at 60 (Inconclusive)."""
    verdicts = [
        ScoreVerdict.FAIL if math.isfinite(f) else ScoreVerdict.PASS if math.isfinite(p) else ScoreVerdict.NODATA
        for f, p in zip(errors.fail_at, errors.pass_at, strict=True)
    ]
    minutes = list(np.minimum(np.minimum(errors.fail_at, errors.pass_at), T))
    return _row(cell, "error test alone (sequential)", verdicts, minutes)


def run_cell(cell: ErrorCell, runs: int, seed: int) -> list[ScoreRow]:
    rng = np.random.default_rng([seed, zlib.crc32(cell.name.encode())])  # the main benchmark's draws
    d = simulate_errors(cell, runs, T, rng)
    history = simulate_stable_history(cell, runs, HISTORY_INTERVALS, rng)
    errors = sequential_counts(d.ce, d.cn, d.be, d.bn, history=history)
    lat_rng = np.random.default_rng([seed, zlib.crc32(cell.name.encode()), zlib.crc32(LATENCY_NULL.name.encode())])
    h = simulate_latency(LATENCY_NULL, runs, T, lat_rng)
    latency = sequential_latency(h.canary, h.baseline)
    rows = [_alone(cell.name, errors)]
    for critical in (True, False):
        verdicts, minutes = score_runs(errors, latency, critical)
        judge = f"score: errors {'critical' if critical else 'not critical'} (80) + latency null (20)"
        rows.append(_row(cell.name, judge, verdicts, minutes))
    return rows


def table(rows: Sequence[ScoreRow]) -> list[str]:
    out = [
        "| cell | judge | FAIL % | PASS % | MARGINAL % | no decision % | median min to verdict | p90 min |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        v = r.verdicts
        out.append(
            f"| {r.cell} | {r.judge} | {100 * v[ScoreVerdict.FAIL]:.1f} | {100 * v[ScoreVerdict.PASS]:.1f} | "
            f"{100 * v[ScoreVerdict.MARGINAL]:.1f} | {100 * v[ScoreVerdict.NODATA]:.1f} | {fmt_t(r.median, T)} | "
            f"{fmt_t(r.p90, T)} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge.score", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000, help="simulated runs per cell (default 1000)")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    if args.runs < 10:
        ap.error("--runs must be at least 10")
    t0 = time.time()
    rows: list[ScoreRow] = []
    for name in SCORE_CELLS:
        spec = next(c.spec for c in CELLS if c.name == name)
        assert isinstance(spec, ErrorCell)
        rows += run_cell(spec, args.runs, args.seed)
    print(f"{args.runs} runs per cell, {T} one-minute intervals, seed {args.seed}; total {time.time() - t0:.0f}s\n")
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
