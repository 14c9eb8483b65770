"""A judge below its minimum evidence, in words: the figures, how many more intervals (and how long)
it needs at the pace seen so far, and whether they fit in the measurements the metric has left."""

from __future__ import annotations

from analysis.stats import Shortfall
from rollouts.model.conditions import SHORTFALL_OUTCOMES
from rollouts.model.durations import human_duration

__all__ = ["WAITING", "outcome", "still_needed"]

WAITING = "waiting for data: "

# What a user can change, by the unit the minimum is counted in.
_FIXES = {
    "requests": "lower minRequests / minIntervals, or send the canary more traffic (a larger setWeight)",
    "points": "lower minPoints, or give rangeQuery a longer window or a shorter step",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def still_needed(
    shortfall: Shortfall, pace: float | None, interval_seconds: float, taken: int, count: int | None
) -> str:
    """What is still needed. ``pace``: units per version per interval when known (mann-whitney's points),
    else each version's own so far; ``taken``: measurements so far, this one included; ``count``: the
    metric's count (None: unbounded)."""
    to_go = shortfall.intervals_to_go(pace)
    fix = _FIXES.get(shortfall.unit, "")
    if to_go is None:
        sides = " and ".join(shortfall.missing()) or "canary"
        unit = "request" if shortfall.unit == "requests" else "point"
        return f"no {unit} from the {sides} yet, so no estimate of the time still needed: check that both " \
               f"versions get traffic and that the queries select them"
    text = f"about {_plural(to_go, 'more interval')} ({human_duration(to_go * interval_seconds)}) at the pace so far"
    if count is not None and to_go > count - taken:
        left = max(count - taken, 0)
        text += (
            f", but {_plural(left, 'measurement')} left of count {count}: raise count to at least "
            f"{taken + to_go}, or {fix}"
        )
    return text


def outcome(shortfall: Shortfall, reason: str, needed: str, final: bool, taken: int) -> str:
    """The measurement's message: the test's own "waiting for data" reason and what is still needed while
    measurements are left; at the final one the explicit "too little traffic" (requests) or "too little
    data" (points) outcome."""
    if not final:
        return f"{reason}; {needed}"
    traffic, data = SHORTFALL_OUTCOMES
    what = traffic if shortfall.unit == "requests" else data
    return f"{what} after {_plural(taken, 'measurement')}: {reason.removeprefix(WAITING)}; {needed}"
