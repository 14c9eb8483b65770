"""A ``sequential`` metric that also carries the latency queries: the error-rate test and the latency test
judged together (issue 22), as one decision (pure; no I/O).

* FAIL when either test failed (the reason says which; the error-rate test first).
* PASS when both passed (each test's PASS is final once reached), or, with
  ``promoteOnLatencyWhenSparse``, when the latency test passed, the error-rate test has neither failed nor
  passed, its fail e-value is at most ``SparseRule.max_fail_evidence`` (1), it has seen the canary's first
  ``canary_dispersion_intervals`` intervals (its dispersion is no longer the cautious one), and the error
  counts are too sparse to decide by the last measurement (:mod:`analysis.stats.sparse_errors`).
* Otherwise waiting for data (either test below its minimum evidence) or no decision yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.stats import CountTestConfig, Decision, SequentialResult, Shortfall
from analysis.stats.sparse_errors import DEFAULT_HORIZON, SparseErrors, SparseRule, promotes_on_latency, sparse_errors

__all__ = ["JointDecision", "JointInputs", "joint_decision", "settle_intervals", "sparse_figures"]


@dataclass(frozen=True)
class JointInputs:
    """Both tests' results after the same interval, and the metadata each would report alone."""

    errors: SequentialResult
    errors_metadata: dict[str, str]
    latency: SequentialResult
    latency_metadata: dict[str, str]


@dataclass(frozen=True)
class JointDecision:
    decision: Decision
    reason: str
    metadata: dict[str, str]
    shortfall: Shortfall | None  # a NODATA decision: what the waiting test still lacks


def sparse_figures(
    errors: SequentialResult, config: CountTestConfig, intervals_left: int | None, rule: SparseRule | None = None
) -> SparseErrors | None:
    """The sparse rule's figures, or None while the error-rate test has no baseline rate to go by (before
    its minimum evidence, or without baseline requests). The rule looks ahead to its own ``horizon`` when
    set, else ``intervals_left`` (the metric's count), else ``DEFAULT_HORIZON`` intervals in all."""
    rule = rule or SparseRule()
    rate = errors.details.get("baselineRate")
    if errors.decision is Decision.NODATA or rate is None or errors.intervals_seen < 1:
        return None
    return sparse_errors(
        baseline_rate=float(rate),
        canary_requests=errors.canary_total,
        intervals=errors.intervals_seen,
        intervals_left=intervals_left if rule.horizon is None else None,
        dispersion=float(errors.details.get("dispersion") or 1.0),
        margin=config.pass_ratio,
        alpha_pass=config.alpha_pass,
        power=rule.power,
        horizon=DEFAULT_HORIZON if rule.horizon is None else rule.horizon,
    )


def _metadata(inputs: JointInputs, decision: Decision, reason: str, sparse: SparseErrors | None) -> dict[str, str]:
    meta = dict(inputs.errors_metadata)
    meta.update(decision=decision.value, reason=reason)
    meta["errors.decision"] = inputs.errors.decision.value
    for key in ("decision", "reason", "estimate", "interval", "evidence", "quantity", "samples", "worstBound"):
        value = inputs.latency_metadata.get(key)
        if value:
            meta[f"latency.{key}"] = value
    if sparse is not None:
        meta["expectedCanaryErrors"] = f"{sparse.expected:.6g}"
        meta["neededCanaryErrors"] = f"{sparse.needed:.6g}"
        meta["errorsSparse"] = "true" if sparse.sparse else "false"
    return meta


def settle_intervals(config: CountTestConfig) -> int:
    """Intervals before the sparse rule applies: the negbin guard's cautious window for the canary's own
    dispersion (0 when the test does not estimate it)."""
    return config.canary_dispersion_intervals if config.uses_history else 0


def _sparse_pass(errors: SequentialResult, sparse: SparseErrors, config: CountTestConfig, rule: SparseRule) -> bool:
    if errors.decision is not Decision.CONTINUE:
        return False
    return bool(promotes_on_latency(errors.e_fail, errors.intervals_seen, sparse.expected, sparse.needed,
                                    settle_intervals(config), rule.max_fail_evidence))


def _decide(
    inputs: JointInputs, promote_when_sparse: bool, sparse: SparseErrors | None, config: CountTestConfig,
    rule: SparseRule,
) -> tuple[Decision, str, Shortfall | None]:
    """The decision, its reason and, for a NODATA decision, the waiting test's shortfall."""
    errors, latency = inputs.errors, inputs.latency
    if errors.decision is Decision.FAIL:
        return Decision.FAIL, f"error-rate test failed: {errors.reason}", None
    if latency.decision is Decision.FAIL:
        return Decision.FAIL, f"latency test failed: {latency.reason}", None
    if errors.decision is Decision.PASS and latency.decision is Decision.PASS:
        return Decision.PASS, f"both tests passed: errors: {errors.reason}; latency: {latency.reason}", None
    if (
        promote_when_sparse and sparse is not None and latency.decision is Decision.PASS
        and _sparse_pass(errors, sparse, config, rule)
    ):
        reason = (
            f"{sparse.text()}; latency no worse than the baseline: {latency.reason}; errors so far: {errors.reason}"
        )
        return Decision.PASS, reason, None
    for result, what in ((errors, "errors"), (latency, "latency")):
        if result.decision is Decision.NODATA:
            return Decision.NODATA, f"{result.reason} ({what})", result.shortfall
    return Decision.CONTINUE, f"no decision yet: errors: {errors.reason}; latency: {latency.reason}", None


def joint_decision(
    inputs: JointInputs,
    config: CountTestConfig,
    promote_when_sparse: bool,
    intervals_left: int | None,
    rule: SparseRule | None = None,
) -> JointDecision:
    """One measurement's decision from both tests (see the module's text); ``config``: the error-rate
    test's; ``intervals_left``: the measurements still to come (None: the metric has no count); ``rule``:
    the sparse rule's settings (default: its defaults)."""
    rule = rule or SparseRule()
    sparse = sparse_figures(inputs.errors, config, intervals_left, rule) if promote_when_sparse else None
    decision, reason, shortfall = _decide(inputs, promote_when_sparse, sparse, config, rule)
    return JointDecision(decision, reason, _metadata(inputs, decision, reason, sparse), shortfall)
