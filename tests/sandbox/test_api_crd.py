"""CustomResourceDefinitions: registration, discovery, served versions, schema validation (422 with
causes), pruning, strict field validation, cluster scope, and removal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes
import pytest

from tests.fixtures.kube import api_client, assert_status, http, install_crd, json_object, load_crd
from tests.fixtures.sandbox import SandboxHandle

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


def widget_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    }
    version = {
        "served": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
        "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {**version, "name": "v1", "storage": True},
                {**version, "name": "v1beta1", "storage": False},
                {**version, "name": "v0", "served": False, "storage": False},
            ],
        },
    }


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        resp = client.post(CRDS, json=widget_crd())
        assert resp.status_code == 201, resp.text
        yield client


def test_crd_is_established_and_registers_its_resource(api: httpx.Client) -> None:
    crd = api.get(f"{CRDS}/widgets.example.com").json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    assert crd["status"]["storedVersions"] == ["v1"]
    resources = {r["name"]: r for r in api.get("/apis/example.com/v1").json()["resources"]}
    assert resources["widgets"]["namespaced"] is True
    assert resources["widgets"]["kind"] == "Widget"
    assert resources["widgets"]["shortNames"] == ["wd"]
    assert "widgets/status" in resources
    groups = {g["name"]: g for g in api.get("/apis").json()["groups"]}
    assert {v["version"] for v in groups["example.com"]["versions"]} == {"v1", "v1beta1"}
    assert groups["example.com"]["preferredVersion"]["version"] == "v1"


def test_served_versions_share_storage(api: httpx.Client) -> None:
    assert api.post(WIDGETS, json=widget("shared", size=1)).status_code == 201
    beta = api.get("/apis/example.com/v1beta1/namespaces/default/widgets/shared")
    assert beta.status_code == 200 and beta.json()["apiVersion"] == "example.com/v1beta1"
    assert_status(api.get("/apis/example.com/v0/namespaces/default/widgets/shared"), 404, "NotFound")


def test_custom_resource_errors_name_the_resource(api: httpx.Client) -> None:
    body = assert_status(api.get(f"{WIDGETS}/nope"), 404, "NotFound", 'widgets.example.com "nope" not found')
    assert body["details"] == {"name": "nope", "group": "example.com", "kind": "widgets"}
    api.post(WIDGETS, json=widget("twice", size=1))
    assert_status(
        api.post(WIDGETS, json=widget("twice", size=1)),
        409,
        "AlreadyExists",
        'widgets.example.com "twice" already exists',
    )


def test_schema_violations_are_422_with_a_cause_per_field(api: httpx.Client) -> None:
    body = assert_status(api.post(WIDGETS, json=widget("bad", size="big", color="green")), 422, "Invalid")
    causes = {c["field"]: c for c in body["details"]["causes"]}
    assert set(causes) == {"spec.size", "spec.color"}
    assert causes["spec.size"]["reason"] == "FieldValueTypeInvalid"
    assert causes["spec.size"]["message"] == (
        'Invalid value: "string": spec.size in body must be of type integer: "string"'
    )
    assert causes["spec.color"]["reason"] == "FieldValueNotSupported"
    assert causes["spec.color"]["message"] == 'Unsupported value: "green": supported values: "red", "blue"'
    assert body["message"].startswith('Widget.example.com "bad" is invalid: [')
    assert body["details"]["kind"] == "Widget" and body["details"]["group"] == "example.com"
    body = assert_status(api.post(WIDGETS, json=widget("bad")), 422, "Invalid")
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}
    ]
    assert body["message"] == 'Widget.example.com "bad" is invalid: spec.size: Required value'
    body = assert_status(api.post(WIDGETS, json=widget("bad", size=0)), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.size"
    assert_status(api.get(f"{WIDGETS}/bad"), 404, "NotFound")
    # Updates are validated too.
    created = api.post(WIDGETS, json=widget("upd", size=2)).json()
    created["spec"]["size"] = -3
    assert_status(api.put(f"{WIDGETS}/upd", json=created), 422, "Invalid")
    assert api.get(f"{WIDGETS}/upd").json()["spec"]["size"] == 2


def test_unknown_fields_are_pruned(api: httpx.Client) -> None:
    body = widget("pruned", size=1, extra="x", free={"anything": {"goes": [1]}})
    body["junk"] = True
    body["metadata"]["labels"] = {"kept": "yes"}
    created = api.post(WIDGETS, json=body).json()
    assert "junk" not in created
    assert created["spec"] == {"size": 1, "free": {"anything": {"goes": [1]}}}
    assert created["metadata"]["labels"] == {"kept": "yes"}
    assert api.get(f"{WIDGETS}/pruned").json()["spec"] == created["spec"]
    # fieldValidation=Strict refuses them instead; Warn answers with a warning header.
    body = assert_status(
        api.post(WIDGETS, params={"fieldValidation": "Strict"}, json=widget("strict", size=1, extra="x")),
        400,
        "BadRequest",
    )
    assert 'unknown field "spec.extra"' in body["message"]
    resp = api.post(WIDGETS, params={"fieldValidation": "Warn"}, json=widget("warned", size=1, extra="x"))
    assert resp.status_code == 201 and 'unknown field \\"spec.extra\\"' in resp.headers["Warning"]


def test_wrongly_typed_metadata_is_400(api: httpx.Client) -> None:
    body = widget("meta", size=1)
    body["metadata"]["labels"] = ["x"]
    assert_status(api.post(WIDGETS, json=body), 400, "BadRequest")
    body["metadata"]["labels"] = {"bad key!": "x"}
    body = assert_status(api.post(WIDGETS, json=body), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.labels"


def test_printer_columns_in_tables(api: httpx.Client) -> None:
    api.post(WIDGETS, json=widget("tabled", size=7))
    table = api.get(
        f"{WIDGETS}/tabled", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ).json()
    assert table["kind"] == "Table"
    assert "Size" in [c["name"] for c in table["columnDefinitions"]]


def test_the_python_client_works_with_custom_objects(sandbox: SandboxHandle, api: httpx.Client) -> None:
    with api_client(sandbox.kubeconfig) as client:
        custom = kubernetes.client.CustomObjectsApi(client)
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("py", size=3))
        listed = json_object(
            custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets", label_selector="")
        )
        assert "py" in [i["metadata"]["name"] for i in listed["items"]]
        with pytest.raises(kubernetes.client.ApiException) as err:
            custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("py2", size=-1))
        assert err.value.status == 422
        custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "py")
        with pytest.raises(kubernetes.client.ApiException) as err:
            custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "py")
        assert err.value.status == 404


def test_cluster_scoped_crd(api: httpx.Client) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["scope"] = "Cluster"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    crd["spec"]["versions"] = crd["spec"]["versions"][:1]
    assert api.post(CRDS, json=crd).status_code == 201
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}}
    created = api.post("/apis/example.com/v1/gadgets", json=gadget)
    assert created.status_code == 201 and "namespace" not in created.json()["metadata"]
    assert api.get("/apis/example.com/v1/gadgets/g").status_code == 200
    assert_status(api.get("/apis/example.com/v1/namespaces/default/gadgets/g"), 404, "NotFound")
    resources = {r["name"]: r for r in api.get("/apis/example.com/v1").json()["resources"]}
    assert resources["gadgets"]["namespaced"] is False
    assert resources["gadgets"]["singularName"] == "gadget"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["spec"].pop("group"), "spec.group"),
        (lambda c: c["spec"]["names"].pop("plural"), "spec.names.plural"),
        (lambda c: c["spec"].update(scope="Global"), "spec.scope"),
        (lambda c: c["metadata"].update(name="wrong.example.com"), "metadata.name"),
        (lambda c: c["spec"]["versions"][1].update(storage=True), "spec.versions"),
        (lambda c: c["spec"].update(versions=[]), "spec.versions"),
    ],
)
def test_invalid_crds_are_422(api: httpx.Client, change: Any, field: str) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "things.example.org"
    crd["spec"]["group"] = "example.org"
    crd["spec"]["names"] = {"plural": "things", "kind": "Thing"}
    change(crd)
    body = assert_status(api.post(CRDS, json=crd), 422, "Invalid")
    assert field in [c["field"] for c in body["details"]["causes"]], body
    assert body["details"]["kind"] == "CustomResourceDefinition"


def test_deleting_a_crd_removes_its_resource_and_objects(api: httpx.Client) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "sprockets.example.net"
    crd["spec"]["group"] = "example.net"
    crd["spec"]["names"] = {"plural": "sprockets", "kind": "Sprocket"}
    api.post(CRDS, json=crd)
    path = "/apis/example.net/v1/namespaces/default/sprockets"
    sprocket = {"apiVersion": "example.net/v1", "kind": "Sprocket", "metadata": {"name": "s"}, "spec": {"size": 1}}
    assert api.post(path, json=sprocket).status_code == 201
    assert api.delete(f"{CRDS}/sprockets.example.net").status_code == 200
    assert_status(api.get(path), 404, "NotFound", "the server could not find the requested resource")
    assert "example.net" not in [g["name"] for g in api.get("/apis").json()["groups"]]


def test_the_rollout_crd(api: httpx.Client) -> None:
    install_crd(api, load_crd("rollouts.yaml"))
    path = "/apis/pyrollouts.io/v1alpha1/namespaces/default/rollouts"
    rollout: dict[str, Any] = {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "r"},
        "spec": {
            "replicas": "two",
            "selector": {"matchLabels": {"app": "r"}},
            "template": {"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
        },
    }
    body = assert_status(api.post(path, json=rollout), 422, "Invalid")
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.replicas"]
    rollout["spec"]["replicas"] = 2
    assert api.post(path, json=rollout).status_code == 201
    resources = {r["name"]: r for r in api.get("/apis/pyrollouts.io/v1alpha1").json()["resources"]}
    assert resources["rollouts"]["shortNames"] == ["ro"]
    assert {"rollouts/status", "rollouts/scale"} <= set(resources)
