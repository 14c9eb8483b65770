"""What early promotion within 30 minutes any error-count test could reach on each no-regression cell
(issue 22): the power of a fixed-sample test of "canary rate >= margin x baseline" at ``alphaPass``
when the truth is 1x.

    .venv/bin/python -m benchmarks.judge.power_bound [--margin 1.5] [--minutes 30]

Columns: canary errors expected in the window; the one-sided most powerful Poisson test that knows the
baseline's rate (an upper bound for every test, sequential ones included); ``phi = 1 + a_c mu_c``, the
canary's count variance over Poisson per interval (its own clustering ``a_c``, ``mu_c`` its errors per
interval); with ``phi > 1`` the normal approximation of that test with the variance inflated by the
known ``phi`` (still knowing the baseline's rate, so the baseline's clustering does not enter).
Computed from the cells' means (bursty load 1.4x, missing intervals removed).
"""

from __future__ import annotations

import argparse
import math

from scipy import stats

from benchmarks.judge.cells import CELLS
from benchmarks.judge.simulate import ErrorCell

MEAN_LOAD = {"steady": 1.0, "diurnal": 1.0, "bursty": 1.4}  # bursty: 5x in 10% of minutes


def ump_power(expected: float, margin: float, alpha: float) -> float:
    """Power at rate 1x of the level-``alpha`` test rejecting "mean >= margin x expected" for small counts."""
    q = stats.poisson.ppf(alpha, margin * expected)
    if stats.poisson.cdf(q, margin * expected) > alpha:
        q -= 1
    return float(stats.poisson.cdf(q, expected)) if q >= 0 else 0.0


def clustered_power(expected: float, margin: float, alpha: float, phi: float) -> float:
    """Normal approximation of the same test when the count's variance is ``phi`` x Poisson (known)."""
    z = float(stats.norm.ppf(1 - alpha))
    crit = margin * expected - z * math.sqrt(phi * margin * expected)
    return float(stats.norm.cdf((crit - expected) / math.sqrt(phi * expected)))


def rows(margin: float, minutes: int, alpha: float) -> list[str]:
    out = [
        "| no-regression cell | canary errors expected | UMP power, Poisson | phi | power, clustering known |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell in CELLS:
        spec = cell.spec
        if not isinstance(spec, ErrorCell) or spec.regression:
            continue
        tr = spec.traffic
        per_minute = tr.rps * 60 * MEAN_LOAD[tr.pattern] * (1 - tr.missing)
        mu_c = per_minute * tr.share * spec.rate
        a_c = (spec.cv if spec.canary_cv is None else spec.canary_cv) ** 2
        phi = 1.0 + a_c * mu_c
        expected = minutes * mu_c
        poisson = ump_power(expected, margin, alpha)
        clustered = clustered_power(expected, margin, alpha, phi) if phi > 1 else poisson
        out.append(
            f"| {spec.name} | {expected:.1f} | {100 * poisson:.0f}% | {phi:.2f} | {100 * clustered:.0f}% |"
        )
    need = next(e / 2 for e in range(1, 2000) if ump_power(e / 2, margin, alpha) >= 0.8)
    out.append(f"\nCanary errors the UMP test needs in the window for 80% power at {margin:g}x: {need:g}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge.power_bound", description=__doc__.splitlines()[0])
    ap.add_argument("--margin", type=float, default=1.5)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--alpha", type=float, default=0.05, help="alphaPass (default 0.05)")
    args = ap.parse_args(argv)
    for line in rows(args.margin, args.minutes, args.alpha):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
