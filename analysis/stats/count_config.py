"""Settings of the sequential error-rate test (:class:`analysis.stats.sequential_counts.CountTest`): the
boundaries, the evidence levels, the guard against clustered errors and the grid, checked when made and
saved with the test's state."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysis.stats.types import InvalidInput

__all__ = ["DEFAULT_FAIL_ALTERNATIVES", "DEFAULT_PASS_ALTERNATIVES", "GUARDS", "CountTestConfig"]

# Prior over alternatives, as multiples of the null boundary, with weights.
# Concentrated on the regressions that matter for a canary (1.5x-3x), with some
# mass on gross ones (10x; 5x is caught through 3x and 10x). A 1.25x point was
# dropped (2026-11-26): within a 60-minute canary at typical traffic it is
# below what can be told apart, and its weight slowed the 2x case by a minute. Lindon & Malek use a conjugate
# continuous prior; a discrete one keeps the update O(grid).
DEFAULT_FAIL_ALTERNATIVES: tuple[tuple[float, float], ...] = (
    (1.5, 1.0), (2.0, 2.0), (3.0, 1.0), (10.0, 0.5),
)
DEFAULT_PASS_ALTERNATIVES: tuple[tuple[float, float], ...] = (
    (1 / 1.25, 1.0), (1 / 1.5, 2.0), (1 / 2.0, 2.0), (1 / 3.0, 1.0), (1 / 5.0, 1.0),
)


GUARDS = ("negbin", "t")


@dataclass(frozen=True)
class CountTestConfig:
    """Settings of the error-rate test.

    ``fail_ratio``: FAIL means "canary rate > fail_ratio x baseline rate" (1.0:
    any significant increase; Kayenta's allowed increase). ``pass_ratio``:
    PASS means "canary rate < pass_ratio x baseline rate" (the non-inferiority
    margin). Both are snapped to the grid in the conservative direction.
    ``dispersion``: None (default) guards against clustered errors (see ``guard``);
    1.0 assumes Poisson counts (exact, fastest); a number > 1 tempers the
    likelihood by that known dispersion.
    ``guard`` (with ``dispersion=None``): ``"negbin"`` (default) tempers each
    interval by the dispersion a negative-binomial fit of the baseline's own
    counts cannot rule out at ``dispersion_level``; ``"t"`` is the scale-invariant
    sequential t-test (no model for the clustering; slower with few events).
    ``dispersion_level``: 1 - delta, the coverage at every interval of the
    bound on the dispersion (false rollbacks <= alpha_fail + delta under NB2).
    ``canary_dispersion_intervals`` (negbin guard): the canary's own clustering is
    estimated from its counts too (a release that fails in bursts); for its first
    that many intervals with traffic it is taken at the cautious end, then at its
    best fit once that beats Poisson by ``canary_dispersion_gain`` (nats). 0: the
    canary is assumed to cluster like the baseline (states saved before this existed).
    ``canary_dispersion_events``: the cautious window also ends, after at least 3
    intervals, once the canary's requests would have shown that many errors at the
    baseline's rate (high traffic learns the canary's clustering in a few intervals;
    the canary's own errors do not count, so neither a regression nor a burst shortens
    it). 0: the window is ``canary_dispersion_intervals`` long whatever the traffic.
    ``pass_canary_dispersion_scale``: the PASS test's evidence keeps that cautious
    end over a window this many times as long (both its intervals, rounded up, and
    its events); the FAIL test keeps the window above. After the window the
    canary's dispersion is a plug-in best fit, not a bound: where only the canary
    clusters (CV 1) the 10 / 12 window promoted 4.7% of canaries at the 1.5x margin
    (Wilson upper end 5.1%, 10,000 runs) against alpha_pass 5% (benchmark, 2026-12-04).
    1: both tests on one window (states saved before this existed).
    ``effect_scale``: prior sd of the standardised effect in the guard.
    ``prior_dof``: pseudo degrees of freedom for the dispersion in the interval.
    """

    alpha_fail: float = 0.01
    alpha_pass: float = 0.05
    alpha_ci: float = 0.05
    fail_ratio: float = 1.0
    pass_ratio: float = 1.5
    min_intervals: int = 3
    min_canary_requests: float = 200.0
    min_baseline_requests: float = 200.0
    dispersion: float | None = None
    guard: str = "negbin"
    dispersion_level: float = 0.99
    canary_dispersion_intervals: int = 10
    canary_dispersion_gain: float = 0.5
    canary_dispersion_events: float = 12.0
    pass_canary_dispersion_scale: float = 1.5
    prior_dof: float = 0.0
    effect_scale: float = 1.0
    grid_step: float = math.log(2.0) / 16.0
    grid_span: float = math.log(1024.0)
    fail_alternatives: tuple[tuple[float, float], ...] = DEFAULT_FAIL_ALTERNATIVES
    pass_alternatives: tuple[tuple[float, float], ...] = DEFAULT_PASS_ALTERNATIVES

    def __post_init__(self) -> None:
        self._check_levels_and_ratios()
        self._check_evidence_settings()
        self._check_grid()

    def _check_levels_and_ratios(self) -> None:
        for name in ("alpha_fail", "alpha_pass", "alpha_ci"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 < v < 1.0):
                raise InvalidInput(f"{name} must be in (0, 1), got {v!r}")
        for name in ("fail_ratio", "pass_ratio"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0.0):
                raise InvalidInput(f"{name} must be a finite ratio > 0, got {v!r}")

    def _check_evidence_settings(self) -> None:
        if self.dispersion is not None and not (math.isfinite(self.dispersion) and self.dispersion >= 1.0):
            raise InvalidInput(f"dispersion must be >= 1 (or None to estimate), got {self.dispersion!r}")
        if self.min_intervals < 1 or self.min_canary_requests < 0 or self.min_baseline_requests < 0:
            raise InvalidInput("minimum evidence settings must be >= 0 (intervals >= 1)")
        if not (0.0 < self.effect_scale <= 10.0):
            raise InvalidInput("effect_scale must be in (0, 10]")
        if self.guard not in GUARDS:
            raise InvalidInput(f"guard must be one of {', '.join(GUARDS)}, got {self.guard!r}")
        if not (isinstance(self.dispersion_level, int | float) and 0.5 <= self.dispersion_level < 1.0):
            raise InvalidInput(f"dispersion_level must be in [0.5, 1), got {self.dispersion_level!r}")
        n_canary = self.canary_dispersion_intervals
        if not (isinstance(n_canary, int) and 0 <= n_canary <= 1000):
            raise InvalidInput(f"canary_dispersion_intervals must be in [0, 1000], got {n_canary!r}")
        if not (math.isfinite(self.canary_dispersion_gain) and self.canary_dispersion_gain >= 0.0):
            raise InvalidInput(f"canary_dispersion_gain must be finite and >= 0, got {self.canary_dispersion_gain!r}")
        events = self.canary_dispersion_events
        if not (isinstance(events, int | float) and math.isfinite(events) and events >= 0.0):
            raise InvalidInput(f"canary_dispersion_events must be finite and >= 0, got {events!r}")
        scale = self.pass_canary_dispersion_scale
        if not (isinstance(scale, int | float) and math.isfinite(scale) and 1.0 <= scale <= 100.0):
            raise InvalidInput(f"pass_canary_dispersion_scale must be in [1, 100], got {scale!r}")
        if not (self.prior_dof >= 0.0 and math.isfinite(self.prior_dof)):
            raise InvalidInput("prior_dof must be finite and >= 0")

    def _check_grid(self) -> None:
        if not (0.0 < self.grid_step <= 0.5 and self.grid_step * 4 <= self.grid_span <= 20.0):
            raise InvalidInput("grid_step must be in (0, 0.5] and grid_span in [4 steps, 20]")
        for name in ("fail_alternatives", "pass_alternatives"):
            alts = getattr(self, name)
            if not alts or any(not (r > 0 and math.isfinite(r) and w > 0 and math.isfinite(w)) for r, w in alts):
                raise InvalidInput(f"{name} must be non-empty (ratio > 0, weight > 0) pairs")

    @property
    def pass_canary_dispersion_window(self) -> tuple[int, float]:
        """The PASS test's cautious window for the canary's dispersion: (intervals, expected errors)."""
        scale = self.pass_canary_dispersion_scale
        return math.ceil(scale * self.canary_dispersion_intervals - 1e-9), scale * self.canary_dispersion_events

    @property
    def uses_history(self) -> bool:
        """Whether the baseline's history helps (only the negbin guard's dispersion bound uses it)."""
        return self.dispersion is None and self.guard == "negbin"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphaFail": self.alpha_fail,
            "alphaPass": self.alpha_pass,
            "alphaCi": self.alpha_ci,
            "failRatio": self.fail_ratio,
            "passRatio": self.pass_ratio,
            "minIntervals": self.min_intervals,
            "minCanaryRequests": self.min_canary_requests,
            "minBaselineRequests": self.min_baseline_requests,
            "dispersion": self.dispersion,
            "guard": self.guard,
            "dispersionLevel": self.dispersion_level,
            "canaryDispersionIntervals": self.canary_dispersion_intervals,
            "canaryDispersionGain": self.canary_dispersion_gain,
            "canaryDispersionEvents": self.canary_dispersion_events,
            "passCanaryDispersionScale": self.pass_canary_dispersion_scale,
            "priorDof": self.prior_dof,
            "effectScale": self.effect_scale,
            "gridStep": self.grid_step,
            "gridSpan": self.grid_span,
            "failAlternatives": [list(p) for p in self.fail_alternatives],
            "passAlternatives": [list(p) for p in self.pass_alternatives],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CountTestConfig:
        try:
            return cls(
                alpha_fail=float(d["alphaFail"]),
                alpha_pass=float(d["alphaPass"]),
                alpha_ci=float(d["alphaCi"]),
                fail_ratio=float(d["failRatio"]),
                pass_ratio=float(d["passRatio"]),
                min_intervals=int(d["minIntervals"]),
                min_canary_requests=float(d["minCanaryRequests"]),
                min_baseline_requests=float(d["minBaselineRequests"]),
                dispersion=None if d["dispersion"] is None else float(d["dispersion"]),
                # States saved before the negative-binomial guard existed ran the t guard.
                guard=str(d.get("guard", "t")),
                dispersion_level=float(d.get("dispersionLevel", 0.99)),
                # States saved before the canary's own dispersion was estimated assumed the baseline's.
                canary_dispersion_intervals=int(d.get("canaryDispersionIntervals", 0)),
                canary_dispersion_gain=float(d.get("canaryDispersionGain", 0.5)),
                # States saved before the window could end on the canary's traffic ran it in intervals only.
                canary_dispersion_events=float(d.get("canaryDispersionEvents", 0.0)),
                # States saved before the PASS test had a longer window ran both tests on one.
                pass_canary_dispersion_scale=float(d.get("passCanaryDispersionScale", 1.0)),
                prior_dof=float(d["priorDof"]),
                effect_scale=float(d.get("effectScale", 1.0)),
                grid_step=float(d["gridStep"]),
                grid_span=float(d["gridSpan"]),
                fail_alternatives=tuple((float(r), float(w)) for r, w in d["failAlternatives"]),
                pass_alternatives=tuple((float(r), float(w)) for r, w in d["passAlternatives"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"bad count-test config: {exc!r}") from None
