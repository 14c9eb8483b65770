"""Check, prune and default objects against a CRD's OpenAPI v3 schema, the way kube-apiserver does.

This is the one place that understands our CRD schemas. The sandbox API server uses it to answer
422 with the same ``Status.details.causes`` a real server sends, to prune unknown fields, to apply
defaults and to reject unknown fields under ``fieldValidation=Strict``; ``kubectl rollouts lint``
uses it to check manifests offline.

The checking itself is done by ``jsonschema`` (Draft 4, which OpenAPI v3 schemas are based on);
this module converts the Kubernetes dialect (``nullable``, ``x-kubernetes-int-or-string``, …) to
plain JSON Schema and rewrites the errors in kube-apiserver's words.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import functools
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

__all__ = [
    "CRDS_DIR",
    "FieldError",
    "apply_defaults",
    "crd_schema",
    "find_crd",
    "invalid_status",
    "load_crds",
    "prune",
    "unknown_fields",
    "validate",
    "validate_object",
]

Schema = Mapping[str, Any]

#: The project's CRD manifests: package data (``rollouts/crds`` links to ``crds/`` at the repository root,
#: so a source tree and an installed wheel find them at the same place).
CRDS_DIR = Path(__file__).resolve().parent / "crds"

_EMBEDDED_KEYS = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class FieldError:
    """One ``Status.details.causes`` entry: ``field`` is ``spec.steps[0].setWeight``, ``reason``
    a ``FieldValue*`` cause type, ``message`` the error body (``Invalid value: …``)."""

    field: str
    reason: str
    message: str

    def as_cause(self) -> dict[str, str]:
        """The JSON form a kube-apiserver puts in ``details.causes``."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# --------------------------------------------------------------------------- Go-style rendering


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the strings we meet (JSON escaping is the same for printable text)."""
    return json.dumps(text, ensure_ascii=False)


def _go_number(value: float | int) -> str:
    """Go's ``%v`` for a float64 schema limit: ``100`` not ``100.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _go_value(value: Any) -> str:
    """The bad value as ``field.Error.ErrorBody`` prints it."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_quote(value)
    # Go prints maps and slices with %#v; JSON is the readable equivalent.
    return json.dumps(value, sort_keys=True, default=str)


def _json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _join(path: str, key: str | int) -> str:
    """Extend a field path the way kube-openapi does: ``a.b``, ``a[0]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {_go_value(value)}: {detail}")


def _type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueTypeInvalid", f"Invalid value: {_go_value(value)}: {detail}")


def _required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def _not_supported(path: str, value: Any, allowed: Iterable[Any]) -> FieldError:
    shown = [v if isinstance(v, str) else json.dumps(v) for v in allowed]
    detail = ", ".join(_go_quote(v) for v in shown)
    message = f"Unsupported value: {_go_value(value)}"
    return FieldError(path, "FieldValueNotSupported", message + (f": supported values: {detail}" if detail else ""))


# --------------------------------------------------------------------------- OpenAPI -> JSON Schema

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONES = ("not", "items", "additionalProperties", "additionalItems")
# Keywords Draft 4 does not know or that must not take part in checking.
_DROPPED = ("nullable", "default", "example", "externalDocs", "description")


def _to_json_schema(node: Any) -> Any:
    """Translate one OpenAPI v3 (Kubernetes flavour) schema node to Draft 4 JSON Schema."""
    if not isinstance(node, Mapping):
        return node  # booleans of additionalProperties and the like
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS or (key == "items" and isinstance(value, list)):
            out[key] = [_to_json_schema(sub) for sub in value]
        elif key in _SCHEMA_ONES:
            out[key] = _to_json_schema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _is_integer(_checker: Any, value: Any) -> bool:
    # kube-openapi accepts a float with an integral value where an integer is expected.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _valid_clock(match: re.Match[str]) -> bool:
    year, month, day = (int(match.group(i)) for i in (1, 2, 3))
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    if match.re is _DATE:
        return True
    second = int(match.group(6) or 0)
    return int(match.group(4)) < 24 and int(match.group(5)) < 60 and second < 61


def _check_date_time(value: object) -> bool:
    match = _DATE_TIME.match(value) if isinstance(value, str) else None
    return not isinstance(value, str) or (match is not None and _valid_clock(match))


def _check_date(value: object) -> bool:
    match = _DATE.match(value) if isinstance(value, str) else None
    return not isinstance(value, str) or (match is not None and _valid_clock(match))


