"""Canary score from per-metric classifications, as Kayenta's ACA judge does it.

* Group score = 100 * #Pass / #judged, where Nodata metrics are not judged (they
  neither help nor hurt) but NodataFailMetric, High and Low count as failures.
  A group with no judged metric has no score and drops out of the summary.
* Summary score = sum_g w_g s_g / sum_g w_g over the groups with a score. Groups
  without a configured weight share the weight left over by the configured ones
  equally (all groups weigh the same when none is configured).
* A critical metric that failed (its classification has ``critical=True``) makes
  the score 0 and the verdict FAIL, whatever the other metrics say.
* Verdict: score >= pass threshold -> PASS; >= marginal -> MARGINAL; else FAIL.
  Kayenta stops a multi-interval analysis at the first FAIL and requires PASS
  at the last interval.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analysis.stats.types import Classification, InvalidInput, MetricClassification, finite_or_none

__all__ = ["GroupScore", "ScoreResult", "ScoreThresholds", "ScoreVerdict", "ScoredMetric", "score"]


class ScoreVerdict(enum.StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    NODATA = "nodata"


@dataclass(frozen=True)
class ScoreThresholds:
    """Kayenta ``scoreThresholds``: ``marginal`` <= ``pass_`` in [0, 100]."""

    marginal: float = 75.0
    pass_: float = 95.0

    def __post_init__(self) -> None:
        ok = all(math.isfinite(v) and 0.0 <= v <= 100.0 for v in (self.marginal, self.pass_))
        if not ok or self.marginal > self.pass_:
            raise InvalidInput(
                f"score thresholds must satisfy 0 <= marginal <= pass <= 100, got {self.marginal}/{self.pass_}"
            )


@dataclass(frozen=True)
class ScoredMetric:
    name: str
    group: str
    result: MetricClassification


@dataclass(frozen=True)
class GroupScore:
    group: str
    score: float | None  # None: no judged metric in the group
    weight: float
    n_pass: int
    n_judged: int


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    verdict: ScoreVerdict
    reason: str
    groups: tuple[GroupScore, ...] = ()
    critical_failures: tuple[str, ...] = ()
    failed_metrics: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": finite_or_none(self.score),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "groups": [
                {
                    "group": g.group,
                    "score": finite_or_none(g.score),
                    "weight": finite_or_none(g.weight),
                    "pass": g.n_pass,
                    "judged": g.n_judged,
                }
                for g in self.groups
            ],
            "criticalFailures": list(self.critical_failures),
            "failedMetrics": list(self.failed_metrics),
        }


def _group_weights(groups: list[str], configured: Mapping[str, float]) -> dict[str, float]:
    for g, w in configured.items():
        if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0.0):
            raise InvalidInput(f"group weight for {g!r} must be a finite number >= 0, got {w!r}")
    given = {g: float(configured[g]) for g in groups if g in configured}
    rest = [g for g in groups if g not in configured]
    if not given:
        return dict.fromkeys(groups, 1.0)
    left = max(0.0, 100.0 - sum(given.values()))
    share = left / len(rest) if rest else 0.0
    return {**given, **dict.fromkeys(rest, share)}


def _group_scores(items: list[ScoredMetric], groups: list[str], weights: Mapping[str, float]) -> list[GroupScore]:
    """Each group's share of passing metrics (of those with data), 0-100; None when none had data."""
    group_scores: list[GroupScore] = []
    for g in groups:
        judged = [m for m in items if m.group == g and m.result.classification is not Classification.NODATA]
        n_pass = sum(1 for m in judged if m.result.classification is Classification.PASS)
        s = 100.0 * n_pass / len(judged) if judged else None
        group_scores.append(GroupScore(g, s, weights[g], n_pass, len(judged)))
    return group_scores


def _weighted_score(scored: list[GroupScore]) -> float:
    total_w = sum(gs.weight for gs in scored)
    if total_w <= 0.0:
        # Only zero-weight groups have data: fall back to equal weights rather than 0/0.
        return sum(gs.score or 0.0 for gs in scored) / len(scored)
    return sum((gs.score or 0.0) * gs.weight for gs in scored) / total_w


def score(
    metrics: Iterable[ScoredMetric],
    group_weights: Mapping[str, float] | None = None,
    thresholds: ScoreThresholds | None = None,
) -> ScoreResult:
    """Combine metric classifications into Kayenta's 0-100 score and a verdict."""
    th = thresholds or ScoreThresholds()
    items = list(metrics)
    # A metric in several groups (Kayenta's ``groups`` list) is one ScoredMetric per group: name it once.
    failed = tuple(dict.fromkeys(
        m.name for m in items if m.result.classification not in (Classification.PASS, Classification.NODATA)
    ))
    critical = tuple(dict.fromkeys(m.name for m in items if m.result.critical and m.name in failed))
    groups = sorted({m.group for m in items})
    group_scores = _group_scores(items, groups, _group_weights(groups, group_weights or {}))
    if critical:
        return ScoreResult(
            0.0, ScoreVerdict.FAIL, f"critical metric failed: {', '.join(critical)}",
            tuple(group_scores), critical, failed,
        )
    scored = [gs for gs in group_scores if gs.score is not None]
    if not scored:
        return ScoreResult(None, ScoreVerdict.NODATA, "no metric had data", tuple(group_scores), (), failed)
    summary = _weighted_score(scored)
    if summary >= th.pass_:
        verdict = ScoreVerdict.PASS
    elif summary >= th.marginal:
        verdict = ScoreVerdict.MARGINAL
    else:
        verdict = ScoreVerdict.FAIL
    what = f"score {summary:.1f} (marginal {th.marginal:g}, pass {th.pass_:g})"
    if failed:
        what += f"; failed: {', '.join(failed)}"
    return ScoreResult(summary, verdict, what, tuple(group_scores), (), failed)
