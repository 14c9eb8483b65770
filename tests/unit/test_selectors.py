"""Label selectors (equality- and set-based), LabelSelector objects, and field selectors."""

from __future__ import annotations

import pytest

from rollouts.model.labelselector import format_label_selector
from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.selectors import (
    matches_labels,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)

LABELS = {"app": "web", "tier": "front", "example.com/team": "a", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app = web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web,db)", True),
        ("app in ( db , cache )", False),
        ("app notin (db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("! missing", True),
        ("!tier", False),
        ("example.com/team=a", True),
        ("example.com/team in (a,b),app", True),
        ("empty=", True),
        ("empty in (,x)", False),
        ("app=web,tier=back", False),
        ("app=web,tier in (front, back),!missing", True),
    ],
)
def test_label_selector_matching(selector: str, matches: bool) -> None:
    assert matches_labels(parse_label_selector(selector), LABELS) is matches


def test_label_selector_on_no_labels() -> None:
    assert matches_labels(parse_label_selector("!a"), None)
    assert not matches_labels(parse_label_selector("a"), None)
    assert matches_labels(parse_label_selector("a!=b"), {})


@pytest.mark.parametrize(
    "selector", ["app in (web", "app in ()", "a=b=c", "=x", "a b", "app notin", "a,,=b", "app in web", "-a=b"]
)
def test_malformed_label_selector_is_400(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


def test_label_selector_objects() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "example.com/team", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    }
    requirements = selector_from_label_selector(selector)
    assert matches_labels(requirements, LABELS)
    assert not matches_labels(requirements, {**LABELS, "canary": "1"})
    assert not matches_labels(requirements, {**LABELS, "zone": "b"})
    assert selector_from_label_selector(None) == []
    with pytest.raises(ApiError):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_label_selector_string_round_trips() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "t", "operator": "In", "values": ["y", "x"]},
            {"key": "u", "operator": "NotIn", "values": ["z"]},
            {"key": "e", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"},
        ],
    }
    text = format_label_selector(selector)
    assert text == "a=1,b=2,t in (x,y),u notin (z),e,!d"
    labels = {"a": "1", "b": "2", "t": "x", "e": ""}
    assert matches_labels(parse_label_selector(text), labels) == matches_labels(
        selector_from_label_selector(selector), labels
    )
    assert format_label_selector(None) == ""


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Running"}, "spec": {"nodeName": ""}}
    assert parse_field_selector("metadata.name=p", (), "Pod")(obj)
    assert parse_field_selector("metadata.name==p,metadata.namespace=ns", (), "Pod")(obj)
    assert not parse_field_selector("metadata.name!=p", (), "Pod")(obj)
    assert parse_field_selector("status.phase=Running", ("status.phase",), "Pod")(obj)
    assert parse_field_selector("spec.nodeName=", ("spec.nodeName",), "Pod")(obj)
    assert parse_field_selector("", (), "Pod")(obj)
    with pytest.raises(ApiError) as err:
        parse_field_selector("status.phase=Running", (), "ConfigMap")
    assert err.value.code == 400 and err.value.message == "field label not supported: status.phase"
    with pytest.raises(ApiError):
        parse_field_selector("metadata.name", (), "Pod")
