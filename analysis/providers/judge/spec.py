"""``provider.judge`` settings: the spec's fields turned into the statistical tests' configurations,
and the problems ``validate_metrics`` reports, each naming its field (pure; no I/O).

Tests (``test:``):

* ``sequential`` (default): anytime-valid test of error counts (:class:`analysis.stats.CountTest`);
  queries ``canary.errors``, ``canary.requests``, ``baseline.errors``, ``baseline.requests``; optionally
  also ``canary.latency`` and ``baseline.latency``: then the latency test runs beside it and both must
  pass, or, with ``promoteOnLatencyWhenSparse``, the latency test's pass promotes where error counts are
  too sparse (:mod:`analysis.providers.judge.joint`).
* ``sequential-latency``: anytime-valid test of latency histograms (:class:`analysis.stats.LatencyTest`);
  queries ``canary.latency``, ``baseline.latency`` (a histogram's ``_bucket`` counter).
* ``mann-whitney``: the fixed-horizon Kayenta-style judge (:func:`analysis.stats.classify`) over the
  values of range queries ``canary.query``, ``baseline.query``.

The sequential tests' queries return counters (cumulative totals); the provider takes their increase
between measurements itself, so consecutive intervals neither overlap nor leave gaps.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from analysis.phases import effective_count
from analysis.providers.judge.fields import (
    MAX_HORIZON,
    JudgeSpecError,
    at_least_zero,
    boolean,
    converted,
    field,
    field_kwargs,
    field_names,
    intervals,
    number,
    one_of,
    positive,
    probability,
    real,
    whole,
)
from analysis.providers.judge.source_spec import source_problems
from analysis.spec import SpecError, duration_seconds
from analysis.stats import CountTestConfig, InvalidInput, LatencyTestConfig, MetricConfig
from analysis.stats.mannwhitney import EffectSizeMeasure, NaNStrategy
from analysis.stats.sequential_latency import DEFAULT_PASS_HORIZON
from analysis.stats.sparse_errors import SparseRule
from analysis.stats.types import Direction

__all__ = [
    "COUNT_QUERIES",
    "DEFAULT_BASELINE_HISTORY",
    "LATENCY_QUERIES",
    "MANN_WHITNEY",
    "MW_QUERIES",
    "SEQUENTIAL",
    "SEQUENTIAL_LATENCY",
    "TESTS",
    "JudgeSpecError",
    "MannWhitneySettings",
    "baseline_history_seconds",
    "count_config",
    "has_latency",
    "latency_config",
    "mann_whitney_settings",
    "promote_on_latency_when_sparse",
    "queries",
    "sparse_rule",
    "spec_problems",
    "test_name",
]

SEQUENTIAL: Final = "sequential"
SEQUENTIAL_LATENCY: Final = "sequential-latency"
MANN_WHITNEY: Final = "mann-whitney"
TESTS: Final = (SEQUENTIAL, SEQUENTIAL_LATENCY, MANN_WHITNEY)

COUNT_QUERIES: Final = (("canary", "errors"), ("canary", "requests"), ("baseline", "errors"), ("baseline", "requests"))
LATENCY_QUERIES: Final = (("canary", "latency"), ("baseline", "latency"))
MW_QUERIES: Final = (("canary", "query"), ("baseline", "query"))
_QUERIES: Final = {SEQUENTIAL: COUNT_QUERIES, SEQUENTIAL_LATENCY: LATENCY_QUERIES, MANN_WHITNEY: MW_QUERIES}

# "negbin": clustering bounded from the baseline's own counts (default); "t": the older model-free guard.
COUNT_GUARDS: Final = ("negbin", "t")
_CONNECTION: Final = (
    "test", "address", "timeout", "insecure", "headers", "authentication", "canary", "baseline", "source",
)
# The settings that map one field to configuration arguments: (field, parser and range, arguments).
# Both sequential tests' error-count settings (CountTestConfig; margin >= failRatio is checked after).
_SEQUENTIAL_SETTINGS: Final = (
    field("alpha", probability, "alpha_fail"),
    field("alphaPass", probability, "alpha_pass"),
    field("margin", positive, "pass_ratio"),
    field("failRatio", positive, "fail_ratio"),
    field("minRequests", at_least_zero, "min_canary_requests", "min_baseline_requests"),
    field("minIntervals", whole(1), "min_intervals"),
    field("dispersion", real("must be >= 1 (1: Poisson counts)", lambda v: v >= 1.0), "dispersion"),
)
# The count test's guard against clustered errors (CountTestConfig).
_GUARD_SETTINGS: Final = (
    field("guard", one_of(COUNT_GUARDS, wording="expected"), "guard"),
    field("dispersionLevel", probability, "dispersion_level"),
)
# The negbin guard's cautious window for the canary's own clustering (CountTestConfig).
_CANARY_DISPERSION_SETTINGS: Final = (
    field("canaryDispersionIntervals", whole(0, 1000, "intervals; 0: assume the canary clusters like the baseline"),
          "canary_dispersion_intervals"),
    field("canaryDispersionEvents", at_least_zero, "canary_dispersion_events"),
)
# The latency test's pass set and FAIL portfolio (LatencyTestConfig; passHorizon's default follows the count).
_LATENCY_SETTINGS: Final = (
    field("passHorizon", intervals, "pass_horizon"),
    field("passMinInformation", at_least_zero, "pass_min_information"),
    field("passCheckInformation", at_least_zero, "pass_check_information"),
    field("failMinInformation", at_least_zero, "fail_min_information"),
    field("failFloor", real("must be in (0, 1] (the share of its first stake every bound keeps; 1: equal weights)",
                            lambda v: 0.0 < v <= 1.0), "fail_floor"),
)
# The rule of promoteOnLatencyWhenSparse (SparseRule).
_SPARSE_SETTINGS: Final = (
    field("sparseErrorsPower", probability, "power"),
    field("sparseErrorsMaxFailEvidence", positive, "max_fail_evidence"),
    field("sparseErrorsHorizon", intervals, "horizon"),
)
_SEQUENTIAL_FIELDS: Final = field_names(_SEQUENTIAL_SETTINGS)
_CANARY_DISPERSION_FIELDS: Final = field_names(_CANARY_DISPERSION_SETTINGS)
_LATENCY_FIELDS: Final = ("buckets", *field_names(_LATENCY_SETTINGS))
_SPARSE_FIELDS: Final = field_names(_SPARSE_SETTINGS)
_FIELDS: Final = {
    SEQUENTIAL: (
        *_CONNECTION, *_SEQUENTIAL_FIELDS, *field_names(_GUARD_SETTINGS), *_CANARY_DISPERSION_FIELDS,
        "baselineHistory", *_LATENCY_FIELDS, "promoteOnLatencyWhenSparse", *_SPARSE_FIELDS,
    ),
    SEQUENTIAL_LATENCY: (*_CONNECTION, *_SEQUENTIAL_FIELDS, *_LATENCY_FIELDS),
    MANN_WHITNEY: (
        *_CONNECTION, "alpha", "direction", "nanStrategy", "nanReplacement", "removeOutliers", "outlierFactor",
        "effectSize", "mustHaveData", "minPoints", "failEarly", "rangeQuery",
    ),
}
# The mann-whitney test's settings that map one field to MetricConfig's arguments.
_MANN_WHITNEY_SETTINGS: Final = (
    field("alpha", converted(probability, lambda alpha: 1.0 - alpha), "conf_level"),
    field("direction", converted(one_of(tuple(d.value for d in Direction)), Direction), "direction"),
    field("nanStrategy", converted(one_of(tuple(s.value for s in NaNStrategy)), NaNStrategy), "nan_strategy"),
    field("nanReplacement", number, "nan_replacement"),
    field("outlierFactor", positive, "outlier_factor"),
)
_EFFECT_SETTINGS: Final = (
    field("measure", converted(one_of(tuple(m.value for m in EffectSizeMeasure)), EffectSizeMeasure),
          "effect_measure"),
    field("allowedIncrease", positive, "allowed_increase"),
    field("allowedDecrease", positive, "allowed_decrease"),
)
_EFFECT_FIELDS: Final = field_names(_EFFECT_SETTINGS)
_RANGE_FIELDS: Final = ("start", "end", "step")
# Functions that turn a counter into a rate or an increase: the sequential tests want the counter itself.
_RATE_FUNCTIONS: Final = re.compile(r"\b(rate|irate|increase|delta|idelta|deriv)\s*\(")
_PLACEHOLDER: Final = re.compile(r"\{\{.*?\}\}")


def test_name(spec: Mapping[str, Any]) -> str:
    return str(spec.get("test") or SEQUENTIAL)


def has_latency(spec: Mapping[str, Any]) -> bool:
    """Whether a ``sequential`` spec carries a latency query (``canary.latency`` or ``baseline.latency``):
    then it needs both, and the latency test runs beside the error-rate test."""
    return test_name(spec) == SEQUENTIAL and any(
        isinstance(spec.get(side), Mapping) and spec[side].get("latency") is not None for side in ("canary", "baseline")
    )


SPARSE_FLAG: Final = "promoteOnLatencyWhenSparse"


def promote_on_latency_when_sparse(spec: Mapping[str, Any]) -> bool:
    """``promoteOnLatencyWhenSparse`` (default false); JudgeSpecError names the field."""
    return boolean(spec, SPARSE_FLAG, False)


def sparse_rule(spec: Mapping[str, Any]) -> SparseRule:
    """The settings of ``promoteOnLatencyWhenSparse``'s rule (``sparseErrorsPower``,
    ``sparseErrorsMaxFailEvidence``, ``sparseErrorsHorizon``); JudgeSpecError names the bad field."""
    rule: SparseRule = _config(SparseRule, **field_kwargs(spec, _SPARSE_SETTINGS))
    return rule


def _wanted(spec: Mapping[str, Any], test: str) -> tuple[tuple[str, str], ...]:
    """(side, what) of the queries the test reads: a ``sequential`` spec with latency queries reads both kinds."""
    if test == SEQUENTIAL and has_latency(spec):
        return (*COUNT_QUERIES, *LATENCY_QUERIES)
    return _QUERIES[test]


def queries(spec: Mapping[str, Any], test: str) -> list[tuple[str, str, str]]:
    """(side, what, PromQL) of every query the test needs; JudgeSpecError names a missing one."""
    out = []
    for side, what in _wanted(spec, test):
        block = spec.get(side)
        query = block.get(what) if isinstance(block, Mapping) else None
        if not query or not isinstance(query, str):
            raise JudgeSpecError(f"{side}.{what}: required ({_QUERY_HELP[what]})")
        out.append((side, what, query))
    return out


_QUERY_HELP: Final = {
    "errors": "a counter of failed requests, e.g. http_requests_total{...,code=~\"5..\"}",
    "requests": "a counter of all requests, e.g. http_requests_total{...}",
    "latency": "a histogram's bucket counter, e.g. http_request_duration_seconds_bucket{...}",
    "query": "PromQL (or the source's query language) whose values over the window are compared, e.g. an error ratio",
}


def _sequential_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = field_kwargs(spec, _SEQUENTIAL_SETTINGS)
    margin, fail = kwargs.get("pass_ratio", 1.5), kwargs.get("fail_ratio", 1.0)
    if margin < fail:
        raise JudgeSpecError(
            f"margin: must be >= failRatio ({fail:g}), got {margin:g}: a canary whose ratio lies between "
            "them could never pass nor fail"
        )
    return kwargs


def _config(build: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return build(*args, **kwargs)
    except InvalidInput as exc:
        raise JudgeSpecError(str(exc)) from None


def count_config(spec: Mapping[str, Any]) -> CountTestConfig:
    """The ``sequential`` test's settings; JudgeSpecError names the bad field."""
    kwargs = {
        **_sequential_kwargs(spec), **field_kwargs(spec, _GUARD_SETTINGS),
        **field_kwargs(spec, _CANARY_DISPERSION_SETTINGS),
    }
    config: CountTestConfig = _config(CountTestConfig, **kwargs)
    return config


