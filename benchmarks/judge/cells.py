"""The benchmark cells: no-regression (null) and regression scenarios.

``twin`` names the null cell with the same traffic and baseline, on which the
Kayenta-style judge is tuned to a 1% false-rollback rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.judge.simulate import ErrorCell, LatencyCell, LatencyDist, Traffic

LOGNORMAL = LatencyDist(((0.1, 0.5, 1.0),))
WIDE = LatencyDist(((0.1, 0.8, 1.0),))  # same median, larger variance
SHIFTED = LatencyDist(((0.12, 0.5, 1.0),))  # 20% slower everywhere
HEAVY = LatencyDist(((0.1, 0.5, 0.95),), pareto=(0.05, 0.3, 1.5))
HEAVIER = LatencyDist(((0.1, 0.5, 0.90),), pareto=(0.10, 0.3, 1.5))
BIMODAL = LatencyDist(((0.05, 0.3, 0.8), (0.4, 0.3, 0.2)))
BIMODAL_SLOW = LatencyDist(((0.05, 0.3, 0.7), (0.4, 0.3, 0.3)))
# 1% more requests above 0.32 s (the lognormal's p99): p99's exceedances double, p83's move 1.05x.
P99_ONLY = LatencyDist(((0.1, 0.5, 0.99),), pareto=(0.01, 0.32, 1.5))


@dataclass(frozen=True)
class Cell:
    spec: ErrorCell | LatencyCell
    twin: str | None = None  # null cell for tuning (regression cells)
    headline: bool = False  # the 2x error-rate cell of the targets
    kayenta_miss: bool = False  # a case Kayenta is known to miss

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def regression(self) -> bool:
        return self.spec.regression


def _e(
    name: str, tr: Traffic, rate: float, ratio: float = 1.0, cv: float = 0.0, canary_cv: float | None = None
) -> ErrorCell:
    return ErrorCell(name, tr, rate, ratio=ratio, cv=cv, regression=ratio != 1.0, canary_cv=canary_cv)


CELLS: tuple[Cell, ...] = (
    # --- error rate, no regression ---
    Cell(_e("err null: steady 20rps, 10%, 1%", Traffic(20, 0.10), 0.01)),
    Cell(_e("err null: diurnal 20rps, 10%, 1%", Traffic(20, 0.10, "diurnal"), 0.01)),
    Cell(_e("err null: bursty 20rps, 25%, 0.5%", Traffic(20, 0.25, "bursty"), 0.005)),
    Cell(_e("err null: low traffic 3rps, 5%, 1%", Traffic(3, 0.05), 0.01)),
    Cell(_e("err null: high traffic 100rps, 50%, 1%", Traffic(100, 0.50), 0.01)),
    Cell(_e("err null: sparse 50rps, 10%, 0.02%", Traffic(50, 0.10), 0.0002)),
    Cell(_e("err null: 20% missing intervals, 10%, 1%", Traffic(20, 0.10, missing=0.2), 0.01)),
    Cell(_e("err null: bursty 50rps, 25%, 0.1%", Traffic(50, 0.25, "bursty"), 0.001)),
    Cell(_e("err null: clustered CV0.5 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, cv=0.5)),
    Cell(_e("err null: clustered CV1 diurnal 20rps, 10%, 2%", Traffic(20, 0.10, "diurnal"), 0.02, cv=1.0)),
    Cell(_e("err null: clustered CV1 100rps, 50%, 5%", Traffic(100, 0.50), 0.05, cv=1.0)),
    # issue 22: bursty and low traffic at once; errors that cluster in the canary only (the baseline and
    # its history show Poisson counts, so the dispersion bound learnt from them is no protection)
    Cell(_e("err null: bursty low traffic 2rps, 10%, 1%", Traffic(2, 0.10, "bursty"), 0.01)),
    Cell(_e("err null: clustered canary-only CV1 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, canary_cv=1.0)),
    # --- error rate, regressions ---
    Cell(
        _e("err 2x: steady 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, ratio=2.0),
        twin="err null: steady 20rps, 10%, 1%", headline=True,
    ),
    Cell(
        _e("err 1.5x: steady 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, ratio=1.5),
        twin="err null: steady 20rps, 10%, 1%",
    ),
    Cell(
        _e("err 1.2x: 100rps, 50%, 1%", Traffic(100, 0.50), 0.01, ratio=1.2),
        twin="err null: high traffic 100rps, 50%, 1%",
    ),
    Cell(
        _e("err 5x: low traffic 3rps, 5%, 1%", Traffic(3, 0.05), 0.01, ratio=5.0),
        twin="err null: low traffic 3rps, 5%, 1%",
    ),
    Cell(
        _e("err 2x: diurnal 20rps, 10%, 1%", Traffic(20, 0.10, "diurnal"), 0.01, ratio=2.0),
        twin="err null: diurnal 20rps, 10%, 1%",
    ),
    Cell(
        _e("err 2x: clustered CV0.5 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, ratio=2.0, cv=0.5),
        twin="err null: clustered CV0.5 20rps, 10%, 1%",
    ),
    Cell(
        _e("err 2x: clustered canary-only CV1 20rps, 10%, 1%", Traffic(20, 0.10), 0.01, ratio=2.0, canary_cv=1.0),
        twin="err null: clustered canary-only CV1 20rps, 10%, 1%",
    ),
    Cell(
        _e("err 2x: 20% missing intervals, 10%, 1%", Traffic(20, 0.10, missing=0.2), 0.01, ratio=2.0),
        twin="err null: 20% missing intervals, 10%, 1%",
    ),
    Cell(
        _e("err 3x: bursty 50rps, 25%, 0.1%", Traffic(50, 0.25, "bursty"), 0.001, ratio=3.0),
        twin="err null: bursty 50rps, 25%, 0.1%",
    ),
    Cell(
        _e("err 10x sparse (mostly-zero counts) 50rps, 10%, 0.02%", Traffic(50, 0.10), 0.0002, ratio=10.0),
        twin="err null: sparse 50rps, 10%, 0.02%", kayenta_miss=True,
    ),
    # --- latency, no regression ---
    Cell(LatencyCell("lat null: lognormal 20rps, 10%", Traffic(20, 0.10), LOGNORMAL)),
    Cell(LatencyCell("lat null: heavy tail (Pareto 1.5) 20rps, 10%", Traffic(20, 0.10), HEAVY)),
    Cell(LatencyCell("lat null: bimodal 20rps, 25%", Traffic(20, 0.25), BIMODAL)),
    Cell(LatencyCell("lat null: low traffic 2rps, 5%", Traffic(2, 0.05), LOGNORMAL)),
    Cell(
        LatencyCell(
            "lat null: diurnal load 20rps, 10%", Traffic(20, 0.10, "diurnal"), LOGNORMAL, diurnal_latency=True
        )
    ),
    # --- latency, regressions ---
    Cell(
        LatencyCell("lat +20% shift: lognormal 20rps, 10%", Traffic(20, 0.10), LOGNORMAL, SHIFTED, regression=True),
        twin="lat null: lognormal 20rps, 10%",
    ),
    Cell(
        LatencyCell(
            "lat variance-only (sigma 0.5->0.8) 20rps, 10%", Traffic(20, 0.10), LOGNORMAL, WIDE, regression=True
        ),
        twin="lat null: lognormal 20rps, 10%", kayenta_miss=True,
    ),
    Cell(
        LatencyCell(
            "lat 7 of 10 intervals 100x slower 20rps, 10%", Traffic(20, 0.10), LOGNORMAL,
            slow_intervals=0.7, regression=True,
        ),
        twin="lat null: lognormal 20rps, 10%", kayenta_miss=True,
    ),
    Cell(
        LatencyCell("lat heavy tail 5%->10% 20rps, 10%", Traffic(20, 0.10), HEAVY, HEAVIER, regression=True),
        twin="lat null: heavy tail (Pareto 1.5) 20rps, 10%",
    ),
    Cell(
        LatencyCell(
            "lat bimodal slow mode 20%->30% 20rps, 25%", Traffic(20, 0.25), BIMODAL, BIMODAL_SLOW, regression=True
        ),
        twin="lat null: bimodal 20rps, 25%",
    ),
    Cell(
        LatencyCell("lat p99 only 2x: lognormal 20rps, 10%", Traffic(20, 0.10), LOGNORMAL, P99_ONLY, regression=True),
        twin="lat null: lognormal 20rps, 10%",
    ),
)
