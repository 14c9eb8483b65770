"""When error counts are too sparse for the error-rate test to decide (issue 22): the rule behind the
``sequential`` judge's ``promoteOnLatencyWhenSparse`` (pure arithmetic, numbers or numpy arrays).

A non-inferiority test of "canary rate < margin x baseline rate" at level ``alpha_pass`` that knows the
baseline's rate (the most powerful one there is: the one-sided Poisson test) has power ``power`` against
an unchanged canary once the canary's expected errors reach

    needed = ((z(1 - alpha_pass) * sqrt(margin) + z(power)) / (margin - 1))^2

(normal approximation: under "margin" the canary's count has mean and variance ``margin * E``, under
"unchanged" mean ``E``): about 33 errors at margin 1.5 and alpha_pass 5%. Clustered errors carry less
evidence per error: the count test tempers its evidence by its dispersion ``phi``, so ``E / phi`` is
what counts. When even the whole analysis (every measurement up to the metric's ``count``) is expected
to bring fewer effective canary errors than ``needed``, no error-count test can promote an unchanged
canary in most runs; that is "too sparse".

The rule (:func:`promotes_on_latency`): a passed latency test may stand in for the error-rate test when
the counts are too sparse, the error-rate test's fail e-value is at most 1 (its evidence does not lean
towards a regression) and the test is past the canary's first ``settle`` intervals (the negbin guard's
cautious dispersion for the canary's first intervals makes any traffic look sparse: the rule applied from
the first interval promoted 10% of 2x regressions at 20 rps, from the 10th 1.2%; BENCHMARKS.md, issue 22,
"latency when sparse"). Its power, its fail e-value ceiling and its horizon are a :class:`SparseRule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.stats.types import InvalidInput

__all__ = [
    "DEFAULT_HORIZON",
    "MAX_FAIL_EVIDENCE",
    "POWER",
    "SparseErrors",
    "SparseRule",
    "errors_needed",
    "expected_errors",
    "leans_to_regression",
    "promotes_on_latency",
    "sparse_errors",
]

# Intervals the rule looks ahead when the metric has no ``count`` (it would run until it decides).
DEFAULT_HORIZON: Final = 60
POWER: Final = 0.8
# The error-rate test's fail e-value above which its evidence leans towards a regression (measured
# against 0.5 and 10 in BENCHMARKS.md, issue 22, "latency when sparse").
MAX_FAIL_EVIDENCE: Final = 1.0

Number = TypeVar("Number", float, npt.NDArray[np.float64])
BoolArray = npt.NDArray[np.bool_]


def errors_needed(margin: float, alpha_pass: float, power: float = POWER) -> float:
    """Expected canary errors a test of "below ``margin`` x the baseline's rate" at ``alpha_pass``
    needs to pass an unchanged canary with probability ``power`` (inf for a margin <= 1)."""
    if margin <= 1.0:
        return math.inf
    z_pass, z_power = float(special.ndtri(1.0 - alpha_pass)), float(special.ndtri(power))
    return ((z_pass * math.sqrt(margin) + z_power) / (margin - 1.0)) ** 2


def expected_errors(
    baseline_rate: Number, canary_requests: Number, intervals: Number, intervals_left: Number, dispersion: Number
) -> Number:
    """Effective canary errors expected by the last measurement: the canary's requests so far plus its
    pace per interval (``canary_requests / intervals``) over ``intervals_left``, at the baseline's
    observed error rate, divided by the dispersion the count test tempers its evidence with.
    ``intervals`` >= 1 and ``dispersion`` >= 1."""
    requests = canary_requests + canary_requests / intervals * intervals_left
    out: Number = baseline_rate * requests / dispersion
    return out


@dataclass(frozen=True)
class SparseRule:
    """The rule's settings. ``power``: the chance of passing an unchanged canary below which counts are
    too sparse (higher: more runs count as sparse); ``max_fail_evidence``: the error-rate test's fail
    e-value above which its evidence leans towards a regression (lower: fewer sparse promotions of a
    canary with a few more errors); ``horizon``: the intervals of the whole analysis when the metric has
    no ``count`` (None: the count's measurements, else ``DEFAULT_HORIZON``)."""

    power: float = POWER
    max_fail_evidence: float = MAX_FAIL_EVIDENCE
    horizon: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.power, int | float) and 0.0 < self.power < 1.0):
            raise InvalidInput(f"power must be between 0 and 1 (exclusive), got {self.power!r}")
        evidence = self.max_fail_evidence
        if not (isinstance(evidence, int | float) and math.isfinite(evidence) and evidence > 0.0):
            raise InvalidInput(f"max_fail_evidence must be finite and > 0, got {evidence!r}")
        if self.horizon is not None and not (isinstance(self.horizon, int) and 1 <= self.horizon <= 100_000):
            raise InvalidInput(f"horizon must be a whole number of intervals in [1, 100000], got {self.horizon!r}")


def leans_to_regression(e_fail: npt.ArrayLike, max_fail_evidence: float = MAX_FAIL_EVIDENCE) -> BoolArray:
    """Whether the error-rate test's evidence points towards a regression: its fail e-value above
    ``max_fail_evidence`` (at 1: the canary's errors so far are likelier under the regressions its prior
    weighs than under "no worse")."""
    out: BoolArray = np.asarray(e_fail, dtype=np.float64) > max_fail_evidence
    return out


def promotes_on_latency(
    e_fail: npt.ArrayLike,
    intervals: npt.ArrayLike,
    expected: npt.ArrayLike,
    needed: float,
    settle: int,
    max_fail_evidence: float = MAX_FAIL_EVIDENCE,
) -> BoolArray:
    """Whether the error side lets a passed latency test promote (the error-rate test still undecided is
    the caller's to check): too sparse (``expected`` effective errors below ``needed``), not leaning towards
    a regression (fail e-value at most ``max_fail_evidence``), and ``intervals`` >= ``settle`` (the count
    test's cautious-dispersion window)."""
    sparse = np.asarray(expected, dtype=np.float64) < needed
    settled = np.asarray(intervals, dtype=np.float64) >= settle
    out: BoolArray = sparse & settled & ~leans_to_regression(e_fail, max_fail_evidence)
    return out


@dataclass(frozen=True)
class SparseErrors:
    """The figures behind the rule for one measurement."""

    expected: float  # effective canary errors expected by the last measurement
    needed: float  # what the margin's test needs for the rule's power
    intervals_left: int

    @property
    def sparse(self) -> bool:
        return self.expected < self.needed

    def text(self) -> str:
        return (
            f"error counts too sparse to judge ({self.expected:.3g} canary errors expected by the last "
            f"measurement, {self.needed:.3g} needed)"
        )


def sparse_errors(
    *,
    baseline_rate: float,
    canary_requests: float,
    intervals: int,
    intervals_left: int | None,
    dispersion: float,
    margin: float,
    alpha_pass: float,
    power: float = POWER,
    horizon: int = DEFAULT_HORIZON,
) -> SparseErrors:
    """The rule's figures after ``intervals`` intervals of the count test; ``intervals_left`` None: the
    rule looks ``horizon`` intervals ahead in all (the metric has no count, or the user set the horizon)."""
    left = max(horizon - intervals, 0) if intervals_left is None else max(intervals_left, 0)
    expected = expected_errors(
        float(baseline_rate), float(canary_requests), float(max(intervals, 1)), float(left), max(dispersion, 1.0)
    )
    return SparseErrors(expected, errors_needed(margin, alpha_pass, power), left)
