"""The ``judge`` provider: canary against baseline with the statistical tests of :mod:`analysis.stats`
(issue 7), fed from Prometheus at every measurement (mann-whitney also from the provider ``source`` names:
:mod:`analysis.providers.judge.sources`).

Spec (``provider.judge``; fields and tests in :mod:`analysis.providers.judge.spec`)::

    judge:
      test: sequential            # or sequential-latency, mann-whitney
      address: http://prom:9090   # else $PYROLLOUTS_PROMETHEUS_ADDRESS; timeout, insecure, headers and
                                  # authentication as for the prometheus provider
      canary:                     # counters: the judge takes each series' increase between measurements
        errors:   http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",code=~"5.."}
        requests: http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}"}
      baseline: {errors: ..., requests: ...}
      alpha: 0.01  alphaPass: 0.05  margin: 1.5  failRatio: 1.0  minRequests: 200  minIntervals: 3

Each measurement runs its queries concurrently in threads, restores the saved state from the newest
earlier measurement of the metric that carries it (metadata ``judgeState``; only the newest keeps
it), judges, and maps the decision to the measurement's phase:

* fail -> Failed; pass -> Successful (a judge metric's ``consecutiveSuccessLimit`` defaults to 1, so
  one pass completes the metric: the canary is promoted early);
* continue / waiting for data -> a measurement that decides nothing: phase Inconclusive, counted
  towards ``count`` but not towards ``inconclusiveLimit``, ``failureLimit`` or the success streak
  (``Measurement.undecided``); on the metric's final ``count`` it is a real Inconclusive;
* a failed query, a bad answer or a saved state that cannot be read -> Error (the state is carried
  over, so the test resumes after an outage).

``value`` is the estimate (error-rate or exceedance-rate ratio canary/baseline; for mann-whitney the
shift canary - baseline); metadata holds ``decision``, ``reason``, ``quantity``, ``estimate``,
``interval``, ``evidence``, ``samples`` and the test's own figures (``eFail``, ``pValue``, ...).

A spec with ``metrics`` is a score over several such judges (Kayenta's canary config):
:mod:`analysis.providers.judge.score` measures it, each metric through :meth:`JudgeProvider.verdict`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final

from analysis.outcome import NEEDED_KEY, OUTCOME_KEY
from analysis.phases import AnalysisPhase
from analysis.providers.base import (
    JUDGE_STATE_KEY,
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    authenticate,
    format_time,
)
from analysis.providers.judge.answers import range_increases, range_values, series_totals
from analysis.providers.judge.score import measure_score
from analysis.providers.judge.score_spec import is_score, judge_problems
from analysis.providers.judge.shortfall import DEFAULT_INTERVAL, interval_seconds, message, metric_count, needs
from analysis.providers.judge.source_spec import series_source
from analysis.providers.judge.sources import SourceReader
from analysis.providers.judge.spec import (
    MANN_WHITNEY,
    SEQUENTIAL,
    TESTS,
    JudgeSpecError,
    baseline_history_seconds,
    count_config,
    mann_whitney_settings,
    queries,
    test_name,
)
from analysis.providers.judge.verdicts import (
    SavedState,
    Verdict,
    decode_state,
    earlier_start,
    encode_state,
    fmt,
    mann_whitney_verdict,
    sequential_step,
)
from analysis.providers.prometheus import ADDRESS_ENV, DEFAULT_TIMEOUT, Answer, parse_range_time, run_query
from analysis.spec import SpecError, duration_seconds
from analysis.stats import Decision, InvalidInput, Shortfall

__all__ = ["STATE_KEY", "TESTS", "JudgeProvider", "decode_state"]

STATE_KEY: Final = JUDGE_STATE_KEY
DEFAULT_STEP: Final = DEFAULT_INTERVAL
MAX_HISTORY_POINTS: Final = 10_000
#: (named queries, start, end, step) -> each query's values over the window: Prometheus's or a source's.
SeriesReader = Callable[[list[tuple[str, str]], dt.datetime, dt.datetime, str], Awaitable[dict[str, list[float]]]]


def _saved_state(context: Context) -> str | None:
    for measurement in reversed(context.history):
        saved = measurement.metadata.get(STATE_KEY)
        if saved:
            return saved
    return None


def _is_final(metric: Mapping[str, Any], context: Context) -> bool:
    count = metric_count(metric)
    return count is not None and context.counted + 1 >= count


def _run_start(context: Context) -> dt.datetime | None:
    run = context.run if isinstance(context.run, Mapping) else {}
    for text in ((run.get("status") or {}).get("startedAt"), (run.get("metadata") or {}).get("creationTimestamp")):
        if isinstance(text, str) and text:
            try:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


class _Prometheus:
    """One measurement's connection settings; ``ask`` runs queries concurrently in threads."""

    def __init__(self, address: str, headers: dict[str, str], auth: tuple[str, str] | None, spec: Mapping[str, Any]):
        self.address, self.headers, self.auth = address, headers, auth
        self.insecure = bool(spec.get("insecure"))
        try:
            self.timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        except (TypeError, ValueError):
            wrong = spec.get("timeout")
            raise ProviderError(f"provider.judge.timeout: expected a number of seconds, got {wrong!r}") from None

    def _thread(
        self, query: str, window: tuple[dt.datetime, dt.datetime, str] | None, at: dt.datetime | None
    ) -> Coroutine[Any, Any, Answer]:
        return asyncio.to_thread(
            run_query, self.address, self.headers, self.auth, self.insecure, self.timeout, query, window, at
        )

    async def ask(
        self, named: list[tuple[str, str]], window: tuple[dt.datetime, dt.datetime, str] | None = None,
        at: dt.datetime | None = None,
    ) -> dict[str, Answer]:
        """Each named query: over ``window`` (a range), else at ``at`` (an instant; None: Prometheus's now)."""
        answers = await asyncio.gather(
            *(self._thread(query, window, at) for _, query in named),
            return_exceptions=True,
        )
        out: dict[str, Answer] = {}
        for (name, _), answer in zip(named, answers, strict=True):
            if isinstance(answer, ProviderError):
                raise ProviderError(f"{name}: {answer}")
            if isinstance(answer, BaseException):
                raise answer
            out[name] = answer
        return out

    async def values(
        self, named: list[tuple[str, str]], start: dt.datetime, end: dt.datetime, step: str
    ) -> dict[str, list[float]]:
        """Each named range query's values (the mann-whitney test's series)."""
        answers = await self.ask(named, (start, end, step))
        return {name: range_values(answers[name].result_type, answers[name].result, name) for name, _ in named}


