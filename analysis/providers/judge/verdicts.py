"""One measurement's worth of judging: the saved state and the new answers in, a :class:`Verdict` and
the state to save out (pure CPU work; the provider runs it in a thread).

Saved state (measurement metadata ``judgeState``: zlib-compressed JSON, base64)::

    {"test": "sequential", "totals": {"canary.errors": {series: value}, ...}, "state": {...} | null,
     "latency": {...}}

``totals`` are the counters' last values per series (see :mod:`analysis.providers.judge.answers`),
``state`` the statistical test's own state (None until the second reading when the first one only
remembers the counters; a first reading that has the counters one interval earlier judges that interval),
``latency`` the latency test's state of a ``sequential`` metric with latency queries (absent otherwise,
and in states saved before it existed).
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.providers.base import format_value
from analysis.providers.judge.answers import by_le, increases
from analysis.providers.judge.joint import JointInputs, joint_decision
from analysis.providers.judge.spec import (
    SEQUENTIAL,
    SEQUENTIAL_LATENCY,
    MannWhitneySettings,
    count_config,
    has_latency,
    latency_config,
    promote_on_latency_when_sparse,
    sparse_rule,
)
from analysis.stats import (
    Classification,
    CountTest,
    Decision,
    InvalidInput,
    LatencyTest,
    SequentialResult,
    Shortfall,
    classify,
)
from analysis.stats.mannwhitney import clean_values
from analysis.stats.sequential_counts import CountTestState
from analysis.stats.sequential_latency import LatencyTestState

__all__ = [
    "SavedState",
    "Verdict",
    "decode_state",
    "earlier_start",
    "encode_state",
    "mann_whitney_verdict",
    "sequential_step",
]

Totals = dict[str, dict[str, float]]  # "canary.errors" -> series -> counter value


@dataclass(frozen=True)
class Verdict:
    """What a measurement reports: the decision, why, the value shown and the metadata."""

    decision: Decision
    reason: str
    value: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    shortfall: Shortfall | None = None  # below the minimum evidence: what is still lacking
    pace: float | None = None  # the shortfall's units per version per interval, when known in advance


@dataclass
class SavedState:
    test: str
    totals: Totals
    state: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None  # a sequential metric's latency test, when it has latency queries


def encode_state(saved: SavedState) -> str:
    data: dict[str, Any] = {"test": saved.test, "totals": saved.totals, "state": saved.state}
    if saved.latency is not None:
        data["latency"] = saved.latency
    raw = json.dumps(data, separators=(",", ":"))
    return base64.b64encode(zlib.compress(raw.encode(), 9)).decode()


def decode_state(text: str, test: str) -> SavedState:
    """The saved state of a ``test`` judge; InvalidInput when it is unreadable or another test's."""
    try:
        data = json.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (ValueError, zlib.error):
        raise InvalidInput("saved judge state is not readable") from None
    if not isinstance(data, dict) or not isinstance(data.get("totals"), dict):
        raise InvalidInput("saved judge state is not a judge state")
    if data.get("test") != test:
        raise InvalidInput(f"saved judge state belongs to test {data.get('test')!r}, not {test!r}")
    state, latency = data.get("state"), data.get("latency")
    if (state is not None and not isinstance(state, dict)) or (latency is not None and not isinstance(latency, dict)):
        raise InvalidInput("saved judge state is not a judge state")
    try:
        totals = {str(k): {str(s): float(v) for s, v in series.items()} for k, series in data["totals"].items()}
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput("saved judge state has unreadable counter totals") from None
    return SavedState(test, totals, state, latency)


def fmt(x: float | None) -> str:
    """A number for metadata: 6 significant digits, "" for None or NaN, "inf" for infinity."""
    if x is None or math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format_value(float(f"{x:.6g}"))


