"""Rollout spec views, defaults and the semantic checks that become InvalidSpec."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.model.durations import DurationError, int_or_duration_seconds
from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from tests.fixtures.world import rollout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30), ("30", 30), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0)],
)
def test_durations(text: Any, seconds: int) -> None:
    assert int_or_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "1x", "", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        int_or_duration_seconds(text)


def test_defaults_follow_argo() -> None:
    ro = {"metadata": {"name": "x"}, "spec": {"strategy": {"canary": {}}}}
    spec = RolloutSpec.parse(ro)
    assert spec.replicas == 1
    assert spec.revision_history_limit == 10
    assert spec.progress_deadline_seconds == 600
    big = RolloutSpec.parse(rollout(replicas=10))
    assert big.max_surge() == 3  # 25% rounded up
    assert big.max_unavailable() == 2  # 25% rounded down
    zero = RolloutSpec.parse(rollout(replicas=10, maxSurge="0%", maxUnavailable="0%"))
    assert zero.max_unavailable() == 1


def errors_of(obj: dict[str, Any], services: dict[str, Any] | None = None) -> list[str]:
    spec = RolloutSpec.parse(obj)
    return validate_rollout(spec, spec.template, services)


def test_valid_rollout_has_no_errors() -> None:
    assert errors_of(rollout(steps=[{"setWeight": 20}, {"pause": {"duration": "1m"}}])) == []


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (
            lambda r: r["spec"]["strategy"].update(blueGreen={"activeService": "a"}),
            "spec.strategy",
            "Multiple Strategies can not be listed",
        ),
        (
            lambda r: r["spec"]["selector"].update(matchLabels={"app": "other"}),
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(canaryService="s", stableService="s"),
            "spec.strategy.canary.stableService",
            "two different services are required",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(steps=[{"setWeight": 120}]),
            "spec.strategy.canary.steps[0].setWeight",
            "SetWeight needs to be between 0 and 100",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(maxSurge=0, maxUnavailable=0),
            "spec.strategy.canary.maxSurge",
            "MaxSurge and MaxUnavailable both can not be zero",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(steps=[{"setWeight": 10, "pause": {}}]),
            "spec.strategy.canary.steps[0]",
            "Step must have exactly one",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(steps=[{"pause": {"duration": "soon"}}]),
            "spec.strategy.canary.steps[0].pause.duration",
            "Duration needs to be greater than 0",
        ),
        (lambda r: r["spec"].pop("strategy"), "spec.strategy", "missing field"),
        (lambda r: r["spec"].pop("selector"), "spec.selector", "missing field"),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(scaleDownDelaySeconds=-5),
            "spec.strategy.canary.scaleDownDelaySeconds",
            "must be greater than or equal to 0",
        ),
        (
            lambda r: r["spec"]["strategy"]["canary"].update(scaleDownDelayRevisionLimit=-1),
            "spec.strategy.canary.scaleDownDelayRevisionLimit",
            "must be greater than or equal to 0",
        ),
    ],
)
def test_invalid_specs_name_the_field(mutate: Any, field: str, words: str) -> None:
    obj = rollout()
    mutate(obj)
    errors = errors_of(obj)
    assert any(e.startswith(field + ":") and words in e for e in errors), errors


def test_missing_service_names_the_field_and_the_fix() -> None:
    obj = rollout(canaryService="web-canary", stableService="web-stable")
    errors = errors_of(obj, {"web-stable": True})
    assert errors == [
        'spec.strategy.canary.canaryService: Invalid value: "web-canary": service "web-canary" not found in '
        'namespace "default": create it or fix the name'
    ]


def test_scale_down_delay_without_traffic_routing() -> None:
    """Argo rejects scaleDownDelaySeconds without trafficRouting; we honour an explicit value above 0."""
    obj = rollout(scaleDownDelaySeconds=5, scaleDownDelayRevisionLimit=1)
    assert errors_of(obj) == []
    spec = RolloutSpec.parse(obj)
    assert spec.scale_down_delay() == 5
    assert spec.scale_down_delay_revision_limit() == 1
    assert RolloutSpec.parse(rollout()).scale_down_delay() is None  # unset: scale down at once, as Argo
    assert RolloutSpec.parse(rollout(scaleDownDelaySeconds=0)).scale_down_delay() is None
    assert RolloutSpec.parse(rollout()).scale_down_delay_revision_limit() is None
    routed = rollout(trafficRouting={"nginx": {"stableIngress": "web"}})
    assert RolloutSpec.parse(routed).scale_down_delay() == 30  # Argo's default with a traffic router
