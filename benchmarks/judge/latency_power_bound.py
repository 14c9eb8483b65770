"""Where the latency test's early promotion goes on each latency no-regression cell, bound by bound,
and what any test of that bound could reach within 30 minutes (issue 22).

    .venv/bin/python -m benchmarks.judge.latency_power_bound [--runs 200] [--margin 1.5] [--minutes 30]

The latency PASS is an intersection-union test: every bound in its pass set must show the canary's
exceedance rate below ``margin`` x the baseline's, so the pass comes when its slowest bound's does.
Per bucket bound (those with a baseline exceedance in (0.1%, 50%]): the baseline's exceedance
fraction; the canary's exceedances expected in the window; the latency test's information by then
(those x the baseline's traffic share: what ``passMinInformation`` is compared with); the power at
1x of the one-sided most powerful Poisson test that knows the baseline's rate (an upper bound for
every test of that bound, sequential ones included; computed from the cell's law at its mean load,
the diurnal cell's latency wave left out); then, simulated (the benchmark's seeds): how often the
library's test of that bound alone passes within the window, whether today's defaults put it in the
pass set or only checked (``passCheckInformation``) at the window's end, and how often it is the last
bound holding the pass (runs not promoted within the window whose pass set's weakest bound at its end
is this one; a run held by a checked bound counts at its pass set's weakest).
"""

from __future__ import annotations

import argparse
import math
import zlib

import numpy as np
import numpy.typing as npt

from analysis.stats.sequential_latency import LatencyCore, LatencyTestConfig, exceedance_counts
from benchmarks.judge.cells import CELLS
from benchmarks.judge.power_bound import ump_power
from benchmarks.judge.simulate import LATENCY_BUCKETS, LatencyCell, simulate_latency

FloatArray = npt.NDArray[np.float64]
T = 60  # the benchmark's window; the pass is counted within --minutes


def _first(hit: npt.NDArray[np.bool_]) -> FloatArray:
    out: FloatArray = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1.0, np.inf)
    return out


def measure(cell: LatencyCell, cfg: LatencyTestConfig, runs: int, minutes: int, seed: int) -> dict[str, FloatArray]:
    """Per bound: share of runs passing alone within ``minutes``, in the pass set at ``minutes``,
    last holding the pass at ``minutes``."""
    rng = np.random.default_rng([seed, zlib.crc32(cell.name.encode())])
    h = simulate_latency(cell, runs, T, rng)
    n_bounds = h.canary.shape[-1] - 1
    core = LatencyCore(cfg, n_bounds)
    st = core.zeros((runs,))
    threshold = -math.log(cfg.counts.alpha_pass)
    alone = np.full((runs, minutes, n_bounds), -np.inf)
    combined = np.full((runs, minutes), -np.inf)
    for t in range(minutes):
        ok = np.isfinite(h.canary[:, t, 0]) & np.isfinite(h.baseline[:, t, 0])
        c = np.where(ok[:, None], h.canary[:, t], 0.0)
        b = np.where(ok[:, None], h.baseline[:, t], 0.0)
        core.update(st, exceedance_counts(c), c.sum(-1), exceedance_counts(b), b.sum(-1))
        _, lp, enough = core.judge(st)
        _, lp_bound = core.core.log_e(st)
        alone[:, t] = np.where(enough[:, None], lp_bound, -np.inf)
        combined[:, t] = np.where(enough, lp, -np.inf)
    in_set = core.pass_set(st)
    promoted = np.isfinite(_first(combined >= threshold))
    weakest = np.argmin(np.where(in_set, alone[:, -1], np.inf), axis=-1)
    last = (~promoted)[:, None] & in_set.any(axis=-1, keepdims=True) & (np.arange(n_bounds) == weakest[:, None])
    return {
        "alone": np.mean(np.stack([np.isfinite(_first(alone[:, :, j] >= threshold)) for j in range(n_bounds)]), 1),
        "in_set": in_set.mean(axis=0),
        "checked": core.pass_checked(st).mean(axis=0),
        "last": last.mean(axis=0),
    }


def rows(cfg: LatencyTestConfig, runs: int, margin: float, minutes: int, alpha: float, seed: int) -> list[str]:
    need = cfg.pass_min_information
    out = [
        "| no-regression cell | bound | baseline exceedance | canary exceedances expected | information "
        f"(pass set needs {need:g}) | UMP power, Poisson | ours, this bound alone | in the pass set | checked | "
        "last holding the pass |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bounds = np.array(LATENCY_BUCKETS)
    for cell in CELLS:
        spec = cell.spec
        if not isinstance(spec, LatencyCell) or spec.regression:
            continue
        tr = spec.traffic
        exceed = 1.0 - spec.baseline.cdf(bounds)
        canary_requests = tr.rps * 60 * tr.share * (1 - tr.missing) * minutes
        got = measure(spec, cfg, runs, minutes, seed)
        for j, (b, p) in enumerate(zip(bounds.tolist(), exceed.tolist(), strict=True)):
            if not 0.001 < p <= 0.5:
                continue
            expected = canary_requests * p
            info = expected * (1 - tr.share)
            power = ump_power(expected, margin, alpha)
            out.append(
                f"| {spec.name} | {b:g}s | {100 * p:.2f}% | {expected:.1f} | {info:.0f} | {100 * power:.0f}% | "
                f"{100 * got['alone'][j]:.1f}% | {100 * got['in_set'][j]:.1f}% | {100 * got['checked'][j]:.1f}% | "
                f"{100 * got['last'][j]:.1f}% |"
            )
    events = next(e / 2 for e in range(1, 4000) if ump_power(e / 2, margin, alpha) >= 0.8)
    out.append(f"\nCanary exceedances the UMP test needs in the window for 80% power at {margin:g}x: {events:g}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.judge.latency_power_bound", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--runs", type=int, default=200, help="simulated runs per cell (default 200)")
    ap.add_argument("--margin", type=float, default=1.5, help="passRatio (default 1.5)")
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--alpha", type=float, default=0.05, help="alphaPass (default 0.05)")
    ap.add_argument("--seed", type=int, default=20240601)
    default = LatencyTestConfig()
    ap.add_argument(
        "--pass-min-information",
        type=float,
        default=default.pass_min_information,
        help="0 with --pass-range 0.01 0.5: the pass set before 2026-12-04 (the range alone)",
    )
    ap.add_argument("--pass-range", type=float, nargs=2, default=default.pass_exceedance_range, metavar=("LO", "HI"))
    args = ap.parse_args(argv)
    if not 1 <= args.minutes <= T:
        ap.error(f"--minutes must be in 1..{T}")
    cfg = LatencyTestConfig(
        pass_exceedance_range=(args.pass_range[0], args.pass_range[1]), pass_min_information=args.pass_min_information
    )
    for line in rows(cfg, args.runs, args.margin, args.minutes, args.alpha, args.seed):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
