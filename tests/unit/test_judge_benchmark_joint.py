"""The joint benchmark's ``--sparse-*`` options (benchmarks/judge/joint.py): every combination, each read by
the provider's own spec parser, and the rule applied with each setting's power and fail e-value ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.providers.judge.fields import JudgeSpecError
from analysis.stats.count_config import CountTestConfig
from analysis.stats.sparse_errors import DEFAULT_HORIZON, SparseRule, errors_needed
from benchmarks.judge.joint import SETTLE, Trace, horizon_of, latency_alone, rule_with, settings_from


def test_options_not_given_are_the_providers_defaults() -> None:
    assert settings_from(None, None, None) == (SparseRule(),)
    assert horizon_of(SparseRule()) == DEFAULT_HORIZON


def test_every_combination_of_powers_and_ceilings_shares_the_horizon() -> None:
    settings = settings_from([0.8, 0.95], [0.5, 1.0], 30)
    assert settings == (
        SparseRule(0.8, 0.5, 30), SparseRule(0.8, 1.0, 30), SparseRule(0.95, 0.5, 30), SparseRule(0.95, 1.0, 30),
    )
    assert {horizon_of(s) for s in settings} == {30}


def test_a_bad_value_names_the_spec_field() -> None:
    with pytest.raises(JudgeSpecError, match="sparseErrorsPower"):
        settings_from([1.5], None, None)
    with pytest.raises(JudgeSpecError, match="sparseErrorsMaxFailEvidence"):
        settings_from(None, [0.0], None)
    with pytest.raises(JudgeSpecError, match="sparseErrorsHorizon"):
        settings_from(None, None, 0)


def _trace(expected: float, e_fail: float, intervals: int) -> Trace:
    never, shape = np.full(1, np.inf), (1, intervals)
    full = np.full(shape, 0.0)
    return Trace(
        never, never, never, np.full(1, 1.0), np.ones(shape, dtype=bool), np.full(shape, e_fail),
        np.full(shape, expected), full, full, full,
    )


def test_the_rule_uses_each_settings_power_and_ceiling() -> None:
    config = CountTestConfig()
    low, high = (errors_needed(config.pass_ratio, config.alpha_pass, p) for p in (0.8, 0.95))
    assert low < high
    minute = np.arange(1.0, SETTLE + 2.0)
    tr = _trace((low + high) / 2, 0.7, minute.size)  # sparse only for the higher power; calm for a ceiling of 1
    promotes = {s: bool(rule_with(s)(tr, minute)[0, -1]) for s in settings_from([0.8, 0.95], [0.5, 1.0], None)}
    assert promotes == {
        SparseRule(0.8, 0.5): False, SparseRule(0.8, 1.0): False,
        SparseRule(0.95, 0.5): False, SparseRule(0.95, 1.0): True,
    }
    assert not rule_with(SparseRule(0.95, 1.0))(tr, minute)[0, : SETTLE - 1].any()  # not before the window


def test_the_ceiling_ignores_the_error_counts_but_not_the_window() -> None:
    minute = np.arange(1.0, SETTLE + 2.0)
    tr = _trace(1e6, 100.0, minute.size)  # plenty of errors, leaning to a regression
    assert not rule_with(SparseRule(0.99, 2.0))(tr, minute).any()
    assert latency_alone(tr, minute)[0, -1] and not latency_alone(tr, minute)[0, : SETTLE - 1].any()
