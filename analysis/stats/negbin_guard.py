"""The negative-binomial guard of the error-rate test (``guard="negbin"``, the default): a time-uniform
upper bound on how much errors cluster, learnt from the baseline's own counts (and its history before the
canary), a second one from the canary's own counts (a release that fails in bursts), and the canary's
evidence tempered by both. The model and its guarantees are described in
:mod:`analysis.stats.sequential_counts`; :class:`NegBinGuard` is a part of its ``CountCore``."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.stats.count_config import CountTestConfig
from analysis.stats.logspace import logsumexp, softplus

__all__ = ["CANARY_MIN_INTERVALS", "NB_A_GRID", "NB_A_LOG_PRIOR", "NegBinGuard"]

FloatArray = npt.NDArray[np.float64]

# Grid of the squared coefficient of variation ``a`` of the per-interval error-rate
# multiplier (negative binomial NB2: Var = mu + a mu^2). 0 = Poisson; 4 = CV 2,
# far more clustering than the worst the benchmark simulates (CV 1).
NB_A_GRID: tuple[float, ...] = (
    0.0, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0,
)


# The fewest intervals with traffic before the canary's own dispersion is taken at its best fit,
# however many events they hold: the fit needs a few intervals' counts to see them vary.
CANARY_MIN_INTERVALS = 3

# Prior of the confidence sequence's mixture over the grid: uniform. (Half the mass on
# a = 0 measured 1 minute faster on the 2x benchmark cell: not worth a non-obvious prior.)
NB_A_LOG_PRIOR: FloatArray = np.full(len(NB_A_GRID), -math.log(len(NB_A_GRID)))


class NegBinGuard:
    """The negbin guard's part of ``CountCore``: its state arrays, its update, the dispersion bound."""

    # Set by CountCore: the test's settings and its grid of log-ratios.
    config: CountTestConfig
    lam: FloatArray
    i_fail: int
    i_pass: int
    fail_off: npt.NDArray[np.intp]
    pass_off: npt.NDArray[np.intp]

    def _nb_zeros(self, shape: tuple[int, ...]) -> dict[str, FloatArray]:
        h = len(NB_A_GRID)
        return {
            # Prequential NB2 log-likelihood of the baseline's counts, per dispersion a.
            "nb_ll": np.zeros((*shape, h)),
            "b_sum": np.zeros(shape),
            "m_sum": np.zeros(shape),
            # Per a: sum_i (log-likelihood ratio alternative : null boundary)_i / phi_i(a),
            # one column per mixture alternative, for FAIL and for PASS.
            "tl_fail": np.zeros((*shape, h, self.fail_off.size)),
            "tl_pass": np.zeros((*shape, h, self.pass_off.size)),
            # sum_i B_i (the Poisson part of the score variance), for reports and the interval.
            "b_var": np.zeros(shape),
            # The canary's own NB2 log-likelihood per a (around its own past rate) and its totals.
            **(
                {"nbc_ll": np.zeros((*shape, h)), "c_sum": np.zeros(shape), "n_sum": np.zeros(shape)}
                if self.config.canary_dispersion_intervals else {}
            ),
        }

    @property
    def negbin(self) -> bool:
        return self.config.dispersion is None and self.config.guard == "negbin"

    def nb_upper_index(self, st: dict[str, FloatArray]) -> npt.NDArray[np.intp]:
        """Index in `NB_A_GRID` of the upper end of a time-uniform confidence
        sequence for the dispersion ``a``: ``{a : mix_t / L_t(a) < 1 / delta}`` with
        ``mix_t`` the uniform-prior mixture likelihood over the grid and ``delta =
        1 - dispersion_level``. ``mix_t / L_t(a_true)`` is a test martingale under
        the NB2 model, so by Ville's inequality the true ``a`` stays inside at every
        interval with probability >= 1 - delta (the mixture confidence sequence of
        Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021, AoS). No data yet:
        the largest ``a`` (most cautious)."""
        ll = st["nb_ll"]
        # Mixture likelihood over the grid: mix / L(a_true) is a test martingale.
        mix = logsumexp(ll + NB_A_LOG_PRIOR)
        ok = ll >= mix[..., None] + math.log1p(-self.config.dispersion_level) - 1e-12
        h = ll.shape[-1]
        out: npt.NDArray[np.intp] = (h - 1 - np.argmax(ok[..., ::-1], axis=-1)).astype(np.intp)
        return out

    def _update_nb(
        self, st: dict[str, FloatArray], c: FloatArray, k: FloatArray, share: FloatArray, requests: FloatArray
    ) -> None:
        """The negative-binomial guard, one interval.

        1. Tempered evidence: the interval's binomial log-likelihood ratios divided,
           for every ``a`` of the grid, by ``phi_i(a) = 1 + 2 a B_i``, the variance of
           the score ``c - k theta`` relative to the binomial one when both versions'
           counts are NB2 with means ``mu_c = rho0 n p``, ``mu_b = m p`` and the same
           ``a``: ``Var = B + 2 a B^2``, ``B = mu_c mu_b / (mu_c + mu_b)``. ``p`` is the
           larger of the baseline's past error rate (both versions' until the
           baseline has had an event) and this interval's rate less one Poisson sd.
        2. Then the baseline's count joins its NB2 log-likelihood for every ``a``,
           with the mean ``m p`` from the past only (prequential), so the dispersion
           estimate never sees the interval it would judge."""
        traffic = (share > 0) & (share < 1) & (requests > 0)
        s_ = np.where(traffic, share, 0.5)
        n_c = np.where(traffic, s_ * requests, 0.0)
        n_b = np.where(traffic, (1.0 - s_) * requests, 0.0)
        b = np.where(traffic, k - c, 0.0)
        cc = np.where(traffic, c, 0.0)
        kk = np.where(traffic, k, 0.0)
        has_past = st["b_sum"] > 0
        p_past = st["b_sum"] / np.where(st["m_sum"] > 0, st["m_sum"], 1.0)
        # This interval's rate, one Poisson sd on the low side: a single event in a
        # quiet interval says little, a burst of hundreds says the rate is up now.
        p_now = np.maximum(kk - np.sqrt(kk), 0.0) / np.where(requests > 0, requests, 1.0)
        # Variance scale: the larger of the past pooled rate and this interval's. With
        # heavy clustering a past rate can be far too low (a quiet stretch), and the
        # interval that breaks it is exactly the one that must not count in full.
        p_pool = st["k_sum"] / np.where(st["req_sum"] > 0, st["req_sum"], 1.0)
        p = np.maximum(np.where(has_past, p_past, p_pool), p_now)
        a_grid = np.asarray(NB_A_GRID)
        if self.config.canary_dispersion_intervals:
            self._add_canary(st, cc, n_c, traffic, np.where(has_past, p_past, p_pool))
        # Interval log-likelihood ratios at the mixture points, relative to each null boundary.
        logit = (np.log(s_) - np.log1p(-s_))[..., None]

        def llr(points: npt.NDArray[np.intp], null: int) -> FloatArray:
            eta = logit + self.lam[points]
            eta0 = logit + self.lam[null]
            out: FloatArray = cc[..., None] * (-softplus(-eta) + softplus(-eta0)) + (kk - cc)[..., None] * (
                -softplus(eta) + softplus(eta0)
            )
            return out

        for key, null, off in (("tl_fail", self.i_fail, self.fail_off), ("tl_pass", self.i_pass, self.pass_off)):
            rho0 = math.exp(float(self.lam[null]))
            mu_c, mu_b = rho0 * n_c * p, n_b * p
            tot = mu_c + mu_b
            big_b = np.where(tot > 0, mu_c * mu_b / np.where(tot > 0, tot, 1.0), 0.0)
            phi = 1.0 + 2.0 * a_grid * big_b[..., None]  # (..., H)
            d = np.where(traffic[..., None], llr(null + off, null), 0.0)  # (..., J)
            st[key] += d[..., None, :] / phi[..., :, None]
            if key == "tl_fail":
                st["b_var"] += big_b
        self._add_baseline(st, b, n_b, traffic)

    def _add_canary(
        self, st: dict[str, FloatArray], c: FloatArray, n_c: FloatArray, traffic: npt.NDArray[np.bool_],
        p_ref: FloatArray,
    ) -> None:
        """One interval of the canary's counts into its own NB2 log-likelihood. The mean is
        the canary's own past rate (with one pseudo-event at the baseline's rate; its first
        interval only starts that rate), so a constant ratio to the baseline, a regression or not, is not mistaken
        for clustering."""
        pseudo_n = np.where(p_ref > 0, 1.0 / np.where(p_ref > 0, p_ref, 1.0), 0.0)
        den = st["n_sum"] + pseudo_n
        p_c = (st["c_sum"] + (p_ref > 0)) / np.where(den > 0, den, 1.0)
        use = traffic & (st["n_sum"] > 0) & (p_c > 0)  # the first interval only starts the rate
        st["nbc_ll"] += np.where(use[..., None], _nb2_loglik(np.where(use, c, 0.0), np.where(use, n_c * p_c, 1.0)), 0.0)
        st["c_sum"] += np.where(traffic, c, 0.0)
        st["n_sum"] += np.where(traffic, n_c, 0.0)

    def canary_a(self, st: dict[str, FloatArray], for_pass: bool = False) -> FloatArray:
        """The canary's own dispersion ``a``, from its counts up to and including the
        latest interval (so a burst tempers its own evidence): for its first
        ``canary_dispersion_intervals`` intervals the upper end of the even-odds set
        ``{a : L(a) >= mix / 2}`` (a canary's few events cannot rule clustering out,
        and bursts early in a canary are what a wrongly assumed Poisson canary fails
        on); then the best-fitting ``a`` when it beats Poisson by
        ``canary_dispersion_gain`` nats, else 0. Not a confidence bound: fast where
        the canary is Poisson, and 0.5% false rollbacks where only the canary
        clusters (CV 1, benchmark 2026-12-04; 7.9% without it). The cautious window
        ends sooner, after `CANARY_MIN_INTERVALS`, once the canary's requests would
        have shown ``canary_dispersion_events`` errors at the baseline's past rate: with
        that many expected events a few intervals tell clustering from Poisson, and
        counting expected rather than seen errors keeps a burst (or a regression) from
        ending the window early (12 seen errors: 1.2% false rollbacks on the
        canary-only cell, benchmark 2026-12-04). ``for_pass``: the PASS test's window,
        ``pass_canary_dispersion_scale`` times as long (see `CountTestConfig`)."""
        cfg = self.config
        a_grid = np.asarray(NB_A_GRID)
        if not cfg.canary_dispersion_intervals:
            return np.zeros(st["nu"].shape)
        window, window_events = (
            cfg.pass_canary_dispersion_window
            if for_pass
            else (cfg.canary_dispersion_intervals, cfg.canary_dispersion_events)
        )
        ll = st["nbc_ll"]
        h = ll.shape[-1]
        mix = logsumexp(ll + NB_A_LOG_PRIOR)
        plausible = ll >= mix[..., None] - math.log(2.0)
        cautious = h - 1 - np.argmax(plausible[..., ::-1], axis=-1)
        best = np.argmax(ll, axis=-1)
        shown = np.max(ll, axis=-1) - ll[..., 0] >= cfg.canary_dispersion_gain
        fitted = np.where(shown, best, 0)
        early = st["nu"] < window
        if window_events > 0:
            p_b = st["b_sum"] / np.where(st["m_sum"] > 0, st["m_sum"], 1.0)
            expected = st["n_sum"] * p_b
            early &= (st["nu"] < CANARY_MIN_INTERVALS) | (expected < window_events)
        out: FloatArray = a_grid[np.where(early, cautious, fitted)]
        return out

    def prime_baseline(self, st: dict[str, FloatArray], errors: FloatArray, requests: FloatArray) -> None:
        """Add one interval of the baseline's history (before the canary started) to the
        dispersion bound only: its errors and requests join the NB2 likelihood, no
        evidence about the canary is touched. The stable version has been running
        for hours, so its past counts bound the clustering ``a`` long before the
        canary's own intervals could (NB2's ``a`` does not depend on the traffic
        level, so history at full traffic speaks for the baseline's share)."""
        if not self.negbin:
            return
        req = np.asarray(requests, dtype=np.float64)
        err = np.asarray(errors, dtype=np.float64)
        ok = np.isfinite(req) & np.isfinite(err) & (req > 0)
        self._add_baseline(st, np.where(ok, err, 0.0), np.where(ok, req, 0.0), ok)

    def _add_baseline(
        self, st: dict[str, FloatArray], b: FloatArray, n_b: FloatArray, traffic: npt.NDArray[np.bool_]
    ) -> None:
        """One interval of the baseline's counts into its prequential NB2 log-likelihood
        (the mean from the past rate only; log b! dropped: the same for every a)."""
        has_past = st["b_sum"] > 0
        p_past = st["b_sum"] / np.where(st["m_sum"] > 0, st["m_sum"], 1.0)
        use = traffic & has_past
        ll = _nb2_loglik(np.where(use, b, 0.0), np.where(use, n_b * p_past, 1.0))
        st["nb_ll"] += np.where(use[..., None], ll, 0.0)
        st["b_sum"] += b
        st["m_sum"] += n_b

    def nb_temper_index(self, st: dict[str, FloatArray]) -> npt.NDArray[np.intp]:
        """Index of the ``a`` the evidence is tempered with: one grid step above the
        upper bound. The tempering matches the score's variance only, and NB2 counts
        have heavier tails than their variance says: tempering at the bound itself
        gave 0.6-0.9% false rollbacks at CV 1 once a day of history made the bound
        tight, one step up 0.1% (benchmark, 2026-11-26)."""
        out: npt.NDArray[np.intp] = np.minimum(self.nb_upper_index(st) + 1, len(NB_A_GRID) - 1)
        return out

    def temper_grid_index(self, st: dict[str, FloatArray], for_pass: bool = False) -> npt.NDArray[np.intp]:
        """Index of the ``a`` whose tempered evidence decides: the score's variance is
        ``B (1 + (a_b + a_c) B)`` with each version's own ``a``, so ``2 a = a_b +
        max(a_b, a_c)`` (the canary clusters at least like the baseline), snapped up to
        the grid. Without the canary's own estimate: `nb_temper_index`. ``for_pass``: with
        the canary's dispersion over the PASS test's window (`canary_a`)."""
        ib = self.nb_temper_index(st)
        if not self.config.canary_dispersion_intervals:
            return ib
        a_grid = np.asarray(NB_A_GRID)
        a_b = a_grid[ib]
        half = 0.5 * (a_b + np.maximum(a_b, self.canary_a(st, for_pass)))
        out: npt.NDArray[np.intp] = np.minimum(
            np.searchsorted(a_grid, half - 1e-12, side="left"), len(NB_A_GRID) - 1
        ).astype(np.intp)
        return out

    def nb_dispersion(self, st: dict[str, FloatArray]) -> FloatArray:
        """Average score dispersion ``1 + 2 a mean(B)`` at the tempering ``a``
        (for reports and the confidence sequence)."""
        a_up = np.asarray(NB_A_GRID)[self.temper_grid_index(st)]
        nu = np.maximum(st["nu"], 1.0)
        out: FloatArray = 1.0 + 2.0 * a_up * st["b_var"] / nu
        return out


def _nb2_loglik(y: FloatArray, mu: FloatArray) -> FloatArray:
    """log P(y) per ``a`` of `NB_A_GRID` (..., H) for NB2 counts of mean ``mu``
    (``a = 0``: Poisson); ``log y!`` dropped, the same for every ``a``."""
    yy, m = y[..., None], mu[..., None]
    r = 1.0 / np.asarray(NB_A_GRID[1:])
    nb = (
        special.gammaln(yy + r) - special.gammaln(r)
        + r * (np.log(r) - np.log(r + m)) + yy * (np.log(m) - np.log(r + m))
    )
    out: FloatArray = np.concatenate([yy * np.log(m) - m, nb], axis=-1)
    return out
