"""rollouts.schema answers like kube-apiserver: the same causes, pruning and defaulting."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.schema import (
    FieldError,
    apply_defaults,
    crd_schema,
    find_crd,
    invalid_status,
    load_crds,
    prune,
    unknown_fields,
    validate,
    validate_object,
)

CRDS = load_crds()


def schema_for(kind: str) -> dict[str, Any]:
    crd = find_crd(CRDS, "pyrollouts.io", kind)
    assert crd is not None
    return crd_schema(crd, "v1alpha1")


ROLLOUT = schema_for("Rollout")
TEMPLATE = schema_for("AnalysisTemplate")


def rollout(**spec: Any) -> dict[str, Any]:
    """A valid canary Rollout, with ``spec`` keys replaced."""
    base: dict[str, Any] = {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }
    base["spec"].update(spec)
    return base


def canary(**fields: Any) -> dict[str, Any]:
    return rollout(strategy={"canary": fields})


def template(metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {"metrics": [metric]},
    }


# --------------------------------------------------------------------------- validation causes


def test_valid_rollout_has_no_errors() -> None:
    assert validate(ROLLOUT, rollout()) == []
    assert validate_object(CRDS, rollout()) == []


def test_wrong_type_is_reported_like_the_apiserver() -> None:
    assert validate(ROLLOUT, rollout(replicas="three")) == [
        FieldError(
            "spec.replicas",
            "FieldValueTypeInvalid",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        )
    ]


def test_wrong_type_of_an_object() -> None:
    [error] = validate(ROLLOUT, rollout(strategy=["canary"]))
    assert error.field == "spec.strategy"
    assert error.message == 'Invalid value: "array": spec.strategy in body must be of type object: "array"'


def test_null_where_a_value_is_needed() -> None:
    [error] = validate(ROLLOUT, rollout(paused=None))
    assert error.message == 'Invalid value: "null": spec.paused in body must be of type boolean: "null"'


def test_missing_required_field() -> None:
    obj = template({"provider": {"prometheus": {"query": "up"}}})
    assert validate(TEMPLATE, obj) == [FieldError("spec.metrics[0].name", "FieldValueRequired", "Required value")]


def test_every_missing_required_field_is_listed() -> None:
    obj = canary(trafficRouting={"istio": {"destinationRule": {"name": "dr"}}})
    fields = [e.field for e in validate(ROLLOUT, obj)]
    prefix = "spec.strategy.canary.trafficRouting.istio.destinationRule."
    assert fields == [prefix + "canarySubsetName", prefix + "stableSubsetName"]


def test_enum_violation() -> None:
    obj = rollout(workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "scaleDown": "later"})
    assert validate(ROLLOUT, obj) == [
        FieldError(
            "spec.workloadRef.scaleDown",
            "FieldValueNotSupported",
            'Unsupported value: "later": supported values: "never", "onsuccess", "progressively"',
        )
    ]


def test_set_weight_below_0() -> None:
    # (no maximum in the schema: maxTrafficWeight may be above 100; the controller checks the step against it)
    obj = canary(steps=[{"setWeight": -5}])
    assert validate(ROLLOUT, obj) == [
        FieldError(
            "spec.strategy.canary.steps[0].setWeight",
            "FieldValueInvalid",
            "Invalid value: -5: spec.strategy.canary.steps[0].setWeight in body should be greater than or equal to 0",
        )
    ]


def test_negative_replicas() -> None:
    [error] = validate(ROLLOUT, rollout(replicas=-1))
    assert error.message == "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"


def test_nested_list_item_paths() -> None:
    obj = canary(
        steps=[
            {"setWeight": 10},
            {"analysis": {"templates": [{"clusterScope": True}], "args": [{"name": "a", "valueFrom": {"x": 1}}]}},
            {"setHeaderRoute": {"name": "h", "match": [{"headerName": "X-Canary", "headerValue": {"exact": 1}}]}},
        ]
    )
    fields = {e.field: e.reason for e in validate(ROLLOUT, obj)}
    assert fields == {
        "spec.strategy.canary.steps[1].analysis.templates[0].templateName": "FieldValueRequired",
        "spec.strategy.canary.steps[2].setHeaderRoute.match[0].headerValue.exact": "FieldValueTypeInvalid",
    }


@pytest.mark.parametrize("value", ["25%", 2, 0, "1"])
def test_int_or_string_accepts_ints_and_strings(value: Any) -> None:
    assert validate(ROLLOUT, canary(maxSurge=value, maxUnavailable=value)) == []


@pytest.mark.parametrize(("value", "kind"), [(2.5, "number"), (True, "boolean"), ({"a": 1}, "object")])
def test_int_or_string_rejects_other_types(value: Any, kind: str) -> None:
    assert validate(ROLLOUT, canary(maxSurge=value)) == [
        FieldError(
            "spec.strategy.canary.maxSurge",
            "FieldValueTypeInvalid",
            f'Invalid value: "{kind}": spec.strategy.canary.maxSurge in body must be of type integer,string: "{kind}"',
        )
    ]


def test_integral_float_counts_as_integer() -> None:
    # kube-openapi accepts 3.0 where an integer is expected; a bool is never an integer.
    assert validate(ROLLOUT, rollout(replicas=3.0)) == []
    assert [e.reason for e in validate(ROLLOUT, rollout(replicas=True))] == ["FieldValueTypeInvalid"]


def test_pause_duration_int_or_string() -> None:
    steps = [{"pause": {"duration": 30}}, {"pause": {"duration": "1m"}}, {"pause": {"duration": 1.5}}]
    [error] = validate(ROLLOUT, canary(steps=steps))
    assert error.field == "spec.strategy.canary.steps[2].pause.duration"


@pytest.mark.parametrize("stamp", ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123+02:00"])
def test_date_time_accepts_rfc3339(stamp: str) -> None:
    assert validate(ROLLOUT, rollout(restartAt=stamp)) == []


@pytest.mark.parametrize("stamp", ["yesterday", "2024-13-01T10:00:00Z", "2024-05-01"])
def test_date_time_rejects_other_strings(stamp: str) -> None:
    assert validate(ROLLOUT, rollout(restartAt=stamp)) == [
        FieldError(
            "spec.restartAt",
            "FieldValueTypeInvalid",
            f'Invalid value: "{stamp}": spec.restartAt in body must be of type date-time: "{stamp}"',
        )
    ]


def test_status_condition_status_enum() -> None:
    obj = rollout()
    obj["status"] = {"conditions": [{"type": "Available", "status": "Yes"}], "observedGeneration": "4"}
    [error] = validate(ROLLOUT, obj)
    assert error.field == "status.conditions[0].status"
    assert error.message == 'Unsupported value: "Yes": supported values: "True", "False", "Unknown"'


def test_metric_limits_take_int_or_string() -> None:
    metric = {"name": "m", "count": "{{args.n}}", "failureLimit": 2, "provider": {"prometheus": {"query": "up"}}}
    assert validate(TEMPLATE, template(metric)) == []
    metric["inconclusiveLimit"] = 0.5
    assert [e.field for e in validate(TEMPLATE, template(metric))] == ["spec.metrics[0].inconclusiveLimit"]


def test_path_prefix() -> None:
    spec_schema = ROLLOUT["properties"]["spec"]
    [error] = validate(spec_schema, {"replicas": "x"}, path="spec")
    assert error.field == "spec.replicas"


def test_errors_are_unique_and_sorted() -> None:
    obj = canary(steps=[{"setWeight": -1}, {"setWeight": "x"}], maxSurge=1.5)
    fields = [e.field for e in validate(ROLLOUT, obj)]
    assert fields == sorted(set(fields))
    assert len(fields) == 3


def test_nullable_and_other_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "maybe": {"type": "string", "nullable": True, "enum": ["a"]},
            "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        },
    }
    assert validate(schema, {"maybe": None}) == []
    errors = validate(schema, {"name": "A", "tags": []})
    assert [e.message for e in errors] == [
        'Invalid value: "A": name in body should be at least 2 chars long',
        "Invalid value: \"A\": name in body should match '^[a-z]+$'",
        "Invalid value: 0: tags in body should have at least 1 items",
    ]
    [too_long, too_many] = validate(schema, {"name": "abcdef", "tags": ["a", "b", "c"]})
    assert (too_long.reason, too_long.message) == ("FieldValueTooLong", "Too long: may not be longer than 4")
    assert (too_many.reason, too_many.message) == ("FieldValueTooMany", "Too many: 3: must have at most 2 items")


# --------------------------------------------------------------------------- whole objects


def test_validate_object_needs_a_name() -> None:
    obj = rollout()
    del obj["metadata"]["name"]
    assert validate_object(CRDS, obj) == [
        FieldError("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
    ]
    obj["metadata"]["generateName"] = "web-"
    assert validate_object(CRDS, obj) == []


def test_validate_object_unknown_kind_and_version() -> None:
    obj = rollout()
    obj["kind"] = "Deployment"
    [error] = validate_object(CRDS, obj)
    assert (error.field, error.reason) == ("kind", "FieldValueNotSupported")
    assert '"Rollout"' in error.message
    obj = rollout()
    obj["apiVersion"] = "pyrollouts.io/v2"
    [error] = validate_object(CRDS, obj)
    assert error.message == 'Unsupported value: "pyrollouts.io/v2": supported values: "pyrollouts.io/v1alpha1"'


def test_validate_object_reports_schema_errors_too() -> None:
    obj = rollout(replicas="x")
    obj["metadata"] = {}
    assert [e.field for e in validate_object(CRDS, obj)] == ["metadata.name", "spec.replicas"]


def test_invalid_status_body() -> None:
    errors = validate(ROLLOUT, rollout(replicas="x"))
    status = invalid_status("Rollout", "pyrollouts.io", "web", errors)
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == (
        'Rollout.pyrollouts.io "web" is invalid: '
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
            "field": "spec.replicas",
        }
    ]
    two = validate(ROLLOUT, rollout(replicas="x", paused="no"))
    assert invalid_status("Rollout", "pyrollouts.io", "web", two)["message"].count(", spec.") == 1


# --------------------------------------------------------------------------- pruning


def test_prune_drops_unknown_fields_and_keeps_preserved_subtrees() -> None:
    obj = rollout(foo=1)
    obj["spec"]["template"]["spec"]["anything"] = {"goes": ["here"]}
    obj["spec"]["template"]["metadata"]["name"] = "kept"
    obj["spec"]["strategy"]["canary"]["steps"][0]["bogus"] = True
    obj["metadata"]["labels"] = {"team": "a"}
    obj["status"] = {"phase": "Healthy", "controller": {"anything": {"x": 1}}, "junk": 1}
    pruned = prune(ROLLOUT, obj)
    assert "foo" not in pruned["spec"]
    assert "bogus" not in pruned["spec"]["strategy"]["canary"]["steps"][0]
    assert "junk" not in pruned["status"]
    assert pruned["spec"]["template"]["spec"]["anything"] == {"goes": ["here"]}
    assert pruned["spec"]["template"]["metadata"]["name"] == "kept"
    assert pruned["status"]["controller"] == {"anything": {"x": 1}}
    assert pruned["metadata"] == obj["metadata"]
    assert (pruned["apiVersion"], pruned["kind"]) == ("pyrollouts.io/v1alpha1", "Rollout")


def test_prune_keeps_map_values_and_empties_closed_objects() -> None:
    obj = canary(
        canaryMetadata={"labels": {"role": "canary"}},
        antiAffinity={"requiredDuringSchedulingIgnoredDuringExecution": {"topologyKey": "x"}},
    )
    pruned = prune(ROLLOUT, obj)
    canary_spec = pruned["spec"]["strategy"]["canary"]
    assert canary_spec["canaryMetadata"] == {"labels": {"role": "canary"}}
    assert canary_spec["antiAffinity"] == {"requiredDuringSchedulingIgnoredDuringExecution": {}}


def test_prune_does_not_touch_its_input() -> None:
    obj = rollout(foo=1)
    before = copy.deepcopy(obj)
    pruned = prune(ROLLOUT, obj)
    assert obj == before
    pruned["spec"]["template"]["spec"]["containers"].append({})
    assert obj == before


def test_prune_embedded_resources() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "child": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"data": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    }
                },
            }
        },
    }
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"child": child, "z": 1}}
    pruned = prune(schema, obj)
    assert pruned["spec"] == {
        "child": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    }
    assert unknown_fields(schema, obj) == ["spec.child.data.b", "spec.z"]


def test_unknown_fields_lists_paths_in_document_order() -> None:
    obj = rollout(foo=1)
    obj["spec"]["strategy"]["canary"]["steps"][1]["pause"]["until"] = "later"
    obj["spec"]["strategy"]["canary"]["trafficRouting"] = {"nginx": {"stableIngress": "i", "weight": 5}}
    obj["spec"]["template"]["spec"]["whatever"] = 1
    obj["status"] = {"controller": {"x": 1}, "extra": True}
    assert unknown_fields(ROLLOUT, obj) == [
        "spec.strategy.canary.steps[1].pause.until",
        "spec.strategy.canary.trafficRouting.nginx.weight",
        "spec.foo",
        "status.extra",
    ]
    assert unknown_fields(ROLLOUT, rollout()) == []


# --------------------------------------------------------------------------- defaulting

DEFAULTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "default": {},
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "auto"},
                "note": {"type": "string", "nullable": True, "default": "n"},
                "plain": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "steps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "pause": {"type": "object", "properties": {"s": {"type": "integer", "default": 5}}}
                        },
                    },
                },
                "limits": {
                    "type": "object",
                    "default": {"cpu": "1"},
                    "properties": {"cpu": {"type": "string"}, "mem": {"type": "string", "default": "1Gi"}},
                },
            },
        }
    },
}


def test_defaults_fill_missing_fields_recursively() -> None:
    assert apply_defaults(DEFAULTS, {"kind": "X"}) == {
        "kind": "X",
        "spec": {"replicas": 1, "mode": "auto", "note": "n", "limits": {"cpu": "1", "mem": "1Gi"}},
    }


def test_defaults_keep_given_values_and_apply_inside_lists() -> None:
    obj = {"spec": {"replicas": 0, "mode": "manual", "steps": [{"pause": {}}, {"pause": {"s": 9}}, {}]}}
    spec = apply_defaults(DEFAULTS, obj)["spec"]
    assert (spec["replicas"], spec["mode"]) == (0, "manual")
    assert spec["steps"] == [{"pause": {"s": 5}}, {"pause": {"s": 9}}, {}]


def test_defaults_and_nulls() -> None:
    obj = {"spec": {"replicas": None, "note": None, "plain": None, "labels": {"a": None, "b": "x"}}}
    spec = apply_defaults(DEFAULTS, obj)["spec"]
    assert spec["replicas"] == 1  # null in a non-nullable field gets the default
    assert spec["note"] is None  # nullable: null is a value
    assert "plain" not in spec  # non-nullable, no default: the apiserver drops the null
    assert spec["labels"] == {"b": "x"}


def test_defaults_do_not_touch_their_input() -> None:
    obj: dict[str, Any] = {"spec": {"limits": {}}}
    result = apply_defaults(DEFAULTS, obj)
    assert obj == {"spec": {"limits": {}}}
    assert result["spec"]["limits"] == {"mem": "1Gi"}


def test_our_crds_default_nothing_silently() -> None:
    # Defaults live in rollouts/spec.py; the CRDs must not rewrite what users stored.
    obj = rollout()
    assert apply_defaults(ROLLOUT, obj) == obj
