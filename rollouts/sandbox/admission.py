"""What the API server checks before it stores an object: CRD schemas (prune, default, validate)
and the few built-in rules that clients rely on."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollouts import schema
from rollouts.sandbox.errors import ApiError, Cause, bad_request, invalid
from rollouts.sandbox.jsoncopy import json_copy
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


# ---------------------------------------------------------------------------------------------- metadata

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def qualified_name_errors(value: str) -> list[str]:
    """k8s.io/apimachinery/pkg/util/validation.IsQualifiedName."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            return [f"prefix part {_DNS_SUBDOMAIN_MSG}"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    errors = []
    if len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.match(name):
        errors.append(_QUALIFIED_NAME_MSG)
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def metadata_causes(meta: Mapping[str, Any], path: str = "metadata") -> list[Cause]:
    """ObjectMeta validation common to every kind: label/annotation keys, label values, finalizer
    names, owner references (run after `check_shape`, so the types are right)."""
    causes: list[Cause] = []

    def bad(field: str, value: str, message: str) -> None:
        causes.append(Cause(field, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {message}"))

    for key, value in (meta.get("labels") or {}).items():
        for message in qualified_name_errors(key):
            bad(f"{path}.labels", key, message)
        for message in label_value_errors(value or ""):
            bad(f"{path}.labels", value, message)
    for key in meta.get("annotations") or {}:
        for message in qualified_name_errors(key.lower()):
            bad(f"{path}.annotations", key, message)
    for index, finalizer in enumerate(meta.get("finalizers") or []):
        for message in qualified_name_errors(finalizer):
            bad(f"{path}.finalizers[{index}]", finalizer, message)
    controllers = 0
    for ref in meta.get("ownerReferences") or []:
        api_version = ref.get("apiVersion") or ""
        if not api_version.rpartition("/")[2]:
            bad(f"{path}.ownerReferences.apiVersion", api_version, "version must not be empty")
        for field in ("kind", "name", "uid"):
            if not ref.get(field):
                bad(f"{path}.ownerReferences.{field}", ref.get(field) or "", "must not be empty")
        controllers += bool(ref.get("controller"))
    if controllers > 1:
        causes.append(
            Cause(
                f"{path}.ownerReferences",
                "FieldValueInvalid",
                "Invalid value: []v1.OwnerReference: Only one reference can have Controller set to true",
            )
        )
    return causes


def check_name(rtype: ResourceType, name: str) -> None:
    """An object's name is a DNS subdomain (the rule of most kinds); RBAC objects take any name that
    is a valid path segment (`system:discovery`), as ValidatePathSegmentName allows."""
    if rtype.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            raise invalid(
                rtype.kind,
                rtype.group,
                name,
                [Cause("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": may not contain \'/\'')],
            )
        return
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid(
            rtype.kind,
            rtype.group,
            name,
            [Cause("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {_DNS_SUBDOMAIN_MSG}')],
        )


def check_metadata(rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    meta = obj.get("metadata") or {}
    causes = metadata_causes(meta)
    if causes:
        raise invalid(rtype.kind, rtype.group, meta.get("name", ""), causes)


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
    elif rtype.key == "batch/jobs" and isinstance(spec, dict):
        causes += _template_causes(spec.get("template"), "spec.template")
    elif rtype.key == "/pods" and isinstance(spec, dict):
        causes += _pod_spec_causes(spec, "spec")
    elif rtype.key == "apiextensions.k8s.io/customresourcedefinitions":
        causes += _crd_causes(obj, old)
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


def _pod_spec_causes(spec: Mapping[str, Any], path: str) -> list[Cause]:
    containers = spec.get("containers")
    if not containers:
        return [Cause(f"{path}.containers", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        cname = container.get("name")
        if not cname:
            causes.append(Cause(f"{where}.name", "FieldValueRequired", "Required value"))
        elif cname in seen:
            causes.append(Cause(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{cname}"'))
        seen.add(cname or "")
        if not container.get("image"):
            causes.append(Cause(f"{where}.image", "FieldValueRequired", "Required value"))
    return causes


def _template_causes(template: Any, path: str) -> list[Cause]:
    if not isinstance(template, dict):
        return [Cause(f"{path}.spec.containers", "FieldValueRequired", "Required value")]
    causes = metadata_causes(template.get("metadata") or {}, f"{path}.metadata")
    return causes + _pod_spec_causes(template.get("spec") or {}, f"{path}.spec")


def _crd_causes(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[Cause]:
    """apiextensions validation of the fields the sandbox needs to serve a CRD."""
    causes: list[Cause] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    if not group:
        causes.append(Cause("spec.group", "FieldValueRequired", "Required value"))
    elif "." not in group:
        causes.append(
            Cause(
                "spec.group", "FieldValueInvalid", f'Invalid value: "{group}": should be a domain with at least one dot'
            )
        )
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(Cause(f"spec.names.{field}", "FieldValueRequired", "Required value"))
    name = (obj.get("metadata") or {}).get("name", "")
    if plural and group and name != f"{plural}.{group}":
        causes.append(
            Cause(
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        if not scope:
            causes.append(Cause("spec.scope", "FieldValueRequired", "Required value"))
        else:
            causes.append(
                Cause(
                    "spec.scope",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
                )
            )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(Cause("spec.versions", "FieldValueRequired", "Required value: must have exactly one version"))
    else:
        for index, version in enumerate(versions):
            if not version.get("name"):
                causes.append(Cause(f"spec.versions[{index}].name", "FieldValueRequired", "Required value"))
        if sum(1 for v in versions if v.get("storage")) != 1:
            causes.append(
                Cause(
                    "spec.versions",
                    "FieldValueInvalid",
                    "Invalid value: []apiextensions.CustomResourceDefinitionVersion: "
                    "must have exactly one version marked as storage version",
                )
            )
    if old is not None:
        old_spec = old.get("spec") or {}
        if group != old_spec.get("group"):
            causes.append(Cause("spec.group", "FieldValueInvalid", f'Invalid value: "{group}": field is immutable'))
    return causes


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
    causes += _template_causes(spec.get("template"), "spec.template")
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


# ---------------------------------------------------------------------------------------------- shapes
#
# A real server decodes built-in kinds into Go structs, so a value of the wrong JSON type never
# reaches validation: it is a 400 `X in version "v1" cannot be handled as a X: json: cannot
# unmarshal string into Go struct field ObjectMeta.metadata.labels of type map[string]string`.
# ObjectMeta is decoded the same way for custom resources. The shapes below cover the fields our
# clients and simulated controllers read; fields not listed are accepted as they come.


@dataclass(frozen=True)
class _Scalar:
    go: str  # Go type name for the message
    json_types: tuple[type, ...]


@dataclass(frozen=True)
class _Map:
    value: _Shape


@dataclass(frozen=True)
class _List:
    item: _Shape


@dataclass(frozen=True)
class _Struct:
    name: str
    fields: Mapping[str, _Shape]


_Shape = _Scalar | _Map | _List | _Struct

_STR = _Scalar("string", (str,))
_BOOL = _Scalar("bool", (bool,))
_INT32 = _Scalar("int32", (int,))
_INT64 = _Scalar("int64", (int,))
_INT_OR_STR = _Scalar("intstr.IntOrString", (int, str))
_STR_MAP = _Map(_STR)
_STR_LIST = _List(_STR)
_ANY_OBJECT = _Struct("", {})

_OWNER_REFERENCE = _Struct(
    "OwnerReference",
    {"apiVersion": _STR, "kind": _STR, "name": _STR, "uid": _STR, "controller": _BOOL, "blockOwnerDeletion": _BOOL},
)
_OBJECT_META = _Struct(
    "ObjectMeta",
    {
        "name": _STR,
        "generateName": _STR,
        "namespace": _STR,
        "uid": _STR,
        "resourceVersion": _STR,
        "generation": _INT64,
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
        "finalizers": _STR_LIST,
        "ownerReferences": _List(_OWNER_REFERENCE),
        "managedFields": _List(_ANY_OBJECT),
    },
)
_SELECTOR = _Struct(
    "LabelSelector",
    {
        "matchLabels": _STR_MAP,
        "matchExpressions": _List(
            _Struct("LabelSelectorRequirement", {"key": _STR, "operator": _STR, "values": _STR_LIST})
        ),
    },
)
_CONTAINER = _Struct(
    "Container",
    {
        "name": _STR,
        "image": _STR,
        "command": _STR_LIST,
        "args": _STR_LIST,
        "ports": _List(
            _Struct("ContainerPort", {"name": _STR, "containerPort": _INT32, "protocol": _STR, "hostPort": _INT32})
        ),
        "env": _List(_Struct("EnvVar", {"name": _STR, "value": _STR, "valueFrom": _ANY_OBJECT})),
        "volumeMounts": _List(_Struct("VolumeMount", {"name": _STR, "mountPath": _STR, "readOnly": _BOOL})),
        "resources": _ANY_OBJECT,
    },
)
_POD_SPEC = _Struct(
    "PodSpec",
    {
        "containers": _List(_CONTAINER),
        "initContainers": _List(_CONTAINER),
        "volumes": _List(_Struct("Volume", {"name": _STR})),
        "nodeName": _STR,
        "restartPolicy": _STR,
        "serviceAccountName": _STR,
        "terminationGracePeriodSeconds": _INT64,
    },
)
_TEMPLATE = _Struct("PodTemplateSpec", {"metadata": _OBJECT_META, "spec": _POD_SPEC})
_WORKLOAD: dict[str, _Shape] = {
    "replicas": _INT32,
    "selector": _SELECTOR,
    "template": _TEMPLATE,
    "minReadySeconds": _INT32,
}
_SPECS: dict[str, tuple[str, _Struct]] = {
    "/pods": ("spec", _POD_SPEC),
    "apps/deployments": (
        "spec",
        _Struct(
            "DeploymentSpec",
            {
                **_WORKLOAD,
                "revisionHistoryLimit": _INT32,
                "progressDeadlineSeconds": _INT32,
                "paused": _BOOL,
                "strategy": _Struct("DeploymentStrategy", {"type": _STR, "rollingUpdate": _ANY_OBJECT}),
            },
        ),
    ),
    "apps/replicasets": ("spec", _Struct("ReplicaSetSpec", _WORKLOAD)),
    "batch/jobs": (
        "spec",
        _Struct(
            "JobSpec",
            {
                "template": _TEMPLATE,
                "selector": _SELECTOR,
                "parallelism": _INT32,
                "completions": _INT32,
                "backoffLimit": _INT32,
                "activeDeadlineSeconds": _INT64,
            },
        ),
    ),
    "/services": (
        "spec",
        _Struct(
            "ServiceSpec",
            {
                "selector": _STR_MAP,
                "type": _STR,
                "clusterIP": _STR,
                "ports": _List(
                    _Struct(
                        "ServicePort",
                        {"name": _STR, "port": _INT32, "targetPort": _INT_OR_STR, "protocol": _STR, "nodePort": _INT32},
                    )
                ),
            },
        ),
    ),
    "/namespaces": ("spec", _Struct("NamespaceSpec", {"finalizers": _STR_LIST})),
    "coordination.k8s.io/leases": (
        "spec",
        _Struct(
            "LeaseSpec",
            {"holderIdentity": _STR, "leaseDurationSeconds": _INT32, "leaseTransitions": _INT32},
        ),
    ),
    "apiextensions.k8s.io/customresourcedefinitions": (
        "spec",
        _Struct(
            "CustomResourceDefinitionSpec",
            {
                "group": _STR,
                "scope": _STR,
                "names": _Struct(
                    "CustomResourceDefinitionNames",
                    {
                        "plural": _STR,
                        "singular": _STR,
                        "kind": _STR,
                        "listKind": _STR,
                        "shortNames": _STR_LIST,
                        "categories": _STR_LIST,
                    },
                ),
                "versions": _List(
                    _Struct(
                        "CustomResourceDefinitionVersion",
                        {
                            "name": _STR,
                            "served": _BOOL,
                            "storage": _BOOL,
                            "schema": _Struct("CustomResourceValidation", {"openAPIV3Schema": _ANY_OBJECT}),
                            "subresources": _Struct(
                                "CustomResourceSubresources",
                                {
                                    "status": _ANY_OBJECT,
                                    "scale": _Struct(
                                        "CustomResourceSubresourceScale",
                                        {"specReplicasPath": _STR, "statusReplicasPath": _STR,
                                         "labelSelectorPath": _STR},
                                    ),
                                },
                            ),
                            "additionalPrinterColumns": _List(_ANY_OBJECT),
                        },
                    )
                ),
            },
        ),
    ),
}
_TOP_LEVEL: dict[str, dict[str, _Shape]] = {
    "/configmaps": {"data": _STR_MAP, "binaryData": _STR_MAP, "immutable": _BOOL},
    "/secrets": {"data": _STR_MAP, "stringData": _STR_MAP, "type": _STR, "immutable": _BOOL},
}


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_type(shape: _Shape) -> str:
    if isinstance(shape, _Scalar):
        return shape.go
    if isinstance(shape, _Map):
        return f"map[string]{_go_type(shape.value)}"
    if isinstance(shape, _List):
        return f"[]{_go_type(shape.item)}"
    return f"v1.{shape.name}" if shape.name else "map[string]interface {}"


def _shape_error(value: Any, shape: _Shape, struct: str, path: str) -> str | None:
    """The decoder's complaint about `value`, or None when it has the right shape."""
    if value is None:
        return None  # JSON null decodes to the zero value
    wrong = False
    if isinstance(shape, _Scalar):
        wrong = not isinstance(value, shape.json_types) or (isinstance(value, bool) and bool not in shape.json_types)
    elif isinstance(shape, _Map):
        if not isinstance(value, dict):
            wrong = True
        else:
            for item in value.values():
                error = _shape_error(item, shape.value, struct, path)
                if error:
                    return error
    elif isinstance(shape, _List):
        if not isinstance(value, list):
            wrong = True
        else:
            for item in value:
                error = _shape_error(item, shape.item, struct, path)
                if error:
                    return error
    else:
        if not isinstance(value, dict):
            wrong = True
        else:
            for key, sub in shape.fields.items():
                if key in value:
                    error = _shape_error(value[key], sub, shape.name or struct, f"{path}.{key}")
                    if error:
                        return error
    if wrong:
        return (
            f"json: cannot unmarshal {_json_type_name(value)} into Go struct field {struct}{path} "
            f"of type {_go_type(shape)}"
        )
    return None


def check_shape(rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    """400 BadRequest when a field has the wrong JSON type, worded as the server's decoder words it."""
    fields: dict[str, _Shape] = {"apiVersion": _STR, "kind": _STR, "metadata": _OBJECT_META}
    if rtype.builtin:
        fields.update(_TOP_LEVEL.get(rtype.key, {}))
        spec = _SPECS.get(rtype.key)
        if spec is not None:
            fields[spec[0]] = spec[1]
        if rtype.has_status:
            fields.setdefault("status", _Struct(f"{rtype.kind}Status", {}))
    error = _shape_error(dict(obj), _Struct(rtype.kind, fields), rtype.kind, "")
    if error:
        raise ApiError(
            400,
            "BadRequest",
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {error}',
            {},
        )


def check_body(rtype: ResourceType, body: Any) -> dict[str, Any]:
    """A copy of the request body as an object of this kind (apiVersion and kind set); 400 when the
    body is not an object, has a field of the wrong JSON type, or names another kind or group."""
    if not isinstance(body, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {rtype.kind})")
    check_shape(rtype, body)
    obj: dict[str, Any] = json_copy(body)
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if kind is not None and kind != rtype.kind:
        raise bad_request(
            f"the object provided is unrecognized (must be of type {rtype.kind}): kind {kind!r} does not match"
        )
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else rtype.group
    if api_version is not None and group != rtype.group:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rtype.api_version})"
        )
    obj["apiVersion"] = rtype.api_version
    obj["kind"] = rtype.kind
    return obj
