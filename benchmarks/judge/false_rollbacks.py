"""The false rollbacks of the error-rate test on one no-regression error cell, looked at one by one.

    .venv/bin/python -m benchmarks.judge.false_rollbacks [--runs 10000] [--seed 20240601] [--cell TEXT]

The cell's runs are drawn as ``python -m benchmarks.judge`` draws them (same chunks, same seeds), with the
per-interval Gamma factors of the canary's errors kept (``simulate.py`` draws them and drops them). Prints,
per false rollback of "ours (sequential)": the minute, the canary's factors up to it (mean, the largest,
minutes above 2x), the share of the chunk's runs whose factors averaged as high over the same minutes, and
the canary's errors so far against what the baseline's rate predicts; then the minutes' quartiles.
"""

from __future__ import annotations

import argparse

import numpy as np
import numpy.typing as npt

from benchmarks.judge.cells import CELLS
from benchmarks.judge.chunks import chunk_seeds, chunk_sizes
from benchmarks.judge.judges import sequential_counts
from benchmarks.judge.simulate import (
    HISTORY_INTERVALS,
    ErrorCell,
    _clustering,
    simulate_errors,
    simulate_stable_history,
    simulate_traffic,
)
from benchmarks.judge.summary import wilson

FloatArray = npt.NDArray[np.float64]
T = 60


def canary_factors(spec: ErrorCell, runs: int, key: tuple[int, ...]) -> FloatArray:
    """The canary's Gamma factors per run and interval, from the same draws as `simulate_errors` (it
    draws the traffic first, then these factors)."""
    rng = np.random.default_rng(list(key))
    simulate_traffic(spec.traffic, runs, T, rng)
    return _clustering(spec.cv if spec.canary_cv is None else spec.canary_cv, runs, T, rng)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge.false_rollbacks", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--cell", default="err null: clustered canary-only")
    args = ap.parse_args(argv)
    cell = next(c for c in CELLS if args.cell in c.name and not c.regression)
    spec = cell.spec
    if not isinstance(spec, ErrorCell):
        ap.error(f"{cell.name} is not an error cell")
    print(f"{cell.name}, {args.runs} runs, seed {args.seed}\n")
    print("| chunk | run | minute | factor mean to it | largest | minutes > 2x | runs as high % | canary errors "
          "| at baseline rate |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    k_all, means_fail, minutes = 0, [], []
    for chunk, runs in enumerate(chunk_sizes(args.runs)):
        key = chunk_seeds(args.seed, cell.name, chunk).data
        g = canary_factors(spec, runs, key)
        rng = np.random.default_rng(list(key))
        d = simulate_errors(spec, runs, T, rng)
        history = simulate_stable_history(spec, runs, HISTORY_INTERVALS, rng)
        fail_at = sequential_counts(d.ce, d.cn, d.be, d.bn, history=history).fail_at
        for run in np.flatnonzero(np.isfinite(fail_at)):
            t = int(fail_at[run])
            seen = np.nansum(d.ce[run, :t])
            rate = np.nansum(d.be[run, :t]) / np.nansum(d.bn[run, :t])
            f = g[run, :t]
            means_fail.append(float(f.mean()))
            minutes.append(t)
            as_high = float((g[:, :t].mean(axis=1) >= f.mean()).mean())
            print(
                f"| {chunk} | {run} | {t} | {f.mean():.2f} | {f.max():.2f} | {int((f > 2).sum())} | "
                f"{100 * as_high:.1f} | {seen:g} | {rate * np.nansum(d.cn[run, :t]):.1f} |"
            )
        k_all += int(np.isfinite(fail_at).sum())
    lo, hi = wilson(k_all, args.runs)
    print(f"\nfalse rollbacks {k_all}/{args.runs} = {100 * k_all / args.runs:.2f}% "
          f"(95% Wilson [{100 * lo:.2f}%, {100 * hi:.2f}%])")
    if minutes:
        q1, q2, q3 = np.percentile(minutes, (25, 50, 75))
        print(f"minute of the rollback: quartiles {q1:g}, {q2:g}, {q3:g}; {sum(m <= 10 for m in minutes)} by "
              f"minute 10 (the cautious window); canary factor mean up to it: median {np.median(means_fail):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
