"""analysis/spec.py: durations, args, templating, validation and build_analysis_run (Argo's factory)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.spec import (
    ArgError,
    SpecError,
    build_analysis_run,
    duration_seconds,
    flatten_templates,
    merge_args,
    referenced_args,
    resolve_rollout_args,
    substitute,
    validate_run_spec,
    validate_template,
)

REPO = Path(__file__).resolve().parents[2]


def template(name: str, metrics: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": metrics or [], **spec},
    }


def web(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"web": {"url": "http://127.0.0.1/x"}}, **extra}


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, None), ("", None), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("0", 0.0)]
)
def test_durations(text: str | None, seconds: float | None) -> None:
    assert duration_seconds(text, "interval") == seconds


@pytest.mark.parametrize("text", ["30", "abc", "-5s", "1x"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(SpecError, match=r"^spec.metrics\[0\].interval: "):
        duration_seconds(text, "spec.metrics[0].interval")


def test_substitute_and_referenced_args() -> None:
    metric = {
        "name": "m",
        "count": "{{args.n}}",
        "successCondition": "result <= {{ args.max }}",
        "provider": {"web": {"headers": [{"key": "A", "value": "Bearer {{args.token}}"}], "jsonBody": {"x": 1}}},
    }
    assert referenced_args(metric) == ["n", "max", "token"]
    out = substitute(metric, {"n": "3", "max": "0.5", "token": "t"})
    assert out["count"] == "3"
    assert out["successCondition"] == "result <= 0.5"
    assert out["provider"]["web"]["headers"][0]["value"] == "Bearer t"
    assert metric["count"] == "{{args.n}}"  # the input is untouched
    with pytest.raises(ArgError, match='argument "token" was not supplied'):
        substitute(metric, {"n": "3", "max": "1"})


def test_merge_args_is_argos() -> None:
    declared: list[dict[str, Any]] = [
        {"name": "a"},
        {"name": "b", "value": "default"},
        {"name": "s", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}},
    ]
    merged = merge_args([{"name": "a", "value": "1"}, {"name": "zzz", "value": "ignored"}], declared)
    assert merged == [{"name": "a", "value": "1"}, {"name": "b", "value": "default"}, declared[2]]
    with pytest.raises(ArgError, match=r"^args.a was not resolved$"):
        merge_args([], declared)


def test_resolve_rollout_args() -> None:
    rollout = {"metadata": {"name": "ro", "namespace": "ns", "labels": {"app": "web"}}}
    args: list[dict[str, Any]] = [
        {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
        {"name": "latest", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "tok", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "plain", "value": "v"},
    ]
    out = resolve_rollout_args(args, rollout, "aaa", "bbb")
    assert [a.get("value") for a in out] == ["aaa", "bbb", "ns", "web", None, "v"]
    assert out[4]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "k"}
    with pytest.raises(ArgError, match=r"args\.x: fieldRef 'spec\.nope' not found"):
        resolve_rollout_args([{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}}], rollout, "a", "b")
    # collected instead of raised: the arg keeps its reference, the message names the Rollout and the fix
    unresolved: list[str] = []
    missing = {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}}
    assert resolve_rollout_args([missing], rollout, "a", "b", unresolved) == [missing]
    assert unresolved == [
        "args.team: fieldRef \"metadata.labels['team']\" not found in Rollout \"ro\": "
        "add it to the Rollout or give the arg a value"
    ]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (web("m", successCondition="result >= )"), r'spec.metrics\[0\].successCondition: .* at column 11'),
        (web("m", failureCondition="result[0] > {{args.max}} &&"), r"failureCondition: .*column"),
        (web("m", interval="5"), r'spec.metrics\[0\].interval: .*"5"'),
        (web("m", initialDelay="soon"), r"spec.metrics\[0\].initialDelay"),
        (web("m", count=3), r"spec.metrics\[0\].interval: required when count > 1"),
        (web("m", failureLimit="many"), r"spec.metrics\[0\].failureLimit: expected an integer"),
        ({"name": "m", "provider": {}}, r"spec.metrics\[0\].provider: one provider is required"),
        ({"name": "m", "provider": {"stackdriver": {}}}, r"provider.stackdriver: provider not supported"),
        ({"name": "m", "provider": {"prometheus": {}}}, r"provider.prometheus.query: required"),
    ],
)
def test_validation_names_the_field(metric: dict[str, Any], expected: str) -> None:
    problems = validate_template(template("t", [metric]))
    assert any(re.search(expected, p) for p in problems), problems


def test_condition_error_position_is_in_the_original_text() -> None:
    # The placeholder counts as a value and keeps the column of the real error.
    metric = web("m", successCondition="result <= {{args.max}} )")
    problems = validate_template(template("t", [metric], args=[{"name": "max"}]))
    assert len(problems) == 1
    assert "column 24" in problems[0] and "{{args.max}}" in problems[0], problems


def test_valid_templates_and_examples() -> None:
    ok = web("m", interval="1s", count="{{args.n}}", successCondition="len(result) == 0 || result[0] < {{args.x}}")
    assert validate_template(template("t", [ok], args=[{"name": "n"}, {"name": "x"}])) == []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
                assert validate_template(doc) == [], path


def test_duplicate_metric_names_and_bad_rules() -> None:
    problems = validate_run_spec({"metrics": [web("a"), web("a")], "dryRun": [{"metricName": "nope"}]})
    assert 'spec.metrics[1].name: two metrics have the same name "a"' in problems
    assert "spec.dryRun[0]: Rule didn't match any metric name(s)" in problems


def test_build_analysis_run_merges_nested_templates() -> None:
    base = template("base", [web("one")], args=[{"name": "svc"}], dryRun=[{"metricName": "one"}])
    nested = template("outer", [web("two")], templates=[{"templateName": "base"}, {"templateName": "shared",
                                                                                   "clusterScope": True}],
                      measurementRetention=[{"metricName": "two", "limit": 3}])
    shared = template("shared", [web("three")], args=[{"name": "svc"}, {"name": "limit", "value": "5"}])
    shared["kind"] = "ClusterAnalysisTemplate"

    def lookup(name: str, cluster: bool) -> dict[str, Any] | None:
        return {(False, "base"): base, (True, "shared"): shared}.get((cluster, name))

    run = build_analysis_run(
        [nested], [], [{"name": "svc", "value": "web"}], "ro-abc-2-1", "ns",
        labels={"rollouts-pod-template-hash": "abc"}, annotations={"rollout.pyrollouts.io/revision": "2"},
        owner_references=[{"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout", "name": "ro", "uid": "u",
                           "controller": True, "blockOwnerDeletion": True}],
        lookup=lookup, dry_run=[{"metricName": "three"}],
    )
    assert run["kind"] == "AnalysisRun" and run["apiVersion"] == "pyrollouts.io/v1alpha1"
    assert run["metadata"]["name"] == "ro-abc-2-1" and run["metadata"]["namespace"] == "ns"
    assert run["metadata"]["labels"] == {"rollouts-pod-template-hash": "abc"}
    assert run["metadata"]["ownerReferences"][0]["kind"] == "Rollout"
    spec = run["spec"]
    assert [m["name"] for m in spec["metrics"]] == ["one", "three", "two"]
    assert spec["args"] == [{"name": "svc", "value": "web"}, {"name": "limit", "value": "5"}]
    assert spec["dryRun"] == [{"metricName": "one"}, {"metricName": "three"}]
    assert spec["measurementRetention"] == [{"metricName": "two", "limit": 3}]


@pytest.mark.parametrize(
    ("templates", "args", "error", "match"),
    [
        ([template("a", [web("m")]), template("b", [web("m")])], [], SpecError, 'two metrics have the same name "m"'),
        ([template("a", [web("m")], args=[{"name": "x"}])], [], ArgError, "args.x was not resolved"),
        ([template("a", [web("m")], templates=[{"templateName": "gone"}])], [], SpecError,
         'AnalysisTemplate "gone" not found'),
        ([template("a", [web("m")], args=[{"name": "x", "value": "1"}]),
          template("b", [web("n")], args=[{"name": "x", "value": "2"}])], [], SpecError, "different values"),
        ([template("a", [web("m", successCondition="result >")])], [], SpecError, "successCondition"),
    ],
)
def test_build_analysis_run_errors(
    templates: list[dict[str, Any]], args: list[dict[str, Any]], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        build_analysis_run(templates, [], args, "run", "ns")


def test_nested_cycle_is_an_error() -> None:
    a = template("a", [web("m")], templates=[{"templateName": "b"}])
    b = template("b", [web("n")], templates=[{"templateName": "a"}])
    with pytest.raises(SpecError, match="cycle"):
        flatten_templates([a, b])
