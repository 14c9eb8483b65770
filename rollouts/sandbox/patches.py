"""The patch formats the API server accepts: JSON merge, JSON patch, strategic merge, server-side apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from rollouts.sandbox.errors import ApiError, bad_request
from rollouts.sandbox.jsoncopy import json_copy

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

# Merge keys of built-in list fields (patchMergeKey in the Kubernetes Go types), by field name.
# `ports` depends on where it stands: containers key by containerPort, Services by port.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
# Lists of scalars whose patch strategy is "merge" (set union).
MERGED_SCALAR_LISTS = frozenset({"finalizers"})


def patch_by_media_type(current: Mapping[str, Any], content_type: str, patch: Any, builtin: bool) -> Any:
    """What a JSON merge, JSON patch or strategic merge PATCH makes of `current` (apply patches go
    through apply_patch); 415 for any other media type."""
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        return merge_patch(current, patch)
    if content_type == JSON_PATCH:
        return json_patch(json_copy(dict(current)), patch)
    if content_type == STRATEGIC_PATCH and builtin:
        if not isinstance(patch, dict):
            raise bad_request("a strategic merge patch must be a JSON object")
        return strategic_merge_patch(current, patch)
    # As kube-apiserver: custom resources take no strategic merge patch (kubectl then says so).
    accepted = [JSON_PATCH, MERGE_PATCH, *([STRATEGIC_PATCH] if builtin else []), APPLY_PATCH]
    raise ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
        {},
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _json_patch_failure(message: str) -> ApiError:
    """What the server answers when a JSON patch does not apply: 422 with the patch library's error as
    the cause (errors.NewGenericServerResponse(422, ...) in apiserver/pkg/endpoints/handlers/patch.go)."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


def _op_failure(op: Mapping[str, Any]) -> str:
    name, path = op.get("op"), op.get("path")
    if name == "test":
        return f"test operation does not apply: is missing path: {path}: missing value"
    if name in ("move", "copy"):
        return f'{name} operation does not apply: doc is missing from path: "{op.get("from")}": missing value'
    if name == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    return f'{name} operation does not apply: doc is missing path: "{path}": missing value'


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; an operation that does not apply (a failed `test` included) is a 422 as on a
    real server, a malformed patch a 400."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise bad_request(f"invalid JSON patch operation: {op!r}")
        if op["op"] not in ("add", "remove", "replace", "move", "copy", "test"):
            raise bad_request(f"Unexpected kind: {op['op']}")
        from_missing = op["op"] in ("move", "copy") and not isinstance(op.get("from"), str)
        if not isinstance(op.get("path"), str) or from_missing:
            raise bad_request(f"invalid JSON patch operation, missing path: {op!r}")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"invalid JSON patch operation, missing value: {op!r}")
    document = target
    for op in operations:
        try:
            document = jsonpatch.apply_patch(document, [op], in_place=False)
        except jsonpatch.JsonPatchTestFailed as exc:
            missing = object()
            try:
                found = jsonpointer.resolve_pointer(document, op["path"], missing)
            except jsonpointer.JsonPointerException:
                found = missing
            if found is missing:
                raise _json_patch_failure(_op_failure(op)) from exc
            raise _json_patch_failure(f"testing value {op['path']} failed: test failed") from exc
        except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException, IndexError, KeyError, TypeError) as exc:
            raise _json_patch_failure(_op_failure(op)) from exc
        except jsonpatch.InvalidJsonPatch as exc:
            raise bad_request(f"invalid JSON patch: {exc}") from exc
    return document


def _merge_key(field: str, items: list[Any], path: tuple[str, ...]) -> str | None:
    if field == "ports":
        # Container ports and Service ports share a field name but not a key.
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample or "containers" in path else "port"
    return MERGE_KEYS.get(field)


_PATCH_DIRECTIVES = ("replace", "delete", "merge")


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Strategic merge patch for built-in kinds: maps merge, keyed lists merge by key, directives honoured
    ($patch replace/delete/merge, $retainKeys, $setElementOrder/<list>, $deleteFromPrimitiveList/<list>)."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    directive = patch.get("$patch")
    if directive is not None and directive not in _PATCH_DIRECTIVES:
        raise bad_request(f"unknown patch type: {directive} in map: {patch}")
    if directive == "replace":
        return {k: json_copy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    retain = _retained_keys(patch)
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            _delete_from_primitive_list(result, key.split("/", 1)[1], value)
        elif key.startswith("$"):
            raise bad_request(f"unknown patch directive: {key}")
        else:
            _patch_field(result, key, value, path)
    _apply_element_orders(result, patch, path)
    if retain is not None:
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _retained_keys(patch: Mapping[str, Any]) -> list[str] | None:
    """The `$retainKeys` list of a map patch (None without one), checked against the patch's own keys."""
    retain = patch.get("$retainKeys")
    if retain is None:
        return None
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise bad_request("invalid patch format of retainKeys")
    for key in patch:
        if not key.startswith("$") and key not in retain:
            raise ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                {"causes": [{"reason": "UnexpectedServerResponse",
                             "message": "patch content doesn't match retainKeys list"}]},
            )
    return retain


