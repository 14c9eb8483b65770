"""Anytime-valid sequential test of canary vs baseline error rates.

Data, per interval t: canary errors ``c_t`` out of ``n_t`` requests, baseline
errors ``b_t`` out of ``m_t`` (what ``increase(...[interval])`` gives). Parameter:
the rate ratio ``rho`` = canary error rate / baseline error rate.

Model (Lindon & Malek 2022, "Anytime-valid inference for multinomial count
data", NeurIPS): if the two error counts are Poisson with rates ``p n_t`` and
``rho p n_t``, then given the interval's total ``k_t = c_t + b_t``,
``c_t ~ Binomial(k_t, theta_t(rho))`` with ``logit theta_t = logit pi_t + log rho``
and ``pi_t = n_t / (n_t + m_t)`` the canary's traffic share. The nuisance ``p``
(and any drift of it over time, shared by both versions) drops out, and the
traffic share may change every interval. The likelihood ratio
``L_t(rho1 : rho0) = prod_s Bin(c_s; k_s, theta_s(rho1)) / Bin(c_s; k_s, theta_s(rho0))``
is a martingale under ``rho0``; a mixture of it over a prior on ``rho1`` is a
test martingale, and Ville's inequality gives ``P(sup_t E_t >= 1/alpha) <= alpha``:
the false-rollback rate stays below alpha however often the test is looked at.
By monotone likelihood ratio the same holds for every ``rho < rho0``, so the test
of ``rho <= fail_ratio`` uses the boundary.

Overdispersion. Real error counts cluster (a bad pod, a retry storm, a slow
dependency): per interval the variance is ``phi`` times the Poisson one, and the
binomial mixture above then rejects far too often (43% false rollbacks at
phi ~ 150 in the benchmark). The interval stays the unit of observation and the
mixture is guarded (``guard``).

Default guard, ``"negbin"``: the stable version's own interval-to-interval
variation tells how much errors cluster.

* Model: per interval and version the error rate is multiplied by an independent
  factor of mean 1 and squared CV ``a`` (Poisson-Gamma, i.e. negative binomial
  NB2: ``Var = mu + a mu^2``; Cameron & Trivedi 1990, "Regression-based tests for
  overdispersion in the Poisson model", J. Econometrics). Then the score
  ``U = c - k theta0`` has variance ``phi = 1 + 2 a B`` times the binomial one,
  ``B = mu_c mu_b / (mu_c + mu_b)``: clustering matters where an interval holds
  many errors and hardly at all for sparse, mostly-zero counts.
* ``a`` is bounded above by a time-uniform confidence sequence from the
  baseline's counts (`nb_upper_index`): the NB2 likelihood on a grid of ``a``,
  each interval's mean from the baseline's past rate only.
* The stable version's history before the canary (`CountTest.prime_baseline`;
  the provider reads a day of it by default) joins that likelihood first: NB2's
  ``a`` does not depend on the traffic level, and hours of counts bound it far
  tighter than the canary's first intervals could (benchmark: 2x errors at 10%
  share failed in 13 minutes instead of 23).
* Evidence: each interval's binomial log-likelihood ratio divided by its
  ``phi_i`` at one grid step above that upper bound (`nb_temper_index`;
  quasi-likelihood, Wedderburn 1974), mixed over
  the alternatives as above; decision e-value = ``min(exact binomial mixture,
  tempered mixture)``. With Poisson counts the first is an exact test martingale
  (Ville: false rollbacks <= alpha, whatever the guard does). With NB2 clustering
  the tempered mixture at the true ``a`` is an approximate supermartingale, it
  shrinks as ``a`` grows, and the bound covers the true ``a`` at all times with
  probability 1 - delta: false rollbacks <= alpha + delta, approximately (the
  quasi-likelihood step is a second-order approximation). Measured: <= 0.3% on
  every null cell of the benchmark at alpha = delta = 1%.
* The canary's own clustering (a release that fails in bursts while the stable
  does not): with each version's ``a``, ``phi = 1 + (a_b + a_c) B``. ``a_c`` comes
  from an NB2 likelihood of the canary's counts around its own past rate
  (`NegBinGuard.canary_a`), taken as ``max(a_b, a_c)``: cautious (the even-odds
  upper end) for its first ``canary_dispersion_intervals`` intervals (fewer, at
  least 3, once the canary's requests would have shown
  ``canary_dispersion_events`` errors at the baseline's rate), then its best fit
  when that beats Poisson. A plug-in, not a confidence bound (a canary's
  few events per interval cannot rule clustering out at the speed the decision
  needs): measured 0.5% false rollbacks at CV 1 on the canary alone, 7.9% without.
  The PASS test keeps the cautious end over a window ``pass_canary_dispersion_scale``
  (1.5) times as long (15 intervals / 18 expected errors by default): on the FAIL
  test's window it promoted 4.7% [4.3%, 5.1%] of canaries clustering alone at the
  1.5x margin against alphaPass 5% (10,000 runs; BENCHMARKS.md).
* Assumes intervals independent given the past (clusters shorter than an
  interval), and the traffic not driven by the errors.
* Rejected (measured in the benchmark): the per-interval score t-test guard
  below as default (2x errors at 10% share: 25 min vs 21; sparse counts detected
  within 30 min in 27% of runs vs 95%); a pointwise (not time-uniform) upper
  bound on ``a`` (1-1.5% false rollbacks at CV 1: the bound dips below the truth
  at some look); the baseline's past rate alone as the variance scale (after a
  quiet stretch a burst interval counted in full: 3% at CV 1, 50% share).

Alternative guard, ``"t"`` (no model for the clustering; kept for the latency
test's exceedance counts and for states saved before ``guard`` existed):

* The score ``U_i = c_i - k_i theta_i(rho0)`` has mean exactly 0 at ``rho0``
  whatever the clustering inside the interval (and whatever drift of the error
  rate both versions share). Scaled by a predictable ``s_i``, ``y_i = U_i / s_i``
  is a regression through the origin on ``x_i = s_i`` with unknown variance.
* The Bayes factor of that regression with a normal prior on the standardised
  effect and the right-Haar prior ``d sigma / sigma`` on the scale (the
  sequential t-test; Lai 1976; Perez-Ortiz, Lardy, de Heide & Grunwald 2024,
  "E-statistics, group invariance and anytime-valid testing", AoS) is an
  e-process for every value of the dispersion: no plug-in estimate, and the
  small-sample penalty (few intervals say little about ``phi``) is exact.
* Decision e-value = ``min(binomial mixture, Bayes factor)``. With Poisson counts
  it is below the exact binomial martingale, with clustered counts below the
  scale-invariant one, so Ville's inequality bounds the false-rollback rate in
  both worlds. It assumes intervals are independent given the past (clusters
  shorter than an interval) and, for the second, roughly Gaussian interval
  scores.
* Price: where the Gaussian test is weak -- few events per interval with a large
  effect -- the guard slows detection (benchmark: 2x errors at 10% share takes
  about 2.6x the oracle SPRT's time instead of 1.3x).

* Rejected alternatives for this guard, measured in the benchmark: plugging a Pearson
  estimate of ``phi`` into the tempered likelihood (8-20% false rollbacks at
  CV 1: the estimate is far too low after a few intervals); a profile-likelihood
  small-sample correction (1.1-1.6%); an upper confidence bound on ``phi`` (2-4%,
  clustered residuals are heavy-tailed); switching the guard on only after a
  significant overdispersion test (up to 11%).

``dispersion=1.0`` switches any guard off (exact Lindon-Malek test, for streams
known not to cluster); a number > 1 tempers the binomial likelihood by ``1/phi``
instead (quasi-likelihood, Wedderburn 1974).

Non-inferiority (early PASS): the same construction tests ``rho >= pass_ratio``
against alternatives below it; PASS when that e-value reaches ``1/alpha_pass``.

Confidence sequence: ``{rho0 : E_t(rho0) < 1/alpha_ci}`` with a two-sided
binomial mixture around each grid point, tempered by the dispersion (the
negbin guard: ``1 + 2 a mean(B)`` at the upper bound of ``a``; the t guard: the
fitted Pearson dispersion with a Student-type small-sample correction); exact
for Poisson counts, approximate with clustering; evaluated on the log-ratio
grid, widened by one grid step.

All likelihoods live on a fixed grid of log-ratios (uniform step), so an update
is O(grid size), independent of the number of intervals, and the state is a few
arrays (saved as base64 of their float64 bytes: exact, and about half the size of
JSON lists; see `save_arrays`).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.stats.count_config import CountTestConfig
from analysis.stats.logspace import logsumexp, softplus
from analysis.stats.negbin_guard import NegBinGuard
from analysis.stats.types import Decision, InvalidInput, SequentialResult, Shortfall

__all__ = [
    "CountCore",
    "CountTest",
    "CountTestState",
    "load_arrays",
    "save_arrays",
    "validate_counts",
]

FloatArray = npt.NDArray[np.float64]


class CountCore(NegBinGuard):
    """The grid arithmetic, vectorised over any leading batch shape.

    State arrays: ``loglik`` (..., G) = sum_s log Bin(c_s; k_s, theta_s(rho_g)) -
    log Bin(c_s; k_s, pi_s); ``pearson`` / ``binvar`` (..., G) = sum_s (c_s - k_s
    theta_sg)^2 and sum_s k_s theta_sg (1 - theta_sg); ``nu`` (...) = intervals with
    a non-zero total. Used by `CountTest` (batch shape ()) and by the benchmark
    (one row per simulated run), so both run the same code.
    """

    def __init__(self, config: CountTestConfig) -> None:
        self.config = config
        step = config.grid_step
        half = round(config.grid_span / step)
        self.lam: FloatArray = np.arange(-half, half + 1, dtype=np.float64) * step
        self.zero = half  # index of rho = 1
        # Conservative snapping: FAIL null boundary up, PASS null boundary down.
        self.i_fail = self._index(math.log(config.fail_ratio), "ceil")
        self.i_pass = self._index(math.log(config.pass_ratio), "floor")
        self.fail_off, self.fail_logw = self._offsets(config.fail_alternatives)
        self.pass_off, self.pass_logw = self._offsets(config.pass_alternatives)
        # Two-sided mixture for the confidence sequence: both directions, equal halves.
        ci_off = np.concatenate([self.fail_off, -self.fail_off])
        ci_w = np.concatenate([self.fail_logw, self.fail_logw]) - math.log(2.0)
        self.ci_off, self.ci_logw = ci_off, ci_w
        reach = int(np.max(np.abs(ci_off)))
        self.ci_lo, self.ci_hi = reach, self.lam.size - 1 - reach
        for i in (self.i_fail, self.i_pass):
            if not (int(np.max(np.abs(self.fail_off))) <= i <= self.lam.size - 1 - int(np.max(np.abs(self.fail_off)))):
                raise InvalidInput("fail/pass ratios too extreme for the grid span; widen grid_span")

    def _index(self, x: float, how: str) -> int:
        pos = x / self.config.grid_step + self.zero
        idx = math.ceil(pos - 1e-9) if how == "ceil" else math.floor(pos + 1e-9)
        if not 0 <= idx < self.lam.size:
            raise InvalidInput("ratio outside the grid span")
        return idx

    def _offsets(self, alts: Sequence[tuple[float, float]]) -> tuple[npt.NDArray[np.intp], FloatArray]:
        off = np.array([round(math.log(r) / self.config.grid_step) for r, _ in alts], dtype=np.intp)
        w = np.array([w for _, w in alts], dtype=np.float64)
        if np.any(off == 0):
            raise InvalidInput("an alternative ratio rounds to the null on the grid; use a finer grid_step")
        return off, np.log(w / w.sum())

    @property
    def grid_ratios(self) -> FloatArray:
        out: FloatArray = np.exp(self.lam)
        return out

    @property
    def pearson_dispersion(self) -> bool:
        """Whether the Pearson sums (`dispersion`) are kept: the negbin guard and a configured dispersion
        never read them, and leaving them out makes the saved state a third of the size."""
        return self.config.dispersion is None and not self.negbin

    def zeros(self, shape: tuple[int, ...] = ()) -> dict[str, FloatArray]:
        g = self.lam.size
        pearson = {"pearson": np.zeros((*shape, g)), "binvar": np.zeros((*shape, g))}
        return {
            "loglik": np.zeros((*shape, g)),
            **(pearson if self.pearson_dispersion else {}),
            "nu": np.zeros(shape),
            # Per boundary [fail, pass]: regression sums of the scale-invariant test.
            "t_sxy": np.zeros((*shape, 2)),
            "t_sxx": np.zeros((*shape, 2)),
            "t_syy": np.zeros((*shape, 2)),
            "t_n": np.zeros((*shape, 2)),
            # Past events and requests, for the predictable expected count.
            "k_sum": np.zeros(shape),
            "req_sum": np.zeros(shape),
            **(self._nb_zeros(shape) if self.negbin else {}),
        }

    def update(
        self, st: dict[str, FloatArray], c: FloatArray, k: FloatArray, share: FloatArray, requests: FloatArray
    ) -> None:
        """Add one interval in place. ``c`` canary events, ``k`` total events,
        ``share`` canary traffic share in (0, 1), ``requests`` both versions'
        requests. Rows without traffic on both versions are no-ops."""
        if self.negbin:
            self._update_nb(st, c, k, share, requests)
        self._update_t(st, c, k, share, requests)
        use = (k > 0) & (share > 0) & (share < 1)
        s = np.where(use, share, 0.5)
        cc = np.where(use, c, 0.0)[..., None]
        kk = np.where(use, k, 0.0)[..., None]
        a = (np.log(s) - np.log1p(-s))[..., None]  # logit of the share
        eta = a + self.lam  # logit theta_g
        log_t, log_1t = -softplus(-eta), -softplus(eta)
        log_p, log_1p = -softplus(-a), -softplus(a)
        st["loglik"] += cc * (log_t - log_p) + (kk - cc) * (log_1t - log_1p)
        if self.pearson_dispersion:
            theta = np.exp(log_t)
            st["pearson"] += (cc - kk * theta) ** 2
            st["binvar"] += kk * theta * (1.0 - theta)
        st["nu"] += use.astype(np.float64)

    def _update_t(
        self, st: dict[str, FloatArray], c: FloatArray, k: FloatArray, share: FloatArray, requests: FloatArray
    ) -> None:
        """Sums of the regression y_i = beta x_i + eps_i at each boundary rho0, with
        score ``U_i = c_i - k_i theta_i(rho0)`` (mean exactly 0 at rho0 whatever the
        clustering inside the interval), ``x_i = s_i``, ``y_i = U_i / s_i`` and the
        predictable scale ``s_i^2 = p^_{i-1} requests_i theta_i (1 - theta_i)``
        (``p^`` = past events per request; intervals before the first event are
        skipped). Normalising by the interval's own ``k_i`` would bias ``y``."""
        traffic = (share > 0) & (share < 1) & (requests > 0)
        p_hat = st["k_sum"] / np.where(st["req_sum"] > 0, st["req_sum"], 1.0)
        use = traffic & (st["k_sum"] > 0)
        s_ = np.where(traffic, share, 0.5)
        a = (np.log(s_) - np.log1p(-s_))[..., None]
        lam0 = self.lam[[self.i_fail, self.i_pass]]
        theta = 1.0 / (1.0 + np.exp(-(a + lam0)))  # (..., 2)
        var = (p_hat * np.where(use, requests, 0.0))[..., None] * theta * (1.0 - theta)
        ok = use[..., None] & (var > 0)
        u = np.where(ok, c[..., None] - k[..., None] * theta, 0.0)
        st["t_sxy"] += u
        st["t_sxx"] += np.where(ok, var, 0.0)
        st["t_syy"] += np.where(ok, u * u / np.where(ok, var, 1.0), 0.0)
        st["t_n"] += ok
        st["k_sum"] += np.where(traffic, k, 0.0)
        st["req_sum"] += np.where(traffic, requests, 0.0)

    def log_bf_t(self, st: dict[str, FloatArray]) -> FloatArray:
        """log Bayes factors (..., 2) of the scale-invariant test: [FAIL: beta > 0 at
        the fail boundary, PASS: beta < 0 at the pass boundary].

        Gaussian regression through the origin with unknown variance sigma^2 =
        phi, prior beta / sigma ~ half-N(0, tau^2), right-Haar prior d sigma / sigma:
        ``BF = 2 (1 + tau^2 Sxx)^(-1/2) (Syy / Q1)^(n/2) T_n(+-m / sqrt(v Q1 / n))``,
        ``Q1 = Syy - tau^2 Sxy^2 / (1 + tau^2 Sxx)``, ``m = tau^2 Sxy / (1 + tau^2 Sxx)``,
        ``v = tau^2 / (1 + tau^2 Sxx)``. A Bayes factor with the right-Haar prior on
        the scale is an e-process under the null for every sigma (Lai 1976;
        Perez-Ortiz, Lardy, de Heide & Grunwald 2024, "E-statistics, group
        invariance and anytime-valid testing", AoS): the dispersion needs no
        estimate and the small-sample penalty comes out exactly."""
        tau2 = self.config.effect_scale**2
        n, sxx, sxy, syy = st["t_n"], st["t_sxx"], st["t_sxy"], st["t_syy"]
        a = 1.0 + tau2 * sxx
        q1 = np.maximum(syy - tau2 * sxy * sxy / a, 1e-300)
        ok = (n >= 2) & (syy > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            two = -0.5 * np.log(a) + 0.5 * n * (np.log(np.where(ok, syy, 1.0)) - np.log(q1))
            m = tau2 * sxy / a
            scale = np.sqrt(tau2 / a * q1 / np.where(n > 0, n, 1.0))
            t = m / np.where(scale > 0, scale, 1.0)
            sign = np.array([1.0, -1.0])
            side = special.stdtr(np.where(n > 0, n, 1.0), sign * t)
            out = two + np.log(2.0 * np.maximum(side, 1e-300))
        res: FloatArray = np.where(ok, out, 0.0)
        return res

    def dispersion(self, st: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
        """(phi_g, dof): Pearson dispersion of the intervals around every grid ratio,
        ``sum (c - k theta_g)^2 / sum k theta_g (1 - theta_g)`` (the quasi-likelihood
        moment estimate; shape (..., G)), and its degrees of freedom
        ``nu - 1 + prior_dof``. With a configured dispersion: that value, infinite dof."""
        cfg = self.config
        if cfg.dispersion is not None:
            fixed: FloatArray = np.full(st["loglik"].shape, float(cfg.dispersion))
            return fixed, np.full(st["nu"].shape, np.inf)
        bv = st["binvar"]
        ratio = np.where(bv > 0, st["pearson"] / np.where(bv > 0, bv, 1.0), 1.0)
        dof = np.maximum(st["nu"] - 1.0, 0.0) + cfg.prior_dof
        phi: FloatArray = np.where((st["nu"] > 1)[..., None], ratio, 1.0)
        return phi, dof

    @staticmethod
    def fitted_dispersion(phi: FloatArray) -> FloatArray:
        """Dispersion at the best-fitting ratio, floored at 1 (for reports)."""
        out: FloatArray = np.maximum(np.min(phi, axis=-1), 1.0)
        return out

    def _temper(self, dl: FloatArray, phi: float, dof: float) -> FloatArray:
        """Log-likelihood ratios -> log e-value components for the confidence sequence.

        ``(d/2) log(1 + 2 dl / (d phi))``: the quasi-likelihood ratio with the
        dispersion profiled out (Gaussian identity ``(RSS_0/RSS_1)^(n/2) = (1 +
        2x/n)^(n/2)``); it tends to ``dl / phi`` as ``d`` grows. The minimum with
        the untempered ``dl`` keeps it below the exact Poisson likelihood ratio.
        Used for the interval only; the decisions use `log_e`.
        """
        if self.config.dispersion is not None:
            out: FloatArray = dl / float(self.config.dispersion)
            return out
        if dof <= 0:
            return np.where(dl > 0, 0.0, dl)
        robust = 0.5 * dof * np.log1p(2.0 * np.maximum(dl, 0.0) / (dof * phi))
        res: FloatArray = np.where(dl > 0, np.minimum(dl, robust), dl)
        return res

    def log_e(self, st: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
        """log e-values of the FAIL test (rho <= fail boundary) and the PASS test
        (rho >= pass boundary).

        ``min(binomial mixture, scale-invariant Bayes factor)``: under Poisson counts
        the first is an exact test martingale, under clustered counts the second is
        (for Gaussian interval scores, and approximately otherwise); the minimum is
        below whichever is right, so Ville's inequality applies in both worlds.
        With a configured dispersion phi: the binomial mixture tempered by 1/phi."""
        ll = st["loglik"]
        fi, pi_ = self.i_fail + self.fail_off, self.i_pass + self.pass_off
        df = ll[..., fi] - ll[..., self.i_fail, None]
        dp = ll[..., pi_] - ll[..., self.i_pass, None]
        if self.config.dispersion is not None:
            phi = float(self.config.dispersion)
            return logsumexp(df / phi + self.fail_logw), logsumexp(dp / phi + self.pass_logw)
        lf = logsumexp(df + self.fail_logw)
        lp = logsumexp(dp + self.pass_logw)
        if self.negbin:
            # Each test its own window of the canary's cautious dispersion (the PASS one longer).
            h_fail = self.temper_grid_index(st)[..., None, None]
            h_pass = self.temper_grid_index(st, for_pass=True)[..., None, None]
            tf = np.take_along_axis(st["tl_fail"], h_fail, axis=-2)[..., 0, :]
            tp = np.take_along_axis(st["tl_pass"], h_pass, axis=-2)[..., 0, :]
            return (
                np.minimum(lf, logsumexp(tf + self.fail_logw)),
                np.minimum(lp, logsumexp(tp + self.pass_logw)),
            )
        bf = self.log_bf_t(st)
        return np.minimum(lf, bf[..., 0]), np.minimum(lp, bf[..., 1])

    def estimate(self, st: dict[str, FloatArray]) -> FloatArray:
        """MLE of log rho on the grid, refined by a parabola through the top three points."""
        ll = st["loglik"]
        i = np.clip(np.argmax(ll, axis=-1), 1, self.lam.size - 2)
        y0 = np.take_along_axis(ll, (i - 1)[..., None], -1)[..., 0]
        y1 = np.take_along_axis(ll, i[..., None], -1)[..., 0]
        y2 = np.take_along_axis(ll, (i + 1)[..., None], -1)[..., 0]
        den = y0 - 2 * y1 + y2
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
        out: FloatArray = self.lam[i] + np.clip(shift, -1.0, 1.0) * self.config.grid_step
        return out

    def confidence_set(self, loglik: FloatArray, phi: float, dof: float) -> tuple[float, float]:
        """Interval for rho (single run): grid points whose two-sided mixture e-value
        stays below 1/alpha_ci, widened by one grid step. Exactly anytime-valid for
        Poisson counts; with clustering it uses the fitted dispersion ``phi`` (>= 1)
        with ``dof`` degrees of freedom (approximate)."""
        centers = np.arange(self.ci_lo, self.ci_hi + 1)
        alt = centers[:, None] + self.ci_off[None, :]
        dl = loglik[alt] - loglik[centers][:, None]
        comp = self._temper(dl, max(phi, 1.0), dof)
        le = logsumexp(comp + self.ci_logw, axis=-1)
        keep = centers[le < -math.log(self.config.alpha_ci)]
        if keep.size == 0:  # cannot happen for a proper mixture; be safe
            return 0.0, math.inf
        lo_i, hi_i = int(keep.min()), int(keep.max())
        lo = 0.0 if lo_i <= self.ci_lo else float(math.exp(self.lam[lo_i - 1]))
        hi = math.inf if hi_i >= self.ci_hi else float(math.exp(self.lam[hi_i + 1]))
        return lo, hi


def validate_counts(
    canary_errors: float, canary_requests: float, baseline_errors: float, baseline_requests: float
) -> tuple[float, float, float, float] | None:
    """Check one interval's counts. Returns them as floats, or None when the interval
    is missing (any NaN: a failed scrape). Raises InvalidInput for negative,
    infinite or impossible values (more errors than requests)."""
    vals = []
    for name, v in (
        ("canary_errors", canary_errors),
        ("canary_requests", canary_requests),
        ("baseline_errors", baseline_errors),
        ("baseline_requests", baseline_requests),
    ):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a number, got {v!r}") from None
        if math.isinf(f):
            raise InvalidInput(f"{name} is infinite")
        if f < 0:
            raise InvalidInput(f"{name} is negative ({f}); counts come from increase(), never below 0")
        vals.append(f)
    if any(math.isnan(v) for v in vals):
        return None
    ce, cr, be, br = vals
    # increase() extrapolates, so tiny excesses are rounding; clip those, reject real ones.
    for e, r, who in ((ce, cr, "canary"), (be, br, "baseline")):
        if e > r * (1 + 1e-6) + 1e-6:
            raise InvalidInput(f"{who} errors ({e:g}) exceed its requests ({r:g})")
    return min(ce, cr), cr, min(be, br), br


@dataclass
class CountTestState:
    """Everything the test remembers between intervals (JSON-safe via to_dict):
    the `CountCore` arrays as nested lists, running totals and a final decision."""

    arrays: dict[str, Any] = field(default_factory=dict)
    intervals: int = 0
    missing: int = 0
    canary_errors: float = 0.0
    canary_requests: float = 0.0
    baseline_errors: float = 0.0
    baseline_requests: float = 0.0
    traffic_intervals: int = 0
    history_intervals: int = 0
    max_log_e_fail: float = 0.0
    max_log_e_pass: float = 0.0
    decision: str | None = None
    decided_at: int | None = None
    decided_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arrays": self.arrays,
            "intervals": self.intervals,
            "missing": self.missing,
            "canaryErrors": self.canary_errors,
            "canaryRequests": self.canary_requests,
            "baselineErrors": self.baseline_errors,
            "baselineRequests": self.baseline_requests,
            "trafficIntervals": self.traffic_intervals,
            "historyIntervals": self.history_intervals,
            "maxLogEFail": self.max_log_e_fail,
            "maxLogEPass": self.max_log_e_pass,
            "decision": self.decision,
            "decidedAt": self.decided_at,
            "decidedReason": self.decided_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CountTestState:
        try:
            st = cls(
                arrays={str(k): v for k, v in d["arrays"].items()},
                intervals=int(d["intervals"]),
                missing=int(d["missing"]),
                canary_errors=float(d["canaryErrors"]),
                canary_requests=float(d["canaryRequests"]),
                baseline_errors=float(d["baselineErrors"]),
                baseline_requests=float(d["baselineRequests"]),
                traffic_intervals=int(d["trafficIntervals"]),
                history_intervals=int(d.get("historyIntervals", 0)),
                max_log_e_fail=float(d["maxLogEFail"]),
                max_log_e_pass=float(d["maxLogEPass"]),
                decision=d.get("decision"),
                decided_at=None if d.get("decidedAt") is None else int(d["decidedAt"]),
                decided_reason=d.get("decidedReason"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"bad count-test state: {exc!r}") from None
        if st.decision is not None and st.decision not in (Decision.FAIL.value, Decision.PASS.value):
            raise InvalidInput(f"bad decision in state: {st.decision!r}")
        return st


#: Arrays that only the reports read (the Pearson dispersion behind the confidence interval and the
#: dispersion shown), never a decision: saved in float32, half the room (``f4:`` before the base64).
_REPORT_ONLY: Final = frozenset({"pearson", "binvar"})
_SINGLE: Final = "f4:"


def save_arrays(arrays: Mapping[str, FloatArray]) -> dict[str, str]:
    """Arrays -> base64 of their little-endian float64 bytes (float32 for `_REPORT_ONLY`); the shapes come
    from a fresh state when they are loaded. What the decisions read is saved exactly; JSON lists of the
    same numbers take about twice the room, even compressed (full-precision decimals do not compress)."""

    def packed(key: str, value: FloatArray) -> str:
        if key in _REPORT_ONLY:
            return _SINGLE + base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode()
        return base64.b64encode(np.ascontiguousarray(value, dtype="<f8").tobytes()).decode()

    return {k: packed(k, v) for k, v in arrays.items()}


def _loaded(value: Any, shape: tuple[int, ...]) -> FloatArray:
    if isinstance(value, str):  # `save_arrays`
        single = value.startswith(_SINGLE)
        raw = base64.b64decode(value.removeprefix(_SINGLE), validate=True)
        return np.frombuffer(raw, dtype="<f4" if single else "<f8").astype(np.float64).reshape(shape)
    return np.asarray(value, dtype=np.float64)  # nested lists: states saved before `save_arrays`


def load_arrays(saved: dict[str, Any], reference: dict[str, FloatArray], what: str) -> dict[str, FloatArray]:
    """Saved arrays (`save_arrays`, or the nested lists of older states) -> arrays, checked against the
    shapes of a fresh state. Keys the state no longer uses (an older state's) are ignored."""
    out: dict[str, FloatArray] = {}
    for k, ref in reference.items():
        try:
            arr = _loaded(saved[k], ref.shape)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise InvalidInput(f"{what} state lacks a valid {k!r}") from None
        if arr.shape != ref.shape or not np.all(np.isfinite(arr)):
            raise InvalidInput(f"{what} state array {k!r} has the wrong shape or non-finite values")
        out[k] = arr
    return out


class CountTest:
    """Sequential error-rate judge for one metric. Feed it one interval at a time::

        t = CountTest()
        r = t.update(canary_errors=3, canary_requests=600, baseline_errors=20, baseline_requests=5400)
        r.decision, r.reason
        saved = t.to_dict();  t = CountTest.from_dict(saved)   # between measurements

    FAIL and PASS are final: later updates repeat them (the guarantee is about the
    first crossing).
    """

    quantity = "error-rate ratio canary/baseline"

    def __init__(self, config: CountTestConfig | None = None, state: CountTestState | None = None) -> None:
        self.config = config or CountTestConfig()
        self.core = CountCore(self.config)
        self.state = state or CountTestState()
        if not self.state.arrays:
            self._save(self.core.zeros())
        self._load()  # validate a restored state now rather than at the next update

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CountTest:
        if not isinstance(d, dict) or "config" not in d or "state" not in d:
            raise InvalidInput("expected a dict with 'config' and 'state'")
        return cls(CountTestConfig.from_dict(d["config"]), CountTestState.from_dict(d["state"]))

    def _save(self, arrays: dict[str, FloatArray]) -> None:
        self.state.arrays = dict(save_arrays(arrays))

    def _load(self) -> dict[str, FloatArray]:
        return load_arrays(self.state.arrays, self.core.zeros(), "count-test")

    def prime_baseline(self, errors: Sequence[float], requests: Sequence[float]) -> int:
        """Feed the baseline's history (errors and requests per interval, oldest first,
        from before the canary started) to the dispersion bound of the negbin guard.
        Only before the first update; NaN intervals are skipped. Returns the number
        of intervals used (0 when the guard is not negbin)."""
        if len(errors) != len(requests):
            raise InvalidInput(
                f"baseline history: {len(errors)} error counts but {len(requests)} request counts"
            )
        if self.state.intervals or self.state.history_intervals:
            raise InvalidInput("baseline history must be given once, before the first interval")
        if not self.core.negbin:
            return 0
        used = 0
        arr = self._load()
        for e, r in zip(errors, requests, strict=True):
            vals = validate_counts(0.0, 0.0, e, r)
            if vals is None or vals[3] <= 0:
                continue
            self.core.prime_baseline(arr, np.array(vals[2]), np.array(vals[3]))
            used += 1
        self._save(arr)
        self.state.history_intervals = used
        return used

    def update(
        self,
        canary_errors: float,
        canary_requests: float,
        baseline_errors: float,
        baseline_requests: float,
    ) -> SequentialResult:
        """Add one interval's counts and judge. NaN anywhere = missing interval."""
        vals = validate_counts(canary_errors, canary_requests, baseline_errors, baseline_requests)
        s = self.state
        s.intervals += 1
        if vals is None:
            s.missing += 1
            return self.result()
        ce, cr, be, br = vals
        s.canary_errors += ce
        s.canary_requests += cr
        s.baseline_errors += be
        s.baseline_requests += br
        if cr > 0 and br > 0:
            s.traffic_intervals += 1
            arr = self._load()
            self.core.update(arr, np.array(ce), np.array(ce + be), np.array(cr / (cr + br)), np.array(cr + br))
            self._save(arr)
        return self.result()

    def result(self) -> SequentialResult:
        """Judge the data seen so far (does not change the state except the running
        maxima and a final decision)."""
        cfg, s, core = self.config, self.state, self.core
        arr = self._load()
        if core.negbin:
            # Tempered by the upper-bound dispersion; a huge dof makes `_temper` divide by phi.
            phi, dof = float(core.nb_dispersion(arr)), 1e12
        else:
            phi_a, dof_a = core.dispersion(arr)
            phi, dof = float(core.fitted_dispersion(phi_a)), float(dof_a)
        lf, lp = (float(x) for x in core.log_e(arr))
        est_log = float(core.estimate(arr))
        have_events = s.canary_errors + s.baseline_errors > 0
        estimate = math.exp(est_log) if have_events else None
        interval = core.confidence_set(arr["loglik"], phi, dof) if have_events else (0.0, math.inf)
        rate_c = s.canary_errors / s.canary_requests if s.canary_requests > 0 else math.nan
        rate_b = s.baseline_errors / s.baseline_requests if s.baseline_requests > 0 else math.nan
        details: dict[str, Any] = {
            "canaryRate": rate_c if math.isfinite(rate_c) else None,
            "baselineRate": rate_b if math.isfinite(rate_b) else None,
            "dispersion": phi,
            "missingIntervals": s.missing,
            "historyIntervals": s.history_intervals,
            "failBoundary": float(math.exp(core.lam[core.i_fail])),
            "passBoundary": float(math.exp(core.lam[core.i_pass])),
        }
        enough = (
            s.traffic_intervals >= cfg.min_intervals
            and s.canary_requests >= cfg.min_canary_requests
            and s.baseline_requests >= cfg.min_baseline_requests
        )
        if enough:
            s.max_log_e_fail = max(s.max_log_e_fail, lf)
            s.max_log_e_pass = max(s.max_log_e_pass, lp)
        summary = _rates_text(s.canary_errors, s.canary_requests, s.baseline_errors, s.baseline_requests)
        if estimate is not None:
            hi_txt = "inf" if math.isinf(interval[1]) else f"{interval[1]:.3g}"
            summary += f"; ratio {estimate:.3g} ({100 * (1 - cfg.alpha_ci):g}% CS [{interval[0]:.3g}, {hi_txt}])"
        if phi > 1.0:
            summary += f"; dispersion {phi:.2g}x Poisson"
        if s.decision is None and enough:
            if lf >= -math.log(cfg.alpha_fail):
                s.decision, s.decided_at = Decision.FAIL.value, s.intervals
                s.decided_reason = (
                    f"canary error rate above {details['failBoundary']:.3g}x baseline "
                    f"(e-value {math.exp(min(lf, 700)):.3g} >= {1 / cfg.alpha_fail:g})"
                )
            elif lp >= -math.log(cfg.alpha_pass):
                s.decision, s.decided_at = Decision.PASS.value, s.intervals
                s.decided_reason = (
                    f"canary error rate shown below {details['passBoundary']:.3g}x baseline "
                    f"(e-value {math.exp(min(lp, 700)):.3g} >= {1 / cfg.alpha_pass:g})"
                )
        shortfall: Shortfall | None = None
        if s.decision is not None:
            decision = Decision(s.decision)
            reason = f"{s.decided_reason} at interval {s.decided_at}: {summary}"
        elif not enough:
            decision = Decision.NODATA
            shortfall = Shortfall(
                "requests", s.canary_requests, cfg.min_canary_requests, s.baseline_requests,
                cfg.min_baseline_requests, s.intervals, s.traffic_intervals, cfg.min_intervals,
            )
            reason = f"waiting for data: {shortfall.text()}"
        else:
            decision = Decision.CONTINUE
            reason = (
                f"no decision yet (e-values fail {math.exp(min(lf, 700)):.3g}, "
                f"pass {math.exp(min(lp, 700)):.3g}): {summary}"
            )
        return SequentialResult(
            decision=decision,
            reason=reason,
            quantity=self.quantity,
            estimate=estimate,
            interval=interval,
            e_fail=math.exp(min(lf, 700.0)),
            e_pass=math.exp(min(lp, 700.0)),
            p_fail=min(1.0, math.exp(-s.max_log_e_fail)),
            p_pass=min(1.0, math.exp(-s.max_log_e_pass)),
            intervals_seen=s.intervals,
            canary_total=s.canary_requests,
            baseline_total=s.baseline_requests,
            details=details,
            shortfall=shortfall,
        )


def _rates_text(ce: float, cr: float, be: float, br: float) -> str:
    def one(e: float, r: float) -> str:
        return f"{e:g}/{r:g} ({100 * e / r:.3g}%)" if r > 0 else f"{e:g}/0"

    return f"canary {one(ce, cr)} vs baseline {one(be, br)}"
