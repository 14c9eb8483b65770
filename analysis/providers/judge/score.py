"""One measurement of a judge score (:mod:`analysis.providers.judge.score_spec`): every undecided metric
judged concurrently by its own test, the decisions combined into Kayenta's score
(:mod:`analysis.providers.judge.score_verdict`), and the state carried to the next measurement.

Saved state (metadata ``judgeState``, the judge's codec) is a ``score`` state whose ``state`` holds, per
metric, its test's own saved state (encoded, while undecided, and while a passed sequential metric is
watched) and its decision (once final)::

    {"metrics": {"error-rate": {"saved": "<judgeState of its test>" | null, "decided": {...} | null}, ...}}

A sequential metric that passed is watched until the score is final: its test keeps taking the intervals
and checking its fail side, whose e-process runs over every interval since the start, so a false failure
stays below its ``alpha`` however long it is watched (Ville's inequality). A pass stays a pass unless that
fail side fires; then the metric fails and the score with it as for any failure. Failures and mann-whitney
decisions (fixed horizon) are final.

A metric that cannot be measured (a query fails, a bad answer) makes the whole measurement an Error naming
the metric; the previous state is kept, so every test resumes from it at the next measurement.

Phases: a score not final yet -> an Inconclusive measurement that decides nothing (as a one-metric judge's
"no decision yet"); a final one -> the metric's conditions on ``result`` (``score``, ``verdict``,
``groups``) when it has any, else PASS -> Successful, MARGINAL -> Inconclusive, FAIL -> Failed, no data ->
Inconclusive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from analysis.outcome import OUTCOME_KEY
from analysis.phases import AnalysisPhase
from analysis.providers.base import (
    JUDGE_STATE_KEY,
    Context,
    Measurement,
    ProviderError,
    SecretReader,
    evaluate,
    format_time,
)
from analysis.providers.judge.score_spec import ScoreMetricSpec, ScoreSpec, score_spec
from analysis.providers.judge.score_verdict import (
    SCORE_TEST,
    MetricDecision,
    ScoreOutcome,
    classification_of,
    combine,
    score_metadata,
    short_of_evidence,
)
from analysis.providers.judge.shortfall import interval_seconds, metric_count, needs
from analysis.providers.judge.spec import SEQUENTIAL, SEQUENTIAL_LATENCY, JudgeSpecError, test_name
from analysis.providers.judge.verdicts import SavedState, Verdict, decode_state, encode_state, fmt
from analysis.spec import SpecError
from analysis.stats import Decision, InvalidInput, ScoreVerdict

__all__ = ["MetricJudge", "measure_score"]

#: (a metric's judge spec, the AnalysisRun metric, context, its test's saved state, final measurement?) ->
#: its verdict and the state to save: :meth:`JudgeProvider.verdict`.
MetricJudge = Callable[
    [Mapping[str, Any], Mapping[str, Any], Context, SavedState | None, bool],
    Awaitable[tuple[Verdict, SavedState | None]],
]
_PHASES: Final = {
    ScoreVerdict.PASS: AnalysisPhase.SUCCESSFUL,
    ScoreVerdict.MARGINAL: AnalysisPhase.INCONCLUSIVE,
    ScoreVerdict.FAIL: AnalysisPhase.FAILED,
    ScoreVerdict.NODATA: AnalysisPhase.INCONCLUSIVE,
}
_FAULTS: Final = (ProviderError, JudgeSpecError, SpecError, InvalidInput, ValueError)
_WATCHED_TESTS: Final = (SEQUENTIAL, SEQUENTIAL_LATENCY)
#: The sequential tests' saved decision (count and latency tests alike): a decided test repeats it.
_DECISION_KEYS: Final = ("decision", "decidedAt", "decidedReason")


def _previous(saved: str | None) -> dict[str, Mapping[str, Any]]:
    """Each metric's saved entry; InvalidInput when the state is not a score's."""
    if not saved:
        return {}
    state = decode_state(saved, SCORE_TEST).state or {}
    metrics = state.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise InvalidInput("saved judge state is not a score's state")
    return metrics


def _fault_text(exc: BaseException, index: int, name: str) -> str:
    """A metric's fault as its measurement's message: a bad setting by its path, else by the metric's name."""
    if isinstance(exc, JudgeSpecError | SpecError):
        return f"provider.judge.metrics[{index}].{exc}"
    if isinstance(exc, InvalidInput | ProviderError):
        return f"judge metric {name}: {exc}"
    return f"judge metric {name}: cannot use Prometheus's answer: {exc}"