def _delete_from_primitive_list(result: dict[str, Any], field: str, values: Any) -> None:
    """`$deleteFromPrimitiveList/<field>`: drop these values from a list of scalars."""
    if not isinstance(values, list):
        raise bad_request("invalid patch format of primitive list")
    if isinstance(result.get(field), list):
        drop = {repr(v) for v in values}
        result[field] = [v for v in result[field] if repr(v) not in drop]


def _patch_field(result: dict[str, Any], key: str, value: Any, path: tuple[str, ...]) -> None:
    """One field of a map patch: null deletes, lists and maps merge strategically, scalars replace."""
    if value is None:
        result.pop(key, None)
    elif isinstance(value, list):
        result[key] = _merge_list(key, result.get(key), value, (*path, key))
    elif isinstance(value, dict):
        merged = strategic_merge_patch(result.get(key), value, (*path, key))
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    else:
        result[key] = value


def _apply_element_orders(result: dict[str, Any], patch: Mapping[str, Any], path: tuple[str, ...]) -> None:
    """`$setElementOrder/<field>`: put the merged list in the order the patch gives."""
    for key in list(patch):
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            if not isinstance(patch[key], list):
                raise bad_request("invalid patch format of setElementOrder list")
            if isinstance(result.get(field), list):
                result[field] = _reorder(field, result[field], patch[key], (*path, field))


def _merge_list(field: str, current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    existing: list[Any] = list(current) if isinstance(current, list) else []
    if field in MERGED_SCALAR_LISTS:
        return existing + [v for v in patch if v not in existing]
    key = _merge_key(field, patch, path)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return _replacing_list(patch)
    if any(i.get("$patch") == "replace" for i in patch):
        return [json_copy(i) for i in patch if "$patch" not in i]
    result = [json_copy(i) for i in existing]
    for item in patch:
        _merge_list_item(result, key, item, path)
    return result


def _replacing_list(patch: list[Any]) -> list[Any]:
    """A list without a merge key replaces the current one (less its `$patch` directive entries)."""
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [json_copy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    return [json_copy(i) for i in patch]


def _merge_list_item(result: list[Any], key: str, item: dict[str, Any], path: tuple[str, ...]) -> None:
    """Merge one patch element into the list element with the same merge key (or delete, or append it)."""
    if key not in item:
        raise bad_request(f"map: {item} does not contain declared merge key: {key}")
    index = next((n for n, e in enumerate(result) if isinstance(e, dict) and e.get(key) == item[key]), None)
    if item.get("$patch") == "delete":
        if index is not None:
            del result[index]
    elif index is None:
        result.append(strategic_merge_patch({}, item, path))
    else:
        result[index] = strategic_merge_patch(result[index], item, path)


def _reorder(field: str, current: Any, order: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(current, list) or not isinstance(order, list):
        return current
    key = _merge_key(field, [o for o in order if isinstance(o, dict)], path)
    if key is None:
        ranked = {repr(v): n for n, v in enumerate(order)}
        return sorted(current, key=lambda v: ranked.get(repr(v), len(ranked)))
    ranked = {repr(o.get(key)): n for n, o in enumerate(order) if isinstance(o, dict)}
    return sorted(current, key=lambda v: ranked.get(repr(v.get(key)) if isinstance(v, dict) else "", len(ranked)))


def apply_patch(
    current: Mapping[str, Any], applied: Mapping[str, Any], builtin: bool, previously_applied: Mapping[str, Any] | None
) -> Any:
    """Server-side apply, simplified: merge the applied configuration in and drop what this manager
    applied last time but no longer applies (field ownership between managers is not tracked)."""
    base: Any = json_copy(dict(current))
    if previously_applied:
        base = _remove_unapplied(base, previously_applied, applied)
    if builtin:
        return strategic_merge_patch(base, dict(applied))
    return merge_patch(base, _without_nulls(applied))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _remove_unapplied(obj: Any, before: Mapping[str, Any], now: Mapping[str, Any]) -> Any:
    if not isinstance(obj, dict):
        return obj
    for key, old in before.items():
        if key in ("apiVersion", "kind") or key not in obj:
            continue
        if key not in now:
            obj.pop(key, None)
        elif isinstance(old, dict) and isinstance(now[key], dict):
            obj[key] = _remove_unapplied(obj[key], old, now[key])
    return obj
