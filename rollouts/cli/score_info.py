"""A judge score's measurement as the plugin and the dashboard show it: the score, its thresholds, whether
it is final, and one line per metric (groups, decision, estimate and interval, reason, what it still
needs), read from the metadata the score writes (``analysis/providers/judge/score_verdict.py``). Nothing
here does I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analysis.outcome import NEEDED_KEY, Needs, score_metric_entries

__all__ = ["ScoreInfo", "ScoreMetricInfo", "score_info"]

_SCORE_TEST = "score"


@dataclass
class ScoreMetricInfo:
    """One metric of a score: how its own test stands."""

    name: str
    groups: list[str]
    decision: str  # Kayenta's label: Pass, High, Low, NodataFailMetric, Undecided, Nodata
    critical: bool
    estimate: str
    interval: str
    reason: str
    needed: str = ""  # below its minimum evidence: the figures and what is still needed, in words


@dataclass
class ScoreInfo:
    """A score's newest measurement: the score (over the decided metrics), thresholds, final or not."""

    score: str
    verdict: str  # pass, marginal, fail, nodata; "" while not final
    final: bool
    pass_threshold: str
    marginal_threshold: str
    groups: str  # each group's score, weight and passes
    outcome: str = ""  # TooLittleTraffic / TooLittleData when it ended short of evidence
    metrics: list[ScoreMetricInfo] = field(default_factory=list)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _metric(name: str, text: str, entry: Mapping[str, Any] | None, spec_groups: list[str]) -> ScoreMetricInfo:
    """A ``metric.<name>`` entry; one written before it was JSON ("Pass (critical): reason") as its text."""
    if entry is None:
        return ScoreMetricInfo(name, spec_groups, "", False, "", "", text)
    needs = Needs.parse(entry.get(NEEDED_KEY))
    groups = entry.get("groups")
    return ScoreMetricInfo(
        name=name,
        groups=[str(g) for g in groups] if isinstance(groups, list) else spec_groups,
        decision=str(entry.get("label") or entry.get("decision") or ""),
        critical=entry.get("critical") is True,
        estimate=str(entry.get("estimate") or ""),
        interval=str(entry.get("interval") or ""),
        reason=str(entry.get("reason") or ""),
        needed=f"{needs.figures()}; {needs.still_needed()}" if needs is not None else "",
    )


def _spec_groups(judge_spec: Mapping[str, Any]) -> dict[str, list[str]]:
    metrics = judge_spec.get("metrics")
    out: dict[str, list[str]] = {}
    for m in metrics if isinstance(metrics, list) else []:
        if isinstance(m, Mapping):
            groups = m.get("groups")
            out[str(m.get("name"))] = [str(g) for g in groups] if isinstance(groups, list) else []
    return out


def score_info(judge_spec: Mapping[str, Any], metadata: Mapping[str, str]) -> ScoreInfo | None:
    """A score's view from its measurement's metadata; None when the measurement is not a score's.
    ``judge_spec``: the metric's ``provider.judge`` (the metrics' order and groups)."""
    if metadata.get("test") != _SCORE_TEST:
        return None
    try:
        thresholds = json.loads(metadata.get("thresholds") or "{}")
    except ValueError:
        thresholds = {}
    thresholds = thresholds if isinstance(thresholds, Mapping) else {}
    spec_groups = _spec_groups(judge_spec)
    found = score_metric_entries(metadata)
    order = [n for n in spec_groups if n in found] + [n for n in found if n not in spec_groups]
    verdict = metadata.get("verdict", "")
    return ScoreInfo(
        score=metadata.get("estimate", ""),
        verdict=verdict,
        final=bool(verdict),
        pass_threshold=_number(thresholds.get("pass")),
        marginal_threshold=_number(thresholds.get("marginal")),
        groups=metadata.get("evidence", "").removeprefix("groups: "),
        outcome=metadata.get("outcome", ""),
        metrics=[_metric(n, *found[n], spec_groups.get(n, [])) for n in order],
    )
