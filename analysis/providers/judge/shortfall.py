"""A judge below its minimum evidence: what it still needs (:class:`analysis.outcome.Needs`: the figures,
how many more intervals at the pace seen so far, whether they fit in the measurements left), and the
measurement's message, from those needs (the wording is :mod:`analysis.outcome`'s, which the Rollout's
message shares)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from analysis.outcome import Needs, describe
from analysis.phases import effective_count
from analysis.spec import duration_seconds
from analysis.stats import Shortfall

__all__ = ["DEFAULT_INTERVAL", "WAITING", "interval_seconds", "message", "metric_count", "needs"]

WAITING = "waiting for data: "
DEFAULT_INTERVAL: Final = "1m"  # a judge metric without `interval` (and a rangeQuery without `step`)


def metric_count(metric: Mapping[str, Any]) -> int | None:
    """The metric's count; None when unbounded (or unreadable: validation reports it)."""
    try:
        return effective_count(metric)
    except ValueError:
        return None


def interval_seconds(metric: Mapping[str, Any]) -> float:
    return duration_seconds(metric.get("interval") or DEFAULT_INTERVAL, "interval") or 60.0


def needs(shortfall: Shortfall, pace: float | None, interval_seconds: float, taken: int, count: int | None) -> Needs:
    """What is still needed. ``pace``: units per version per interval when known (mann-whitney's points),
    else each version's own so far; ``taken``: measurements so far, this one included; ``count``: the
    metric's count (None: unbounded)."""
    return Needs(
        unit=shortfall.unit,
        canary=(shortfall.canary, shortfall.canary_needed),
        baseline=(shortfall.baseline, shortfall.baseline_needed),
        traffic_intervals=(shortfall.traffic_intervals, shortfall.min_intervals),
        more_intervals=shortfall.intervals_to_go(pace),
        interval_seconds=interval_seconds,
        measurements=taken,
        count=count,
    )


def message(needed: Needs, reason: str, final: bool) -> str:
    """The measurement's message: the test's own "waiting for data" reason and what is still needed while
    measurements are left; at the final one the explicit "too little traffic" (requests) or "too little
    data" (points) outcome."""
    if not final:
        return f"{reason}; {needed.still_needed()}"
    return describe(needed.outcome, needed.measurements, [("", needed)])
