"""A judge measurement's "too little traffic / too little data" outcome as data, not words: the fixed
metadata keys the judge writes and the Rollout reads, what is still needed (:class:`Needs`), and the one
wording of it that the measurement's message, the run's message and the Rollout's message share.

Metadata (all values strings, as every measurement's):

* ``outcome``: ``TooLittleTraffic`` (a minimum counted in requests) or ``TooLittleData`` (in points), on
  the measurement that ends a judge metric Inconclusive for lack of evidence (the final ``count``);
* ``needed``: JSON of :class:`Needs` (one judge), on every measurement below the minimum evidence;
  a score carries each short metric's :class:`Needs` under ``needed`` in its ``metric.<name>`` JSON.

Pure; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rollouts.model.durations import human_duration

__all__ = [
    "NEEDED_KEY", "OUTCOMES", "OUTCOME_KEY", "TOO_LITTLE_DATA", "TOO_LITTLE_TRAFFIC", "Needs", "describe",
    "outcome_of", "score_metric_entries", "score_metric_key",
]

OUTCOME_KEY: Final = "outcome"
NEEDED_KEY: Final = "needed"
TOO_LITTLE_TRAFFIC: Final = "TooLittleTraffic"
TOO_LITTLE_DATA: Final = "TooLittleData"
OUTCOMES: Final = (TOO_LITTLE_TRAFFIC, TOO_LITTLE_DATA)
_SCORE_METRIC_PREFIX: Final = "metric."
_WORDS: Final = {TOO_LITTLE_TRAFFIC: "too little traffic", TOO_LITTLE_DATA: "too little data"}

# What a user can change, by the unit the minimum is counted in.
_FIXES: Final = {
    "requests": "lower minRequests / minIntervals, or send the canary more traffic (a larger setWeight)",
    "points": "lower minPoints, or give rangeQuery a longer window or a shorter step",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _pair(value: Any) -> tuple[float, float]:
    """``[have, need]`` from JSON; ValueError when it is not two numbers."""
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected [have, need], got {value!r}")
    have, need = (float(v) for v in value)
    return have, need


@dataclass(frozen=True)
class Needs:
    """What a judge metric's minimum evidence still lacked at its latest measurement."""

    unit: str  # "requests" or "points"
    canary: tuple[float, float]  # (have, need)
    baseline: tuple[float, float]
    traffic_intervals: tuple[int, int]  # (intervals with traffic, minIntervals); (0, 0) without minIntervals
    more_intervals: int | None  # more intervals at the pace so far; None: no pace yet (a version saw nothing)
    interval_seconds: float
    measurements: int  # taken so far, the latest included
    count: int | None  # the metric's count; None: unbounded

    @property
    def outcome(self) -> str:
        return TOO_LITTLE_TRAFFIC if self.unit == "requests" else TOO_LITTLE_DATA

    @property
    def more_seconds(self) -> float | None:
        return None if self.more_intervals is None else self.more_intervals * self.interval_seconds

    def figures(self) -> str:
        """``canary 120/500 and baseline 900/500 requests, 2/3 intervals with traffic``."""
        (c, c_need), (b, b_need) = self.canary, self.baseline
        out = f"canary {c:g}/{c_need:g} and baseline {b:g}/{b_need:g} {self.unit}"
        seen, minimum = self.traffic_intervals
        if minimum:
            out += f", {seen}/{minimum} intervals with traffic"
        return out

    def missing(self) -> list[str]:
        """The versions that have seen nothing yet while they need something (no pace to go by)."""
        return [side for side, (have, need) in (("canary", self.canary), ("baseline", self.baseline))
                if have <= 0 < need]

    def still_needed(self) -> str:
        """How many more intervals (and how long) at the pace so far, and whether they fit in ``count``."""
        fix = _FIXES.get(self.unit, "")
        if self.more_intervals is None:
            sides = " and ".join(self.missing()) or "canary"
            unit = "request" if self.unit == "requests" else "point"
            return (f"no {unit} from the {sides} yet, so no estimate of the time still needed: check that both "
                    f"versions get traffic and that the queries select them")
        to_go = self.more_intervals
        text = (f"about {_plural(to_go, 'more interval')} ({human_duration(to_go * self.interval_seconds)})"
                " at the pace so far")
        if self.count is not None and to_go > self.count - self.measurements:
            left = max(self.count - self.measurements, 0)
            text += (f", but {_plural(left, 'measurement')} left of count {self.count}: raise count to at least "
                     f"{self.measurements + to_go}, or {fix}")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "canary": list(self.canary),
            "baseline": list(self.baseline),
            "trafficIntervals": list(self.traffic_intervals),
            "moreIntervals": self.more_intervals,
            "moreSeconds": self.more_seconds,
            "intervalSeconds": self.interval_seconds,
            "measurements": self.measurements,
            "count": self.count,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Needs:
        """The needs written by :meth:`to_dict`; ValueError (or KeyError, TypeError) when they are not."""
        unit = str(data["unit"])
        if unit not in _FIXES:
            raise ValueError(f"unknown unit {unit!r}")
        seen, minimum = _pair(data.get("trafficIntervals") or [0, 0])
        more, count = data.get("moreIntervals"), data.get("count")
        return cls(
            unit=unit,
            canary=_pair(data["canary"]),
            baseline=_pair(data["baseline"]),
            traffic_intervals=(int(seen), int(minimum)),
            more_intervals=None if more is None else int(more),
            interval_seconds=float(data["intervalSeconds"]),
            measurements=int(data["measurements"]),
            count=None if count is None else int(count),
        )

    @classmethod
    def parse(cls, value: Any) -> Needs | None:
        """Needs from a metadata value (JSON text) or a decoded JSON object; None when it is not one."""
        try:
            data = json.loads(value) if isinstance(value, str) else value
            return cls.from_dict(data) if isinstance(data, Mapping) else None
        except (ValueError, KeyError, TypeError):
            return None


def outcome_of(needs: Sequence[Needs]) -> str:
    """``TooLittleTraffic`` when any of the short metrics lacks requests, else ``TooLittleData``."""
    return TOO_LITTLE_TRAFFIC if any(n.unit == "requests" for n in needs) else TOO_LITTLE_DATA


def describe(outcome: str, measurements: int, short: Sequence[tuple[str, Needs]]) -> str:
    """The outcome in words: ``too little traffic after 5 measurements: <figures>; <still needed>`` for one
    metric (its name left out when it is ""), each metric by name for several
    (``...: error-rate: <figures>; <still needed>. latency: ...``)."""
    head = f"{_WORDS.get(outcome, outcome)} after {_plural(measurements, 'measurement')}: "
    parts = [f"{name + ': ' if name else ''}{n.figures()}; {n.still_needed()}" for name, n in short]
    return head + ". ".join(parts)


def score_metric_key(name: str) -> str:
    """The metadata key of a score's line for metric ``name``."""
    return _SCORE_METRIC_PREFIX + name


def score_metric_entries(metadata: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any] | None]]:
    """A score's ``metric.<name>`` lines by name: (the text, its JSON object or None). Lines written before
    they were JSON ("Pass (critical): reason") come with None."""
    out: dict[str, tuple[str, Mapping[str, Any] | None]] = {}
    for key, value in metadata.items():
        if not str(key).startswith(_SCORE_METRIC_PREFIX):
            continue
        text = str(value)
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None  # an older plain-text line: shown as its text, no needs in it
        out[str(key)[len(_SCORE_METRIC_PREFIX):]] = (text, entry if isinstance(entry, Mapping) else None)
    return out