# How much of the stable version's past the ``sequential`` test reads at its first measurement to bound
# how much errors cluster (benchmark: 2x errors at 10% share decided in about half the time).
DEFAULT_BASELINE_HISTORY: Final = "24h"


def baseline_history_seconds(spec: Mapping[str, Any]) -> float:
    """Seconds of the baseline's history to read (``baselineHistory``; 0 = none); JudgeSpecError
    names the field."""
    value = spec.get("baselineHistory", DEFAULT_BASELINE_HISTORY)
    if value in (0, "0"):
        return 0.0
    try:
        seconds = duration_seconds(value, "baselineHistory")
    except SpecError as exc:
        raise JudgeSpecError(f"{exc} (or 0 to not read the stable version's history)") from None
    return seconds or 0.0


def latency_config(spec: Mapping[str, Any], count: int | None = None) -> LatencyTestConfig:
    """The ``sequential-latency`` test's settings (the latency test's own grid, the user's alphas and
    ratios, its pass set and FAIL portfolio); the pass horizon is ``passHorizon``, else the metric's
    ``count`` (the analysis judges at most that many intervals), else ``DEFAULT_PASS_HORIZON``.
    JudgeSpecError names the bad field."""
    base = LatencyTestConfig()
    counts = _config(dataclasses.replace, base.counts, **_sequential_kwargs(spec))
    raw = spec.get("buckets")
    buckets: tuple[float, ...] | None = None
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise JudgeSpecError(f"buckets: expected a list of bucket bounds in seconds, got {raw!r}")
        try:
            values = [number({"buckets": b}, "buckets") for b in raw]
        except JudgeSpecError:
            raise JudgeSpecError(f"buckets: expected numbers (seconds), got {raw!r}") from None
        bounds = [v for v in values if v is not None]
        if len(bounds) != len(raw) or bounds[0] <= 0 or any(b >= a for b, a in itertools.pairwise(bounds)):
            raise JudgeSpecError(f"buckets: expected increasing bounds > 0 (seconds), got {raw!r}")
        buckets = tuple(bounds)
    config: LatencyTestConfig = _config(
        LatencyTestConfig, buckets=buckets, counts=counts,
        **{"pass_horizon": _default_pass_horizon(count), **field_kwargs(spec, _LATENCY_SETTINGS)},
    )
    return config


