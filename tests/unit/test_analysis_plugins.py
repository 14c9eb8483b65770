"""Metric provider plugins: an installed package's entry point serves ``provider.plugin.<name>``; its spec
check runs at validation; its measurements, errors and crashes are the run's measurements."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from analysis.phases import AnalysisPhase
from analysis.providers.base import Context
from analysis.providers.plugin import PluginProvider
from analysis.providers.plugin_registry import installed_plugins, plugin_problems
from analysis.spec import validate_metrics
from tests.fixtures.metric_plugin import PLUGIN_NAME, install_sample_plugin

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WHERE = "spec.metrics[0].provider.plugin"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(install_sample_plugin(tmp_path / "site")))


def metric(config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "m", "provider": {"plugin": {PLUGIN_NAME: config}}, **extra}


async def _no_secret(name: str, key: str) -> str:
    raise AssertionError("no secret expected")


def context() -> Context:
    return Context(run={"metadata": {"name": "r", "namespace": "ns"}}, namespace="ns", now=NOW, args={},
                   read_secret=_no_secret)


def test_an_installed_plugin_is_found_and_checks_its_spec(installed: None) -> None:
    assert PLUGIN_NAME in installed_plugins()
    assert validate_metrics([metric({"value": "0.5"})]) == []
    assert validate_metrics([metric({"value": "{{args.x}}"})]) == []
    assert validate_metrics([metric({"value": "lots"})]) == [f'{WHERE}.{PLUGIN_NAME}.value: Invalid value: "lots": '
                                                             "not a number"]
    assert plugin_problems({PLUGIN_NAME: "x"}, WHERE) == [f"{WHERE}.{PLUGIN_NAME}: expected an object "
                                                           "(the plugin's configuration)"]


def test_a_plugin_not_installed_or_no_single_name_is_rejected() -> None:
    problems = plugin_problems({"example.com/absent": {}}, WHERE)
    assert problems == [f'{WHERE}.example.com/absent: plugin "example.com/absent" is not installed: install the '
                        "Python package that provides it (entry point group pyrollouts.metric_providers) beside "
                        "the controller"]
    assert plugin_problems({}, WHERE)[0].startswith(f"{WHERE}: name exactly one plugin")
    assert plugin_problems({"a": {}, "b": {}}, WHERE)[0].endswith("(got a, b)")


def test_the_plugin_measures(installed: None) -> None:
    provider = PluginProvider()
    ok = asyncio.run(provider.measure(metric({"value": "0.5"}, successCondition="result < 1"), context()))
    assert (ok.phase, ok.value, dict(ok.metadata)) == (AnalysisPhase.SUCCESSFUL, "0.5", {"plugin": PLUGIN_NAME})
    failed = asyncio.run(provider.measure(metric({"value": "2"}, successCondition="result < 1"), context()))
    assert failed.phase == AnalysisPhase.FAILED
    crashed = asyncio.run(provider.measure(metric({"value": "lots"}), context()))
    assert crashed.phase == AnalysisPhase.ERROR
    assert crashed.message == (f'metric provider plugin "{PLUGIN_NAME}" failed: ValueError: could not convert '
                               "string to float: 'lots'")


def test_a_plugin_that_is_gone_is_an_error_measurement() -> None:
    gone = asyncio.run(PluginProvider().measure(metric({"value": "1"}), context()))
    assert gone.phase == AnalysisPhase.ERROR
    assert gone.message == f'metric provider plugin "{PLUGIN_NAME}" is not installed'