class JudgeProvider(ImmediateProvider):
    kind = "judge"
    spec_problems = staticmethod(judge_problems)

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("judge") or {}
        saved = _saved_state(context)
        final = _is_final(metric, context)
        if is_score(spec):
            return await measure_score(self.verdict, metric, context, saved, final, started)

        def error(message: str) -> Measurement:
            return Measurement(
                AnalysisPhase.ERROR,
                message=message,
                metadata={STATE_KEY: saved} if saved else {},
                started_at=started,
                finished_at=format_time(dt.datetime.now(dt.UTC)),
            )

        test = test_name(spec)
        if test not in TESTS:
            return error(f'judge: test "{test}" is not a judge test (supported: {", ".join(TESTS)})')
        try:
            previous = decode_state(saved, test) if saved and test != MANN_WHITNEY else None
            verdict, state = await self.verdict(spec, metric, context, previous, final)
        except ProviderError as exc:
            return error(str(exc))
        except (JudgeSpecError, SpecError) as exc:
            return error(f"provider.judge.{exc}")
        except InvalidInput as exc:  # impossible data, bucket bounds that do not match, an unreadable state
            return error(f"judge: {exc}")
        except ValueError as exc:  # a conversion nothing above foresaw: still a clear Error, never a crash
            return error(f"judge: cannot use Prometheus's answer: {exc}")
        return self._measurement(metric, context, verdict, state, final, started)

    async def verdict(
        self, spec: Mapping[str, Any], metric: Mapping[str, Any], context: Context, previous: SavedState | None,
        final: bool,
    ) -> tuple[Verdict, SavedState | None]:
        """One judge spec's verdict and the state to save (``previous``: the sequential tests' saved state).
        Raises ProviderError, JudgeSpecError, SpecError, InvalidInput or ValueError (see ``measure``)."""
        test = test_name(spec)
        if test not in TESTS:
            raise JudgeSpecError(f'test: "{test}" is not a judge test (supported: {", ".join(TESTS)})')
        address = str(spec.get("address") or os.environ.get(ADDRESS_ENV) or "")
        source = series_source(spec)
        if not address and source is None:
            raise ProviderError(f"no Prometheus address: set provider.judge.address or {ADDRESS_ENV}")
        named = [(f"{side}.{what}", query) for side, what, query in queries(spec, test)]
        if source is not None:
            return await self._from_source(source, test, spec, metric, context, named, final), None
        headers = {str(h.get("key")): str(h.get("value")) for h in spec.get("headers") or []}
        auth = await authenticate(spec, context, headers)
        prometheus = _Prometheus(address, headers, auth, spec)
        if test == MANN_WHITNEY:
            return await self._mann_whitney(spec, metric, context, prometheus.values, named, final), None
        totals = await self._totals(prometheus, named)
        history, earlier = None, None
        end = context.now
        if previous is None:
            # The first reading also reads the counters one interval earlier, so that it already judges an
            # interval when both versions' series were there then (`earlier_start`).
            at = context.now - dt.timedelta(seconds=interval_seconds(metric))
            earlier = await self._totals(prometheus, named, at, "the counters one interval before the first reading")
            end = at if earlier_start(test, earlier) is not None else end
        if previous is None and test == SEQUENTIAL:
            history = await self._baseline_history(spec, metric, context, prometheus, named, end)
        count = metric_count(metric)
        left = None if count is None else max(count - (context.counted + 1), 0)
        return await asyncio.to_thread(
            sequential_step, test, spec, previous, totals, history, earlier, left, count
        )

    @staticmethod
    async def _totals(
        prometheus: _Prometheus, named: list[tuple[str, str]], at: dt.datetime | None = None, what: str = ""
    ) -> dict[str, dict[str, float]]:
        """The counters by series of each named query, now or at ``at`` (``what`` names that reading in errors)."""
        try:
            answers = await prometheus.ask(named, at=at)
        except ProviderError as exc:
            raise ProviderError(f"{what}: {exc}" if what else str(exc)) from None
        return {name: series_totals(a.result_type, a.result, name) for name, a in answers.items()}

    async def _from_source(
        self,
        source: tuple[str, Mapping[str, Any]],
        test: str,
        spec: Mapping[str, Any],
        metric: Mapping[str, Any],
        context: Context,
        named: list[tuple[str, str]],
        final: bool,
    ) -> Verdict:
        """The mann-whitney verdict on series read from ``source`` (kind, settings) instead of Prometheus."""
        if test != MANN_WHITNEY:  # the spec checks say so at create time; a run may skip them
            raise JudgeSpecError("source: only test: mann-whitney reads another provider's series")
        reader = SourceReader(*source, context)
        return await self._mann_whitney(spec, metric, context, reader.values, named, final)

    @staticmethod
    async def _baseline_history(
        spec: Mapping[str, Any],
        metric: Mapping[str, Any],
        context: Context,
        prometheus: _Prometheus,
        named: list[tuple[str, str]],
        end: dt.datetime,
    ) -> tuple[dict[float, float], dict[float, float]] | None:
        """The baseline's errors and requests per metric interval over ``baselineHistory`` before ``end``
        (the stable version serving all traffic; ``end``: where the first judged interval starts), for the
        count test's dispersion bound; None when switched off or the test does not use it."""
        seconds = baseline_history_seconds(spec)
        if seconds <= 0 or not count_config(spec).uses_history:
            return None
        step = interval_seconds(metric)
        # Prometheus answers at most 11,000 points per series.
        seconds = min(seconds, step * MAX_HISTORY_POINTS)
        window = (end - dt.timedelta(seconds=seconds), end, f"{step:g}s")
        wanted = [(name, query) for name, query in named if name in ("baseline.errors", "baseline.requests")]
        try:
            answers = await prometheus.ask(wanted, window)
        except ProviderError as exc:
            raise ProviderError(f"baselineHistory (set baselineHistory: 0 to skip it): {exc}") from None
        errors, requests = (
            range_increases(answers[n].result_type, answers[n].result, f"baselineHistory {n}")
            for n in ("baseline.errors", "baseline.requests")
        )
        return errors, requests

    async def _mann_whitney(
        self,
        spec: Mapping[str, Any],
        metric: Mapping[str, Any],
        context: Context,
        read: SeriesReader,
        named: list[tuple[str, str]],
        final: bool,
    ) -> Verdict:
        settings = mann_whitney_settings(spec, str(metric.get("name") or "metric"))
        now = context.now
        if settings.range_start is not None:
            start = parse_range_time(settings.range_start, now, "rangeQuery.start")
        else:
            start = _run_start(context) or now
        end = parse_range_time(settings.range_end, now, "rangeQuery.end")
        step = settings.step or str(metric.get("interval") or DEFAULT_STEP)
        window = f"{format_time(start)[:19]}Z..{format_time(end)[:19]}Z step {step}"
        # With the run's window each interval adds interval / step points per version.
        pace = interval_seconds(metric) / (duration_seconds(step, "rangeQuery.step") or 1.0)
        if end <= start:
            reason = f"waiting for data: the window {window} is empty"
            nothing = Shortfall("points", 0, settings.min_points, 0, settings.min_points)
            return Verdict(Decision.NODATA, reason, None, {"test": MANN_WHITNEY, "decision": "nodata",
                                                            "reason": reason}, nothing, pace)
        values = await read(named, start, end, step)
        canary, baseline = (values[n] for n, _ in named)
        verdict = await asyncio.to_thread(mann_whitney_verdict, settings, canary, baseline, final, window)
        return dataclasses.replace(verdict, pace=pace)

    @staticmethod
    def _measurement(
        metric: Mapping[str, Any], context: Context, verdict: Verdict, state: SavedState | None, final: bool,
        started: str,
    ) -> Measurement:
        metadata = dict(verdict.metadata)
        if state is not None:
            metadata[STATE_KEY] = encode_state(state)
        reason, undecided = verdict.reason, False
        if verdict.decision is Decision.FAIL:
            phase = AnalysisPhase.FAILED
        elif verdict.decision is Decision.PASS:
            phase = AnalysisPhase.SUCCESSFUL
        else:
            phase = AnalysisPhase.INCONCLUSIVE
            undecided = not final
            if verdict.decision is Decision.NODATA and verdict.shortfall is not None:
                needed = needs(
                    verdict.shortfall, verdict.pace, interval_seconds(metric), context.counted + 1, metric_count(metric)
                )
                reason = message(needed, reason, final)
                metadata.update(reason=reason, shortfall=needed.still_needed(), **{NEEDED_KEY: needed.to_json()})
                if final:  # the metric ends Inconclusive for lack of evidence: the outcome the Rollout reads
                    metadata[OUTCOME_KEY] = needed.outcome
            elif final:
                reason = f"no decision after {context.counted + 1} measurements: {reason}"
                metadata["reason"] = reason
        return Measurement(
            phase,
            value=fmt(verdict.value) or None,
            message=reason,
            metadata=metadata,
            started_at=started,
            finished_at=format_time(dt.datetime.now(dt.UTC)),
            result=verdict.value,
            undecided=undecided,
        )
