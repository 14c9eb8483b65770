"""Patch formats: RFC 7386 merge patch, RFC 6902 JSON patch, and Kubernetes strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.patches import apply_patch, json_patch, merge_patch, strategic_merge_patch

# ---------------------------------------------------------------------------------------------- merge patch

# RFC 7386, Appendix A: every example.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386, ids=[json.dumps(c[1]) for c in RFC7386])
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == before, "the target is never modified"


def test_merge_patch_replaces_lists_of_objects_whole() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}
    assert merge_patch(target, {"spec": {"containers": [{"name": "a", "image": "3"}]}}) == {
        "spec": {"containers": [{"name": "a", "image": "3"}]}
    }


# ---------------------------------------------------------------------------------------------- JSON patch


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}}
    ops = [
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        {"op": "replace", "path": "/spec/list/0", "value": 10},
        {"op": "remove", "path": "/spec/list/1"},
        {"op": "add", "path": "/spec/list/-", "value": 4},
        {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
        {"op": "move", "from": "/metadata/labels/b", "path": "/metadata/labels/d"},
    ]
    expected = {"metadata": {"labels": {"a": "1", "c": "1", "d": "2"}}, "spec": {"list": [10, 3, 4]}}
    assert json_patch(doc, ops) == expected
    assert doc == {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}}


def test_json_patch_failed_test_is_422_like_the_server() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}, {"op": "replace", "path": "/a", "value": 3}])
    status = err.value.status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"] == [
        {"reason": "UnexpectedServerResponse", "message": "testing value /a failed: test failed"}
    ]


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "remove", "path": "/nope"}, 'remove operation does not apply: doc is missing path: "/nope"'),
        ({"op": "replace", "path": "/nope", "value": 1}, "replace operation does not apply: doc is missing key: /nope"),
        ({"op": "add", "path": "/x/y", "value": 1}, 'add operation does not apply: doc is missing path: "/x/y"'),
        ({"op": "test", "path": "/nope", "value": 1}, "test operation does not apply: is missing path: /nope"),
    ],
)
def test_json_patch_that_does_not_apply_is_422(op: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, [op])
    assert err.value.code == 422
    assert err.value.details["causes"][0]["message"].startswith(message)


@pytest.mark.parametrize(
    "ops",
    [{"op": "add"}, [{"op": "frobnicate", "path": "/a"}], [{"path": "/a"}], [{"op": "add", "path": "/a"}], ["x"]],
)
def test_malformed_json_patch_is_400(ops: Any) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, ops)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


# ---------------------------------------------------------------------------------------------- strategic merge


def deployment() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "args": ["--a", "--b"],
                            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        },
                        {"name": "sidecar", "image": "proxy:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
                }
            },
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def smp(patch: dict[str, Any]) -> dict[str, Any]:
    target = deployment()
    result = strategic_merge_patch(target, patch)
    assert target == deployment(), "the target is never modified"
    assert isinstance(result, dict)
    return result


def pod_spec_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def test_containers_merge_by_name() -> None:
    result = smp(pod_spec_patch({"containers": [{"name": "app", "image": "app:2"}, {"name": "new", "image": "n"}]}))
    assert [(c["name"], c["image"]) for c in containers(result)] == [
        ("app", "app:2"),
        ("sidecar", "proxy:1"),
        ("new", "n"),
    ]
    # Fields of the merged container that the patch does not name are kept.
    assert containers(result)[0]["env"] == deployment()["spec"]["template"]["spec"]["containers"][0]["env"]


def test_ports_merge_by_container_port_and_env_by_name() -> None:
    result = smp(
        pod_spec_patch(
            {
                "containers": [
                    {
                        "name": "app",
                        "ports": [{"containerPort": 9090, "name": "metrics"}, {"containerPort": 443}],
                        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                    }
                ]
            }
        )
    )
    app = containers(result)[0]
    assert app["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 9090, "name": "metrics"},
        {"containerPort": 443},
    ]
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]


def test_volumes_merge_by_name_and_null_removes_a_field() -> None:
    volumes = [{"name": "cfg", "configMap": {"name": "d"}}, {"name": "x", "emptyDir": {}}]
    result = smp(pod_spec_patch({"volumes": volumes}))
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "d"}},
        {"name": "x", "emptyDir": {}},
    ]
    result = smp({"spec": {"strategy": {"rollingUpdate": None}}})
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_service_ports_merge_by_port() -> None:
    service = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443, "name": "https"}]}}
    result = strategic_merge_patch(service, {"spec": {"ports": [{"port": 80, "targetPort": 9000}]}})
    assert result["spec"]["ports"] == [
        {"port": 80, "targetPort": 9000, "name": "http"},
        {"port": 443, "name": "https"},
    ]


def test_primitive_lists_are_replaced_but_finalizers_merge() -> None:
    patch = pod_spec_patch({"containers": [{"name": "app", "args": ["--c"]}]})
    result = smp({"metadata": {"finalizers": ["b", "c"]}, **patch})
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]
    assert containers(result)[0]["args"] == ["--c"]


def test_directive_patch_delete_in_a_list_and_on_a_map() -> None:
    result = smp(pod_spec_patch({"containers": [{"name": "sidecar", "$patch": "delete"}]}))
    assert [c["name"] for c in containers(result)] == ["app"]
    result = smp({"spec": {"strategy": {"$patch": "delete"}}})
    assert "strategy" not in result["spec"]


def test_directive_patch_replace_on_a_list_and_on_a_map() -> None:
    result = smp(pod_spec_patch({"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}))
    assert containers(result) == [{"name": "only", "image": "o"}]
    result = smp({"metadata": {"labels": {"$patch": "replace", "new": "x"}}})
    assert result["metadata"]["labels"] == {"new": "x"}
    # $patch: merge is the default behaviour, spelled out.
    result = smp({"metadata": {"labels": {"$patch": "merge", "new": "x"}}})
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front", "new": "x"}


def test_directive_set_element_order() -> None:
    patch = pod_spec_patch(
        {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "app:3"}],
        }
    )
    result = smp(patch)
    assert [(c["name"], c["image"]) for c in containers(result)] == [("sidecar", "proxy:1"), ("app", "app:3")]
    # Within a container: ports by containerPort, env by name.
    patch = pod_spec_patch(
        {
            "containers": [
                {
                    "name": "app",
                    "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
                    "$setElementOrder/ports": [{"containerPort": 9090}, {"containerPort": 80}],
                }
            ]
        }
    )
    app = containers(smp(patch))[0]
    assert [e["name"] for e in app["env"]] == ["B", "A"]
    assert [p["containerPort"] for p in app["ports"]] == [9090, 80]
    # A primitive list ordered too.
    result = smp({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})
    assert result["metadata"]["finalizers"] == ["b", "a"]
    # An order for an absent list creates nothing.
    result = smp({"spec": {"$setElementOrder/nothing": [{"name": "x"}]}})
    assert "nothing" not in result["spec"]


def test_directive_retain_keys() -> None:
    result = smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(ApiError) as err:
        smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}})
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        smp({"spec": {"strategy": {"$retainKeys": "type"}}})
    assert err.value.code == 400


def test_directive_delete_from_primitive_list() -> None:
    result = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zzz"]}})
    assert result["metadata"]["finalizers"] == ["b"]
    result = smp({"metadata": {"$deleteFromPrimitiveList/missing": ["a"]}})
    assert "missing" not in result["metadata"]
    with pytest.raises(ApiError) as err:
        smp({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}})
    assert err.value.code == 400


def test_bad_directives_are_400() -> None:
    for patch in (
        {"spec": {"$patch": "explode"}},
        {"spec": {"$unknownDirective": 1}},
        pod_spec_patch({"containers": [{"image": "no-name"}]}),
    ):
        with pytest.raises(ApiError) as err:
            smp(patch)
        assert err.value.code == 400, patch


def test_conditions_merge_by_type() -> None:
    status = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Available", "status": "True"}]}}
    result = strategic_merge_patch(status, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Available", "status": "True"},
    ]


# ---------------------------------------------------------------------------------------------- apply


def test_apply_merges_and_drops_what_the_manager_stopped_applying() -> None:
    live: dict[str, Any] = {
        "metadata": {"name": "x", "labels": {"a": "1", "b": "2", "other": "kept"}},
        "data": {"k": "v"},
    }
    first = {"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}
    second = {"metadata": {"name": "x", "labels": {"a": "10"}}, "data": {"k": "v"}}
    result = apply_patch(live, second, builtin=True, previously_applied=first)
    assert result["metadata"]["labels"] == {"a": "10", "other": "kept"}
    assert live["metadata"]["labels"] == {"a": "1", "b": "2", "other": "kept"}
