"""What early promotion within 30 minutes an anytime-valid test looked at every minute can reach on each
no-regression error cell (issue 22): the PASS side ("canary rate < margin x baseline", level alphaPass)
of three sequential tests on the benchmark's own simulated runs and seeds.

    .venv/bin/python -m benchmarks.judge.sequential_bound [--runs 1000] [--margin 1.5] [--mixture N]
    .venv/bin/python -m benchmarks.judge.sequential_bound --variants losses|mixtures [--only TEXT]
    .venv/bin/python -m benchmarks.judge.sequential_bound --at-margin TEXT [--runs 10000]

Judges (each looked at after every one-minute interval, PASS at the first e-value >= 1 / alphaPass):

* **oracle SPRT**: Wald's SPRT of the canary's rate at 1x the truth against ``margin`` x, knowing the
  baseline's rate and the truth; Poisson likelihood, or on clustered cells the negative-binomial (NB2)
  likelihood with the true clustering ``a = cv^2`` (the simulator's Gamma multipliers make the canary's
  counts exactly NB2). Wald and Wolfowitz: no test with its error rates has a smaller expected time to
  pass (the chance to pass by minute 30 is another matter: the fixed-sample bound caps that).
* **conditional binomial SPRT at the truth**: the canary's share of each interval's errors given their
  total, 1x against ``margin`` x; the baseline's rate drops out (unknown), no clustering guard (so on
  clustered cells it is not a valid 5% test: the "at margin" column shows by how much).
* **ours**: the library's `CountCore` with its defaults and a day of stable history, exactly the
  benchmark's "ours (sequential)" rows (`benchmarks.judge.judges.sequential_counts`).

Beside them the fixed-sample bound of `benchmarks.judge.power_bound` (one look at minute 30). Columns
"at margin": the same judge on the same cell with the canary's true rate at ``margin`` x (a null of the
PASS test): the share of runs it promotes within 60 minutes, its real alphaPass.

``--variants``: ours with other settings of the PASS side, on every error cell (early promotion within
30 minutes on no-regression cells and their false rollbacks; regressions promoted early), the
measurements behind BENCHMARKS.md's "Where ours' PASS side loses" and "The PASS prior"; ``--mixture N``
runs the bound's "ours" with the PASS prior of column N of ``--variants mixtures``. ``--at-margin TEXT``:
ours alone at the margin on the no-regression error cells whose name contains TEXT, in chunks of 1,000
runs (`benchmarks.judge.chunks`; the first chunk is the table's runs), with a Wilson interval.
"""

from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.stats.count_config import CountTestConfig
from benchmarks.judge.cells import CELLS, Cell
from benchmarks.judge.chunks import chunk_seeds, chunk_sizes
from benchmarks.judge.judges import Outcome, sequential_counts
from benchmarks.judge.power_bound import MEAN_LOAD, clustered_power, ump_power
from benchmarks.judge.simulate import (
    HISTORY_INTERVALS,
    CountData,
    ErrorCell,
    simulate_errors,
    simulate_stable_history,
)
from benchmarks.judge.summary import wilson

FloatArray = npt.NDArray[np.float64]
T = 60
WINDOW = 30  # minutes: issue 22's "early promotion within 30 minutes"


def _first(cond: npt.NDArray[np.bool_]) -> FloatArray:
    """1-based minute of the first True per run, inf if none."""
    out: FloatArray = np.where(cond.any(axis=-1), np.argmax(cond, axis=-1) + 1.0, np.inf)
    return out


def _nb2_logpmf(c: FloatArray, mu: FloatArray, a: float) -> FloatArray:
    """log P(c) of NB2 counts with mean ``mu`` and squared CV ``a`` of the rate (Poisson at a = 0);
    ``log c!`` left out (it cancels in every ratio here)."""
    if a <= 0:
        out: FloatArray = c * np.log(mu) - mu
        return out
    r = 1.0 / a
    nb: FloatArray = (
        special.gammaln(c + r) - special.gammaln(r)
        + r * (np.log(r) - np.log(r + mu)) + c * (np.log(mu) - np.log(r + mu))
    )
    return nb


