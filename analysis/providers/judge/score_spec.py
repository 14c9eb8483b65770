"""``provider.judge`` as a multi-metric score (Kayenta's canary config): the fields turned into a
:class:`ScoreSpec`, and the problems ``validate_metrics`` reports, each naming its field and the fix
(pure; no I/O).

::

    judge:
      address: http://prom:9090          # timeout, insecure, headers, authentication: once, for every metric
      metrics:                           # Kayenta's metrics[]: each one a judge spec of its own
        - name: error-rate
          groups: [errors]               # Kayenta's metrics[].groups (a metric may be in several)
          critical: true                 # Kayenta's analysisConfigurations.canary.critical
          test: sequential               # and its queries and settings, as for a one-metric judge
          canary: {errors: ..., requests: ...}
          baseline: {errors: ..., requests: ...}
      groupWeights: {errors: 60, latency: 40}   # Kayenta's classifier.groupWeights: every group, total 100
      scoreThresholds: {pass: 95, marginal: 75} # Kayenta's classifier.scoreThresholds

A spec is a score when it has ``metrics``; the one-metric form keeps :mod:`analysis.providers.judge.spec`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from analysis.providers.judge.source_spec import PROMETHEUS_FIELDS
from analysis.providers.judge.spec import JudgeSpecError
from analysis.providers.judge.spec import spec_problems as one_metric_problems
from analysis.stats.scoring import ScoreThresholds

__all__ = [
    "MAX_METRICS",
    "SCORE_FIELDS",
    "ScoreMetricSpec",
    "ScoreSpec",
    "is_score",
    "judge_problems",
    "score_problems",
    "score_spec",
]

#: The score form's own fields beside the shared Prometheus connection.
SCORE_FIELDS: Final = ("metrics", "groupWeights", "scoreThresholds")
_TOP_FIELDS: Final = (*PROMETHEUS_FIELDS, "timeout", *SCORE_FIELDS)
#: A score metric's own fields beside its judge spec (test, queries, settings, source).
_METRIC_FIELDS: Final = ("name", "groups", "critical")
_THRESHOLD_FIELDS: Final = ("pass", "marginal")
#: Each metric's verdict is one metadata entry of the measurement (at most 32, 11 taken by the score's own),
#: and each sequential metric adds 6-15 kB to the saved state, which the run's status carries on every
#: write (BENCHMARKS.md, "The score's state size": 20 count tests take less than 10 did before).
MAX_METRICS: Final = 20
_NAME: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_WEIGHT_TOTAL: Final = 100.0
_PLACEHOLDER: Final = re.compile(r"\{\{.*?\}\}")


@dataclass(frozen=True)
class ScoreMetricSpec:
    """One metric of a score: its name, groups, criticality and its own judge spec, with the shared
    Prometheus connection added unless it reads a ``source``."""

    name: str
    groups: tuple[str, ...]
    critical: bool
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class ScoreSpec:
    metrics: tuple[ScoreMetricSpec, ...]
    weights: Mapping[str, float]  # empty: every group weighs the same
    thresholds: ScoreThresholds

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(sorted({g for m in self.metrics for g in m.groups}))


def is_score(spec: Mapping[str, Any]) -> bool:
    return "metrics" in spec


def judge_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    """The judge provider's spec check: the score form's or the one-metric form's problems."""
    if is_score(spec):
        return score_problems(spec, where, metric)
    return _condition_problems(where, metric) + one_metric_problems(spec, where, metric)


def _condition_problems(where: str, metric: Mapping[str, Any] | None) -> list[str]:
    """A one-metric judge's phase is its test's decision, so conditions on ``result`` would be ignored."""
    metric_where = where.removesuffix(".provider.judge")
    return [
        f"{metric_where}.{key}: a judge metric is decided by its test (its result is the estimate, not a "
        f"verdict); remove {key}, or judge several metrics with provider.judge.metrics, whose final score "
        "it applies to"
        for key in ("successCondition", "failureCondition")
        if metric is not None and metric.get(key)
    ]


def _templated(value: Any) -> bool:
    return isinstance(value, str) and bool(_PLACEHOLDER.search(value))


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_placeholder(v) for v in value.values())
    return _templated(value)


def _connection(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: spec[k] for k in (*PROMETHEUS_FIELDS, "timeout") if k in spec}


def _metric_entries(spec: Mapping[str, Any]) -> list[Any]:
    entries = spec.get("metrics")
    if not isinstance(entries, list) or not entries:
        raise JudgeSpecError(
            "metrics: expected a list of metrics, each with name, groups and a judge spec (test, canary, baseline, ...)"
        )
    if len(entries) > MAX_METRICS:
        raise JudgeSpecError(
            f"metrics: at most {MAX_METRICS} metrics in one score, got {len(entries)}: split them over several "
            "judge metrics of the template"
        )
    return entries


def _metric(entry: Any, index: int, connection: Mapping[str, Any]) -> ScoreMetricSpec:
    at = f"metrics[{index}]"
    if not isinstance(entry, Mapping):
        raise JudgeSpecError(f"{at}: expected an object with name, groups and a judge spec, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise JudgeSpecError(
            f"{at}.name: required: letters, digits, '-', '_' or '.', at most 63 characters, got {name!r}"
        )
    groups = entry.get("groups")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
        raise JudgeSpecError(f"{at}.groups: expected a list of group names, e.g. [errors], got {groups!r}")
    if len(set(groups)) != len(groups):
        raise JudgeSpecError(f"{at}.groups: a group is named twice in {groups!r}: name each once")
    critical = entry.get("critical", False)
    if isinstance(critical, str) and critical.lower() in ("true", "false"):
        critical = critical.lower() == "true"
    if not isinstance(critical, bool):
        raise JudgeSpecError(f"{at}.critical: expected true or false, got {critical!r}")
    own = {k: v for k, v in entry.items() if k not in _METRIC_FIELDS}
    shared = {} if own.get("source") is not None else connection
    return ScoreMetricSpec(name, tuple(groups), critical, {**shared, **own})


