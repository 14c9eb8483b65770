"""Where the judge's time to a decision goes, against the oracle SPRT (issue 22), and what a wider
early-promotion margin buys.

    .venv/bin/python -m benchmarks.judge.oracle_gap [--runs 1000] [--margins]

Default: one row per variant of the error-count test on the headline cell (2x errors at 10% share),
from the oracle down to the provider's defaults, with median and mean minutes to the rollback.
``--margins``: ours with ``margin`` 1.5, 2 and 3 on every error cell (early promotion within 30 minutes
on no-regression cells, regressions promoted early). Same simulated runs as ``python -m benchmarks.judge``.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from analysis.stats.count_config import CountTestConfig
from analysis.stats.negbin_guard import NegBinGuard
from benchmarks.judge.cells import CELLS, Cell
from benchmarks.judge.judges import Outcome, oracle_sprt, sequential_counts
from benchmarks.judge.simulate import (
    HISTORY_INTERVALS,
    CountData,
    ErrorCell,
    simulate_errors,
    simulate_stable_history,
)

T = 60
HEADLINE = "err 2x: steady 20rps, 10%, 1%"
MARGINS = (1.5, 2.0, 3.0)


def _data(cell: Cell, runs: int, seed: int) -> tuple[ErrorCell, CountData, tuple[np.ndarray, np.ndarray]]:
    spec = cell.spec
    assert isinstance(spec, ErrorCell)
    rng = np.random.default_rng([seed, zlib.crc32(cell.name.encode())])
    d = simulate_errors(spec, runs, T, rng)
    return spec, d, simulate_stable_history(spec, runs, HISTORY_INTERVALS, rng)


@contextmanager
def _tempered_at_the_bound() -> Iterator[None]:
    """The negbin guard tempering at its dispersion bound instead of one grid step above it."""
    original = NegBinGuard.nb_temper_index
    NegBinGuard.nb_temper_index = NegBinGuard.nb_upper_index  # type: ignore[method-assign]
    try:
        yield
    finally:
        NegBinGuard.nb_temper_index = original  # type: ignore[method-assign]


def _minutes(o: Outcome) -> tuple[float, float]:
    at = np.minimum(o.fail_at, T + 1)
    return float(np.median(at)), float(np.mean(at))


def gap_rows(runs: int, seed: int) -> list[str]:
    cell = next(c for c in CELLS if c.name == HEADLINE)
    spec, d, history = _data(cell, runs, seed)
    point = ((spec.ratio, 1.0),)
    oracle_med, oracle_mean = _minutes(oracle_sprt(d.ce, d.cn, spec.rate, spec.ratio))
    variants: list[tuple[str, CountTestConfig, bool, bool]] = [
        ("conditional binomial SPRT at the true ratio, no guard",
         CountTestConfig(dispersion=1.0, fail_alternatives=point), False, False),
        ("Poisson mode, the default mixture prior", CountTestConfig(dispersion=1.0), False, False),
        ("Poisson mode, prior 1.5x/2x/3x only", CountTestConfig(
            dispersion=1.0, fail_alternatives=((1.5, 1.0), (2.0, 2.0), (3.0, 1.0))), False, False),
        ("Poisson mode, no minimum evidence", CountTestConfig(
            dispersion=1.0, min_intervals=1, min_canary_requests=0, min_baseline_requests=0), False, False),
        ("negbin guard with history, canary like the baseline", CountTestConfig(canary_dispersion_intervals=0),
         True, False),
        ("the same, tempered at the bound itself", CountTestConfig(canary_dispersion_intervals=0), True, True),
        ("+ the canary's own dispersion, cautious window in intervals only",
         CountTestConfig(canary_dispersion_events=0), True, False),
        ("+ the window also ending on the canary's expected errors (default)", CountTestConfig(), True, False),
        ("default, cautious window 5 intervals", CountTestConfig(canary_dispersion_intervals=5), True, False),
        ("default, one alternative at the true ratio", CountTestConfig(fail_alternatives=point), True, False),
    ]
    rows = [
        "| judge | median min | / oracle | mean min | / oracle |",
        "|---|---:|---:|---:|---:|",
        f"| oracle SPRT (knows both rates) | {oracle_med:g} | 1.00 | {oracle_mean:.1f} | 1.00 |",
    ]
    for label, config, with_history, at_bound in variants:
        if at_bound:
            with _tempered_at_the_bound():
                o = sequential_counts(d.ce, d.cn, d.be, d.bn, config, history=history)
        else:
            o = sequential_counts(d.ce, d.cn, d.be, d.bn, config, history=history if with_history else None)
        med, mean = _minutes(o)
        rows.append(f"| {label} | {med:g} | {med / oracle_med:.2f} | {mean:.1f} | {mean / oracle_mean:.2f} |")
    return rows


def margin_rows(runs: int, seed: int) -> list[str]:
    rows = ["| cell | " + " | ".join(f"margin {m:g}" for m in MARGINS) + " |", "|---|" + "---:|" * len(MARGINS)]
    for cell in CELLS:
        if not isinstance(cell.spec, ErrorCell):
            continue
        _, d, history = _data(cell, runs, seed)
        figures = []
        for m in MARGINS:
            o = sequential_counts(d.ce, d.cn, d.be, d.bn, CountTestConfig(pass_ratio=m), history=history)
            if cell.regression:
                figures.append(f"promoted {100 * np.isfinite(o.pass_at).mean():.1f}%")
            else:
                figures.append(f"early <= 30 min {100 * (o.pass_at <= 30).mean():.1f}%, "
                               f"false rollbacks {100 * np.isfinite(o.fail_at).mean():.1f}%")
        rows.append(f"| {cell.name} | " + " | ".join(figures) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge.oracle_gap", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--margins", action="store_true", help="ours at margins 1.5, 2, 3 on every error cell")
    args = ap.parse_args(argv)
    for line in margin_rows(args.runs, args.seed) if args.margins else gap_rows(args.runs, args.seed):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
