"""A judge score's metrics' decisions combined into Kayenta's score and verdict, and whether that verdict
is final yet (pure; no I/O).

Each metric keeps its own test's decision: pass -> Kayenta's Pass, fail -> High (mann-whitney: its own
High / Low / NodataFailMetric); a metric still undecided counts as Nodata (it neither helps nor hurts its
group, as in :mod:`analysis.stats.scoring`). The score is final

* at once when a critical metric failed (score 0, FAIL);
* as soon as the metrics decided so far settle it (`reachable`): FAIL when the best score still reachable
  (every undecided metric passing) is below ``marginal``; PASS when the worst one (every undecided metric
  failing) is at or above ``pass`` and no critical metric is undecided;
* when every metric has decided;
* at the metric's final ``count``: the metrics still undecided are left out, and the verdict is at best
  MARGINAL (a PASS needs every metric decided).

Kayenta's score only grows when one metric's label improves (Fail -> Nodata -> Pass, also across the
unweighted-groups fallback), so the all-pass and all-fail completions bound every way the undecided
metrics can end, including staying undecided.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from analysis.outcome import NEEDED_KEY, Needs, describe, outcome_of, score_metric_key
from analysis.providers.judge.score_spec import ScoreSpec
from analysis.providers.judge.spec import MANN_WHITNEY
from analysis.stats import (
    Classification,
    Decision,
    MetricClassification,
    ScoredMetric,
    ScoreResult,
    ScoreThresholds,
    ScoreVerdict,
)
from analysis.stats import score as kayenta_score

__all__ = [
    "METRIC_LINE_CHARS", "SCORE_TEST", "MetricDecision", "Reachable", "ScoreOutcome", "classification_of", "combine",
    "reachable", "score_metadata", "short_of_evidence",
]

SCORE_TEST: Final = "score"
#: A ``metric.<name>`` entry's length, within the stored measurement's cap on a metadata value (1024).
METRIC_LINE_CHARS: Final = 1000
_FINAL: Final = (Decision.PASS, Decision.FAIL)
_RANK: Final = {ScoreVerdict.NODATA: 0, ScoreVerdict.FAIL: 1, ScoreVerdict.MARGINAL: 2, ScoreVerdict.PASS: 3}
_FAILING: Final = (Classification.HIGH, Classification.LOW, Classification.NODATA_FAIL)


@dataclass(frozen=True)
class MetricDecision:
    """One score metric's decision so far, with Kayenta's label for it, its test's estimate and interval
    (when it has them) and, below its minimum evidence, what it still needs."""

    name: str
    groups: tuple[str, ...]
    critical: bool
    decision: Decision
    classification: Classification
    reason: str
    estimate: str = ""
    interval: str = ""
    needs: Needs | None = None

    @property
    def final(self) -> bool:
        return self.decision in _FINAL

    @property
    def label(self) -> str:
        """Kayenta's classification; "Undecided" for a metric whose test has data but has not decided."""
        return "Undecided" if self.decision is Decision.CONTINUE else self.classification.value

    def to_dict(self) -> dict[str, Any]:
        saved = {"decision": self.decision.value, "classification": self.classification.value, "reason": self.reason}
        saved.update({k: v for k, v in (("estimate", self.estimate), ("interval", self.interval)) if v})
        return saved

    @classmethod
    def from_dict(cls, name: str, groups: tuple[str, ...], critical: bool, data: Mapping[str, Any]) -> MetricDecision:
        """A saved decision; ValueError when it is not one (one saved before estimates were: none)."""
        return cls(name, groups, critical, Decision(data["decision"]), Classification(data["classification"]),
                   str(data.get("reason") or ""), str(data.get("estimate") or ""), str(data.get("interval") or ""))

    def line(self) -> str:
        """Its ``metric.<name>`` metadata: JSON of its groups, decision, Kayenta's label, critical, estimate and
        interval, reason and ``needed``, at most :data:`METRIC_LINE_CHARS` (the reason is cut to fit)."""
        entry: dict[str, Any] = {
            "groups": list(self.groups), "decision": self.decision.value, "label": self.label,
            "critical": self.critical, "estimate": self.estimate, "interval": self.interval, "reason": "",
        }
        if self.needs is not None:
            entry[NEEDED_KEY] = self.needs.to_dict()
        bare = len(json.dumps(entry, separators=(",", ":")))
        reason = json.dumps(self.reason)[1:-1]  # as escaped in JSON, so the cut is counted right
        room = METRIC_LINE_CHARS - bare
        entry["reason"] = self.reason if len(reason) <= room else json.loads(f'"{_cut(reason, room)}"')
        return json.dumps(entry, separators=(",", ":"))


