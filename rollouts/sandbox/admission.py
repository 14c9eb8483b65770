"""What the API server checks before it stores an object: CRD schemas (prune, default, validate)
and the few built-in rules that clients rely on."""

from __future__ import annotations

import json
from typing import Any

from rollouts import schema
from rollouts.sandbox.errors import ApiError, Cause, invalid
from rollouts.sandbox.resources import ResourceType
from rollouts.sandbox.selectors import matches_labels, selector_from_label_selector


def admit_custom_resource(rtype: ResourceType, obj: dict[str, Any], field_validation: str) -> dict[str, Any]:
    """Prune unknown fields, apply defaults and validate against the CRD's schema (422 with causes)."""
    assert rtype.schema is not None
    name = (obj.get("metadata") or {}).get("name", "")
    if field_validation == "Strict":
        unknown = schema.unknown_fields(rtype.schema, obj)
        if unknown:
            details = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise ApiError(
                400,
                "BadRequest",
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
                f"strict decoding error: {details}",
                {},
            )
    pruned = schema.prune(rtype.schema, obj)
    defaulted = schema.apply_defaults(rtype.schema, pruned)
    errors = schema.validate(rtype.schema, defaulted)
    if errors:
        raise invalid(rtype.kind, rtype.group, name, [Cause(e.field, e.reason, e.message) for e in errors])
    result: dict[str, Any] = defaulted
    return result


def unknown_field_warnings(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """`fieldValidation=Warn`: the unknown fields, reported as warnings instead of errors."""
    if rtype.schema is None:
        return []
    return [f'unknown field "{u}"' for u in schema.unknown_fields(rtype.schema, obj)]


def admit_builtin(rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The subset of built-in validation that matters to controllers and kubectl users."""
    name = (obj.get("metadata") or {}).get("name", "")
    causes: list[Cause] = []
    spec = obj.get("spec")
    if rtype.key in ("apps/deployments", "apps/replicasets") and isinstance(spec, dict):
        causes += _workload_causes(spec)
    elif rtype.key == "/pods" and isinstance(spec, dict):
        if not spec.get("containers"):
            causes.append(Cause("spec.containers", "FieldValueRequired", "Required value"))
    elif rtype.key == "/services" and isinstance(spec, dict) and old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if spec.get("clusterIP") not in (None, "", old_ip):
            causes.append(
                Cause(
                    "spec.clusterIP", "FieldValueInvalid", f'Invalid value: "{spec["clusterIP"]}": field is immutable'
                )
            )
        if spec.get("clusterIP") in (None, "") and old_ip:
            spec["clusterIP"] = old_ip
            spec["clusterIPs"] = [old_ip]
    if causes:
        raise invalid(rtype.kind, rtype.group, name, causes)


def _workload_causes(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(
            Cause(
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
            )
        )
    selector = spec.get("selector")
    if not selector:
        causes.append(Cause("spec.selector", "FieldValueRequired", "Required value"))
        return causes
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    try:
        requirements = selector_from_label_selector(selector)
    except ApiError as exc:
        causes.append(Cause("spec.selector", "FieldValueInvalid", f"Invalid value: {exc.message}"))
        return causes
    if not requirements:
        causes.append(
            Cause("spec.selector", "FieldValueInvalid", "Invalid value: {}: empty selector is invalid for deployment")
        )
    elif not matches_labels(requirements, labels):
        rendered = json.dumps(labels, separators=(",", ":"))
        causes.append(
            Cause(
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {rendered}: `selector` does not match template `labels`",
            )
        )
    return causes
