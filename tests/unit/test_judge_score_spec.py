"""The judge score's spec check (Kayenta's canary config in the judge's words): every field, each problem
naming the field's path and the fix, through ``validate_template`` as the template's Invalid condition,
run creation and ``kubectl rollouts lint`` report it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from analysis.providers.judge.score_spec import ScoreSpec, score_spec
from analysis.spec import validate_template
from tests.fixtures.tools import REPO

COUNTERS = {
    "canary": {"errors": 'errors{v="c"}', "requests": 'requests{v="c"}'},
    "baseline": {"errors": 'errors{v="b"}', "requests": 'requests{v="b"}'},
}
WHERE = "spec.metrics[0].provider.judge"


def template(judge: dict[str, Any], **metric: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
        "spec": {"metrics": [{"name": "score", "interval": "30s", "count": 20, "provider": {"judge": judge},
                              **metric}]},
    }


def good() -> dict[str, Any]:
    return {
        "address": "http://prometheus:9090",
        "timeout": 10,
        "metrics": [
            {"name": "error-rate", "groups": ["errors"], "critical": True, **COUNTERS},
            {"name": "latency", "groups": ["latency"], "test": "sequential-latency",
             "canary": {"latency": 'h_bucket{v="c"}'}, "baseline": {"latency": 'h_bucket{v="b"}'}},
            {"name": "mean", "groups": ["latency", "errors"], "test": "mann-whitney",
             "canary": {"query": "m_c"}, "baseline": {"query": "m_b"}, "minPoints": 5},
        ],
        "groupWeights": {"errors": 60, "latency": 40},
        "scoreThresholds": {"pass": 90, "marginal": 60},
    }


def problems(judge: dict[str, Any], **metric: Any) -> list[str]:
    return validate_template(template(judge, **metric))


def test_a_good_score_is_valid_and_read_as_kayentas_canary_config() -> None:
    assert problems(good()) == []
    spec = score_spec(good())
    assert isinstance(spec, ScoreSpec) and [m.name for m in spec.metrics] == ["error-rate", "latency", "mean"]
    assert spec.groups == ("errors", "latency") and spec.weights == {"errors": 60.0, "latency": 40.0}
    assert (spec.thresholds.pass_, spec.thresholds.marginal) == (90.0, 60.0)
    first = spec.metrics[0]
    assert first.critical and first.groups == ("errors",) and not spec.metrics[1].critical
    # The shared connection reaches every metric's own spec.
    assert first.spec["address"] == "http://prometheus:9090" and first.spec["timeout"] == 10
    assert "name" not in first.spec and "groups" not in first.spec and "critical" not in first.spec


def test_defaults_equal_weights_and_kayentas_thresholds() -> None:
    judge = good()
    del judge["groupWeights"], judge["scoreThresholds"]
    spec = score_spec(judge)
    assert problems(judge) == [] and spec.weights == {}
    assert (spec.thresholds.pass_, spec.thresholds.marginal) == (95.0, 75.0)


def test_a_source_metric_does_not_inherit_the_prometheus_connection() -> None:
    judge = good()
    judge["metrics"][2]["source"] = {"graphite": {"address": "http://graphite:8080"}}
    assert problems(judge) == []
    assert "address" not in score_spec(judge).metrics[2].spec


def changed(path: str, value: Any) -> dict[str, Any]:
    """``good()`` with the field at the dotted ``path`` (list indexes as numbers) set, or removed for ``...``."""
    judge = copy.deepcopy(good())
    *parents, last = path.split(".")
    node: Any = judge
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return judge


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("metrics", [], "metrics: expected a list of metrics, each with name, groups and a judge spec"),
    ("metrics.0.name", ..., "metrics[0].name: required: letters, digits, '-', '_' or '.', at most 63 characters, "
                            "got None"),
    ("metrics.1.name", "error-rate", "metrics[1].name: two metrics are named 'error-rate': give each its own name"),
    ("metrics.0.groups", [], "metrics[0].groups: expected a list of group names, e.g. [errors], got []"),
    ("metrics.0.groups", ["errors", "errors"], "metrics[0].groups: a group is named twice"),
    ("metrics.0.critical", "yes", "metrics[0].critical: expected true or false, got 'yes'"),
    ("groupWeights.slow", 0, "groupWeights.slow: no metric is in group 'slow' (groups: errors, latency): remove it "
                             "or add the group to a metric's groups"),
    ("groupWeights.latency", ..., "groupWeights: no weight for group 'latency': give every group a weight (total "
                                  "100, as Kayenta), or leave groupWeights out for equal weights"),
    ("groupWeights.latency", 30, "groupWeights: the weights must total 100 (as Kayenta's), got 90"),
    ("groupWeights.latency", -40, "groupWeights.latency: expected a number >= 0, got -40"),
    ("scoreThresholds.pass", 101, "scoreThresholds.pass: expected a score from 0 to 100, got 101"),
    ("scoreThresholds.marginal", 95, "scoreThresholds: marginal (95) must not be above pass (90): a score between "
                                     "them is MARGINAL, below marginal FAIL"),
    ("scoreThresholds.fail", 10, "scoreThresholds.fail: unknown field (known: pass, marginal)"),
    ("timeout", "soon", "timeout: expected a number of seconds above 0, got 'soon'"),
    ("alpha", 0.01, "alpha: not a field of a judge score (known: address, insecure, headers, authentication, "
                    "timeout, metrics, groupWeights, scoreThresholds): a test, its queries and its settings go in "
                    "each metrics[] entry"),
    ("metrics.0.address", "http://other:9090", "metrics[0].address: the Prometheus connection is shared: set it "
                                               "once on the judge, not per metric"),
    ("metrics.0.alpha", 2, "metrics[0].alpha: must be between 0 and 1 (exclusive), got 2"),
    ("metrics.1.test", "t-test", 'metrics[1].test: "t-test" is not a judge test (supported: sequential, '
                                 "sequential-latency, mann-whitney)"),
    ("metrics.0.canary", {"errors": "rate(errors[1m])", "requests": "r"},
     "metrics[0].canary.errors: give the counter itself, not rate(): the judge takes each series' increase"),
    ("metrics.2.source", {"graphite": {}}, "metrics[2].source.graphite.address: required"),
    ("metrics.0.source", {"graphite": {"address": "http://g"}}, "metrics[0].source: only test: mann-whitney reads"),
])
def test_every_bad_field_is_named_with_its_fix(path: str, value: Any, expected: str) -> None:
    found = problems(changed(path, value))
    assert any(p.startswith(f"{WHERE}.{expected}") for p in found), found


def test_a_count_too_small_for_a_sequential_metric_names_the_metric_count() -> None:
    found = problems(good(), count=3)  # said once, though two sequential metrics need more
    assert found == [
        "spec.metrics[0].count: a sequential judge needs more than minIntervals (3) measurements (the first only "
        "reads the counters), got 3; raise count, or set an interval without count",
        f"{WHERE}.metrics[2].minPoints: must be below the metric's count (3), got 5: with the default window (since "
        "the run started, one point per interval) the final measurement sees about count - 1 points per version; "
        "raise count, lower minPoints or set rangeQuery.start",
    ], found


def test_templated_weights_and_thresholds_wait_for_the_runs_args() -> None:
    judge = changed("groupWeights.latency", "{{args.latency-weight}}")
    judge["scoreThresholds"]["pass"] = "{{args.pass}}"
    templated = template(judge)
    templated["spec"]["args"] = [{"name": "latency-weight"}, {"name": "pass"}]
    assert validate_template(templated) == []


def test_too_many_metrics_is_named() -> None:
    judge = good()
    judge["metrics"] = [{"name": f"m{i}", "groups": ["errors"], **COUNTERS} for i in range(21)]
    del judge["groupWeights"]
    assert f"{WHERE}.metrics: at most 20 metrics in one score, got 21: split them over several judge metrics of " \
           "the template" in problems(judge)


def test_the_example_is_valid() -> None:
    import yaml

    doc = yaml.safe_load((REPO / "examples" / "analysis-template-judge-score.yaml").read_text())
    assert validate_template(doc) == []
    judge = doc["spec"]["metrics"][0]["provider"]["judge"]
    spec = score_spec(judge)
    assert len(spec.metrics) == 3 and len(spec.groups) == 2 and any(m.critical for m in spec.metrics)