def _parses(parse: Any, value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parse(value)
    except (ValueError, binascii.Error):
        return False
    return True


# The ranges of the integer formats: Go decodes the field into an int32 / int64, so a value outside
# cannot be held by any client (the controller would scale a ReplicaSet to 1099511627776 pods).
_INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _in_range(fmt: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    low, high = _INTEGER_RANGES[fmt]
    return low <= value <= high


def _format_checker() -> FormatChecker:
    """The string formats kube-apiserver checks that our schemas may use."""
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_check_date_time)
    checker.checks("date")(_check_date)
    checker.checks("uuid")(lambda v: _parses(uuid.UUID, v))
    checker.checks("ipv4")(lambda v: _parses(ipaddress.IPv4Address, v))
    checker.checks("ipv6")(lambda v: _parses(ipaddress.IPv6Address, v))
    checker.checks("cidr")(lambda v: _parses(lambda s: ipaddress.ip_network(s, strict=False), v))
    checker.checks("byte")(lambda v: _parses(lambda s: base64.b64decode(s, validate=True), v))
    for fmt in _INTEGER_RANGES:
        checker.checks(fmt)(functools.partial(_in_range, fmt))
    return checker


_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft4Validator,
    type_checker=Draft4Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
_FORMATS = _format_checker()
# Compiled validators by schema identity; the schema is kept alive so its id cannot be reused.
_CACHE: dict[int, tuple[Schema, Any]] = {}
_CACHE_SIZE = 64


def _validator_for(schema: Schema) -> Any:
    cached = _CACHE.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    validator = _Validator(_to_json_schema(schema), format_checker=_FORMATS)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(schema)] = (schema, validator)
    return validator


# --------------------------------------------------------------------------- validation


def _error_path(base: str, error: ValidationError) -> str:
    path = base
    for key in error.absolute_path:
        path = _join(path, key)
    return path