def _read_once(read: SecretReader) -> SecretReader:
    """``read`` for one measurement, each Secret key read once: every metric authenticates with the shared
    connection's `authentication`, concurrently, and one read of the token serves them all."""
    reads: dict[tuple[str, str], asyncio.Future[str]] = {}

    async def once(name: str, key: str) -> str:
        if (name, key) not in reads:
            reads[name, key] = asyncio.ensure_future(read(name, key))
        return await reads[name, key]

    return once


def _reopened(saved: SavedState) -> SavedState:
    """A passed test's state without its decision, so that its next update checks both sides again (the
    score keeps only a failure of it: a repeated pass changes nothing)."""
    state = {k: v for k, v in (saved.state or {}).items() if k not in _DECISION_KEYS}
    return SavedState(saved.test, saved.totals, state)


def _watched(d: MetricDecision, test: str, entry: Mapping[str, Any]) -> bool:
    """A passed sequential metric with its test's state saved: judged again until the score is final."""
    return d.decision is Decision.PASS and test in _WATCHED_TESTS and bool(entry.get("saved"))


class _Measuring:
    """One score measurement: the saved decisions, the judging of the undecided and watched metrics, the
    new state."""

    def __init__(self, judge: MetricJudge, metric: Mapping[str, Any], context: Context, final: bool) -> None:
        self.judge, self.metric, self.final = judge, metric, final
        # The same Context otherwise: the secrets read are remembered in its set for redaction.
        self.context = dataclasses.replace(context, read_secret=_read_once(context.read_secret))

    async def _judge(
        self, m: ScoreMetricSpec, entry: Mapping[str, Any], watched: bool
    ) -> tuple[Verdict, SavedState | None]:
        test = test_name(m.spec)
        previous = decode_state(str(entry["saved"]), test) if entry.get("saved") else None
        if watched and previous is not None:
            previous = _reopened(previous)
        return await self.judge(m.spec, {**self.metric, "name": m.name}, self.context, previous, self.final)

    def _decision(self, m: ScoreMetricSpec, verdict: Verdict, watched: bool) -> MetricDecision:
        """A metric's decision from its test's verdict: Kayenta's label, the estimate and interval, and what
        it still needs when it is below its minimum evidence."""
        label = classification_of(verdict.decision, test_name(m.spec), verdict.metadata)
        reason = f"{verdict.reason} (after it had passed)" if watched else verdict.reason
        needed = None
        if verdict.decision is Decision.NODATA and verdict.shortfall is not None:
            taken = self.context.counted + 1
            needed = needs(verdict.shortfall, verdict.pace, interval_seconds(self.metric), taken,
                           metric_count(self.metric))
            reason = f"{reason}; {needed.still_needed()}"
        meta = verdict.metadata
        return MetricDecision(m.name, m.groups, m.critical, verdict.decision, label, reason,
                              str(meta.get("estimate") or ""), str(meta.get("interval") or ""), needed)

    async def decisions(
        self, spec: ScoreSpec, previous: Mapping[str, Mapping[str, Any]]
    ) -> tuple[list[MetricDecision], dict[str, Any]]:
        """Every metric's decision and the state to save; raises ProviderError naming the first metric that
        could not be judged."""
        found: dict[str, MetricDecision] = {}  # the final decisions saved earlier, then this measurement's
        watched: set[str] = set()
        for m in spec.metrics:
            entry = previous.get(m.name, {})
            saved = entry.get("decided")
            if isinstance(saved, Mapping):
                try:
                    found[m.name] = MetricDecision.from_dict(m.name, m.groups, m.critical, saved)
                except (KeyError, ValueError):
                    raise InvalidInput(f"saved judge state has an unreadable decision of {m.name}") from None
                if _watched(found[m.name], test_name(m.spec), entry):
                    watched.add(m.name)
        pending = [(i, m) for i, m in enumerate(spec.metrics) if m.name not in found or m.name in watched]
        answers = await asyncio.gather(
            *(self._judge(m, previous.get(m.name, {}), m.name in watched) for _, m in pending),
            return_exceptions=True,
        )
        state: dict[str, Any] = {}
        for (i, m), answer in zip(pending, answers, strict=True):
            if isinstance(answer, _FAULTS):
                raise ProviderError(_fault_text(answer, i, m.name))
            if isinstance(answer, BaseException):
                raise answer
            verdict, saved_state = answer
            state[m.name] = {"saved": encode_state(saved_state) if saved_state is not None else None}
            if m.name in watched and verdict.decision is not Decision.FAIL:
                continue  # still a pass: only its fail side counts now
            found[m.name] = self._decision(m, verdict, m.name in watched)
        for name, d in found.items():
            entry = state.setdefault(name, {"saved": None})
            entry["decided"] = d.to_dict() if d.final else None
            if d.decision is Decision.FAIL:
                entry["saved"] = None  # a failure is final: nothing left to watch
        return [found[m.name] for m in spec.metrics], state


