"""Prometheus answers turned into what the judge's tests take (pure; no I/O).

The sequential tests query counters (cumulative totals). Per series (one label set) the increase
since the previous measurement is the new value minus the one remembered; a counter that went down
restarted (its pod did), so its new value is the increase, as Prometheus's ``increase()`` counts it; a
series seen for the first time started from zero after the previous measurement. Series that vanish
from an answer (a failed scrape, a deleted pod) keep their last value, so their return is not
mistaken for new traffic.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from typing import Any

from analysis.providers.base import ProviderError

__all__ = ["by_le", "increases", "range_increases", "range_values", "series_totals"]


def _key(labels: Any) -> str:
    if not isinstance(labels, Mapping):
        return "{}"
    return json.dumps({str(k): str(v) for k, v in sorted(labels.items()) if k != "__name__"}, separators=(",", ":"))


def _sample(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProviderError(f"{what}: cannot read the sample value {value!r}") from None
    return number


def series_totals(result_type: str, result: Any, what: str) -> dict[str, float]:
    """An instant query's counters, by series (labels as JSON). NaN is kept (a missing value);
    a negative or infinite counter is a ProviderError naming ``what``."""
    totals: dict[str, float] = {}
    try:
        if result_type == "scalar":
            totals["{}"] = _sample(result[1], what)
        elif result_type == "vector":
            for series in result:
                key = _key(series.get("metric"))
                totals[key] = totals.get(key, 0.0) + _sample(series["value"][1], what)
        else:
            raise ProviderError(
                f"{what}: expected an instant vector of counters, Prometheus answered a {result_type}"
            )
    except (TypeError, KeyError, IndexError, AttributeError):
        raise ProviderError(f"{what}: cannot read the answer's series") from None
    for value in totals.values():
        if math.isinf(value) or value < 0:
            raise ProviderError(f"{what}: a counter must be finite and >= 0, Prometheus answered {value:g}")
    return totals


def increases(previous: Mapping[str, float], current: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(per-series increase since ``previous``, the values to remember next time). A NaN value
    makes that series' increase NaN and keeps the remembered value."""
    delta: dict[str, float] = {}
    remembered = dict(previous)
    for key, value in current.items():
        if math.isnan(value):
            delta[key] = math.nan
            continue
        before = previous.get(key)
        delta[key] = value if before is None or value < before else value - before
        remembered[key] = value
    return delta, remembered


def by_le(delta: Mapping[str, float], what: str) -> dict[str, float]:
    """Per-series increases of a histogram's bucket counter summed by their ``le`` label
    (``le -> cumulative count``, as ``sum by (le)`` would give)."""
    out: dict[str, float] = {}
    for key, value in delta.items():
        le = json.loads(key).get("le")
        if le is None:
            raise ProviderError(
                f"{what}: a series has no le label: give a histogram's bucket counter, "
                "e.g. http_request_duration_seconds_bucket{...}"
            )
        out[le] = out.get(le, 0.0) + value
    return out


def range_values(result_type: str, result: Any, what: str) -> list[float]:
    """Every sample value of a range query (several series are pooled); NaN and +-Inf are kept for
    the NaN strategy."""
    try:
        if result_type == "matrix":
            return [_sample(v[1], what) for series in result for v in series.get("values") or []]
        if result_type == "vector":
            return [_sample(series["value"][1], what) for series in result]
        if result_type == "scalar":
            return [_sample(result[1], what)]
    except (TypeError, KeyError, IndexError, AttributeError):
        raise ProviderError(f"{what}: cannot read the answer's series") from None
    raise ProviderError(f"{what}: expected a range of numbers, Prometheus answered a {result_type}")


def range_increases(result_type: str, result: Any, what: str) -> dict[float, float]:
    """A range query of counters -> the increase of all series per step (keyed by the step's
    timestamp): each series' difference from its previous point (a reset counts the new value, as
    ``increase()`` does; a series' first point only starts it). No series at all: empty."""
    if result_type != "matrix":
        raise ProviderError(f"{what}: expected a range of counters, Prometheus answered a {result_type}")
    out: dict[float, float] = {}
    try:
        for series in result:
            points = sorted((float(t), _sample(v, what)) for t, v in series.get("values") or [])
            for (_, before), (at, value) in itertools.pairwise(points):
                if math.isnan(before) or math.isnan(value):
                    continue
                out[at] = out.get(at, 0.0) + (value if value < before else value - before)
    except (TypeError, KeyError, IndexError, AttributeError, ValueError):
        raise ProviderError(f"{what}: cannot read the answer's series") from None
    return out
