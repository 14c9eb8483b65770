"""The sequential tests' saved arrays: base64 of their float64 bytes (exact, so a restored test decides as
the one that never stopped), the nested lists of older states still load, and a count test's saved state
stays small enough for a score of `MAX_METRICS` metrics in the run's status."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from analysis.providers.judge.score_spec import MAX_METRICS
from analysis.providers.judge.verdicts import SavedState, encode_state
from analysis.stats.count_config import CountTestConfig
from analysis.stats.sequential_counts import CountCore, CountTest, load_arrays
from analysis.stats.sequential_latency import LatencyCore, LatencyTest, LatencyTestConfig
from analysis.stats.types import InvalidInput

CONFIGS = [CountTestConfig(), CountTestConfig(guard="t"), CountTestConfig(dispersion=1.0)]


def _fed(config: CountTestConfig, intervals: int, seed: int = 3) -> CountTest:
    rng = np.random.default_rng(seed)
    test = CountTest(config)
    for _ in range(intervals):
        test.update(float(rng.poisson(6)), 600.0, float(rng.poisson(54)), 5400.0)
    return test


def _as_lists(config: CountTestConfig, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as states were saved before: nested lists, with the Pearson sums every guard kept then."""
    core = CountCore(config)
    arrays = {k: v.tolist() for k, v in load_arrays(state["arrays"], core.zeros(), "count-test").items()}
    grid = [0.0] * core.lam.size
    return {**state, "arrays": {"pearson": grid, "binvar": grid, **arrays}}


@pytest.mark.parametrize("config", CONFIGS, ids=["negbin", "t", "fixed"])
def test_a_restored_count_test_decides_exactly_as_the_one_that_never_stopped(config: CountTestConfig) -> None:
    a = _fed(config, 20)
    saved = json.loads(json.dumps(a.to_dict()))
    assert all(isinstance(v, str) for v in saved["state"]["arrays"].values())
    b = CountTest.from_dict(saved)
    rng = np.random.default_rng(11)
    for _ in range(20):
        c, e = float(rng.poisson(12)), float(rng.poisson(54))
        assert a.update(c, 600.0, e, 5400.0).to_dict() == b.update(c, 600.0, e, 5400.0).to_dict()


@pytest.mark.parametrize("config", CONFIGS, ids=["negbin", "t", "fixed"])
def test_a_count_state_saved_as_nested_lists_still_loads(config: CountTestConfig) -> None:
    a = _fed(config, 20)
    data = a.to_dict()
    old = CountTest.from_dict({"config": data["config"], "state": _as_lists(config, data["state"])})
    c, e = 12.0, 54.0
    assert old.update(c, 600.0, e, 5400.0).to_dict() == a.update(c, 600.0, e, 5400.0).to_dict()
    assert all(isinstance(v, str) for v in old.state.to_dict()["arrays"].values())  # saved anew


def test_a_latency_state_saved_as_nested_lists_still_loads() -> None:
    config = LatencyTestConfig(buckets=(0.05, 0.1, 0.25))
    a = LatencyTest(config)
    hist = {"0.05": 300.0, "0.1": 800.0, "0.25": 950.0, "+Inf": 1000.0}
    a.update_histograms(hist, hist)
    data = a.to_dict()
    reference = LatencyCore(config, len(config.buckets or ())).zeros()
    lists = {k: v.tolist() for k, v in load_arrays(data["state"]["arrays"], reference, "latency-test").items()}
    old = LatencyTest.from_dict({"config": data["config"], "state": {**data["state"], "arrays": lists}})
    assert old.update_histograms(hist, hist).to_dict() == a.update_histograms(hist, hist).to_dict()


def test_a_damaged_array_is_a_clear_error() -> None:
    data = _fed(CountTestConfig(), 3).to_dict()
    data["state"]["arrays"]["loglik"] = "not base64!"
    with pytest.raises(InvalidInput, match="count-test state lacks a valid 'loglik'"):
        CountTest.from_dict(data)
    data["state"]["arrays"]["loglik"] = "AAAAAAAAAAA="  # one number: the wrong shape
    with pytest.raises(InvalidInput, match="count-test state lacks a valid 'loglik'"):
        CountTest.from_dict(data)


def test_a_count_tests_saved_state_fits_a_score_of_max_metrics() -> None:
    """The run's status carries a score's state on every write: MAX_METRICS count tests (the default guard)
    after 500 intervals stay under the 150 kB that 10 of them took with the older state."""
    test = _fed(CountTestConfig(), 500)
    totals = {"canary.errors": {"{}": 3000.0}, "canary.requests": {"{}": 300000.0},
              "baseline.errors": {"{}": 27000.0}, "baseline.requests": {"{}": 2700000.0}}
    one = encode_state(SavedState("sequential", totals, test.state.to_dict()))
    assert MAX_METRICS * len(one) < 150_000, len(one)