def oracle_pass(ce: FloatArray, cn: FloatArray, rate: float, a: float, margin: float, alpha: float) -> FloatArray:
    """Minute of the oracle SPRT's PASS: log LR of the canary's counts at ``rate`` (the truth) against
    ``margin * rate``, NB2 with the known ``a``; missing intervals add nothing. Under any canary rate
    >= margin x the likelihood ratio is a nonnegative supermartingale (monotone likelihood ratio), so
    Ville's inequality bounds its false passes by ``alpha``."""
    ok = np.isfinite(ce) & np.isfinite(cn) & (np.nan_to_num(cn) > 0)
    c = np.where(ok, ce, 0.0)
    mu = np.where(ok, cn, 1.0) * rate
    step = np.where(ok, _nb2_logpmf(c, mu, a) - _nb2_logpmf(c, margin * mu, a), 0.0)
    return _first(np.cumsum(step, axis=1) >= -math.log(alpha))


def binomial_pass(d: CountData, margin: float, alpha: float) -> FloatArray:
    """Minute of the conditional binomial SPRT's PASS: given an interval's total ``k`` errors, the
    canary holds ``c ~ Bin(k, theta(rho))``, ``theta = s rho / (s rho + 1 - s)``, ``s`` its traffic share;
    log LR of rho = 1 (the truth) against rho = ``margin``. The baseline's rate drops out; clustering is
    ignored (exact for Poisson counts only)."""
    ok = np.isfinite(d.ce) & np.isfinite(d.be) & (np.nan_to_num(d.cn) > 0) & (np.nan_to_num(d.bn) > 0)
    c = np.where(ok, d.ce, 0.0)
    k = c + np.where(ok, d.be, 0.0)
    n, m = np.where(ok, d.cn, 1.0), np.where(ok, d.bn, 1.0)
    s = n / (n + m)
    th1, th0 = s, s * margin / (s * margin + 1.0 - s)
    step = np.where(ok, c * np.log(th1 / th0) + (k - c) * (np.log1p(-th1) - np.log1p(-th0)), 0.0)
    return _first(np.cumsum(step, axis=1) >= -math.log(alpha))


def _simulate(spec: ErrorCell, name: str, runs: int, seed: int) -> tuple[CountData, tuple[FloatArray, FloatArray]]:
    """The benchmark's runs of the cell called ``name`` (its seed derives from that name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    d = simulate_errors(spec, runs, T, rng)
    return d, simulate_stable_history(spec, runs, HISTORY_INTERVALS, rng)


def _canary_a(spec: ErrorCell) -> float:
    return (spec.cv if spec.canary_cv is None else spec.canary_cv) ** 2


def _canary_errors_per_minute(spec: ErrorCell) -> float:
    """From the cell's means (bursty load 1.4x, missing intervals removed), as `power_bound` counts them."""
    tr = spec.traffic
    return tr.rps * 60 * MEAN_LOAD[tr.pattern] * (1 - tr.missing) * tr.share * spec.rate


def _fixed_bound(spec: ErrorCell, margin: float, alpha: float) -> float:
    """`benchmarks.judge.power_bound`'s fixed-sample power at minute 30."""
    mu_c = _canary_errors_per_minute(spec)
    phi = 1.0 + _canary_a(spec) * mu_c
    expected = WINDOW * mu_c
    return clustered_power(expected, margin, alpha, phi) if phi > 1 else ump_power(expected, margin, alpha)


@dataclass
class BoundRow:
    cell: str
    expected: float  # canary errors expected in 30 minutes
    fixed: float
    oracle: float
    binomial: float
    ours: float
    oracle_at_margin: float
    binomial_at_margin: float
    ours_at_margin: float


def _within(pass_at: FloatArray, minutes: int = WINDOW) -> float:
    return float((pass_at <= minutes).mean())


def bound_row(
    cell: Cell, runs: int, seed: int, margin: float, alpha: float, prior: CountTestConfig | None = None
) -> BoundRow:
    """``prior``: ours with that config's PASS prior (default: the default one)."""
    spec = cell.spec
    assert isinstance(spec, ErrorCell)
    alternatives = (prior or CountTestConfig()).pass_alternatives
    cfg = CountTestConfig(pass_ratio=margin, alpha_pass=alpha, pass_alternatives=alternatives)
    a = _canary_a(spec)
    figures: list[float] = []
    # The cell as it is, then with the canary's rate at the margin (its seed from a name of its own).
    for ratio, name in ((1.0, cell.name), (margin, f"{cell.name} @ {margin:g}x")):
        s = replace(spec, ratio=ratio)
        d, history = _simulate(s, name, runs, seed)
        ours = sequential_counts(d.ce, d.cn, d.be, d.bn, cfg, history=history).pass_at
        within = T if ratio != 1.0 else WINDOW
        figures += [
            _within(oracle_pass(d.ce, d.cn, spec.rate, a, margin, alpha), within),
            _within(binomial_pass(d, margin, alpha), within),
            _within(ours, within),
        ]
    expected = WINDOW * _canary_errors_per_minute(spec)
    return BoundRow(cell.name, expected, _fixed_bound(spec, margin, alpha), *figures)


