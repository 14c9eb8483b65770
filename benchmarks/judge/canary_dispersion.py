"""Variants of the count test's estimate of the canary's own clustering ``a_c``, measured against the library's.

    .venv/bin/python -m benchmarks.judge.canary_dispersion [--null-runs 10000] [--runs 1000] [--seed 20240601]

The library (:meth:`analysis.stats.negbin_guard.NegBinGuard.canary_a`) is cautious (the upper end of the
even-odds set of ``a``) for the canary's first intervals, then takes the best fit. The variants stay more
cautious after that window, each in its own way; none changes the FAIL test's construction (the evidence is
tempered by a larger dispersion, never a smaller one, so each is at least as conservative as the library).
Prints, per cell and variant: rollbacks with the 95% Wilson interval, detection and early promotion within
30 minutes, the median minute of decision. The canary-only clustering null gets ``--null-runs`` runs, the
cells that show the price ``--runs`` (the benchmark's seeds and chunks: the first 1,000 runs are its runs).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from analysis.stats.count_config import CountTestConfig
from analysis.stats.logspace import logsumexp
from analysis.stats.negbin_guard import NB_A_GRID, NB_A_LOG_PRIOR
from analysis.stats.sequential_counts import CountCore
from benchmarks.judge.cells import CELLS
from benchmarks.judge.chunks import chunk_seeds, chunk_sizes
from benchmarks.judge.judges import Outcome, sequential_counts
from benchmarks.judge.simulate import HISTORY_INTERVALS, ErrorCell, simulate_errors, simulate_stable_history
from benchmarks.judge.summary import wilson

FloatArray = npt.NDArray[np.float64]
T = 60
NULL = "err null: clustered canary-only CV1 20rps, 10%, 1%"
PRICE = (
    "err null: steady 20rps, 10%, 1%",
    "err null: diurnal 20rps, 10%, 1%",
    "err null: high traffic 100rps, 50%, 1%",
    "err 2x: steady 20rps, 10%, 1%",
    "err 1.5x: steady 20rps, 10%, 1%",
    "err 2x: diurnal 20rps, 10%, 1%",
    "err 2x: clustered canary-only CV1 20rps, 10%, 1%",
    "err 3x: bursty 50rps, 25%, 0.1%",
)
A_GRID = np.asarray(NB_A_GRID)


def upper_end(ll: FloatArray, floor: FloatArray) -> FloatArray:
    """The largest ``a`` of the grid whose log-likelihood ``ll`` (..., H) is at least ``floor`` (...)."""
    ok = ll >= floor[..., None]
    out: FloatArray = A_GRID[ll.shape[-1] - 1 - np.argmax(ok[..., ::-1], axis=-1)]
    return out


def even_odds_upper(ll: FloatArray) -> FloatArray:
    """The library's cautious ``a_c``: the upper end of ``{a : L(a) >= mixture / 2}``."""
    return upper_end(ll, logsumexp(ll + NB_A_LOG_PRIOR) - math.log(2.0))


class _Variant(CountCore):
    """The library's CountCore with ``a_c`` at least ``floor(state)``."""

    floor: Callable[[dict[str, FloatArray]], FloatArray]

    def canary_a(self, st: dict[str, FloatArray], for_pass: bool = False) -> FloatArray:
        out: FloatArray = np.maximum(super().canary_a(st, for_pass), self.floor(st))
        return out


def variant(floor: Callable[[dict[str, FloatArray]], FloatArray], config: CountTestConfig | None = None) -> CountCore:
    core = _Variant(config or CountTestConfig())
    core.floor = floor
    return core


def shrinking(events: float) -> Callable[[dict[str, FloatArray]], FloatArray]:
    """The even-odds upper end scaled by ``events / (events + expected canary errors)``: cautious while the
    canary has shown few errors, fading as the errors its traffic should have shown add up."""

    def floor(st: dict[str, FloatArray]) -> FloatArray:
        p_b = st["b_sum"] / np.where(st["m_sum"] > 0, st["m_sum"], 1.0)
        out: FloatArray = even_odds_upper(st["nbc_ll"]) * events / (events + st["n_sum"] * p_b)
        return out

    return floor


def likelihood_ratio(nats: float) -> Callable[[dict[str, FloatArray]], FloatArray]:
    """The upper end of ``{a : log L(a) >= max log L - nats}`` (a likelihood-ratio set; it shrinks as the
    canary's counts accumulate, towards the best fit)."""

    def floor(st: dict[str, FloatArray]) -> FloatArray:
        ll = st["nbc_ll"]
        return upper_end(ll, np.max(ll, axis=-1) - nats)

    return floor


def variants() -> dict[str, Callable[[], CountCore]]:
    longer = CountTestConfig(canary_dispersion_intervals=14, canary_dispersion_events=18.0)
    return {
        "library (best fit after the window)": lambda: CountCore(CountTestConfig()),
        "window 14 intervals / 18 expected errors": lambda: CountCore(longer),
        "even-odds end x 12 / (12 + expected errors)": lambda: variant(shrinking(12.0)),
        "likelihood-ratio end, 0.5 nat": lambda: variant(likelihood_ratio(0.5)),
        "likelihood-ratio end, 1 nat": lambda: variant(likelihood_ratio(1.0)),
        "even-odds end always": lambda: variant(lambda st: even_odds_upper(st["nbc_ll"])),
    }


def measure(cell_name: str, runs: int, seed: int) -> dict[str, Outcome]:
    cell = next(c for c in CELLS if c.name == cell_name)
    spec = cell.spec
    assert isinstance(spec, ErrorCell)
    parts: dict[str, list[Outcome]] = {name: [] for name in variants()}
    for chunk, n in enumerate(chunk_sizes(runs)):
        rng = np.random.default_rng(list(chunk_seeds(seed, cell.name, chunk).data))
        d = simulate_errors(spec, n, T, rng)
        history = simulate_stable_history(spec, n, HISTORY_INTERVALS, rng)
        for name, make in variants().items():
            parts[name].append(sequential_counts(d.ce, d.cn, d.be, d.bn, history=history, core=make()))
    return {
        name: Outcome(np.concatenate([o.fail_at for o in os]), np.concatenate([o.pass_at for o in os]))
        for name, os in parts.items()
    }


def main(argv: list[str] | None = None) -> int:
    prog = "python -m benchmarks.judge.canary_dispersion"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--null-runs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    print("| cell | a_c | rollbacks (95% Wilson) | rollback <= 30 min % | early promote <= 30 min % | median min |")
    print("|---|---|---:|---:|---:|---:|")
    for cell, runs in ((NULL, args.null_runs), *((c, args.runs) for c in PRICE)):
        for name, o in measure(cell, runs, args.seed).items():
            k = int(np.isfinite(o.fail_at).sum())
            lo, hi = wilson(k, runs)
            decided = np.minimum(np.minimum(o.fail_at, o.pass_at), T)
            print(
                f"| {cell} | {name} | {k}/{runs} [{100 * lo:.2f}%, {100 * hi:.2f}%] "
                f"| {100 * (o.fail_at <= 30).mean():.1f} | {100 * (o.pass_at <= 30).mean():.1f} "
                f"| {np.median(decided):g} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
