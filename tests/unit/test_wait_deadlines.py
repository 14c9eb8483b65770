"""The tests' own waits: deadlines stretch with the machine's load (between 1x and 4x), or by
PYROLLOUTS_TIMEOUT_SCALE, and a wait that runs out names what it waited for."""

from __future__ import annotations

import os
import time

import pytest

from tests.fixtures import tools


def test_the_factor_follows_the_load_between_one_and_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYROLLOUTS_TIMEOUT_SCALE", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, factor in ((0.1, 1.0), (2.0, 1.0), (5.0, 2.5), (40.0, 4.0)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert tools.load_factor() == factor
    monkeypatch.setenv("PYROLLOUTS_TIMEOUT_SCALE", "1.5")
    assert tools.load_factor() == 1.5


def test_a_wait_that_runs_out_names_what_it_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYROLLOUTS_TIMEOUT_SCALE", "2")
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"\(0.1s idle\) waiting for the moon; last: False"):
        tools.poll("the moon", lambda: False, timeout=0.1, interval=0.01)
    assert time.monotonic() - started >= 0.2
