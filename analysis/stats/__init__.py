"""Statistical judges: canary against baseline.

* `mannwhitney` / `scoring`: the fixed-horizon Kayenta-style judge (classify each
  metric High / Low / Pass / Nodata, then score groups against marginal / pass).
* `sequential_counts` / `sequential_latency`: anytime-valid sequential tests of
  error rates and latency histograms, fed one interval at a time, with state that
  serialises to JSON between measurements.
"""

from analysis.stats.count_config import CountTestConfig
from analysis.stats.mannwhitney import (
    EffectSizeMeasure,
    MannWhitneyResult,
    MetricConfig,
    NaNStrategy,
    classify,
    hodges_lehmann,
    mann_whitney,
)
from analysis.stats.scoring import ScoredMetric, ScoreResult, ScoreThresholds, ScoreVerdict, score
from analysis.stats.sequential_counts import CountTest
from analysis.stats.sequential_latency import LatencyTest, LatencyTestConfig
from analysis.stats.types import (
    Classification,
    Decision,
    Direction,
    InvalidInput,
    MetricClassification,
    SequentialResult,
    Shortfall,
)

__all__ = [
    "Classification",
    "CountTest",
    "CountTestConfig",
    "Decision",
    "Direction",
    "EffectSizeMeasure",
    "InvalidInput",
    "LatencyTest",
    "LatencyTestConfig",
    "MannWhitneyResult",
    "MetricClassification",
    "MetricConfig",
    "NaNStrategy",
    "ScoreResult",
    "ScoreThresholds",
    "ScoreVerdict",
    "ScoredMetric",
    "SequentialResult",
    "Shortfall",
    "classify",
    "hodges_lehmann",
    "mann_whitney",
    "score",
]
