"""/openapi/v3 documents, one per group-version.

kubectl reads them to decide whether the server validates fields itself (the `fieldValidation`
parameter on each kind's PATCH operation) and, for custom resources, to learn their schemas. Built-in
kinds carry no schema here: kubectl then computes strategic merge patches from its compiled-in types.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rollouts.sandbox.discovery import KUBERNETES_VERSION
from rollouts.sandbox.resources import Registry, ResourceType

_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _query(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "boolean"} if name == "force" else {"type": "string", "uniqueItems": True}
    return {"name": name, "in": "query", "schema": schema}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}


def schema_name(rtype: ResourceType) -> str:
    group = ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    return f"{group}.{rtype.version}.{rtype.kind}"


def _ref(rtype: ResourceType) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema_name(rtype)}"}


def _gvk(rtype: ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}


def _body(rtype: ResourceType, content_types: tuple[str, ...]) -> dict[str, Any]:
    return {"content": {ct: {"schema": _ref(rtype)} for ct in content_types}, "required": True}


def _ok(rtype: ResourceType) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(rtype)}}}}


def _paths_for(rtype: ResourceType) -> dict[str, Any]:
    prefix = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    ns_params = [_path_param("namespace")] if rtype.namespaced else []
    patch_types = (*_PATCH_TYPES, "application/strategic-merge-patch+json") if rtype.builtin else _PATCH_TYPES
    op_base = {"x-kubernetes-group-version-kind": _gvk(rtype), "tags": [rtype.group or "core"]}
    item = {
        "parameters": [_path_param("name"), *ns_params, _query("pretty")],
        "get": {**op_base, "x-kubernetes-action": "get", "responses": _ok(rtype)},
        "put": {
            **op_base,
            "x-kubernetes-action": "put",
            "requestBody": _body(rtype, ("application/json",)),
            "parameters": [_query(p) for p in _WRITE_PARAMS],
            "responses": _ok(rtype),
        },
        "patch": {
            **op_base,
            "x-kubernetes-action": "patch",
            "requestBody": _body(rtype, patch_types),
            "parameters": [_query(p) for p in (*_WRITE_PARAMS, "force")],
            "responses": _ok(rtype),
        },
        "delete": {**op_base, "x-kubernetes-action": "delete", "responses": _ok(rtype)},
    }
    collection = {
        "parameters": [*ns_params, _query("pretty")],
        "get": {**op_base, "x-kubernetes-action": "list", "responses": _ok(rtype)},
        "post": {
            **op_base,
            "x-kubernetes-action": "post",
            "requestBody": _body(rtype, ("application/json",)),
            "parameters": [_query(p) for p in _WRITE_PARAMS],
            "responses": _ok(rtype),
        },
    }
    return {f"{prefix}{scope}/{rtype.plural}/{{name}}": item, f"{prefix}{scope}/{rtype.plural}": collection}


_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _component(rtype: ResourceType) -> dict[str, Any] | None:
    if rtype.schema is None:
        return None
    component = json.loads(json.dumps(rtype.schema))
    props = component.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"allOf": [{"$ref": f"#/components/schemas/{_OBJECT_META}"}]}
    component["type"] = "object"
    component["x-kubernetes-group-version-kind"] = [_gvk(rtype)]
    result: dict[str, Any] = component
    return result


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {_OBJECT_META: {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    for rtype in sorted(types, key=lambda t: t.plural):
        paths.update(_paths_for(rtype))
        component = _component(rtype)
        if component is not None:
            schemas[schema_name(rtype)] = component
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def document_hash(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()


def root_document(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_document(registry, group, version)
            if doc is None:
                continue
            rel = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={document_hash(doc)}"}
    return {"paths": paths}
