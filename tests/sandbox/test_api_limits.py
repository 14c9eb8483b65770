"""The API server's limits in the sandbox: CRD structural-schema rules (integer formats and the rest),
request and object sizes, JSON nesting, and malformed requests answered with a 4xx Status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.kube import assert_status, http, install_crd
from tests.fixtures.sandbox import SandboxHandle

GAUGES = "/apis/limits.example.com/v1/namespaces/default/gauges"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MIB = 1024 * 1024


def gauge_crd() -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "required": ["count"],
        "properties": {
            "count": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 100000},
            "wide": {"type": "integer", "format": "int64"},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": True},
            "code": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "note": {"type": "string", "nullable": True},
            "surge": {"x-kubernetes-int-or-string": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gauges.limits.example.com"},
        "spec": {
            "group": "limits.example.com",
            "scope": "Namespaced",
            "names": {"plural": "gauges", "singular": "gauge", "kind": "Gauge"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}},
                }
            ],
        },
    }


def gauge(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "limits.example.com/v1", "kind": "Gauge", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        install_crd(client, gauge_crd())
        yield client


def causes_of(resp: httpx.Response) -> dict[str, str]:
    body = assert_status(resp, 422, "Invalid")
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


def test_int32_out_of_range_is_422_with_the_field_path(api: httpx.Client) -> None:
    # No maximum in play: the format alone bounds the value (the Rollout CRD's replicas has only int32).
    crd = gauge_crd()
    crd["metadata"]["name"] = "counters.limits.example.com"
    crd["spec"]["names"] = {"plural": "counters", "singular": "counter", "kind": "Counter"}
    del crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["count"]["maximum"]
    install_crd(api, crd)
    counters = "/apis/limits.example.com/v1/namespaces/default/counters"
    body = {**gauge("huge", count=1099511627776), "kind": "Counter"}
    resp = api.post(counters, json=body)
    assert causes_of(resp) == {
        "spec.count": "Invalid value: 1099511627776: spec.count in body should be less than or equal to 2147483647"
    }
    assert resp.json()["message"] == (
        'Counter.limits.example.com "huge" is invalid: spec.count: Invalid value: 1099511627776: '
        "spec.count in body should be less than or equal to 2147483647"
    )
    assert api.post(counters, json={**gauge("edge", count=2**31 - 1), "kind": "Counter"}).status_code == 201


def test_int64_out_of_range_is_422_and_in_range_is_stored(api: httpx.Client) -> None:
    assert causes_of(api.post(GAUGES, json=gauge("w1", count=1, wide=2**63))) == {
        "spec.wide": f"Invalid value: {2**63}: spec.wide in body should be less than or equal to {2**63 - 1}"
    }
    assert causes_of(api.post(GAUGES, json=gauge("w2", count=1, wide=-(2**63) - 1))) == {
        "spec.wide": f"Invalid value: {-(2**63) - 1}: spec.wide in body should be greater than or equal to {-(2**63)}"
    }
    created = api.post(GAUGES, json=gauge("w3", count=1, wide=2**40))
    assert created.status_code == 201 and created.json()["spec"]["wide"] == 2**40


def test_the_other_structural_rules_answer_as_kube_apiserver(api: httpx.Client) -> None:
    resp = api.post(
        GAUGES,
        json=gauge("rules", count=-1, ratio=1, code="TOOLONG", mode="warp", tags=["a", "b", "c"], note=3),
    )
    assert causes_of(resp) == {
        "spec.count": "Invalid value: -1: spec.count in body should be greater than or equal to 0",
        "spec.ratio": "Invalid value: 1: spec.ratio in body should be less than 1",
        "spec.code": "Too long: may not be longer than 5",
        "spec.mode": 'Unsupported value: "warp": supported values: "fast", "slow"',
        "spec.tags": "Too many: 3: must have at most 2 items",
        "spec.note": 'Invalid value: "integer": spec.note in body must be of type string: "integer"',
    }
    assert causes_of(api.post(GAUGES, json=gauge("pattern", count=1, code="AB1"))) == {
        "spec.code": "Invalid value: \"AB1\": spec.code in body should match '^[a-z]+$'"
    }
    assert causes_of(api.post(GAUGES, json=gauge("missing"))) == {"spec.count": "Required value"}
    assert causes_of(api.post(GAUGES, json=gauge("surge", count=1, surge=[1]))) == {
        "spec.surge": 'Invalid value: "array": spec.surge in body must be of type integer,string: "array"'
    }


def test_nullable_int_or_string_and_pruning_keep_what_they_should(api: httpx.Client) -> None:
    created = api.post(
        GAUGES, json=gauge("kept", count=1, note=None, surge="25%", free={"deep": {"x": [1]}}, junk=True)
    )
    assert created.status_code == 201, created.text
    spec = created.json()["spec"]
    assert spec == {"count": 1, "note": None, "surge": "25%", "free": {"deep": {"x": [1]}}}
    assert api.post(GAUGES, json=gauge("surge-int", count=1, surge=3)).status_code == 201


def test_a_body_over_3_mib_is_413(api: httpx.Client) -> None:
    body = {"metadata": {"name": "huge"}, "data": {"x": "a" * (15 * MIB)}}
    resp = api.post(CONFIGMAPS, json=body)
    assert_status(resp, 413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
    assert_status(api.get(f"{CONFIGMAPS}/huge"), 404, "NotFound")


def test_an_object_over_1_5_mib_is_422_request_entity_too_large(api: httpx.Client) -> None:
    body = {"metadata": {"name": "large"}, "data": {"x": "a" * (2 * MIB)}}
    resp = api.post(CONFIGMAPS, json=body)
    message = assert_status(resp, 422, "RequestEntityTooLarge")["message"]
    assert message.startswith('ConfigMap "large" is invalid: Request entity too large: the object is ')
    assert "the limit is 1572864" in message
    assert_status(api.get(f"{CONFIGMAPS}/large"), 404, "NotFound")
    # Growing an object past the limit by patches fails the same way and leaves it as it was.
    assert api.post(CONFIGMAPS, json={"metadata": {"name": "grows"}, "data": {"a": "x" * MIB}}).status_code == 201
    patch = {"data": {"b": "y" * MIB}}
    resp = api.patch(
        f"{CONFIGMAPS}/grows", content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
    )
    assert_status(resp, 422, "RequestEntityTooLarge")
    assert set(api.get(f"{CONFIGMAPS}/grows").json()["data"]) == {"a"}


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_bodies_are_400(api: httpx.Client, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    raw = opening * 100_000 + "1" + closing * 100_000
    resp = api.post(CONFIGMAPS, content=raw, headers={"Content-Type": "application/json"})
    assert "exceeded max depth" in assert_status(resp, 400, "BadRequest")["message"]


def test_nesting_within_the_limit_is_stored(api: httpx.Client) -> None:
    nested: Any = "leaf"
    for _ in range(100):
        nested = {"n": nested}
    resp = api.post(GAUGES, json=gauge("nested", count=1, free=nested))
    assert resp.status_code == 201, resp.text
    assert api.get(f"{GAUGES}/nested").json()["spec"]["free"] == nested


def test_deep_yaml_and_alias_bombs_are_400(api: httpx.Client) -> None:
    resp = api.patch(
        f"{CONFIGMAPS}/bomb?fieldManager=t",
        content="[" * 5000 + "]" * 5000,
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert_status(resp, 400, "BadRequest")
    lines = ["a: &a ['x','x','x','x','x','x','x','x','x','x']"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    resp = api.patch(
        f"{CONFIGMAPS}/bomb?fieldManager=t",
        content="\n".join(lines),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert "excessive aliasing" in assert_status(resp, 400, "BadRequest")["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=-1", "limit: Invalid value: -1: must be greater than or equal to 0"),
        ("limit=ten", "invalid limit 'ten'"),
        ("watch=true&timeoutSeconds=-5", "timeoutSeconds: Invalid value: -5"),
        ("watch=true&timeoutSeconds=nan", "invalid timeoutSeconds 'nan'"),
        ("continue=garbage", None),
        ("labelSelector=a%20in%20(", None),
        ("fieldSelector=nope%3Dx", None),
        ("watch=true&resourceVersion=abc", None),
    ],
)
def test_bad_query_values_are_400(api: httpx.Client, query: str, message: str | None) -> None:
    body = assert_status(api.get(f"{CONFIGMAPS}?{query}"), 400, "BadRequest")
    if message:
        assert message in body["message"]


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/merge-patch+json", {"metadata": "x"}),
        ("application/merge-patch+json", {"metadata": {"labels": "x"}}),
        ("application/merge-patch+json", {"data": [1]}),
        ("application/strategic-merge-patch+json", {"metadata": "x"}),
        ("application/json-patch+json", [{"op": "replace", "path": "/metadata", "value": 7}]),
        ("application/json-patch+json", [{"op": "frobnicate", "path": "/x"}]),
        ("application/json-patch+json", {"not": "a list"}),
    ],
)
def test_wrong_typed_patches_are_4xx(api: httpx.Client, content_type: str, patch: Any) -> None:
    api.post(CONFIGMAPS, json={"metadata": {"name": "target"}, "data": {"k": "v"}})
    resp = api.patch(f"{CONFIGMAPS}/target", content=json.dumps(patch), headers={"Content-Type": content_type})
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["kind"] == "Status"
    assert api.get(f"{CONFIGMAPS}/target").json()["data"] == {"k": "v"}


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/apis/nope", 404),
        ("GET", "/api/v1/namespaces/default/configmaps/a/b/c/d", 404),
        ("GET", "/api/v1/namespaces//configmaps", 404),
        ("PUT", CONFIGMAPS, 405),
        ("POST", f"{CONFIGMAPS}/named", 405),
        ("GET", "/openapi/v3/apis/nope/v1", 404),
    ],
)
def test_bad_paths_and_verbs_are_4xx_status(api: httpx.Client, method: str, path: str, code: int) -> None:
    resp = api.request(method, path, content=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status_code == code, resp.text
    assert resp.json()["kind"] == "Status"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_numbers_go_cannot_decode_are_400(api: httpx.Client, number: str) -> None:
    raw = '{"apiVersion":"limits.example.com/v1","kind":"Gauge","metadata":{"name":"n"},"spec":{"count":%s}}'
    resp = api.post(GAUGES, content=raw % number, headers={"Content-Type": "application/json"})
    assert_status(resp, 400, "BadRequest")


def test_yaml_infinity_is_400(api: httpx.Client) -> None:
    raw = "apiVersion: limits.example.com/v1\nkind: Gauge\nmetadata: {name: inf}\nspec: {count: 1, ratio: .inf}\n"
    resp = api.patch(
        f"{GAUGES}/inf?fieldManager=t", content=raw, headers={"Content-Type": "application/apply-patch+yaml"}
    )
    assert "not a JSON number" in assert_status(resp, 400, "BadRequest")["message"]


def test_a_status_write_over_the_object_limit_is_refused(api: httpx.Client) -> None:
    deployments = "/apis/apps/v1/namespaces/default/deployments"
    deployment = {
        "metadata": {"name": "status-grows"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "status-grows"}},
            "template": {
                "metadata": {"labels": {"app": "status-grows"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    assert api.post(deployments, json=deployment).status_code == 201
    # A merge patch (no resourceVersion): the simulated Deployment controller writes status meanwhile.
    patch = {"status": {"conditions": [{"type": "Big", "status": "True", "message": "m" * (2 * MIB)}]}}
    resp = api.patch(
        f"{deployments}/status-grows/status",
        content=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_status(resp, 422, "RequestEntityTooLarge")
    stored = api.get(f"{deployments}/status-grows").json()
    assert all(c["type"] != "Big" for c in (stored.get("status") or {}).get("conditions") or [])