def _cut(escaped: str, room: int) -> str:
    """JSON-escaped text cut to ``room`` characters with "...", never inside an escape."""
    text = escaped[: max(room - 3, 0)]
    while text:
        try:
            json.loads(f'"{text}"')
            break
        except ValueError:
            text = text[:-1]
    return text + "..."


def classification_of(decision: Decision, test: str, metadata: Mapping[str, str]) -> Classification:
    """Kayenta's label of a test's decision: the sequential tests fail on an increase (High); mann-whitney
    says which way (a FAIL without its classification is mustHaveData's NodataFailMetric)."""
    if decision is Decision.PASS:
        return Classification.PASS
    if decision is not Decision.FAIL:
        return Classification.NODATA
    if test != MANN_WHITNEY:
        return Classification.HIGH
    label = metadata.get("classification")
    failing = {c.value: c for c in _FAILING}
    return failing.get(label or "", Classification.NODATA_FAIL)


@dataclass(frozen=True)
class ScoreOutcome:
    """The score over the decided metrics, the verdict (after the undecided cap) and whether it is final."""

    result: ScoreResult
    verdict: ScoreVerdict
    final: bool
    reason: str
    undecided: tuple[str, ...]

    def condition_value(self) -> dict[str, Any]:
        """What successCondition / failureCondition see as ``result``."""
        return {
            "score": self.result.score,
            "verdict": self.verdict.value,
            "groups": {g.group: g.score for g in self.result.groups},
        }


def _scored(decisions: Sequence[MetricDecision]) -> list[ScoredMetric]:
    return [
        ScoredMetric(d.name, group, MetricClassification(d.classification, d.reason, critical=d.critical))
        for d in decisions
        for group in d.groups
    ]


@dataclass(frozen=True)
class Reachable:
    """The scores the undecided metrics can still lead to: ``best`` with every one of them passing,
    ``worst`` with every one failing (a critical one among them: score 0)."""

    best: ScoreResult
    worst: ScoreResult

    def settled(self) -> ScoreVerdict | None:
        """FAIL when even the best score stays below ``marginal``, PASS when even the worst reaches ``pass``,
        else None (the undecided metrics can still change the verdict)."""
        if self.best.verdict is ScoreVerdict.FAIL:
            return ScoreVerdict.FAIL
        if self.worst.verdict is ScoreVerdict.PASS:
            return ScoreVerdict.PASS
        return None


def _completed(d: MetricDecision, decision: Decision) -> MetricDecision:
    if d.final:
        return d
    label = Classification.PASS if decision is Decision.PASS else Classification.HIGH
    return MetricDecision(d.name, d.groups, d.critical, decision, label, "")


def reachable(
    decisions: Sequence[MetricDecision], weights: Mapping[str, float], thresholds: ScoreThresholds
) -> Reachable:
    """The best and worst scores the metrics still undecided can lead to (see the module's docstring)."""
    best, worst = (
        kayenta_score(_scored([_completed(d, end) for d in decisions]), weights, thresholds)
        for end in (Decision.PASS, Decision.FAIL)
    )
    return Reachable(best, worst)


def _score_text(result: ScoreResult) -> str:
    return "none" if result.score is None else f"{result.score:.1f}"