def _weights(spec: Mapping[str, Any], groups: tuple[str, ...]) -> dict[str, float]:
    raw = spec.get("groupWeights")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not raw:
        raise JudgeSpecError(f"groupWeights: expected a weight per group, e.g. {{{groups[0]}: 100}}, got {raw!r}")
    weights: dict[str, float] = {}
    for group, value in raw.items():
        if group not in groups:
            raise JudgeSpecError(
                f"groupWeights.{group}: no metric is in group {group!r} (groups: {', '.join(groups)}): "
                "remove it or add the group to a metric's groups"
            )
        number = None if isinstance(value, bool) else _float(value)
        if number is None or number < 0:
            raise JudgeSpecError(f"groupWeights.{group}: expected a number >= 0, got {value!r}")
        weights[str(group)] = number
    missing = [g for g in groups if g not in weights]
    if missing:
        raise JudgeSpecError(
            f"groupWeights: no weight for group {missing[0]!r}: give every group a weight (total 100, as Kayenta), "
            "or leave groupWeights out for equal weights"
        )
    total = math.fsum(weights.values())
    if abs(total - _WEIGHT_TOTAL) > 1e-6:
        raise JudgeSpecError(f"groupWeights: the weights must total 100 (as Kayenta's), got {total:g}")
    return weights


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _thresholds(spec: Mapping[str, Any]) -> ScoreThresholds:
    raw = spec.get("scoreThresholds")
    if raw is None:
        return ScoreThresholds()
    if not isinstance(raw, Mapping):
        raise JudgeSpecError(f"scoreThresholds: expected an object with pass and marginal, got {raw!r}")
    unknown = sorted(set(raw) - set(_THRESHOLD_FIELDS))
    if unknown:
        raise JudgeSpecError(f"scoreThresholds.{unknown[0]}: unknown field (known: pass, marginal)")
    default = ScoreThresholds()
    values = {"pass": default.pass_, "marginal": default.marginal}
    for key in _THRESHOLD_FIELDS:
        if raw.get(key) is None:
            continue
        number = None if isinstance(raw[key], bool) else _float(raw[key])
        if number is None or not 0.0 <= number <= 100.0:
            raise JudgeSpecError(f"scoreThresholds.{key}: expected a score from 0 to 100, got {raw[key]!r}")
        values[key] = number
    if values["marginal"] > values["pass"]:
        raise JudgeSpecError(
            f"scoreThresholds: marginal ({values['marginal']:g}) must not be above pass ({values['pass']:g}): "
            "a score between them is MARGINAL, below marginal FAIL"
        )
    return ScoreThresholds(marginal=values["marginal"], pass_=values["pass"])


def score_spec(spec: Mapping[str, Any]) -> ScoreSpec:
    """The score's metrics, weights and thresholds; JudgeSpecError names the bad field (the metrics' own
    judge specs are checked by :func:`score_problems`, or fail their measurement)."""
    connection = _connection(spec)
    metrics = tuple(_metric(entry, i, connection) for i, entry in enumerate(_metric_entries(spec)))
    names = [m.name for m in metrics]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise JudgeSpecError(f"metrics[{i}].name: two metrics are named {name!r}: give each its own name")
    groups = tuple(sorted({g for m in metrics for g in m.groups}))
    return ScoreSpec(metrics, _weights(spec, groups), _thresholds(spec))


def _top_problems(spec: Mapping[str, Any], where: str) -> list[str]:
    problems = [
        f"{where}.{key}: not a field of a judge score (known: {', '.join(_TOP_FIELDS)}): "
        "a test, its queries and its settings go in each metrics[] entry"
        for key in sorted(set(spec) - set(_TOP_FIELDS))
    ]
    timeout = spec.get("timeout")
    if timeout is not None and not _templated(timeout):
        number = None if isinstance(timeout, bool) else _float(timeout)
        if number is None or number <= 0:
            problems.append(f"{where}.timeout: expected a number of seconds above 0, got {timeout!r}")
    return problems


def _entry_problems(entry: Any, at: str, metric: Mapping[str, Any] | None) -> list[str]:
    """A metric entry's own judge spec, checked as a one-metric judge's (without the shared connection)."""
    if not isinstance(entry, Mapping):
        return []
    own = {k: v for k, v in entry.items() if k not in _METRIC_FIELDS}
    problems = [
        f"{at}.{key}: the Prometheus connection is shared: set it once on the judge, not per metric"
        for key in (*PROMETHEUS_FIELDS, "timeout")
        if key in own
    ]
    return problems + one_metric_problems(own, at, metric)


def score_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with a score spec, each naming its field under ``where`` (for validate_metrics)."""
    problems = _top_problems(spec, where)
    # Weights or thresholds from the run's args are checked when the run measures.
    untemplated = {k: v for k, v in spec.items() if not (k in SCORE_FIELDS[1:] and _has_placeholder(v))}
    try:
        score_spec(untemplated)
    except JudgeSpecError as exc:
        problems.append(f"{where}.{exc}")
    entries = spec.get("metrics")
    if isinstance(entries, list):
        for i, entry in enumerate(entries[:MAX_METRICS]):
            problems += _entry_problems(entry, f"{where}.metrics[{i}]", metric)
    return list(dict.fromkeys(problems))  # e.g. the metric's count, too small for two sequential metrics