def _default_pass_horizon(count: int | None) -> int:
    if count is not None and count >= 1:
        return min(count, MAX_HORIZON)
    return DEFAULT_PASS_HORIZON


@dataclass(frozen=True)
class MannWhitneySettings:
    metric: MetricConfig
    min_points: int = 10
    fail_early: bool = True
    range_start: str | None = None  # None: the AnalysisRun's start
    range_end: str = "now()"
    step: str | None = None  # None: the metric's interval, else 1m


def mann_whitney_settings(spec: Mapping[str, Any], metric_name: str = "metric") -> MannWhitneySettings:
    """The ``mann-whitney`` test's settings; JudgeSpecError names the bad field."""
    kwargs: dict[str, Any] = {"name": metric_name, **field_kwargs(spec, _MANN_WHITNEY_SETTINGS)}
    kwargs["remove_outliers"] = boolean(spec, "removeOutliers", False)
    kwargs["must_have_data"] = boolean(spec, "mustHaveData", False)
    kwargs.update(_effect_size_kwargs(spec.get("effectSize")))
    min_points = whole(2)(spec, "minPoints")
    window = _range_window(spec)
    step = window.get("step")
    metric: MetricConfig = _config(MetricConfig, **kwargs)
    return MannWhitneySettings(
        metric=metric,
        min_points=10 if min_points is None else min_points,
        fail_early=boolean(spec, "failEarly", True),
        range_start=None if window.get("start") is None else str(window["start"]),
        range_end=str(window.get("end") or "now()"),
        step=None if step is None else str(step),
    )


