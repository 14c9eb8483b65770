"""provider.graphite: the render URL Argo asks for, the values conditions see, and the spec check."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.providers.base import ProviderError
from analysis.providers.graphite import render_url, values
from analysis.providers.registry import spec_problems

WHERE = "spec.metrics[0].provider.graphite"


def test_render_url_collapses_whitespace_and_asks_for_json() -> None:
    url = render_url("http://graphite:8080/base/", "target=sumSeries(a.*,\n   b.*)&from=-5min&format=png")
    assert url == "http://graphite:8080/base/render?target=sumSeries%28a.%2A%2C+b.%2A%29&from=-5min&format=json"


def test_values_are_the_first_targets_non_null_points() -> None:
    answer = [{"target": "a", "datapoints": [[1.0, 1], [None, 2], ["2.5", 3]]}, {"target": "b", "datapoints": [[9, 1]]}]
    assert values(answer) == [1.0, 2.5]
    with pytest.raises(ProviderError, match="no values found"):
        values([])


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"query": "target=a"}, "address: required"),
        ({"address": "graphite:8080", "query": "target=a"}, "address: Invalid value"),
        ({"address": "http://g"}, "query: required"),
        ({"address": "http://g", "query": "a.b.c"}, 'query: Invalid value: "a.b.c": no target='),
        ({"address": "http://g", "query": "target=a", "timeout": 0}, "timeout: Invalid value"),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], problem: str) -> None:
    problems = spec_problems("graphite", spec, WHERE, {"name": "m"})
    assert any(p.startswith(f"{WHERE}.{problem}") for p in problems), problems
