"""The spec checks of the hosted-service providers: ``provider.datadog``, ``provider.newRelic``,
``provider.wavefront``, ``provider.skywalking``. Pure (template validation imports them through
:mod:`analysis.providers.registry`); each problem names its field and says what to write instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from analysis.providers.spec_checks import MAX_TIMEOUT_SECONDS, url_problem
from analysis.spec import SpecError, duration_seconds

__all__ = [
    "DATADOG_AGGREGATORS",
    "MAX_NRQL_TIMEOUT",
    "datadog_problems",
    "newrelic_problems",
    "skywalking_problems",
    "wavefront_problems",
]

#: What Datadog's v2 scalar query accepts as ``aggregator`` (Argo's list).
DATADOG_AGGREGATORS: Final = ("avg", "min", "max", "sum", "last", "percentile", "mean", "l2norm", "area")
#: The longest NRQL timeout NerdGraph accepts for a synchronous query (seconds).
MAX_NRQL_TIMEOUT: Final = 120


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def duration_problem(value: Any, field: str, *, positive: bool = False, most: float | None = None) -> str | None:
    """Why ``value`` is no Go duration (or not within (0, ``most``]), or None (unset or templated)."""
    if value is None or _templated(value):
        return None
    try:
        seconds = duration_seconds(value, field)
    except SpecError as exc:
        return str(exc)
    if positive and (seconds is None or seconds <= 0):
        return f'{field}: Invalid value: "{value}": must be a positive duration such as 30s'
    if most is not None and seconds is not None and seconds > most:
        return f'{field}: Invalid value: "{value}": at most {most:g}s'
    return None


def _text_problem(spec: Mapping[str, Any], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        return f"{where}.{key}: Invalid value: {value!r}: must be a string"
    return None


def datadog_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    """Argo's ``validateIncomingProps``, at template time, with the field named."""
    problems: list[str | None] = [
        _text_problem(spec, key, where) for key in ("query", "formula", "apiVersion", "aggregator")
    ]
    problems += _datadog_query_problems(spec, where)
    problems.append(_datadog_aggregator_problem(spec, where))
    problems.append(duration_problem(spec.get("interval"), f"{where}.interval", positive=True))
    problems.append(
        duration_problem(spec.get("requestTimeout"), f"{where}.requestTimeout", positive=True, most=MAX_TIMEOUT_SECONDS)
    )
    ref = spec.get("secretRef")
    if ref is not None and not isinstance(ref, Mapping):
        problems.append(f"{where}.secretRef: expected an object with name and namespaced")
    elif ref and ref.get("namespaced") and not ref.get("name"):
        problems.append(f"{where}.secretRef.name: secret name is required for namespaced credentials")
    return [p for p in problems if p]


def _datadog_query_problems(spec: Mapping[str, Any], where: str) -> list[str | None]:
    """``query`` xor ``queries``; ``formula`` with (several) queries; ``queries`` need ``apiVersion: v2``."""
    query, queries, formula = spec.get("query"), spec.get("queries"), spec.get("formula")
    version = spec.get("apiVersion") or "v1"
    problems: list[str | None] = []
    if queries is not None and (
        not isinstance(queries, Mapping) or not all(isinstance(v, str) and v for v in queries.values())
    ):
        problems.append(f"{where}.queries: must map names to Datadog queries, such as {{a: sum:requests{{*}}}}")
        queries = None
    if not query and not queries:
        problems.append(f"{where}.query: must have either a query or queries")
    if query and queries:
        problems.append(f"{where}.queries: cannot have both a query and queries: keep one")
    if version not in ("v1", "v2") and not _templated(version):
        problems.append(f'{where}.apiVersion: Unsupported value: "{version}": supported values: "v1", "v2"')
    if version == "v1" and queries:
        problems.append(f"{where}.queries: API version v1 only supports the query field: set apiVersion: v2")
    if formula and not queries:
        problems.append(f"{where}.formula: a formula is only valid with queries")
    if not formula and isinstance(queries, Mapping) and len(queries) > 1:
        problems.append(f"{where}.formula: required when several queries are given (which one would be the result?)")
    return problems


def _datadog_aggregator_problem(spec: Mapping[str, Any], where: str) -> str | None:
    aggregator = spec.get("aggregator")
    if aggregator and (spec.get("apiVersion") or "v1") == "v1":
        return f"{where}.aggregator: not supported with apiVersion v1: set apiVersion: v2"
    if aggregator and not _templated(aggregator) and aggregator not in DATADOG_AGGREGATORS:
        allowed = ", ".join(DATADOG_AGGREGATORS)
        return f'{where}.aggregator: Unsupported value: "{aggregator}": supported values: {allowed}'
    return None


def _int_problem(value: Any, field: str, least: int, most: int, fix: str) -> str | None:
    if value is None or _templated(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        return f"{field}: Invalid value: {value!r}: {fix}"
    return None


def newrelic_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [_text_problem(spec, key, where) for key in ("query", "profile")]
    if not spec.get("query"):
        problems.append(f"{where}.query: required: an NRQL query such as FROM Transaction SELECT count(*)")
    problems.append(_int_problem(spec.get("timeout"), f"{where}.timeout", 0, MAX_NRQL_TIMEOUT,
                                 f"must be a number of seconds from 0 to {MAX_NRQL_TIMEOUT} (NerdGraph's limit)"))
    return [p for p in problems if p]


def wavefront_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [_text_problem(spec, key, where) for key in ("query", "address")]
    if not spec.get("query"):
        problems.append(f'{where}.query: required: a Wavefront query such as ts("requests.count")')
    if not spec.get("address"):
        problems.append(f"{where}.address: required: the Wavefront host, such as example.wavefront.com")
    return [p for p in problems if p]


def skywalking_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [_text_problem(spec, key, where) for key in ("query", "address", "interval")]
    if not spec.get("query"):
        problems.append(f"{where}.query: required: a GraphQL query taking $duration: Duration!")
    if not spec.get("address"):
        problems.append(f"{where}.address: required: the OAP server, such as http://skywalking-oap:12800")
    else:
        problems.append(url_problem(spec["address"], f"{where}.address"))
    if not spec.get("interval"):
        problems.append(f"{where}.interval: required: how far back the query's $duration reaches, such as 5m")
    else:
        problems.append(duration_problem(spec["interval"], f"{where}.interval", positive=True))
    return [p for p in problems if p]
