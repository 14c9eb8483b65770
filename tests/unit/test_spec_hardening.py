"""The controller never trusts a spec the API server let through (issue 16 item 2): each malformed case
is InvalidSpec on the Rollout (naming the field and the fix), the template's Invalid condition, or the
run's Error; the Rollout cases are checked here without a server, since a server that enforces
``int32`` would refuse some of them before the controller sees them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from analysis.runner import ttl_deadline
from analysis.spec import validate_run_spec, validate_template
from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from tests.fixtures.bluegreen import bluegreen_manifest
from tests.fixtures.world import World, rollout

Mutation = Callable[[dict[str, Any]], None]


def errors_of(obj: dict[str, Any]) -> list[str]:
    spec = RolloutSpec.parse(obj)
    return validate_rollout(spec, spec.template)


def canary(**fields: Any) -> Mutation:
    return lambda r: r["spec"]["strategy"]["canary"].update(fields)


def steps(*items: dict[str, Any]) -> Mutation:
    return canary(steps=list(items))


ROLLOUT_CASES: list[tuple[str, Mutation, str]] = [
    ("replicas past int32", lambda r: r["spec"].update(replicas=2**40), r"^spec\.replicas: .*1099511627776.*int32"),
    ("minReadySeconds past int32", lambda r: r["spec"].update(minReadySeconds=2**31), r"^spec\.minReadySeconds: "),
    ("progressDeadlineSeconds past int32", lambda r: r["spec"].update(progressDeadlineSeconds=2**33),
     r"^spec\.progressDeadlineSeconds: .*int32"),
    ("revisionHistoryLimit past int32", lambda r: r["spec"].update(revisionHistoryLimit=2**31),
     r"^spec\.revisionHistoryLimit: .*int32"),
    ("maxSurge past int32", canary(maxSurge=2**40), r"^spec\.strategy\.canary\.maxSurge: .*int32"),
    ("maxUnavailable 150%", canary(maxUnavailable="150%"),
     r"^spec\.strategy\.canary\.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"),
    ("setCanaryScale.replicas past int32", steps({"setCanaryScale": {"replicas": 2**40}}),
     r"^spec\.strategy\.canary\.steps\[0\]\.setCanaryScale\.replicas: .*int32"),
    ("setWeight over 100", steps({"setWeight": 101}), r"^spec\.strategy\.canary\.steps\[0\]\.setWeight: .*0 and 100"),
    ("setWeight negative", steps({"setWeight": -5}), r"^spec\.strategy\.canary\.steps\[0\]\.setWeight: "),
    ("negative pause", steps({"pause": {"duration": "-5s"}}), r"steps\[0\]\.pause\.duration: .*greater than 0"),
    ("pause past int32 seconds", steps({"pause": {"duration": "1000000h"}}),
     r"steps\[0\]\.pause\.duration: .*at most 2147483647 seconds"),
    ("analysis with no templates", canary(analysis={"templates": []}),
     r"^spec\.strategy\.canary\.analysis\.templates: Required value: .*at least one template"),
    ("analysis step with no templates", steps({"analysis": {"templates": []}}),
     r"^spec\.strategy\.canary\.steps\[0\]\.analysis\.templates: Required value"),
    ("analysis template without a name", canary(analysis={"templates": [{"clusterScope": True}]}),
     r"analysis\.templates\[0\]\.templateName: Required value"),
    ("plugin step of a plugin not installed", steps({"plugin": {"name": "x"}}),
     r'steps\[0\]\.plugin\.name: Invalid value: "x": no step plugin "x" is installed'),
    ("experiment step without templates", steps({"experiment": {"templates": []}}),
     r"^spec\.strategy\.canary\.steps\[0\]\.experiment\.templates: Required value: .*at least one template"),
    ("experiment step with a template twice",
     steps({"experiment": {"templates": [{"name": "a", "specRef": "canary"}, {"name": "a", "specRef": "stable"}]}}),
     r"steps\[0\]\.experiment\.templates\[1\]\.name: Duplicate value: \"a\""),
    ("two actions in a step", steps({"setWeight": 10, "pause": {}}), r"Step must have exactly one"),
    ("maxTrafficWeight past int32",
     canary(trafficRouting={"nginx": {"stableIngress": "i"}, "maxTrafficWeight": 2**40},
            canaryService="c", stableService="s"),
     r"trafficRouting\.maxTrafficWeight: .*int32"),
    ("setHeaderRoute without routing", steps({"setHeaderRoute": {"name": "h"}}), r"requires TrafficRouting"),
    ("setWeight routed without a canary Service", canary(trafficRouting={"nginx": {"stableIngress": "i"}}),
     r"^spec\.strategy\.canary\.canaryService: Required value"),
    ("startingStep not a number", canary(analysis={"templates": [{"templateName": "t"}], "startingStep": "abc"}),
     r'^spec\.strategy\.canary\.analysis\.startingStep: Invalid value: "abc": must be a step index from 0 to 1'),
    ("startingStep past the steps", canary(analysis={"templates": [{"templateName": "t"}], "startingStep": 5}),
     r"analysis\.startingStep: Invalid value: 5"),
    ("selector with an unknown operator",
     lambda r: r["spec"]["selector"].update(matchExpressions=[{"key": "a", "operator": "Bogus"}]),
     r'^spec\.selector\.matchExpressions\[0\]\.operator: Unsupported value: "Bogus"'),
    ("selector In without values",
     lambda r: r["spec"]["selector"].update(matchExpressions=[{"key": "app", "operator": "In"}]),
     r"^spec\.selector\.matchExpressions\[0\]\.values: .*must be non-empty for In"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), ROLLOUT_CASES, ids=[c[0] for c in ROLLOUT_CASES])
def test_malformed_rollouts_are_invalid_naming_the_field(case: str, mutate: Mutation, expected: str) -> None:
    obj = rollout(steps=[{"setWeight": 20}])
    mutate(obj)
    errors = errors_of(obj)
    assert any(re.search(expected, e) for e in errors), (case, errors)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"maxUnavailable": "150%"}, r"^spec\.strategy\.blueGreen\.maxUnavailable: .*must not be greater than 100%"),
        ({"previewReplicaCount": 2**40}, r"^spec\.strategy\.blueGreen\.previewReplicaCount: .*int32"),
        ({"autoPromotionSeconds": 2**31}, r"^spec\.strategy\.blueGreen\.autoPromotionSeconds: .*int32"),
        ({"prePromotionAnalysis": {"templates": []}}, r"blueGreen\.prePromotionAnalysis\.templates: Required value"),
        ({"postPromotionAnalysis": {}}, r"blueGreen\.postPromotionAnalysis\.templates: Required value"),
    ],
)
def test_malformed_blue_green_rollouts(fields: dict[str, Any], expected: str) -> None:
    errors = errors_of(bluegreen_manifest(**fields))
    assert any(re.search(expected, e) for e in errors), errors


def test_the_limits_themselves_are_valid() -> None:
    obj = rollout(replicas=2**31 - 1, steps=[{"setWeight": 100}, {"pause": {"duration": 2**31 - 1}}])
    obj["spec"]["strategy"]["canary"]["maxUnavailable"] = "100%"
    assert errors_of(obj) == []


def test_replicas_past_int32_never_reach_a_replicaset() -> None:
    # A server that enforces int32 refuses this Rollout; one that does not (the sandbox, an old CRD)
    # must not make the controller scale to it.
    world = World(rollout(replicas=2**40, steps=[{"setWeight": 20}]))
    plan = world.step()
    assert not plan.actions and world.rss == {}
    assert world.status["phase"] == "Degraded"
    assert "spec.replicas: Invalid value: 1099511627776" in world.status["message"]
    assert world.events[-1][0] == "InvalidSpec"


def test_an_experiment_step_without_templates_is_invalid_not_a_hang() -> None:
    world = World(rollout(steps=[{"experiment": {"templates": []}}]))
    world.step()
    assert world.status["phase"] == "Degraded"
    assert "steps[0].experiment.templates: Required value" in world.status["message"]


def metric(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "m", "successCondition": "result == 1",
                            "provider": {"prometheus": {"address": "http://prom:9090", "query": "up"}}}
    base.update(fields)
    return base


def prometheus(**fields: Any) -> dict[str, Any]:
    return metric(provider={"prometheus": {"address": "http://prom:9090", "query": "up", **fields}})


def web(**fields: Any) -> dict[str, Any]:
    return metric(provider={"web": {"url": "http://svc/x", **fields}})


TEMPLATE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("count -1", metric(count=-1, interval="1s"), r"^spec\.metrics\[0\]\.count: Invalid value: -1: must be between 0"),
    ("count 2^40", metric(count=2**40, interval="1s"), r"^spec\.metrics\[0\]\.count: .*2147483647"),
    ("count text 2^40", metric(count=str(2**40), interval="1s"), r"^spec\.metrics\[0\]\.count: .*2147483647"),
    ("failureLimit -2", metric(failureLimit=-2), r"\.failureLimit: Invalid value: -2: must be between -1"),
    ("consecutiveErrorLimit negative", metric(consecutiveErrorLimit=-1), r"\.consecutiveErrorLimit: Invalid value"),
    ("undeclared argument", metric(successCondition="result < {{args.nope}}"),
     r'^spec\.metrics\[0\]: argument "nope" \(\{\{args\.nope\}\}\) is not declared in spec\.args'),
    ("NUL in a query", prometheus(query="up\x00"),
     r"^spec\.metrics\[0\]\.provider\.prometheus\.query: .*U\+0000"),
    ("right-to-left override in a query", prometheus(query="sum(x) \u202e"),
     r"^spec\.metrics\[0\]\.provider\.prometheus\.query: .*U\+202E"),
    ("prometheus address not a url", prometheus(address="not a url"),
     r'^spec\.metrics\[0\]\.provider\.prometheus\.address: Invalid value: "not a url": not a URL'),
    ("prometheus address without a host", prometheus(address="http://"), r"prometheus\.address: .*not a URL"),
    ("prometheus address with a bad port", prometheus(address="http://prom:99999"), r"prometheus\.address: "),
    ("web url not a url", web(url="ftp://x/y"), r"provider\.web\.url: .*not a URL"),
    ("prometheus timeout negative", prometheus(timeout=-1), r"prometheus\.timeout: .*from 1 to 600"),
    ("prometheus timeout huge", prometheus(timeout=10**9), r"prometheus\.timeout: .*from 1 to 600"),
    ("web timeoutSeconds zero", web(timeoutSeconds=0), r"web\.timeoutSeconds: .*from 1 to 600"),
    ("negative interval", metric(interval="-1s", count=2), r"\.interval: negative duration"),
    ("interval past Go's longest", metric(interval="9999999h", count=2), r"\.interval: .*longest duration"),
    ("successCondition does not parse", metric(successCondition="result =="), r"\.successCondition: "),
    ("no provider", {"name": "m"}, r"\.provider: one provider is required"),
    ("jsonPath that does not parse", web(jsonPath="$.a["), r'web\.jsonPath: Invalid value: "\$\.a\[": not a JSONPath'),
]


@pytest.mark.parametrize(("case", "bad", "expected"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES])
def test_malformed_templates_are_invalid_naming_the_field(case: str, bad: dict[str, Any], expected: str) -> None:
    problems = validate_template({"kind": "AnalysisTemplate", "metadata": {"name": "t"}, "spec": {"metrics": [bad]}})
    assert any(re.search(expected, p) for p in problems), (case, problems)
    # the same metric in a run makes the run's Error
    assert any(re.search(expected, p) for p in validate_run_spec({"metrics": [bad]})), case


@pytest.mark.parametrize("seconds", [-1, 2**40, "30"])
def test_a_ttl_out_of_range_is_the_runs_error_and_never_overflows(seconds: Any) -> None:
    problems = validate_run_spec({"metrics": [metric()], "ttlStrategy": {"secondsAfterCompletion": seconds}})
    assert any(p.startswith("spec.ttlStrategy.secondsAfterCompletion: Invalid value") for p in problems), problems
    status = {"phase": "Error", "completedAt": "2024-05-01T12:00:00Z"}
    assert ttl_deadline({"ttlStrategy": {"secondsAfterCompletion": seconds}}, status) is None  # kept, no crash


def test_duplicate_metric_names() -> None:
    problems = validate_run_spec({"metrics": [metric(), metric()]})
    assert any('two metrics have the same name "m"' in p for p in problems), problems


def test_a_run_without_metrics_is_an_error_not_running_forever() -> None:
    assert validate_run_spec({"metrics": []}) == [
        "spec.metrics: at least one metric is required (a run without metrics would never end)"
    ]


def test_declared_and_substituted_values_are_valid() -> None:
    good = [metric(count="{{args.n}}", interval="1s", successCondition="result < {{args.max}}"),
            {**prometheus(address="{{args.prom}}", timeout=600), "name": "p"},
            {**web(timeoutSeconds="{{args.t}}"), "name": "w"}]
    args = [{"name": n, "value": "1"} for n in ("n", "max", "prom", "t")]
    template = {"kind": "AnalysisTemplate", "metadata": {"name": "t"}, "spec": {"metrics": good, "args": args}}
    assert validate_template(template) == []
    assert validate_run_spec({"metrics": good, "args": args}) == []