def bound_rows(runs: int, seed: int, margin: float, alpha: float, prior: CountTestConfig | None = None) -> list[str]:
    out = [
        f"| no-regression cell | canary errors expected in {WINDOW} min | fixed test at minute {WINDOW} "
        "(power_bound) | (a) oracle SPRT | (b) conditional binomial SPRT | (c) ours | "
        f"at {margin:g}x, promoted within {T} min: (a) / (b) / (c) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in CELLS:
        if not isinstance(cell.spec, ErrorCell) or cell.regression:
            continue
        r = bound_row(cell, runs, seed, margin, alpha, prior)
        out.append(
            f"| {r.cell.removeprefix('err null: ')} | {r.expected:.1f} | {100 * r.fixed:.0f}% | {100 * r.oracle:.1f}% "
            f"| {100 * r.binomial:.1f}% | {100 * r.ours:.1f}% | {100 * r.oracle_at_margin:.1f} / "
            f"{100 * r.binomial_at_margin:.1f} / {100 * r.ours_at_margin:.1f} |"
        )
    return out


def margin_promotions(
    cell: Cell, runs: int, seed: int, margin: float, alpha: float, config: CountTestConfig | None = None
) -> int:
    """How many of ``runs`` runs of ``cell`` with the canary's rate at ``margin`` x ours promotes within
    60 minutes (ours with ``config``'s PASS prior and guard, at ``margin`` and ``alpha``). Chunk 0's
    seeds are :func:`bound_row`'s, so its first 1,000 runs are the table's "at margin" runs."""
    spec = cell.spec
    assert isinstance(spec, ErrorCell)
    cfg = replace(config or CountTestConfig(), pass_ratio=margin, alpha_pass=alpha)
    s = replace(spec, ratio=margin)
    promoted = 0
    for chunk, n in enumerate(chunk_sizes(runs)):
        rng = np.random.default_rng(list(chunk_seeds(seed, f"{cell.name} @ {margin:g}x", chunk).data))
        d = simulate_errors(s, n, T, rng)
        history = simulate_stable_history(s, n, HISTORY_INTERVALS, rng)
        pass_at = sequential_counts(d.ce, d.cn, d.be, d.bn, cfg, history=history).pass_at
        promoted += int((pass_at <= T).sum())
    return promoted


def margin_rows(runs: int, seed: int, margin: float, alpha: float, only: str) -> list[str]:
    out = [
        f"| no-regression cell at {margin:g}x | runs | promoted within {T} min | share (95% Wilson) |",
        "|---|---:|---:|---:|",
    ]
    for cell in CELLS:
        if not isinstance(cell.spec, ErrorCell) or cell.regression or only not in cell.name:
            continue
        k = margin_promotions(cell, runs, seed, margin, alpha)
        lo, hi = wilson(k, runs)
        out.append(
            f"| {cell.name.removeprefix('err null: ')} | {runs} | {k} | "
            f"{100 * k / runs:.2f}% [{100 * lo:.2f}%, {100 * hi:.2f}%] |"
        )
    return out


# --- where ours' PASS side loses: variants on every error cell -----------------------------------


Variant = tuple[str, CountTestConfig]
ONE_X = ((1 / 1.5, 1.0),)  # the PASS mixture as one point: 1x the baseline, the truth on null cells


def _mixture(*alternatives: tuple[float, float]) -> CountTestConfig:
    return CountTestConfig(pass_alternatives=alternatives)


#: ``--variants losses``: the default and, one at a time, each part of its PASS side taken away.
LOSSES: tuple[Variant, ...] = (
    ("default", CountTestConfig()),
    ("Poisson mode (no guard)", CountTestConfig(dispersion=1.0)),
    ("no canary dispersion", CountTestConfig(canary_dispersion_intervals=0)),
    ("PASS mixture = 1x point", CountTestConfig(pass_alternatives=ONE_X)),
    ("Poisson mode + 1x point", CountTestConfig(dispersion=1.0, pass_alternatives=ONE_X)),
    ("no minimum evidence", CountTestConfig(min_intervals=1, min_canary_requests=0, min_baseline_requests=0)),
)

#: ``--variants mixtures``: PASS priors (ratios to the PASS boundary: weights), weights fixed in advance.
MIXTURES: tuple[Variant, ...] = (
    ("default: 1/1.25:1, 1/1.5:2, 1/2:2, 1/3:1, 1/5:1", CountTestConfig()),
    ("1/1.5:2, 1/2:2, 1/3:1, 1/5:1", _mixture((1 / 1.5, 2.0), (1 / 2, 2.0), (1 / 3, 1.0), (1 / 5, 1.0))),
    ("1/1.5:3, 1/2:2, 1/3:1, 1/5:1", _mixture((1 / 1.5, 3.0), (1 / 2, 2.0), (1 / 3, 1.0), (1 / 5, 1.0))),
    ("1/1.5:2, 1/1.75:2, 1/2.5:1, 1/5:1", _mixture((1 / 1.5, 2.0), (1 / 1.75, 2.0), (1 / 2.5, 1.0), (1 / 5, 1.0))),
    ("1/1.25:1, 1/1.5:4, 1/2:1, 1/3:0.5, 1/5:0.5", _mixture((1 / 1.25, 1.0), (1 / 1.5, 4.0), (1 / 2, 1.0),
                                                            (1 / 3, 0.5), (1 / 5, 0.5))),
    ("1/1.25:1, 1/1.5:6, 1/2:1, 1/5:0.5", _mixture((1 / 1.25, 1.0), (1 / 1.5, 6.0), (1 / 2, 1.0), (1 / 5, 0.5))),
    ("1/1.5:4, 1/2:1, 1/5:0.5", _mixture((1 / 1.5, 4.0), (1 / 2, 1.0), (1 / 5, 0.5))),
    ("1/1.25:2, 1/1.5:4, 1/2:1, 1/5:0.5", _mixture((1 / 1.25, 2.0), (1 / 1.5, 4.0), (1 / 2, 1.0), (1 / 5, 0.5))),
)

VARIANT_SETS = {"losses": LOSSES, "mixtures": MIXTURES}


def variant_rows(runs: int, seed: int, chosen: tuple[Variant, ...], only: str) -> list[str]:
    """One row per error cell: early promotion within 30 minutes (false rollbacks in 1,000) on
    no-regression cells, the share of runs promoted early on regressions; one column per variant."""
    out = [
        "| cell | " + " | ".join(label for label, _ in chosen) + " |",
        "|---|" + "---:|" * len(chosen),
    ]
    for cell in CELLS:
        spec = cell.spec
        if not isinstance(spec, ErrorCell) or only not in cell.name:
            continue
        d, history = _simulate(spec, cell.name, runs, seed)
        figures = []
        for _, config in chosen:
            o: Outcome = sequential_counts(d.ce, d.cn, d.be, d.bn, config, history=history)
            if cell.regression:
                figures.append(f"promoted {100 * np.isfinite(o.pass_at).mean():.1f}")
            else:
                figures.append(
                    f"{100 * _within(o.pass_at):.1f} ({int(np.isfinite(o.fail_at).sum())})"
                )
        out.append(f"| {cell.name} | " + " | ".join(figures) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.judge.sequential_bound", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--margin", type=float, default=1.5)
    ap.add_argument("--alpha", type=float, default=0.05, help="alphaPass (default 0.05)")
    ap.add_argument(
        "--variants", choices=sorted(VARIANT_SETS), help="ours with other PASS-side settings, on every error cell"
    )
    ap.add_argument("--only", default="", help="with --variants: only cells whose name contains this text")
    ap.add_argument(
        "--mixture", type=int, default=0, help="ours with the PASS prior of column N of --variants mixtures (0 default)"
    )
    ap.add_argument(
        "--at-margin", metavar="TEXT", help="ours alone at the margin, on no-regression cells whose name contains TEXT"
    )
    args = ap.parse_args(argv)
    lines = (
        margin_rows(args.runs, args.seed, args.margin, args.alpha, args.at_margin)
        if args.at_margin is not None
        else variant_rows(args.runs, args.seed, VARIANT_SETS[args.variants], args.only)
        if args.variants
        else bound_rows(args.runs, args.seed, args.margin, args.alpha, MIXTURES[args.mixture][1])
    )
    for line in lines:
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
