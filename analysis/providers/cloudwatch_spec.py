"""The spec check of ``provider.cloudWatch`` (pure; template validation imports it through the registry):
Argo's ``interval`` and ``metricDataQueries`` (``id``, ``expression`` or ``metricStat``, ``label``,
``period``, ``returnData``), and our ``region`` and ``timeout``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from analysis.providers.spec_checks import sigv4_problems, timeout_problem
from analysis.spec import SpecError, duration_seconds

__all__ = ["MAX_QUERIES", "cloudwatch_problems"]

#: GetMetricData takes at most 500 queries per call.
MAX_QUERIES: Final = 500
_ID: Final = re.compile(r"[a-z][a-zA-Z0-9_]*")


def _period_problem(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and "{{" in value):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or (value >= 60 and value % 60):
        return (f"{field}: Invalid value: {value!r}: a period in seconds: 1, 5, 10, 20, 30 or a multiple of 60")
    return None


def _metric_stat_problems(stat: Any, where: str) -> list[str]:
    if not isinstance(stat, Mapping):
        return [f"{where}: expected an object with metric, period and stat"]
    metric = stat.get("metric")
    problems = []
    if not isinstance(metric, Mapping) or not metric.get("metricName"):
        problems.append(f"{where}.metric.metricName: required")
    elif not isinstance(metric.get("dimensions") or [], list) or not all(
        isinstance(d, Mapping) and d.get("name") and d.get("value") is not None for d in metric.get("dimensions") or []
    ):
        problems.append(f"{where}.metric.dimensions: expected a list of {{name, value}}")
    if not stat.get("stat"):
        problems.append(f"{where}.stat: required (Average, Sum, Maximum, p99, ...)")
    if stat.get("period") is None:
        problems.append(f"{where}.period: required")
    problems.append(_period_problem(stat.get("period"), f"{where}.period") or "")
    return [p for p in problems if p]


def _query_problems(query: Any, where: str, ids: set[str]) -> list[str]:
    if not isinstance(query, Mapping):
        return [f"{where}: expected an object"]
    problems = []
    query_id = query.get("id")
    if not query_id:
        problems.append(f"{where}.id: required")
    elif "{{" not in str(query_id) and not _ID.fullmatch(str(query_id)):
        problems.append(f'{where}.id: Invalid value: "{query_id}": start with a lower-case letter, then letters, '
                        "digits or _")
    elif str(query_id) in ids:
        problems.append(f'{where}.id: Duplicate value: "{query_id}"')
    ids.add(str(query_id))
    has_expression, has_stat = bool(query.get("expression")), query.get("metricStat") is not None
    if has_expression == has_stat:
        problems.append(f"{where}: exactly one of expression and metricStat is required")
    if has_stat:
        problems += _metric_stat_problems(query["metricStat"], f"{where}.metricStat")
    problems.append(_period_problem(query.get("period"), f"{where}.period") or "")
    if query.get("returnData") is not None and not isinstance(query["returnData"], bool):
        problems.append(f"{where}.returnData: expected true or false")
    return [p for p in problems if p]


def cloudwatch_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    queries = spec.get("metricDataQueries")
    if not isinstance(queries, list) or not queries:
        return [f"{where}.metricDataQueries: required: a list of GetMetricData queries"]
    problems: list[str] = []
    if len(queries) > MAX_QUERIES:
        problems.append(f"{where}.metricDataQueries: at most {MAX_QUERIES} queries, got {len(queries)}")
    ids: set[str] = set()
    for i, query in enumerate(queries):
        problems += _query_problems(query, f"{where}.metricDataQueries[{i}]", ids)
    interval = spec.get("interval")
    if interval is not None and "{{" not in str(interval):
        try:
            duration_seconds(interval, f"{where}.interval")
        except SpecError as exc:
            problems.append(str(exc))
    problems.append(timeout_problem(spec.get("timeout"), f"{where}.timeout") or "")
    problems += sigv4_problems({k: v for k, v in spec.items() if k in ("region", "profile", "roleArn")}, where)
    return [p for p in problems if p]
