"""Result types shared by the statistical judges.

Everything here is a plain, immutable value that serialises to a JSON-safe dict
(`to_dict`) so the controller can copy it into an AnalysisRun measurement and a
human can read the `reason`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Classification",
    "Decision",
    "Direction",
    "InvalidInput",
    "MetricClassification",
    "SequentialResult",
    "Shortfall",
    "finite_or_none",
]


class InvalidInput(ValueError):
    """Raised for input that is wrong in kind (not just empty): mismatched lengths,
    negative counts, unknown options. Missing or empty data is never an error: the
    judges answer NODATA for it."""


class Decision(enum.StrEnum):
    """What a sequential judge says after an interval."""

    FAIL = "fail"  # canary shown worse than allowed: roll back
    PASS = "pass"  # canary shown no worse than the margin: promote early
    CONTINUE = "continue"  # enough data to judge, not yet conclusive
    NODATA = "nodata"  # waiting for data: below the minimum evidence


class Classification(enum.StrEnum):
    """Per-metric verdict of the fixed-horizon (Kayenta-style) classifier."""

    HIGH = "High"
    LOW = "Low"
    PASS = "Pass"
    NODATA = "Nodata"
    NODATA_FAIL = "NodataFailMetric"  # no data on a metric that must have data


class Direction(enum.StrEnum):
    """Which change of the metric is a regression."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


def finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN/inf: map them to None (and keep Python floats plain)."""
    if x is None:
        return None
    xf = float(x)
    return xf if math.isfinite(xf) else None


def _interval_dict(iv: tuple[float, float] | None) -> list[float | None] | None:
    if iv is None:
        return None
    return [finite_or_none(iv[0]), finite_or_none(iv[1])]


@dataclass(frozen=True)
class MetricClassification:
    """Verdict of the Mann-Whitney classifier for one metric.

    `interval` is the two-sided confidence interval of the location shift
    (canary - baseline), `estimate` its Hodges-Lehmann estimate, `effect_size` the
    mean ratio canary/baseline or the CLES P(canary > baseline) + 0.5 P(tie).
    """

    classification: Classification
    reason: str
    critical: bool = False
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    effect_size: float | None = None
    n_canary: int = 0
    n_baseline: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "classification": self.classification.value,
            "reason": self.reason,
            "critical": self.critical,
            "estimate": finite_or_none(self.estimate),
            "interval": _interval_dict(self.interval),
            "pValue": finite_or_none(self.p_value),
            "effectSize": finite_or_none(self.effect_size),
            "nCanary": self.n_canary,
            "nBaseline": self.n_baseline,
        }


@dataclass(frozen=True)
class Shortfall:
    """What the minimum evidence still lacks, per version (requests for the sequential tests, points
    for mann-whitney) and in intervals with traffic (``minIntervals``; 0 when the test has none)."""

    unit: str  # "requests" or "points"
    canary: float
    canary_needed: float
    baseline: float
    baseline_needed: float
    intervals: int = 0  # intervals seen, with or without traffic: the denominator of the rates
    traffic_intervals: int = 0
    min_intervals: int = 0

    def text(self) -> str:
        """The figures, e.g. ``canary 120/500 and baseline 900/500 requests, 2/3 intervals with traffic``."""
        out = (
            f"canary {self.canary:g}/{self.canary_needed:g} and baseline "
            f"{self.baseline:g}/{self.baseline_needed:g} {self.unit}"
        )
        if self.min_intervals:
            out += f", {self.traffic_intervals}/{self.min_intervals} intervals with traffic"
        return out

    def missing(self) -> list[str]:
        """The versions that have seen nothing yet (no rate to extrapolate from)."""
        return [side for side, have, need in (("canary", self.canary, self.canary_needed),
                                              ("baseline", self.baseline, self.baseline_needed))
                if have <= 0 < need]

    def intervals_to_go(self, per_interval: float | None = None) -> int | None:
        """More intervals needed at the pace seen so far (``per_interval``: a known pace per version,
        else each version's own ``amount / intervals``); None while a version that needs more has seen
        nothing (the pace is unknown)."""
        more = max(self.min_intervals - self.traffic_intervals, 0)
        for have, need in ((self.canary, self.canary_needed), (self.baseline, self.baseline_needed)):
            if have >= need:
                continue
            pace = per_interval if per_interval is not None else (have / self.intervals if self.intervals else 0.0)
            if pace <= 0:
                return None
            more = max(more, math.ceil((need - have) / pace - 1e-9))
        return more


@dataclass(frozen=True)
class SequentialResult:
    """Verdict of a sequential test after the latest interval.

    `estimate` and `interval` are on the scale named by `quantity` (e.g. the
    canary/baseline error-rate ratio); `interval` is an anytime-valid confidence
    interval (a confidence sequence: it covers the truth at all times at once with
    probability 1 - alpha). `e_fail` / `e_pass` are the e-values of the two tests
    (reject when e >= 1/alpha); `p_fail` = min(1, 1/sup e_fail) is the matching
    always-valid p-value.
    """

    decision: Decision
    reason: str
    quantity: str
    estimate: float | None
    interval: tuple[float, float] | None
    e_fail: float
    e_pass: float
    p_fail: float
    p_pass: float
    intervals_seen: int
    canary_total: float
    baseline_total: float
    details: dict[str, Any] = field(default_factory=dict)
    shortfall: Shortfall | None = None  # what the minimum evidence lacks (decision NODATA)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "quantity": self.quantity,
            "estimate": finite_or_none(self.estimate),
            "interval": _interval_dict(self.interval),
            "eFail": finite_or_none(self.e_fail),
            "ePass": finite_or_none(self.e_pass),
            "pFail": finite_or_none(self.p_fail),
            "pPass": finite_or_none(self.p_pass),
            "intervalsSeen": self.intervals_seen,
            "canaryTotal": finite_or_none(self.canary_total),
            "baselineTotal": finite_or_none(self.baseline_total),
            "details": self.details,
        }
