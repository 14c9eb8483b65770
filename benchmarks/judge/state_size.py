"""The size of a judge's saved state (metadata ``judgeState``), which the AnalysisRun's status carries on
every write: one metric's, per test and number of intervals, and a score's of 10 and of 20 count metrics.

    .venv/bin/python -m benchmarks.judge.state_size

Counts drawn from a steady 1% error rate (canary 10% of 6,000 requests a minute), seed 7 (the score's
metrics: seeds 7, 8, ...).
"""

from __future__ import annotations

import numpy as np

from analysis.providers.judge.score_verdict import SCORE_TEST
from analysis.providers.judge.verdicts import SavedState, encode_state
from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountTest
from analysis.stats.sequential_latency import LatencyTest, LatencyTestConfig

INTERVALS = (10, 60, 500)
_TOTALS = {
    f"{side}.{what}": {'{pod="a"}': 1000.0} for side in ("canary", "baseline") for what in ("errors", "requests")
}


def count_state(config: CountTestConfig, intervals: int, seed: int = 7) -> SavedState:
    rng = np.random.default_rng(seed)
    test = CountTest(config)
    for _ in range(intervals):
        test.update(float(rng.binomial(600, 0.01)), 600.0, float(rng.binomial(5400, 0.01)), 5400.0)
    return SavedState("sequential", _TOTALS, test.state.to_dict())


def latency_state(intervals: int) -> SavedState:
    rng = np.random.default_rng(7)
    bounds = (0.025, 0.05, 0.1, 0.25, 0.5)
    test = LatencyTest(LatencyTestConfig(buckets=bounds))

    def histogram(n: int) -> dict[str, float]:
        seconds = rng.lognormal(np.log(0.04), 0.5, n)
        return {**{f"{b:g}": float(np.sum(seconds <= b)) for b in bounds}, "+Inf": float(n)}

    for _ in range(intervals):
        test.update_histograms(histogram(600), histogram(5400))
    return SavedState("sequential-latency", _TOTALS, test.state.to_dict())


def score_size(metrics: int, intervals: int) -> int:
    """A score of ``metrics`` count tests, each on counts of its own."""
    saved = [encode_state(count_state(CountTestConfig(), intervals, 7 + i)) for i in range(metrics)]
    state = {"metrics": {f"m{i}": {"saved": one, "decided": None} for i, one in enumerate(saved)}}
    return len(encode_state(SavedState(SCORE_TEST, {}, state)))


def main() -> None:
    print("| state | " + " | ".join(f"{n} intervals" for n in INTERVALS) + " |")
    print("|---|" + "---:|" * len(INTERVALS))
    rows = {
        "sequential (guard negbin, the default)": lambda n: count_state(CountTestConfig(), n),
        'sequential, guard "t"': lambda n: count_state(CountTestConfig(guard="t"), n),
        "sequential-latency (5 buckets)": latency_state,
    }
    for name, make in rows.items():
        sizes = [len(encode_state(make(n))) for n in INTERVALS]
        print(f"| {name} | " + " | ".join(f"{s:,} B" for s in sizes) + " |")
    for metrics in (10, 20):
        sizes = [score_size(metrics, n) for n in INTERVALS]
        print(f"| score of {metrics} sequential metrics | " + " | ".join(f"{s:,} B" for s in sizes) + " |")


if __name__ == "__main__":
    main()
