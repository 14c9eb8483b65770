"""/openapi/v2: the Swagger 2.0 document kubectl's client-side validation reads.

kubectl 1.32 validates a manifest on the client when the server cannot (a `kind: List`, or a kind
whose CRD does not exist yet): it fetches /openapi/v2 as gnostic protobuf
(`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), checks each object whose kind the
document defines and skips the others, so an apply before the CRDs exist reaches the REST mapping and
fails with kubectl's own "no matches for kind". Custom resources are described as kube-apiserver's v2
builder describes them: a node v2 cannot express (nullable, int-or-string, preserve-unknown-fields, an
array without items) loses its type and accepts anything. Built-in kinds carry no schema (see
openapi.py): kubectl then skips their client-side check, and the server still validates them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import yaml

from rollouts.sandbox.discovery import KUBERNETES_VERSION
from rollouts.sandbox.openapi import schema_name
from rollouts.sandbox.resources import Registry, ResourceType

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# The answer's Content-Type: Go's mime parser refuses the "@" of the Accept form, so the server dots it.
PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# Keywords of a v3 schema node that the v2 form keeps; the rest (anyOf, nullable, ...) v2 cannot say.
_KEPT = ("description", "format", "required", "pattern", "minimum", "maximum", "minLength", "maxLength")
_GVK = "x-kubernetes-group-version-kind"


def _untyped(node: Mapping[str, Any]) -> bool:
    """A node v2 cannot type: kube-apiserver drops its type, so kubectl accepts any value there."""
    return bool(
        node.get("nullable")
        or node.get("x-kubernetes-int-or-string")
        or node.get("x-kubernetes-preserve-unknown-fields")
        or (node.get("type") == "array" and not isinstance(node.get("items"), Mapping))
        or "type" not in node
    )


def _v2_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key: node[key] for key in _KEPT if key in node}
    if _untyped(node):
        out.pop("format", None)
        return out
    out["type"] = node["type"]
    properties = node.get("properties")
    if isinstance(properties, Mapping) and properties:
        out["properties"] = {name: _v2_schema(sub) for name, sub in properties.items()}
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping):
        out["additionalProperties"] = _v2_schema(additional)
    items = node.get("items")
    if isinstance(items, Mapping):
        out["items"] = _v2_schema(items)
    return out


def _definition(rtype: ResourceType) -> dict[str, Any] | None:
    if rtype.schema is None:
        return None
    definition = _v2_schema(rtype.schema)
    properties = definition.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    # No type: kubectl accepts any metadata here; the server checks ObjectMeta itself.
    properties["metadata"] = {"description": "Standard object's metadata."}
    definition["type"] = "object"
    definition[_GVK] = [{"group": rtype.group, "kind": rtype.kind, "version": rtype.version}]
    return definition


def document(registry: Registry) -> dict[str, Any]:
    """The v2 document (JSON form): one definition per served custom resource version."""
    definitions: dict[str, Any] = {}
    for rtype in sorted(registry.all(), key=lambda t: schema_name(t)):
        definition = _definition(rtype)
        if definition is not None:
            definitions[schema_name(rtype)] = definition
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": {},
        "definitions": definitions,
    }


# ---------------------------------------------------------------------------------------------- protobuf
#
# The gnostic openapi_v2 messages (google/gnostic openapiv2/OpenAPIv2.proto), written field by field.


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _len(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _len(number, text.encode()) if text else b""


def _any(number: int, value: Any) -> bytes:
    """An `Any` holding the value as YAML (how gnostic keeps defaults, enums and vendor extensions)."""
    return _len(number, _string(2, yaml.safe_dump(value, default_flow_style=False)))


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _len(number, _string(1, name) + _any(2, value))


def _schema(node: Mapping[str, Any]) -> bytes:
    out = bytearray(_string(2, node.get("format", "")) + _string(4, node.get("description", "")))
    for field_number, key in ((7, "maximum"), (9, "minimum")):
        if key in node:
            out += _tag(field_number, 1) + struct.pack("<d", float(node[key]))
    for field_number, key in ((11, "maxLength"), (12, "minLength")):
        if key in node:
            out += _tag(field_number, 0) + _varint(int(node[key]))
    out += _string(13, node.get("pattern", ""))
    for name in node.get("required") or []:
        out += _string(19, name)
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping):
        out += _len(21, _len(1, _schema(additional)))
    if "type" in node:
        out += _len(22, _string(1, node["type"]))
    items = node.get("items")
    if isinstance(items, Mapping):
        out += _len(23, _len(1, _schema(items)))
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        out += _len(25, b"".join(_len(1, _string(1, k) + _len(2, _schema(v))) for k, v in properties.items()))
    for key, value in node.items():
        if key.startswith("x-"):
            out += _named_any(31, key, value)
    return bytes(out)


def encode(doc: Mapping[str, Any]) -> bytes:
    """The document as an `openapi.v2.Document` message (only the fields `document` writes)."""
    info = doc.get("info") or {}
    definitions = doc.get("definitions") or {}
    return (
        _string(1, doc.get("swagger", "2.0"))
        + _len(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))
        + _len(8, b"")
        + _len(9, b"".join(_len(1, _string(1, name) + _len(2, _schema(s))) for name, s in definitions.items()))
    )


def render(registry: Registry, accept: str) -> tuple[bytes, str]:
    """(body, content type): protobuf when the client asks for it (kubectl does), JSON otherwise."""
    doc = document(registry)
    if PROTOBUF in accept:
        return encode(doc), PROTOBUF_CONTENT_TYPE
    return json.dumps(doc, separators=(",", ":")).encode(), "application/json"