def _phase(metric: Mapping[str, Any], outcome: ScoreOutcome) -> tuple[AnalysisPhase, str]:
    """A final score's phase: the metric's conditions on ``result`` if it has any, else by the verdict."""
    if metric.get("successCondition") or metric.get("failureCondition"):
        phase, message = evaluate(metric, outcome.condition_value())
        return phase, f"{outcome.reason}; {message}" if message else outcome.reason
    return _PHASES[outcome.verdict], outcome.reason


async def measure_score(
    judge: MetricJudge, metric: Mapping[str, Any], context: Context, saved: str | None, final: bool, started: str
) -> Measurement:
    """The score's measurement; ``saved``: the newest judge state, ``final``: the metric's last ``count``."""

    def finished(phase: AnalysisPhase, message: str, metadata: dict[str, str], **extra: Any) -> Measurement:
        return Measurement(phase, message=message, metadata=metadata, started_at=started,
                           finished_at=format_time(dt.datetime.now(dt.UTC)), **extra)

    spec_block = (metric.get("provider") or {}).get("judge") or {}
    keep = {JUDGE_STATE_KEY: saved} if saved else {}
    try:
        spec = score_spec(spec_block)
        decisions, state = await _Measuring(judge, metric, context, final).decisions(spec, _previous(saved))
    except JudgeSpecError as exc:
        return finished(AnalysisPhase.ERROR, f"provider.judge.{exc}", keep)
    except InvalidInput as exc:
        return finished(AnalysisPhase.ERROR, f"judge: {exc}", keep)
    except ProviderError as exc:
        return finished(AnalysisPhase.ERROR, str(exc), keep)
    outcome = combine(decisions, spec, final)
    metadata = score_metadata(outcome, decisions, spec.thresholds)
    metadata[JUDGE_STATE_KEY] = encode_state(SavedState(SCORE_TEST, {}, {"metrics": state}))
    value = fmt(outcome.result.score) or None
    if not outcome.final:
        return finished(AnalysisPhase.INCONCLUSIVE, outcome.reason, metadata, value=value, undecided=True)
    phase, message = _phase(metric, outcome)
    short = short_of_evidence(decisions, message, context.counted + 1)
    if phase is AnalysisPhase.INCONCLUSIVE and short is not None:
        # Ended undecided because metrics lacked traffic or data: the same outcome as one judge's, with
        # each short metric's needs in its metric.<name> entry.
        metadata[OUTCOME_KEY], message = short
        metadata["reason"] = message
    return finished(phase, message, metadata, value=value, result=outcome.condition_value())
