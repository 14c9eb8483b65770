"""The ``judge`` provider: canary against baseline with the sequential error-rate test of
:mod:`analysis.stats` (issue 7), fed one interval per measurement from Prometheus.

Spec (``provider.judge``)::

    judge:
      test: sequential            # the only test implemented so far (mann-whitney: not yet)
      address: http://prom:9090   # else $PYROLLOUTS_PROMETHEUS_ADDRESS; timeout, insecure, headers and
                                  # authentication as for the prometheus provider
      canary:                     # instant queries: the increase over the last interval
        errors:   sum(increase(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",code=~"5.."}[30s]))
        requests: sum(increase(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}"}[30s]))
      baseline: {errors: ..., requests: ...}
      alpha: 0.01        # bound on the false-rollback rate however often the test looks (alpha_fail)
      alphaPass: 0.05    # error bound of the early pass
      margin: 1.5        # non-inferiority: PASS once canary rate < margin x baseline rate
      failRatio: 1.0     # FAIL once canary rate > failRatio x baseline rate
      minRequests: 200   # per version, before anything is decided ("waiting for data")
      minIntervals: 3    # intervals with traffic on both versions, before anything is decided
      dispersion: 1.0    # omit: guard against clustered errors; 1: Poisson counts; > 1: known dispersion

The user writes the window (``[30s]``, normally the metric's ``interval``). A query that returns
no series counts as 0 (no traffic, or no errors); NaN counts as a missing interval; a vector of
several series is summed. Each measurement runs the four queries concurrently in threads, restores
the test's state from the newest earlier measurement of the metric that carries it (metadata
``judgeState``, zlib-compressed JSON, base64; only the newest measurement keeps it), adds the
interval and maps the decision:

* FAIL -> Failed; PASS -> Successful (a judge metric's ``consecutiveSuccessLimit`` defaults to 1,
  so one PASS completes the metric: the canary is promoted early);
* CONTINUE / NODATA -> a measurement that decides nothing: phase Inconclusive, counted towards
  ``count`` but not towards ``inconclusiveLimit``, ``failureLimit`` or the success streak
  (``Measurement.undecided``), message "no decision yet: ..." or "waiting for data: ...";
  on the metric's final ``count`` it is a real Inconclusive (the rollout pauses);
* a failed query, a bad answer or a saved state that cannot be read -> Error (the state is carried
  over, so the test resumes after an outage).

``value`` is the estimated error-rate ratio canary/baseline; metadata holds ``decision``,
``reason``, ``estimate``, ``interval`` (anytime-valid confidence sequence), the e-values
``eFail``/``ePass``, always-valid ``pFail``/``pPass``, the request and error totals and the
interval's own counts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
import os
import zlib
from collections.abc import Mapping
from typing import Any, Final

from analysis.phases import AnalysisPhase, effective_count
from analysis.providers.base import (
    JUDGE_STATE_KEY,
    Context,
    ImmediateProvider,
    Measurement,
    ProviderError,
    authenticate,
    format_time,
    format_value,
)
from analysis.providers.prometheus import ADDRESS_ENV, DEFAULT_TIMEOUT, _query
from analysis.stats import CountTest, CountTestConfig, Decision, InvalidInput, SequentialResult
from analysis.stats.sequential_counts import CountTestState

__all__ = ["STATE_KEY", "TESTS", "JudgeProvider", "config_from_spec", "decode_state", "encode_state", "spec_problems"]

STATE_KEY: Final = JUDGE_STATE_KEY
TESTS: Final = ("sequential",)
_QUERIES: Final = (("canary", "errors"), ("canary", "requests"), ("baseline", "errors"), ("baseline", "requests"))


def _number(spec: Mapping[str, Any], key: str) -> float | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{key}: expected a finite number, got {value!r}")
    return number


def config_from_spec(spec: Mapping[str, Any]) -> CountTestConfig:
    """The count test's settings from ``provider.judge``; InvalidInput names the bad field."""
    kwargs: dict[str, Any] = {}
    for key, name in (
        ("alpha", "alpha_fail"),
        ("alphaPass", "alpha_pass"),
        ("margin", "pass_ratio"),
        ("failRatio", "fail_ratio"),
        ("dispersion", "dispersion"),
    ):
        value = _number(spec, key)
        if value is not None:
            kwargs[name] = value
    min_requests = _number(spec, "minRequests")
    if min_requests is not None:
        kwargs["min_canary_requests"] = kwargs["min_baseline_requests"] = min_requests
    min_intervals = _number(spec, "minIntervals")
    if min_intervals is not None:
        if not min_intervals.is_integer():
            raise InvalidInput(f"minIntervals: expected an integer, got {spec.get('minIntervals')!r}")
        kwargs["min_intervals"] = int(min_intervals)
    return CountTestConfig(**kwargs)