def _interval_text(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def _sequential_metadata(result: SequentialResult, test: str, this_interval: str) -> dict[str, str]:
    details = result.details
    meta = {
        "test": test,
        "decision": result.decision.value,
        "reason": result.reason,
        "quantity": result.quantity,
        "estimate": fmt(result.estimate),
        "interval": _interval_text(result.interval),
        "evidence": f"e-value fail {fmt(result.e_fail)}, pass {fmt(result.e_pass)}",
        "samples": f"canary {fmt(result.canary_total)} requests, baseline {fmt(result.baseline_total)} requests "
        f"in {result.intervals_seen} intervals"
        + (f" (and {details['historyIntervals']} intervals of the baseline's history)"
           if details.get("historyIntervals") else ""),
        "eFail": fmt(result.e_fail),
        "ePass": fmt(result.e_pass),
        "pFail": fmt(result.p_fail),
        "pPass": fmt(result.p_pass),
        "intervals": str(result.intervals_seen),
        "canaryRequests": fmt(result.canary_total),
        "baselineRequests": fmt(result.baseline_total),
        "canaryRate": fmt(details.get("canaryRate")),
        "baselineRate": fmt(details.get("baselineRate")),
        "worstBound": fmt(details.get("worstBound")),
        "baselineHistory": f"{details['historyIntervals']} intervals" if details.get("historyIntervals") else "",
        "thisInterval": this_interval,
    }
    return {k: v for k, v in meta.items() if v != ""}


def _first_reading(test: str, what: str) -> Verdict:
    reason = (
        f"waiting for data: first reading of the {what} counters; "
        "the judge compares their increases from the next measurement on"
    )
    return Verdict(Decision.NODATA, reason, None, {"test": test, "decision": Decision.NODATA.value, "reason": reason})


def _deltas(
    saved: SavedState | None, answers: Mapping[str, dict[str, float]]
) -> tuple[dict[str, dict[str, float]], Totals]:
    previous = saved.totals if saved is not None else {}
    deltas: dict[str, dict[str, float]] = {}
    totals: Totals = {}
    for key, current in answers.items():
        deltas[key], totals[key] = increases(previous.get(key, {}), current)
    return deltas, totals


def primed_count_test(
    spec: Mapping[str, Any], errors: Mapping[float, float], requests: Mapping[float, float]
) -> tuple[dict[str, Any], int]:
    """A fresh ``sequential`` test's state with the baseline's history (errors and requests per step,
    by timestamp) in its dispersion bound, and the number of steps used. A step with requests but no
    error series counts no errors."""
    test = CountTest(count_config(spec))
    steps = sorted(requests)
    used = test.prime_baseline([errors.get(t, 0.0) for t in steps], [requests[t] for t in steps])
    return test.state.to_dict(), used


#: The answers whose series show that a version was serving: a first reading takes its start from the
#: counters one interval earlier only when both versions' series were there then.
_SERVING: dict[str, tuple[str, str]] = {
    SEQUENTIAL: ("canary.requests", "baseline.requests"),
    SEQUENTIAL_LATENCY: ("canary.latency", "baseline.latency"),
}


def earlier_start(test: str, earlier: Mapping[str, dict[str, float]] | None) -> Totals | None:
    """The counters one interval before a first reading, as the start of its interval, when both versions
    had a series with a value then; None otherwise (a canary that did not exist yet: its counter's first
    value may hold requests from before that interval, so the first reading only remembers the counters)."""
    if earlier is None:
        return None
    for key in _SERVING[test]:
        if not any(not math.isnan(v) for v in (earlier.get(key) or {}).values()):
            return None
    return {key: dict(series) for key, series in earlier.items()}


def sequential_step(
    test: str,
    spec: Mapping[str, Any],
    saved: SavedState | None,
    answers: Mapping[str, dict[str, float]],
    history: tuple[Mapping[float, float], Mapping[float, float]] | None = None,
    earlier: Mapping[str, dict[str, float]] | None = None,
    measurements_left: int | None = None,
    count: int | None = None,
) -> tuple[Verdict, SavedState]:
    """Add the interval since the previous measurement to the ``sequential`` or ``sequential-latency``
    test (a ``sequential`` spec with latency queries: to both, see :mod:`analysis.providers.judge.joint`).
    ``answers``: "side.what" -> the counters by series; ``history``: at the first reading of a
    ``sequential`` test, the baseline's (errors, requests) per step before it (see
    `primed_count_test`); ``earlier``: at the first reading, the counters one interval before it (see
    `earlier_start`), from which the first reading already judges an interval; ``measurements_left``:
    after this one, until the metric's count (None: no count); ``count``: the metric's count (the latency
    test's pass horizon when ``passHorizon`` is not set). InvalidInput for bad settings or data."""
    if test not in (SEQUENTIAL, SEQUENTIAL_LATENCY):
        raise InvalidInput(f"{test} is not a sequential test")
    (count_config if test == SEQUENTIAL else latency_config)(spec)  # bad settings fail every measurement
    joint = test == SEQUENTIAL and has_latency(spec)
    if joint:
        latency_config(spec)
        promote_on_latency_when_sparse(spec)
        sparse_rule(spec)
    start = earlier_start(test, earlier) if saved is None else None
    if saved is None and start is not None:
        state, used = primed_count_test(spec, *history) if test == SEQUENTIAL and history is not None else (None, 0)
        saved = SavedState(test, start, state if used else None)
    deltas, totals = _deltas(saved, answers)
    if saved is None:
        what = "error and request" if test == SEQUENTIAL else "latency histogram"
        verdict = _first_reading(test, f"{what} and latency histogram" if joint else what)
        if test != SEQUENTIAL or history is None:
            return verdict, SavedState(test, totals, None)
        state, used = primed_count_test(spec, *history)
        verdict.metadata["baselineHistory"] = f"{used} intervals"
        return verdict, SavedState(test, totals, state if used else None)
    if joint:
        return _joint_step(spec, saved, deltas, totals, measurements_left, count)
    if test == SEQUENTIAL:
        _, verdict, state = _count_step(spec, saved.state, deltas)
    else:
        _, verdict, state = _latency_step(spec, saved.state, deltas, count)
    return verdict, SavedState(test, totals, state)


def _joint_step(
    spec: Mapping[str, Any], saved: SavedState, deltas: Mapping[str, dict[str, float]], totals: Totals,
    measurements_left: int | None, count: int | None,
) -> tuple[Verdict, SavedState]:
    """Both tests on the same interval, one decision. A state saved without the latency part (a first
    reading before the latency queries were read) starts the latency test now: its counters' first
    reading is this one."""
    if "canary.latency" not in saved.totals:
        deltas = {k: v for k, v in deltas.items() if k not in ("canary.latency", "baseline.latency")}
    errors, errors_verdict, errors_state = _count_step(spec, saved.state, deltas)
    latency, latency_verdict, latency_state = _latency_step(spec, saved.latency, deltas, count)
    inputs = JointInputs(errors, errors_verdict.metadata, latency, latency_verdict.metadata)
    joint = joint_decision(
        inputs, count_config(spec), promote_on_latency_when_sparse(spec), measurements_left, sparse_rule(spec)
    )
    verdict = Verdict(joint.decision, joint.reason, errors.estimate, joint.metadata, joint.shortfall)
    return verdict, SavedState(SEQUENTIAL, totals, errors_state, latency_state)


def _sum(delta: Mapping[str, float]) -> float:
    """The increase of all series; NaN (a missing interval) when any is NaN; 0 without series."""
    return math.fsum(delta.values())


def _count_step(
    spec: Mapping[str, Any], state: dict[str, Any] | None, deltas: Mapping[str, dict[str, float]]
) -> tuple[SequentialResult, Verdict, dict[str, Any]]:
    test = CountTest(count_config(spec), CountTestState.from_dict(state) if state else None)
    ce, cr, be, br = (_sum(deltas.get(key, {})) for key in ("canary.errors", "canary.requests", "baseline.errors",
                                                              "baseline.requests"))
    result = test.update(ce, cr, be, br)
    counts = "canary {}/{} baseline {}/{} (errors/requests)".format(*(fmt(c) or "NaN" for c in (ce, cr, be, br)))
    meta = _sequential_metadata(result, SEQUENTIAL, counts)
    verdict = Verdict(result.decision, result.reason, result.estimate, meta, result.shortfall)
    return result, verdict, test.state.to_dict()


def _histogram(delta: Mapping[str, float], other: Mapping[str, float], what: str) -> dict[str, float] | None:
    """``le -> cumulative increase``; a side without series gets zeros on the other side's bounds."""
    if delta:
        return by_le(delta, what)
    if other:
        return dict.fromkeys(by_le(other, what), 0.0)
    return None


def _latency_step(
    spec: Mapping[str, Any], state: dict[str, Any] | None, deltas: Mapping[str, dict[str, float]],
    count: int | None = None,
) -> tuple[SequentialResult, Verdict, dict[str, Any]]:
    test = LatencyTest(latency_config(spec, count), LatencyTestState.from_dict(state) if state else None)
    canary, baseline = deltas.get("canary.latency", {}), deltas.get("baseline.latency", {})
    hc = _histogram(canary, baseline, "canary.latency")
    hb = _histogram(baseline, canary, "baseline.latency")
    if hc is not None and hb is not None and not any(hc.values()) and not any(hb.values()):
        hc = hb = None  # no request at all in this interval: nothing to compare
    try:
        result = test.update_histograms(hc, hb)
    except InvalidInput as exc:
        raise InvalidInput(f"latency histograms: {exc}") from None

    def total(h: Mapping[str, float] | None) -> str:
        if h is None:
            return "none"
        return fmt(max(h.values(), default=0.0))

    meta = _sequential_metadata(result, SEQUENTIAL_LATENCY, f"canary {total(hc)} baseline {total(hb)} requests")
    verdict = Verdict(result.decision, result.reason, result.estimate, meta, result.shortfall)
    return result, verdict, test.state.to_dict()


def mann_whitney_verdict(
    settings: MannWhitneySettings, canary: Sequence[float], baseline: Sequence[float], final: bool, window: str
) -> Verdict:
    """The Kayenta-style classification of the window's values, as a decision: a regression fails
    (at once with ``failEarly``, else at the final measurement); Pass passes at the final measurement
    only (a fixed-horizon test); too few points wait for data."""
    cfg = settings.metric
    x = clean_values(canary, cfg.nan_strategy, cfg.nan_replacement)
    y = clean_values(baseline, cfg.nan_strategy, cfg.nan_replacement)
    meta: dict[str, str] = {
        "test": "mann-whitney",
        "window": window,
        "canaryPoints": str(x.size),
        "baselinePoints": str(y.size),
        "samples": f"canary {x.size} points, baseline {y.size} points",
    }
    if x.size < settings.min_points or y.size < settings.min_points:
        reason = (
            f"waiting for data: canary {x.size}/{settings.min_points} and baseline "
            f"{y.size}/{settings.min_points} points (minPoints) in {window}"
        )
        decision = Decision.FAIL if final and cfg.must_have_data else Decision.NODATA
        if decision is Decision.FAIL:
            reason = f"no data (mustHaveData): canary {x.size} and baseline {y.size} points in {window}"
        meta.update(decision=decision.value, reason=reason)
        points = Shortfall("points", x.size, settings.min_points, y.size, settings.min_points)
        return Verdict(decision, reason, None, meta, points if decision is Decision.NODATA else None)
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float limits: inf estimates, shown
        result = classify(canary, baseline, cfg)
    level = f"{100 * cfg.conf_level:g}%"
    regression = result.classification in (Classification.HIGH, Classification.LOW)
    if regression:
        decision = Decision.FAIL if final or settings.fail_early else Decision.CONTINUE
    elif result.classification is Classification.PASS:
        decision = Decision.PASS if final else Decision.CONTINUE
    elif result.classification is Classification.NODATA_FAIL:
        decision = Decision.FAIL if final else Decision.NODATA
    else:
        decision = Decision.NODATA
    reason = result.reason
    if decision is Decision.CONTINUE:
        reason = f"no decision before the final measurement ({result.classification.value} so far): {reason}"
    elif decision is Decision.NODATA:
        reason = f"waiting for data: {reason}"
    meta.update(
        decision=decision.value,
        classification=result.classification.value,
        reason=reason,
        quantity=f"shift canary - baseline (Hodges-Lehmann, {level} confidence interval)",
        estimate=fmt(result.estimate),
        interval=_interval_text(result.interval),
        evidence=f"p-value {fmt(result.p_value)}, {cfg.effect_measure.value} {fmt(result.effect_size)}",
        pValue=fmt(result.p_value),
        effectSize=fmt(result.effect_size),
    )
    return Verdict(decision, reason, result.estimate, {k: v for k, v in meta.items() if v != ""})