def combine(decisions: Sequence[MetricDecision], spec: ScoreSpec, last: bool) -> ScoreOutcome:
    """The score now; ``last``: the metric's final measurement (``count``)."""
    result = kayenta_score(_scored(decisions), spec.weights, spec.thresholds)
    undecided = tuple(d.name for d in decisions if not d.final)
    if result.critical_failures:
        why = {d.name: d.reason for d in decisions}
        reason = "; ".join(f"critical metric {name} failed: {why[name]}" for name in result.critical_failures)
        return ScoreOutcome(result, ScoreVerdict.FAIL, True, reason, undecided)
    if not undecided:
        return ScoreOutcome(result, result.verdict, True, f"{result.verdict.value.upper()}: {result.reason}", ())
    names = ", ".join(undecided)
    bounds = reachable(decisions, spec.weights, spec.thresholds)
    settled = bounds.settled()
    if settled is ScoreVerdict.FAIL:
        reason = (f"FAIL: {result.reason}; the best score still reachable, {_score_text(bounds.best)} with "
                  f"{names} passing, is below marginal {spec.thresholds.marginal:g}")
        return ScoreOutcome(result, ScoreVerdict.FAIL, True, reason, undecided)
    if settled is ScoreVerdict.PASS:
        reason = (f"PASS: {result.reason}; the worst score still reachable, {_score_text(bounds.worst)} with "
                  f"{names} failing, reaches pass {spec.thresholds.pass_:g}")
        return ScoreOutcome(result, ScoreVerdict.PASS, True, reason, undecided)
    if last:
        verdict = min(result.verdict, ScoreVerdict.MARGINAL, key=_RANK.__getitem__)
        reason = (f"{verdict.value.upper()}: {result.reason}; undecided at the final measurement: {names} "
                  "(left out; a pass needs every metric decided)")
        return ScoreOutcome(result, verdict, True, reason, undecided)
    decided = len(decisions) - len(undecided)
    so_far = "no metric decided yet"
    if result.score is not None:
        so_far = f"score so far {result.score:.1f} over {decided} decided metric{'' if decided == 1 else 's'}"
    reason = f"waiting for {names} to decide; {so_far}"
    return ScoreOutcome(result, result.verdict, False, reason, undecided)


def short_of_evidence(decisions: Sequence[MetricDecision], message: str, taken: int) -> tuple[str, str] | None:
    """A final score's outcome when metrics were left undecided below their minimum evidence: (``outcome``,
    the message with which metrics and what each still needs, as :func:`analysis.outcome.describe` words
    it); None when no undecided metric lacked traffic or data."""
    short = [(d.name, d.needs) for d in decisions if not d.final and d.needs is not None]
    if not short:
        return None
    what = outcome_of([n for _, n in short])
    return what, f"{message}; {describe(what, taken, short)}"


def _number(x: float | None) -> str:
    return "none" if x is None else f"{x:g}"


def score_metadata(
    outcome: ScoreOutcome, decisions: Sequence[MetricDecision], thresholds: ScoreThresholds
) -> dict[str, str]:
    """The measurement's metadata: the verdict, the thresholds, the group scores, each metric's line. At most
    31 entries with 20 metrics (the stored cap is 32 besides ``judgeState``; ``outcome`` is the 32nd)."""
    result = outcome.result
    groups = ", ".join(f"{g.group} {_number(g.score)} (weight {g.weight:g}, {g.n_pass}/{g.n_judged} pass)"
                       for g in result.groups)
    counts = Counter(d.label for d in decisions)
    meta = {
        "test": SCORE_TEST,
        "decision": outcome.verdict.value if outcome.final else Decision.CONTINUE.value,
        "reason": outcome.reason,
        "quantity": "canary score 0-100 (Kayenta's: share of passing metrics per group, weighted)",
        "estimate": "" if result.score is None else f"{result.score:.6g}",
        "evidence": f"groups: {groups}",
        "samples": f"{len(decisions)} metrics: " + ", ".join(f"{n} {label}" for label, n in counts.items()),
        "groups": json.dumps({g.group: g.score for g in result.groups}, separators=(",", ":")),
        "classifications": json.dumps({d.name: d.label for d in decisions}, separators=(",", ":")),
        "thresholds": json.dumps({"pass": thresholds.pass_, "marginal": thresholds.marginal}, separators=(",", ":")),
    }
    if outcome.final:
        meta["verdict"] = outcome.verdict.value
    for d in decisions:
        meta[score_metric_key(d.name)] = d.line()
    return {k: v for k, v in meta.items() if v != ""}