def _type_names(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return ",".join(str(name) for name in names if name != "null")


def _limit_error(path: str, error: ValidationError) -> FieldError:
    """minimum / maximum, inclusive or exclusive (Draft 4 booleans), worded like kube-openapi."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    lower = error.validator == "minimum"
    exclusive = bool(schema.get("exclusiveMinimum" if lower else "exclusiveMaximum"))
    relation = ("greater" if lower else "less") + (" than" if exclusive else " than or equal to")
    limit: Any = error.validator_value
    detail = f"{path} in body should be {relation} {_go_number(limit)}"
    return _invalid(path, error.instance, detail)


def _format_error(path: str, instance: Any, fmt: str) -> FieldError:
    """A string format is a type to kube-openapi; an integer outside its format's range is worded as
    the bound it crosses (as a `maximum` / `minimum` error)."""
    if fmt in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[fmt]
        bound = f"less than or equal to {high}" if instance > high else f"greater than or equal to {low}"
        return _invalid(path, instance, f"{path} in body should be {bound}")
    return _type_invalid(path, instance, f"{path} in body must be of type {fmt}: {_go_quote(str(instance))}")


def _convert(path: str, error: ValidationError) -> Iterator[FieldError]:
    """Rewrite one jsonschema error as the FieldError(s) kube-apiserver reports for it."""
    # jsonschema types these as "Any | Unset"; they are always set on a reported error.
    keyword: Any = error.validator
    instance: Any = error.instance
    expected: Any = error.validator_value
    if keyword == "type":
        kind = _json_type(instance)
        yield _type_invalid(path, kind, f"{path} in body must be of type {_type_names(expected)}: {_go_quote(kind)}")
    elif keyword == "required":
        for name in expected:
            if isinstance(instance, Mapping) and name not in instance:
                yield _required(_join(path, name))
    elif keyword == "enum":
        yield _not_supported(path, instance, (v for v in expected if v is not None))
    elif keyword in ("minimum", "maximum"):
        yield _limit_error(path, error)
    elif keyword == "format":
        yield _format_error(path, instance, expected)
    elif keyword == "minLength":
        yield _invalid(path, instance, f"{path} in body should be at least {expected} chars long")
    elif keyword == "maxLength":
        yield FieldError(path, "FieldValueTooLong", f"Too long: may not be longer than {expected}")
    elif keyword == "pattern":
        yield _invalid(path, instance, f"{path} in body should match '{expected}'")
    elif keyword == "minItems":
        yield _invalid(path, len(instance), f"{path} in body should have at least {expected} items")
    elif keyword in ("maxItems", "maxProperties"):
        yield FieldError(path, "FieldValueTooMany", f"Too many: {len(instance)}: must have at most {expected} items")
    elif keyword == "minProperties":
        yield _invalid(path, expected, f"{path} in body should have at least {expected} properties")
    elif keyword == "uniqueItems":
        yield _invalid(path, "", f"{path} in body shouldn't contain duplicates")
    elif keyword == "multipleOf":
        yield _invalid(path, instance, f"{path} in body should be a multiple of {_go_number(expected)}")
    elif keyword in ("anyOf", "oneOf"):
        which = "at least one schema (anyOf)" if keyword == "anyOf" else "one and only one schema (oneOf)"
        yield _invalid(path, "", f"{path} in body must validate {which}")
    else:
        yield _invalid(path, "", f"{path} in body {error.message}")


def validate(schema: Schema, obj: Any, path: str = "") -> list[FieldError]:
    """Check ``obj`` against an OpenAPI v3 ``schema``; ``path`` prefixes every field (e.g. ``spec``).

    Returns the causes a kube-apiserver would report, sorted by field, without duplicates.
    """
    seen: dict[tuple[str, str, str], FieldError] = {}
    for error in _validator_for(schema).iter_errors(obj):
        for cause in _convert(_error_path(path, error), error):
            seen.setdefault((cause.field, cause.reason, cause.message), cause)
    return sorted(seen.values(), key=lambda e: (e.field, e.reason, e.message))


# --------------------------------------------------------------------------- pruning


def _prune_value(value: Any, schema: Schema | None, path: str, dropped: list[str], embedded: bool) -> Any:
    if isinstance(value, Mapping):
        return _prune_object(value, schema, path, dropped, embedded)
    if isinstance(value, list):
        items = schema.get("items") if schema is not None else None
        item_schema = items if isinstance(items, Mapping) else None
        embedded_items = bool(item_schema and item_schema.get("x-kubernetes-embedded-resource"))
        return [
            _prune_value(item, item_schema, _join(path, i), dropped, embedded_items) for i, item in enumerate(value)
        ]
    return value


def _child_schema(schema: Schema, key: str) -> tuple[bool, Schema | None]:
    """(known, schema) of one object key: known keys are pruned below, unknown ones dropped or kept."""
    properties = schema.get("properties") or {}
    if key in properties:
        return True, properties[key]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return True, additional
    return False, None


def _prune_object(
    value: Mapping[str, Any], schema: Schema | None, path: str, dropped: list[str], embedded: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    preserve = schema is not None and (
        schema.get("x-kubernetes-preserve-unknown-fields") is True or schema.get("additionalProperties") is True
    )
    for key, child in value.items():
        child_path = _join(path, key)
        # An embedded resource keeps its type and metadata whatever the schema says (as the apiserver does).
        if embedded and key in _EMBEDDED_KEYS and isinstance(child, Mapping if key == "metadata" else str):
            out[key] = copy.deepcopy(child)
            continue
        known, child_schema = _child_schema(schema, key) if schema is not None else (False, None)
        if known:
            nested = bool(child_schema and child_schema.get("x-kubernetes-embedded-resource"))
            out[key] = _prune_value(child, child_schema, child_path, dropped, nested)
        elif preserve:
            out[key] = copy.deepcopy(child)
        else:
            dropped.append(child_path)
    return out


def _prune_root(schema: Schema, obj: Any) -> tuple[Any, list[str]]:
    dropped: list[str] = []
    # The root is always treated as an embedded resource: apiVersion, kind and metadata survive.
    return _prune_value(obj, schema, "", dropped, True), dropped


def prune(schema: Schema, obj: Any) -> Any:
    """A copy of ``obj`` without the fields the schema does not declare (structural pruning).

    Honours ``x-kubernetes-preserve-unknown-fields``, ``additionalProperties`` and
    ``x-kubernetes-embedded-resource``; ``apiVersion``, ``kind`` and ``metadata`` at the root are kept.
    """
    return _prune_root(schema, obj)[0]


def unknown_fields(schema: Schema, obj: Any) -> list[str]:
    """Paths that :func:`prune` would drop, in document order (e.g. ``spec.foo``, ``spec.steps[0].bar``).

    Under ``fieldValidation=Strict`` a kube-apiserver rejects each with ``unknown field "<path>"``.
    """
    return _prune_root(schema, obj)[1]


# --------------------------------------------------------------------------- defaulting


def _drops_null(schema: Schema) -> bool:
    """The apiserver removes a null that is neither nullable nor defaulted before defaulting."""
    return "default" not in schema and not schema.get("nullable")


def _default_object(value: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    out = dict(value)
    for key, prop in properties.items():
        missing = key not in out or (out[key] is None and not prop.get("nullable"))
        if "default" in prop and missing:
            out[key] = copy.deepcopy(prop["default"])
    for key in list(out):
        known, child_schema = _child_schema(schema, key)
        if not known or child_schema is None:
            continue
        if out[key] is None and _drops_null(child_schema):
            del out[key]
        else:
            out[key] = _default_value(out[key], child_schema)
    return out


def _default_value(value: Any, schema: Schema) -> Any:
    if isinstance(value, Mapping):
        return _default_object(value, schema)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [_default_value(item, items) for item in value]
    return copy.deepcopy(value)


def apply_defaults(schema: Schema, obj: Any) -> Any:
    """A copy of ``obj`` with the schema's ``default`` values filled in (structural defaulting).

    A default applies where the field is absent, or null and not ``nullable``; defaulted values are
    themselves defaulted further down. Nulls that are neither nullable nor defaulted are removed.
    """
    return _default_value(obj, schema)


# --------------------------------------------------------------------------- CRDs


def load_crds(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in ``directory``'s ``*.yaml`` files (default: the packaged ``crds/``)."""
    folder = CRDS_DIR if directory is None else directory
    crds: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.safe_load_all(stream):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    crds.append(doc)
    return crds


def crd_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a served ``version`` of ``crd``; ``KeyError`` if it has none."""
    for entry in crd.get("spec", {}).get("versions", []):
        if entry.get("name") == version and entry.get("served", False):
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    name = crd.get("metadata", {}).get("name", "?")
    raise KeyError(f"CRD {name} serves no version {version!r}")


def find_crd(crds: Iterable[Mapping[str, Any]], group: str, kind: str) -> Mapping[str, Any] | None:
    """The CRD of ``group`` whose kind is ``kind``, if any."""
    for crd in crds:
        spec = crd.get("spec", {})
        if spec.get("group") == group and spec.get("names", {}).get("kind") == kind:
            return crd
    return None


def _served_versions(crd: Mapping[str, Any]) -> list[str]:
    return [v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("served", False)]


def _resolve(crds: list[Mapping[str, Any]], obj: Mapping[str, Any]) -> Schema | FieldError:
    """Find the schema for ``obj``'s apiVersion and kind, or say why there is none."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return _required("apiVersion")
    if not isinstance(kind, str) or not kind:
        return _required("kind")
    group, _, version = api_version.rpartition("/")
    in_group = [c for c in crds if c.get("spec", {}).get("group") == group]
    if not in_group:
        known = sorted({f"{c['spec']['group']}/{v}" for c in crds for v in _served_versions(c)})
        return _not_supported("apiVersion", api_version, known)
    crd = find_crd(in_group, group, kind)
    if crd is None:
        return _not_supported("kind", kind, sorted(c["spec"]["names"]["kind"] for c in in_group))
    if version not in _served_versions(crd):
        return _not_supported("apiVersion", api_version, [f"{group}/{v}" for v in _served_versions(crd)])
    return crd_schema(crd, version)


def validate_object(crds: Iterable[Mapping[str, Any]], obj: Any) -> list[FieldError]:
    """Check a whole manifest: a CRD must serve its apiVersion/kind, it needs a name, the schema must hold."""
    if not isinstance(obj, Mapping):
        return [_type_invalid("", _json_type(obj), f'body must be of type object: "{_json_type(obj)}"')]
    resolved = _resolve(list(crds), obj)
    if isinstance(resolved, FieldError):
        return [resolved]
    errors: list[FieldError] = []
    metadata = obj.get("metadata")
    meta = metadata if isinstance(metadata, Mapping) else {}
    if not meta.get("name") and not meta.get("generateName"):
        errors.append(_required("metadata.name", "name or generateName is required"))
    return errors + validate(resolved, obj)


def invalid_status(kind: str, group: str, name: str, errors: list[FieldError]) -> dict[str, Any]:
    """The 422 ``Status`` body a kube-apiserver returns for ``errors`` (``StatusReasonInvalid``)."""
    qualified = f"{kind}.{group}" if group else kind
    unique = list(dict.fromkeys(str(e) for e in errors))
    summary = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
    message = f"{qualified} {_go_quote(name)} is invalid" + (f": {summary}" if unique else "")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {"name": name, "group": group, "kind": kind, "causes": [e.as_cause() for e in errors]},
        "code": 422,
    }
