"""``provider.judge.source``: the metric provider the ``mann-whitney`` test reads its canary and baseline
series from instead of Prometheus, and the problems of that block, each naming its field (pure; no I/O).

::

    judge:
      test: mann-whitney
      source:
        graphite: {address: http://graphite:8080}   # or datadog, cloudWatch, influxdb, wavefront: their fields
      canary:   {query: "app.canary.errors"}        # in the source's own query language
      baseline: {query: "app.stable.errors"}

The sequential tests read counters through instant PromQL and remember them between measurements, which
the other services do not offer in one form: they keep reading Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from analysis.spec import SpecError, duration_seconds

__all__ = ["PROMETHEUS_FIELDS", "SOURCES", "SOURCE_FIELDS", "series_source", "source_problems", "timeout_seconds"]

#: Each source and the fields of its provider block that make sense without a query: where it is and how to
#: sign in. The query itself is ``canary.query`` / ``baseline.query``; the window is the judge's.
SOURCE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "datadog": ("secretRef", "requestTimeout"),
    "cloudWatch": ("region", "profile", "roleArn", "timeout"),
    "graphite": ("address", "timeout"),
    "influxdb": ("profile", "timeout"),
    "wavefront": ("address", "timeout"),
    "newRelic": ("profile", "timeout"),
    "skywalking": ("address", "timeout"),
}
SOURCES: Final = tuple(SOURCE_FIELDS)
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "graphite": ("address",), "wavefront": ("address",), "skywalking": ("address",),
}
#: Timeouts as their providers write them: Datadog's a Go duration, the others seconds.
_DURATION_TIMEOUTS: Final = ("requestTimeout",)
_SECONDS_TIMEOUTS: Final = ("timeout",)
#: The judge's own Prometheus connection fields, which a source makes meaningless.
PROMETHEUS_FIELDS: Final = ("address", "insecure", "headers", "authentication")
_QUERY_LANGUAGE: Final[Mapping[str, str]] = {
    "datadog": "a Datadog metrics query, e.g. avg:trace.http.request.errors{version:canary}.as_rate()",
    "cloudWatch": "a CloudWatch metric math or Metrics Insights expression",
    "graphite": "a Graphite target, e.g. app.canary.errors",
    "influxdb": "a Flux query; its range is range(start: v.timeRangeStart, stop: v.timeRangeStop)",
    "wavefront": 'a Wavefront query, e.g. ts("errors.rate", version="canary")',
    "newRelic": "an NRQL query of one aggregate, e.g. SELECT average(duration) FROM Transaction WHERE appVersion = "
                "'canary', without SINCE, UNTIL or TIMESERIES",
    "skywalking": "a GraphQL query over $duration: Duration!, e.g. readMetricsValues(condition: {...}, "
                  "duration: $duration) { values { values { value } } }",
}
#: NRQL clauses the judge appends itself (its window and step): a query carrying one would repeat it.
_NRQL_WINDOW: Final = re.compile(r"\b(SINCE|UNTIL|TIMESERIES)\b", re.IGNORECASE)


def series_source(spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(source kind, its settings) of a judge spec, or None when it reads Prometheus. Assumes a checked spec."""
    source = spec.get("source")
    if not isinstance(source, Mapping) or len(source) != 1:
        return None
    kind, settings = next(iter(source.items()))
    return str(kind), settings if isinstance(settings, Mapping) else {}


def timeout_seconds(settings: Mapping[str, Any], key: str, default: float, where: str) -> float:
    """The source's timeout ``key`` in seconds (``default`` when unset); SpecError names ``where.key``."""
    value = settings.get(key)
    if value is None or value == "":
        return default
    if key in _DURATION_TIMEOUTS:
        seconds = duration_seconds(value, f"{where}.{key}")
    else:
        try:
            seconds = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise SpecError(f"{where}.{key}: expected a {'duration' if key in _DURATION_TIMEOUTS else 'number of seconds'} "
                        f"above 0, got {value!r}")
    return seconds


def _timeout_problems(settings: Mapping[str, Any], at: str) -> list[str]:
    problems: list[str] = []
    for key in (*_DURATION_TIMEOUTS, *_SECONDS_TIMEOUTS):
        if key not in settings or "{{" in str(settings[key]):  # templated: checked once the run has its args
            continue
        try:
            timeout_seconds(settings, key, 1.0, at)
        except SpecError as exc:
            problems.append(str(exc))
    return problems


def _nrql_window_problems(spec: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for side in ("canary", "baseline"):
        block = spec.get(side)
        query = str(block.get("query") or "") if isinstance(block, Mapping) else ""
        clause = _NRQL_WINDOW.search(query)
        if clause:
            problems.append(f"{where}.{side}.query: {clause.group(1).upper()}: the judge appends SINCE, UNTIL and "
                            "TIMESERIES from its window and rangeQuery.step: remove it from the query")
    return problems


def source_problems(spec: Mapping[str, Any], where: str, test: str) -> list[str]:
    """What is wrong with ``source`` (and the Prometheus fields beside it) for ``test``."""
    source = spec.get("source")
    if source is None:
        return []
    supported = ", ".join(SOURCES)
    if not isinstance(source, Mapping) or len(source) != 1:
        return [f"{where}.source: expected an object with exactly one of {supported}"]
    if test != "mann-whitney":
        return [
            f"{where}.source: only test: mann-whitney reads another provider's series (the sequential tests "
            "read Prometheus counters): remove source or set test: mann-whitney"
        ]
    kind, settings = next(iter(source.items()))
    if kind not in SOURCE_FIELDS:
        return [f"{where}.source.{kind}: not a series source (supported: {supported})"]
    at = f"{where}.source.{kind}"
    if not isinstance(settings, Mapping):
        return [f"{at}: expected an object with {', '.join(SOURCE_FIELDS[kind])}"]
    problems = [
        f"{at}.{key}: unknown field (known: {', '.join(SOURCE_FIELDS[kind])}; the query goes in canary.query "
        f"and baseline.query: {_QUERY_LANGUAGE[kind]})"
        for key in sorted(set(settings) - set(SOURCE_FIELDS[kind]))
    ]
    problems += [f"{at}.{key}: required" for key in _REQUIRED.get(kind, ()) if not settings.get(key)]
    problems += _timeout_problems(settings, at)
    if kind == "newRelic":
        problems += _nrql_window_problems(spec, where)
    problems += [
        f"{where}.{key}: a Prometheus setting, unused when the series come from source.{kind}: remove it"
        for key in PROMETHEUS_FIELDS
        if spec.get(key) is not None
    ]
    return problems
