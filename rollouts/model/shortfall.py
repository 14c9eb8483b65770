"""What the Rollout's message says of a current AnalysisRun that ended Inconclusive for lack of evidence:
the judge's structured outcome (metadata ``outcome`` and ``needed``, :mod:`analysis.outcome`) on the newest
measurement of each of the run's Inconclusive judge metrics, in words ("too little traffic after 5
measurements: canary 40/500 ..."). Only metrics whose provider is ``judge`` are read, and only those keys:
no message wording, and no other provider's metadata, changes the Rollout's message.

Pure: the Rollout's status and the runs it owns, as read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY, OUTCOMES, Needs, describe, score_metric_entries

__all__ = ["CURRENT_RUN_STATUSES", "analysis_shortfall", "run_shortfall"]

#: Where a Rollout's status names its current runs (section, key).
CURRENT_RUN_STATUSES: Final = (
    ("canary", "currentStepAnalysisRunStatus"),
    ("canary", "currentBackgroundAnalysisRunStatus"),
    ("blueGreen", "prePromotionAnalysisRunStatus"),
    ("blueGreen", "postPromotionAnalysisRunStatus"),
)


def _as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _judge_metrics(run: Mapping[str, Any]) -> set[str]:
    """The names of the run's metrics whose provider is the judge."""
    metrics = _as_map(run.get("spec")).get("metrics")
    return {str(_as_map(m).get("name")) for m in (metrics if isinstance(metrics, list) else [])
            if _as_map(_as_map(m).get("provider")).get("judge")}


def _short(metadata: Mapping[str, Any]) -> list[tuple[str, Needs]]:
    """The needs on one measurement: a judge's ``needed``, or each ``metric.<name>`` entry's of a score."""
    own = Needs.parse(metadata.get(NEEDED_KEY))
    if own is not None:
        return [("", own)]
    out: list[tuple[str, Needs]] = []
    for name, (_, entry) in score_metric_entries(metadata).items():
        needs = Needs.parse(entry.get(NEEDED_KEY)) if entry is not None else None
        if needs is not None:
            out.append((name, needs))
    return out


def run_shortfall(run: Mapping[str, Any]) -> str:
    """The outcome of a run's Inconclusive judge metrics that ended short of evidence, in words; "" when
    none did."""
    judges = _judge_metrics(run)
    texts: list[str] = []
    results = _as_map(run.get("status")).get("metricResults")
    for result in (_as_map(r) for r in (results if isinstance(results, list) else [])):
        name = str(result.get("name"))
        measurements = result.get("measurements")
        if name not in judges or result.get("phase") != "Inconclusive" or not isinstance(measurements, list):
            continue
        metadata = _as_map(_as_map(measurements[-1]).get("metadata")) if measurements else {}
        outcome = metadata.get(OUTCOME_KEY)
        short = _short(metadata)
        if outcome not in OUTCOMES or not short:
            continue
        taken = max(n.measurements for _, n in short)
        texts.append(describe(str(outcome), taken, short))
    return "; ".join(texts)


def analysis_shortfall(status: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> str:
    """The shortfall of the Rollout's current Inconclusive runs (those its status names), in words; ""
    when none ended short of evidence."""
    by_name = {str(_as_map(r.get("metadata")).get("name")): r for r in runs}
    texts: list[str] = []
    for section, key in CURRENT_RUN_STATUSES:
        entry = _as_map(_as_map(status.get(section)).get(key))
        run = by_name.get(str(entry.get("name") or "")) if entry.get("status") == "Inconclusive" else None
        text = run_shortfall(run) if run is not None else ""
        if text and text not in texts:
            texts.append(text)
    return "; ".join(texts)