def _effect_size_kwargs(effect: Any) -> dict[str, Any]:
    """``effectSize`` as MetricConfig's arguments; JudgeSpecError names the bad field."""
    if effect is None:
        return {}
    if not isinstance(effect, Mapping):
        raise JudgeSpecError(f"effectSize: expected an object, got {effect!r}")
    unknown = sorted(set(effect) - set(_EFFECT_FIELDS))
    if unknown:
        raise JudgeSpecError(f"effectSize.{unknown[0]}: unknown field (known: {', '.join(_EFFECT_FIELDS)})")
    return field_kwargs(effect, _EFFECT_SETTINGS, "effectSize.")


def _range_window(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``rangeQuery`` (start, end, step), checked; JudgeSpecError names the bad field."""
    window = spec.get("rangeQuery") or {}
    if not isinstance(window, Mapping):
        raise JudgeSpecError(f"rangeQuery: expected an object with start, end, step, got {window!r}")
    unknown = sorted(set(window) - set(_RANGE_FIELDS))
    if unknown:
        raise JudgeSpecError(f"rangeQuery.{unknown[0]}: unknown field (known: {', '.join(_RANGE_FIELDS)})")
    step = window.get("step")
    if step is not None and not _PLACEHOLDER.search(str(step)):
        try:
            seconds = duration_seconds(step, "rangeQuery.step")
        except SpecError as exc:
            raise JudgeSpecError(str(exc)) from None
        if not seconds:
            raise JudgeSpecError(f"rangeQuery.step: must be longer than 0, got {step!r}")
    return window


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return isinstance(value, str) and bool(_PLACEHOLDER.search(value))


def _window_problem(spec: Mapping[str, Any], metric: Mapping[str, Any], settings: MannWhitneySettings) -> str | None:
    """With the default window (since the run started, one point per interval), measurement k sees
    about k - 1 points of a canary that started with the run: a ``count`` not above ``minPoints``
    ends Inconclusive every time."""
    if settings.range_start is not None or (settings.step is not None and settings.step != metric.get("interval")):
        return None
    count = metric.get("count")
    if isinstance(count, bool) or not isinstance(count, int | str) or not str(count).isdigit():
        return None
    if int(count) > settings.min_points:
        return None
    return (
        f"minPoints: must be below the metric's count ({count}), got {settings.min_points}: with the default "
        "window (since the run started, one point per interval) the final measurement sees about count - 1 "
        "points per version; raise count, lower minPoints or set rangeQuery.start"
    )


def _count_problem(metric: Mapping[str, Any], config: CountTestConfig) -> str | None:
    """A sequential test decides nothing at its first measurement (it reads the counters) nor before
    ``minIntervals`` intervals with traffic: a smaller ``count`` can only end Inconclusive."""
    if _has_placeholder(metric.get("count")):
        return None
    try:
        count = effective_count(metric)
    except ValueError:
        return None  # validate_metrics reports the count itself
    if count is None or count > config.min_intervals:
        return None
    return (
        f"count: a sequential judge needs more than minIntervals ({config.min_intervals}) measurements (the "
        f"first only reads the counters), got {count}; raise count, or set an interval without count"
    )


def _unbounded(metric: Mapping[str, Any]) -> bool:
    if _has_placeholder(metric.get("count")):
        return False
    try:
        return effective_count(metric) is None
    except ValueError:
        return False


def spec_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with a ``provider.judge`` spec (of ``metric``), each naming its field (for
    validate_metrics)."""
    test = test_name(spec)
    if test not in TESTS:
        return [f'{where}.test: "{test}" is not a judge test (supported: {", ".join(TESTS)})']
    return [
        *_unknown_fields(spec, where, test),
        *_query_problems(spec, where, test),
        *source_problems(spec, where, test),
        *_timeout_problems(spec, where),
        *_settings_problems(spec, where, test, metric),
    ]


def _unknown_fields(spec: Mapping[str, Any], where: str, test: str) -> list[str]:
    problems: list[str] = []
    for key in sorted(set(spec) - set(_FIELDS[test])):
        problems.append(f"{where}.{key}: unknown field for test {test} (known: {', '.join(_FIELDS[test])})")
    for side in ("canary", "baseline"):
        if spec.get(side) is not None and not isinstance(spec.get(side), Mapping):
            problems.append(f"{where}.{side}: expected an object with the {side}'s queries")
            continue
        known = [what for s, what in (*_QUERIES[test], *(LATENCY_QUERIES if test == SEQUENTIAL else ()))
                 if s == side]
        for key in sorted(set(spec.get(side) or {}) - set(known)):
            problems.append(f"{where}.{side}.{key}: unknown query for test {test} (known: {', '.join(known)})")
    return problems


def _query_problems(spec: Mapping[str, Any], where: str, test: str) -> list[str]:
    problems: list[str] = []
    for side, what in _wanted(spec, test):
        block = spec.get(side)
        query = block.get(what) if isinstance(block, Mapping) else None
        if not query or not isinstance(query, str):
            problems.append(f"{where}.{side}.{what}: required ({_QUERY_HELP[what]})")
        elif test != MANN_WHITNEY and (found := _RATE_FUNCTIONS.search(query)) is not None:
            problems.append(
                f"{where}.{side}.{what}: give the counter itself, not {found.group(1)}(): "
                "the judge takes each series' increase between measurements"
            )
    return problems


def _timeout_problems(spec: Mapping[str, Any], where: str) -> list[str]:
    if spec.get("timeout") is not None and not _has_placeholder(spec.get("timeout")):
        try:
            positive(spec, "timeout")
        except JudgeSpecError as exc:
            return [f"{where}.{exc}"]
    return []


def _settings_problems(spec: Mapping[str, Any], where: str, test: str, metric: Mapping[str, Any] | None) -> list[str]:
    """The test's settings (unless templated), and whether the metric's count lets the test decide."""
    settings = {k: v for k, v in spec.items() if k not in _CONNECTION}
    if _has_placeholder(settings):
        return []
    problems: list[str] = []
    try:
        if test in (SEQUENTIAL, SEQUENTIAL_LATENCY):
            config = count_config(spec) if test == SEQUENTIAL else latency_config(spec).counts
            if test == SEQUENTIAL:
                baseline_history_seconds(spec)
                problems.extend(f"{where}.{p}" for p in _canary_dispersion_problems(spec, config))
                problems.extend(f"{where}.{p}" for p in _latency_problems(spec))
            count = _count_problem(metric or {}, config) if metric is not None else None
            if count is not None:
                problems.append(f"{where.rsplit('.provider', 1)[0]}.{count}")
        else:
            mw = mann_whitney_settings(spec)
            window = _window_problem(spec, metric or {}, mw)
            if window is not None:
                problems.append(f"{where}.{window}")
            if metric is not None and not mw.fail_early and _unbounded(metric):
                problems.append(
                    f"{where}.failEarly: false needs a count: without one there is no final measurement, "
                    "so the judge would never decide"
                )
    except JudgeSpecError as exc:
        problems.append(f"{where}.{exc}")
    return problems


def _canary_dispersion_problems(spec: Mapping[str, Any], config: CountTestConfig) -> list[str]:
    """``canaryDispersionIntervals`` / ``canaryDispersionEvents`` set where no test reads them: only the
    negbin guard estimates the canary's own clustering."""
    if config.uses_history:
        return []
    return [
        f"{key}: only used by the negbin guard (guard: negbin, without dispersion), which estimates the canary's "
        f"own clustering; remove {key}, or remove dispersion and guard"
        for key in _CANARY_DISPERSION_FIELDS if spec.get(key) is not None
    ]


def _latency_problems(spec: Mapping[str, Any]) -> list[str]:
    """A ``sequential`` spec's latency part: ``buckets`` and ``promoteOnLatencyWhenSparse`` need the latency
    queries (their absence is named here; a half pair is named by the query check)."""
    problems: list[str] = []
    flag = promote_on_latency_when_sparse(spec)
    sparse_rule(spec)
    if not flag:
        problems.extend(
            f"{key}: only used with {SPARSE_FLAG}: true; set it, or remove {key}"
            for key in _SPARSE_FIELDS if spec.get(key) is not None
        )
    if has_latency(spec):
        latency_config(spec)
    else:
        problems.extend(
            f"{key}: only used with the latency queries canary.latency and baseline.latency; add them, or remove {key}"
            for key in _LATENCY_FIELDS if key != "buckets" and spec.get(key) is not None
        )
        if flag:
            problems.append(
                f"{SPARSE_FLAG}: needs the latency queries canary.latency and baseline.latency (a histogram's "
                "bucket counter, e.g. http_request_duration_seconds_bucket{...}): the latency test's pass is what "
                f"promotes when error counts are too sparse; add both queries, or remove {SPARSE_FLAG}"
            )
        if spec.get("buckets") is not None:
            problems.append(
                "buckets: only used with the latency queries canary.latency and baseline.latency; add them, "
                "or remove buckets"
            )
    return problems