def spec_problems(spec: Mapping[str, Any], where: str) -> list[str]:
    """What is wrong with a ``provider.judge`` spec (for validate_metrics)."""
    problems: list[str] = []
    test = spec.get("test") or "sequential"
    if test not in TESTS:
        problems.append(f'{where}.test: "{test}" is not implemented (supported: {", ".join(TESTS)})')
    for side, what in _QUERIES:
        block = spec.get(side)
        if not isinstance(block, Mapping) or not block.get(what):
            problems.append(f"{where}.{side}.{what}: required")
    if not _has_placeholder(spec):
        try:
            config_from_spec(spec)
        except InvalidInput as exc:
            problems.append(f"{where}: {exc}")
    return problems


def _has_placeholder(spec: Mapping[str, Any]) -> bool:
    keys = ("alpha", "alphaPass", "margin", "failRatio", "dispersion", "minRequests", "minIntervals")
    return any("{{" in str(spec.get(k)) for k in keys if spec.get(k) is not None)


def encode_state(test: CountTest) -> str:
    raw = json.dumps(test.state.to_dict(), separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_state(text: str) -> CountTestState:
    try:
        data = json.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (ValueError, zlib.error):
        raise InvalidInput("saved judge state is not readable") from None
    if not isinstance(data, dict):
        raise InvalidInput("saved judge state is not an object")
    return CountTestState.from_dict(data)


def _saved_state(context: Context) -> str | None:
    for measurement in reversed(context.history):
        saved = measurement.metadata.get(STATE_KEY)
        if saved:
            return saved
    return None


def _count(result_type: str, result: Any, what: str) -> float:
    """An instant query's answer as one count: no series 0, several summed, NaN kept (missing)."""
    try:
        if result_type == "scalar":
            return float(result[1])
        if result_type == "vector":
            return float(sum(float(series["value"][1]) for series in result))
    except (TypeError, ValueError, KeyError, IndexError):
        raise ProviderError(f"{what}: cannot read a sample value") from None
    raise ProviderError(f"{what}: expected a scalar or vector, Prometheus answered a {result_type}")


def _step(
    saved: str | None, config: CountTestConfig, counts: tuple[float, float, float, float]
) -> tuple[SequentialResult, str]:
    """Restore, update, save: CPU work, run in a thread."""
    test = CountTest(config, decode_state(saved) if saved else None)
    result = test.update(*counts)
    return result, encode_state(test)


def _fmt(x: float | None) -> str:
    return "" if x is None or not math.isfinite(x) else format_value(float(f"{x:.6g}"))


def _metadata(result: SequentialResult, counts: tuple[float, float, float, float], test: str) -> dict[str, str]:
    d = result.to_dict()
    lo, hi = result.interval if result.interval is not None else (math.nan, math.nan)
    hi_text = "inf" if math.isinf(hi) else _fmt(hi)
    meta = {
        "test": test,
        "decision": result.decision.value,
        "reason": result.reason,
        "quantity": result.quantity,
        "estimate": _fmt(result.estimate),
        "interval": f"[{_fmt(lo)}, {hi_text}]" if result.interval is not None else "",
        "eFail": _fmt(result.e_fail),
        "ePass": _fmt(result.e_pass),
        "pFail": _fmt(result.p_fail),
        "pPass": _fmt(result.p_pass),
        "intervals": str(result.intervals_seen),
        "canaryRequests": _fmt(result.canary_total),
        "baselineRequests": _fmt(result.baseline_total),
        "canaryRate": _fmt(d["details"].get("canaryRate")),
        "baselineRate": _fmt(d["details"].get("baselineRate")),
        "thisInterval": "canary {}/{} baseline {}/{} (errors/requests)".format(*(_fmt(c) or "NaN" for c in counts)),
    }
    return {k: v for k, v in meta.items() if v != ""}


class JudgeProvider(ImmediateProvider):
    kind = "judge"

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        started = format_time(context.now)
        spec = (metric.get("provider") or {}).get("judge") or {}
        saved = _saved_state(context)

        def error(message: str) -> Measurement:
            return Measurement(
                AnalysisPhase.ERROR,
                message=message,
                metadata={STATE_KEY: saved} if saved else {},
                started_at=started,
                finished_at=format_time(dt.datetime.now(dt.UTC)),
            )

        test = str(spec.get("test") or "sequential")
        if test not in TESTS:
            return error(f'judge: test "{test}" is not implemented (supported: {", ".join(TESTS)})')
        address = str(spec.get("address") or os.environ.get(ADDRESS_ENV) or "")
        if not address:
            return error(f"no Prometheus address: set provider.judge.address or {ADDRESS_ENV}")
        headers = {str(h.get("key")): str(h.get("value")) for h in spec.get("headers") or []}
        try:
            config = config_from_spec(spec)
            timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
            queries = []
            for side, what in _QUERIES:
                query = str((spec.get(side) or {}).get(what) or "")
                if not query:
                    raise ProviderError(f"judge: {side}.{what} query is required")
                queries.append(query)
            auth = await authenticate(spec, context, headers)
            insecure = bool(spec.get("insecure"))
            answers = await asyncio.gather(
                *(asyncio.to_thread(_query, address, headers, auth, insecure, timeout, q, None) for q in queries),
                return_exceptions=True,
            )
            counts: list[float] = []
            for (side, what), answer in zip(_QUERIES, answers, strict=True):
                if isinstance(answer, ProviderError):
                    raise ProviderError(f"{side}.{what}: {answer}")
                if isinstance(answer, BaseException):
                    raise answer
                counts.append(_count(answer.result_type, answer.result, f"{side}.{what}"))
            ce, cr, be, br = counts
            result, state = await asyncio.to_thread(_step, saved, config, (ce, cr, be, br))
        except ProviderError as exc:
            return error(str(exc))
        except InvalidInput as exc:
            return error(f"judge: {exc}")
        except ValueError as exc:
            return error(f"judge: {exc}")
        metadata = _metadata(result, (ce, cr, be, br), test)
        metadata[STATE_KEY] = state
        undecided = False
        if result.decision is Decision.FAIL:
            phase = AnalysisPhase.FAILED
        elif result.decision is Decision.PASS:
            phase = AnalysisPhase.SUCCESSFUL
        else:
            phase = AnalysisPhase.INCONCLUSIVE
            try:
                count = effective_count(metric)
            except ValueError:
                count = None
            final = count is not None and context.counted + 1 >= count
            if final:
                metadata["reason"] = f"no decision after {context.counted + 1} measurements: {result.reason}"
            else:
                undecided = True
        return Measurement(
            phase,
            value=_fmt(result.estimate) or None,
            message=metadata["reason"],
            metadata=metadata,
            started_at=started,
            finished_at=format_time(dt.datetime.now(dt.UTC)),
            result=result.to_dict(),
            undecided=undecided,
        )
