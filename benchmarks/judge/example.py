"""The `mann-whitney` metric of examples/analysis-template-judge.yaml, read as the provider reads it, so
the benchmark measures the settings users copy."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from analysis.providers.judge.spec import MANN_WHITNEY, MannWhitneySettings, mann_whitney_settings

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "analysis-template-judge.yaml"


def example_mann_whitney(path: pathlib.Path = EXAMPLE) -> tuple[str, MannWhitneySettings, int]:
    """The example's mann-whitney metric: its name, settings and count. Its interval must be the
    benchmark's one minute (the simulated streams have one point per minute)."""
    template: dict[str, Any] = yaml.safe_load(path.read_text())
    for metric in template["spec"]["metrics"]:
        spec = metric["provider"]["judge"]
        if spec.get("test") == MANN_WHITNEY:
            if metric.get("interval") != "1m":
                raise ValueError(f"{path}: {metric['name']}: the benchmark simulates 1m intervals, "
                                 f"got interval {metric.get('interval')!r}")
            return str(metric["name"]), mann_whitney_settings(spec, str(metric["name"])), int(metric["count"])
    raise ValueError(f"{path}: no mann-whitney metric")
