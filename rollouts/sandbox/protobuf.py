"""Decode `application/vnd.kubernetes.protobuf` request bodies into the JSON the object would have.

kubectl's typed commands (`kubectl create namespace|configmap|secret|serviceaccount|deployment|job|
service`, ...) send protobuf rather than JSON. The wire format is the Kubernetes envelope: the magic
`k8s\\x00`, then a `runtime.Unknown` message {typeMeta{apiVersion=1, kind=2}=1, raw=2,
contentEncoding=3, contentType=4} whose `raw` bytes are the object's own message from k8s.io/api
`generated.proto`.

This is a small schema-driven wire-format reader, not a general protobuf library. It knows the
messages of the kinds kubectl creates with typed commands (field numbers from k8s.io/api and
k8s.io/apimachinery generated.proto). Go's protobuf marshaller writes every non-pointer field, zero
values included, so zero scalars and empty messages are dropped (as `omitempty` does in JSON) unless
the Go field is a pointer (`ptr`): a pointer field is written only when set, so its zero value means
something (`replicas: 0`, `automountServiceAccountToken: false`). An unknown field number with a
zero value is ignored; an unknown field carrying data makes decoding fail rather than drop it.
Top-level `status` is skipped: the API server ignores it on create.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf envelope (-> 400)."""


class UnsupportedKind(ValueError):
    """The body is well-formed but names a kind (or a field) this decoder does not know (-> 415)."""

    def __init__(self, message: str, api_version: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.api_version = api_version
        self.kind = kind


@dataclass(frozen=True)
class F:
    """One field of a message: JSON name, type, and how zero values are treated."""

    name: str
    type: str  # string int32 int64 bool bytes time intorstr quantity map mapbytes mapquantity skip | a message
    repeated: bool = False
    ptr: bool = False  # a Go pointer: present only when set, so a zero value is kept
    keep: bool = False  # a Go struct JSON never omits (e.g. `resources: {}`)


def _msg(*fields: tuple[int, F]) -> dict[int, F]:
    return dict(fields)


def _s(name: str, repeated: bool = False) -> F:
    return F(name, "string", repeated=repeated)


_OBJECT_REFERENCE = _msg(
    (1, _s("kind")),
    (2, _s("namespace")),
    (3, _s("name")),
    (4, _s("uid")),
    (5, _s("apiVersion")),
    (6, _s("resourceVersion")),
    (7, _s("fieldPath")),
)

# Message name -> field number -> field. Names follow generated.proto.
MESSAGES: dict[str, dict[int, F]] = {
    # k8s.io/apimachinery
    "TypeMeta": _msg((1, _s("apiVersion")), (2, _s("kind"))),
    "ObjectMeta": _msg(
        (1, _s("name")),
        (2, _s("generateName")),
        (3, _s("namespace")),
        (4, _s("selfLink")),
        (5, _s("uid")),
        (6, _s("resourceVersion")),
        (7, F("generation", "int64")),
        (8, F("creationTimestamp", "time")),
        (9, F("deletionTimestamp", "time")),
        (10, F("deletionGracePeriodSeconds", "int64", ptr=True)),
        (11, F("labels", "map")),
        (12, F("annotations", "map")),
        (13, F("ownerReferences", "OwnerReference", repeated=True)),
        (14, _s("finalizers", repeated=True)),
    ),
    "OwnerReference": _msg(
        (1, _s("kind")),
        (3, _s("name")),
        (4, _s("uid")),
        (5, _s("apiVersion")),
        (6, F("controller", "bool", ptr=True)),
        (7, F("blockOwnerDeletion", "bool", ptr=True)),
    ),
    "LabelSelector": _msg(
        (1, F("matchLabels", "map")), (2, F("matchExpressions", "LabelSelectorRequirement", repeated=True))
    ),
    "LabelSelectorRequirement": _msg((1, _s("key")), (2, _s("operator")), (3, _s("values", repeated=True))),
    # core/v1
    "Namespace": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "NamespaceSpec")), (3, F("status", "skip"))),
    "NamespaceSpec": _msg((1, _s("finalizers", repeated=True))),
    "ConfigMap": _msg(
        (1, F("metadata", "ObjectMeta")),
        (2, F("data", "map")),
        (3, F("binaryData", "mapbytes")),
        (4, F("immutable", "bool", ptr=True)),
    ),
    "Secret": _msg(
        (1, F("metadata", "ObjectMeta")),
        (2, F("data", "mapbytes")),
        (3, _s("type")),
        (4, F("stringData", "map")),
        (5, F("immutable", "bool", ptr=True)),
    ),
    "ServiceAccount": _msg(
        (1, F("metadata", "ObjectMeta")),
        (2, F("secrets", "ObjectReference", repeated=True)),
        (3, F("imagePullSecrets", "LocalObjectReference", repeated=True)),
        (4, F("automountServiceAccountToken", "bool", ptr=True)),
    ),
    "ObjectReference": _OBJECT_REFERENCE,
    "LocalObjectReference": _msg((1, _s("name"))),
    "Service": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "ServiceSpec")), (3, F("status", "skip"))),
    "ServiceSpec": _msg(
        (1, F("ports", "ServicePort", repeated=True)),
        (2, F("selector", "map")),
        (3, _s("clusterIP")),
        (4, _s("type")),
        (5, _s("externalIPs", repeated=True)),
        (7, _s("sessionAffinity")),
        (8, _s("loadBalancerIP")),
        (9, _s("loadBalancerSourceRanges", repeated=True)),
        (10, _s("externalName")),
        (11, _s("externalTrafficPolicy")),
        (12, F("healthCheckNodePort", "int32")),
        (13, F("publishNotReadyAddresses", "bool")),
        (17, F("ipFamilyPolicy", "string", ptr=True)),
        (18, _s("clusterIPs", repeated=True)),
        (19, _s("ipFamilies", repeated=True)),
        (20, F("allocateLoadBalancerNodePorts", "bool", ptr=True)),
        (21, F("loadBalancerClass", "string", ptr=True)),
        (22, F("internalTrafficPolicy", "string", ptr=True)),
        (23, F("trafficDistribution", "string", ptr=True)),
    ),
    "ServicePort": _msg(
        (1, _s("name")),
        (2, _s("protocol")),
        (3, F("port", "int32")),
        (4, F("targetPort", "intorstr")),
        (5, F("nodePort", "int32")),
        (6, F("appProtocol", "string", ptr=True)),
    ),
    "Pod": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "PodSpec")), (3, F("status", "skip"))),
    "PodTemplateSpec": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "PodSpec"))),
    "PodSpec": _msg(
        (2, F("containers", "Container", repeated=True)),
        (3, _s("restartPolicy")),
        (4, F("terminationGracePeriodSeconds", "int64", ptr=True)),
        (5, F("activeDeadlineSeconds", "int64", ptr=True)),
        (6, _s("dnsPolicy")),
        (7, F("nodeSelector", "map")),
        (8, _s("serviceAccountName")),
        (9, _s("serviceAccount")),
        (10, _s("nodeName")),
        (11, F("hostNetwork", "bool")),
        (12, F("hostPID", "bool")),
        (13, F("hostIPC", "bool")),
        (15, F("imagePullSecrets", "LocalObjectReference", repeated=True)),
        (16, _s("hostname")),
        (17, _s("subdomain")),
        (19, _s("schedulerName")),
        (20, F("initContainers", "Container", repeated=True)),
        (21, F("automountServiceAccountToken", "bool", ptr=True)),
        (24, _s("priorityClassName")),
        (25, F("priority", "int32", ptr=True)),
        (27, F("shareProcessNamespace", "bool", ptr=True)),
        (29, F("runtimeClassName", "string", ptr=True)),
        (30, F("enableServiceLinks", "bool", ptr=True)),
        (31, F("preemptionPolicy", "string", ptr=True)),
        (35, F("setHostnameAsFQDN", "bool", ptr=True)),
        (37, F("hostUsers", "bool", ptr=True)),
    ),
    "Container": _msg(
        (1, _s("name")),
        (2, _s("image")),
        (3, _s("command", repeated=True)),
        (4, _s("args", repeated=True)),
        (5, _s("workingDir")),
        (6, F("ports", "ContainerPort", repeated=True)),
        (7, F("env", "EnvVar", repeated=True)),
        (8, F("resources", "ResourceRequirements", keep=True)),
        (13, _s("terminationMessagePath")),
        (14, _s("imagePullPolicy")),
        (16, F("stdin", "bool")),
        (17, F("stdinOnce", "bool")),
        (18, F("tty", "bool")),
        (20, _s("terminationMessagePolicy")),
        (24, F("restartPolicy", "string", ptr=True)),
    ),
    "ContainerPort": _msg(
        (1, _s("name")),
        (2, F("hostPort", "int32")),
        (3, F("containerPort", "int32")),
        (4, _s("protocol")),
        (5, _s("hostIP")),
    ),
    "EnvVar": _msg((1, _s("name")), (2, _s("value")), (3, F("valueFrom", "EnvVarSource"))),
    "EnvVarSource": _msg(
        (1, F("fieldRef", "ObjectFieldSelector")),
        (3, F("configMapKeyRef", "KeySelector")),
        (4, F("secretKeyRef", "KeySelector")),
    ),
    "ObjectFieldSelector": _msg((1, _s("apiVersion")), (2, _s("fieldPath"))),
    # ConfigMapKeySelector and SecretKeySelector: an embedded LocalObjectReference (inlined in JSON).
    "KeySelector": _msg((1, F("", "LocalObjectReference")), (2, _s("key")), (3, F("optional", "bool", ptr=True))),
    "ResourceRequirements": _msg((1, F("limits", "mapquantity")), (2, F("requests", "mapquantity"))),
    # apps/v1
    "Deployment": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "DeploymentSpec")), (3, F("status", "skip"))),
    "DeploymentSpec": _msg(
        (1, F("replicas", "int32", ptr=True)),
        (2, F("selector", "LabelSelector", ptr=True)),
        (3, F("template", "PodTemplateSpec", keep=True)),
        (4, F("strategy", "DeploymentStrategy")),
        (5, F("minReadySeconds", "int32")),
        (6, F("revisionHistoryLimit", "int32", ptr=True)),
        (7, F("paused", "bool")),
        (9, F("progressDeadlineSeconds", "int32", ptr=True)),
    ),
    "DeploymentStrategy": _msg((1, _s("type")), (2, F("rollingUpdate", "RollingUpdateDeployment", ptr=True))),
    "RollingUpdateDeployment": _msg((1, F("maxUnavailable", "intorstr")), (2, F("maxSurge", "intorstr"))),
    # batch/v1
    "Job": _msg((1, F("metadata", "ObjectMeta")), (2, F("spec", "JobSpec")), (3, F("status", "skip"))),
    "JobSpec": _msg(
        (1, F("parallelism", "int32", ptr=True)),
        (2, F("completions", "int32", ptr=True)),
        (3, F("activeDeadlineSeconds", "int64", ptr=True)),
        (4, F("selector", "LabelSelector", ptr=True)),
        (5, F("manualSelector", "bool", ptr=True)),
        (6, F("template", "PodTemplateSpec", keep=True)),
        (7, F("backoffLimit", "int32", ptr=True)),
        (8, F("ttlSecondsAfterFinished", "int32", ptr=True)),
        (9, F("completionMode", "string", ptr=True)),
        (10, F("suspend", "bool", ptr=True)),
        (12, F("backoffLimitPerIndex", "int32", ptr=True)),
        (13, F("maxFailedIndexes", "int32", ptr=True)),
        (14, F("podReplacementPolicy", "string", ptr=True)),
        (15, F("managedBy", "string", ptr=True)),
    ),
    # authentication.k8s.io/v1 and authorization.k8s.io/v1 (answered on create, never stored)
    "TokenRequest": _msg(
        (1, F("metadata", "ObjectMeta")), (2, F("spec", "TokenRequestSpec")), (3, F("status", "skip"))
    ),
    "TokenRequestSpec": _msg(
        (1, _s("audiences", repeated=True)),
        (3, F("boundObjectRef", "BoundObjectReference", ptr=True)),
        (4, F("expirationSeconds", "int64", ptr=True)),
    ),
    "BoundObjectReference": _msg((1, _s("kind")), (2, _s("apiVersion")), (3, _s("name")), (4, _s("uid"))),
    "SelfSubjectReview": _msg((1, F("metadata", "ObjectMeta")), (2, F("status", "skip"))),
    "SelfSubjectAccessReview": _msg(
        (1, F("metadata", "ObjectMeta")), (2, F("spec", "SelfSubjectAccessReviewSpec")), (3, F("status", "skip"))
    ),
    "SelfSubjectAccessReviewSpec": _msg(
        (1, F("resourceAttributes", "ResourceAttributes", ptr=True)),
        (2, F("nonResourceAttributes", "NonResourceAttributes", ptr=True)),
    ),
    "SubjectAccessReview": _msg(
        (1, F("metadata", "ObjectMeta")), (2, F("spec", "SubjectAccessReviewSpec")), (3, F("status", "skip"))
    ),
    "SubjectAccessReviewSpec": _msg(
        (1, F("resourceAttributes", "ResourceAttributes", ptr=True)),
        (2, F("nonResourceAttributes", "NonResourceAttributes", ptr=True)),
        (3, _s("user")),
        (4, _s("groups", repeated=True)),
        (6, _s("uid")),
    ),
    "ResourceAttributes": _msg(
        (1, _s("namespace")),
        (2, _s("verb")),
        (3, _s("group")),
        (4, _s("version")),
        (5, _s("resource")),
        (6, _s("subresource")),
        (7, _s("name")),
    ),
    "NonResourceAttributes": _msg((1, _s("path")), (2, _s("verb"))),
    # rbac.authorization.k8s.io/v1
    "Role": _msg((1, F("metadata", "ObjectMeta")), (2, F("rules", "PolicyRule", repeated=True))),
    "ClusterRole": _msg((1, F("metadata", "ObjectMeta")), (2, F("rules", "PolicyRule", repeated=True))),
    "PolicyRule": _msg(
        (1, _s("verbs", repeated=True)),
        (2, _s("apiGroups", repeated=True)),
        (3, _s("resources", repeated=True)),
        (4, _s("resourceNames", repeated=True)),
        (5, _s("nonResourceURLs", repeated=True)),
    ),
    "RoleBinding": _msg(
        (1, F("metadata", "ObjectMeta")), (2, F("subjects", "Subject", repeated=True)), (3, F("roleRef", "RoleRef"))
    ),
    "Subject": _msg((1, _s("kind")), (2, _s("apiGroup")), (3, _s("name")), (4, _s("namespace"))),
    "RoleRef": _msg((1, _s("apiGroup")), (2, _s("kind")), (3, _s("name"))),
}

# apiVersion/kind -> top-level message.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",
}


# ---------------------------------------------------------------------- wire format


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 64 bits")


def fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message, in wire order."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ProtobufError("truncated fixed-width field")
        out.append((number, wire, value))
    return out


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def _text(value: int | bytes, where: str) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected a length-delimited field")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"{where}: invalid UTF-8") from exc


def _int(value: int | bytes, where: str) -> int:
    if isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected a varint")
    return value


def _bytes(value: int | bytes, where: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected a length-delimited field")
    return value


def _map_entry(value: int | bytes, where: str) -> tuple[str, bytes | int]:
    key, item = "", b""
    item_value: bytes | int = item
    for number, _wire, field_value in fields(_bytes(value, where)):
        if number == 1:
            key = _text(field_value, where)
        elif number == 2:
            item_value = field_value
    return key, item_value


def _time(value: bytes, where: str) -> str | None:
    seconds = nanos = 0
    for number, _wire, field_value in fields(value):
        if number == 1:
            seconds = _signed(_int(field_value, where), 64)
        elif number == 2:
            nanos = _signed(_int(field_value, where), 32)
    if seconds == 0 and nanos == 0:
        return None
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(value: bytes, where: str) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, _wire, field_value in fields(value):
        if number == 1:
            kind = _int(field_value, where)
        elif number == 2:
            int_val = _signed(_int(field_value, where), 32)
        elif number == 3:
            str_val = _text(field_value, where)
    return str_val if kind == 1 else int_val


def _quantity(value: int | bytes, where: str) -> str:
    for number, _wire, field_value in fields(_bytes(value, where)):
        if number == 1:
            return _text(field_value, where)
    return ""


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or value is False or value == 0 or value == {} or value == []


def _scalar(spec: F, value: int | bytes, where: str) -> Any:
    kind = spec.type
    if kind == "string":
        return _text(value, where)
    if kind in ("int32", "int64"):
        return _signed(_int(value, where), 32 if kind == "int32" else 64)
    if kind == "bool":
        return bool(_int(value, where))
    if kind == "bytes":
        return base64.b64encode(_bytes(value, where)).decode()
    if kind == "time":
        return _time(_bytes(value, where), where)
    if kind == "intorstr":
        return _int_or_string(_bytes(value, where), where)
    if kind == "quantity":
        return _quantity(value, where)
    if kind in MESSAGES:
        return decode_message(kind, _bytes(value, where), where)
    raise ProtobufError(f"{where}: no decoder for type {kind}")  # a bug in MESSAGES


def decode_message(message: str, data: bytes, where: str = "") -> dict[str, Any]:
    """One message as its JSON object, zero values dropped as the field's Go type would omit them."""
    schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        spec = schema.get(number)
        path = f"{where}.{spec.name}" if spec is not None and spec.name else where
        if spec is None:
            if (wire == 0 and value == 0) or (wire == 2 and value == b""):
                continue  # a field we do not know, at its zero value: nothing is lost
            raise UnsupportedKind(
                f"field number {number} of {message} (at {where or '.'}) is not understood by the sandbox's "
                "protobuf decoder"
            )
        if spec.type == "skip":
            continue
        if spec.type in ("map", "mapbytes", "mapquantity"):
            key, item = _map_entry(value, path)
            if spec.type == "map":
                text = _text(item, path) if isinstance(item, bytes) else ""
                out.setdefault(spec.name, {})[key] = text
            elif spec.type == "mapbytes":
                raw = item if isinstance(item, bytes) else b""
                out.setdefault(spec.name, {})[key] = base64.b64encode(raw).decode()
            else:
                out.setdefault(spec.name, {})[key] = _quantity(item, path) if isinstance(item, bytes) else ""
            continue
        decoded = _scalar(spec, value, path)
        if not spec.name:  # an embedded struct, inlined in JSON
            out.update(decoded)
        elif spec.repeated:
            out.setdefault(spec.name, []).append(decoded)
        elif spec.ptr or spec.keep or not _is_zero(decoded):
            if spec.type == "time" and decoded is None:
                continue
            out[spec.name] = decoded
        else:
            out.pop(spec.name, None)
    return out


def decode_envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw object bytes) of a `k8s\\x00` + runtime.Unknown body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number k8s\\x00")
    api_version = kind = ""
    raw = b""
    content_encoding = ""
    for number, _wire, value in fields(body[len(MAGIC) :]):
        if number == 1:
            type_meta = decode_message("TypeMeta", _bytes(value, "typeMeta"), "typeMeta")
            api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
        elif number == 2:
            raw = _bytes(value, "raw")
        elif number == 3:
            content_encoding = _text(value, "contentEncoding")
    if content_encoding:
        raise ProtobufError(f"unsupported contentEncoding {content_encoding!r}")
    if not kind:
        raise ProtobufError("the protobuf envelope names no kind")
    return api_version, kind, raw


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object a protobuf request body stands for; UnsupportedKind for kinds not decoded here."""
    api_version, kind, raw = decode_envelope(body)
    message = KINDS.get((api_version, kind))
    if message is None:
        raise UnsupportedKind(
            f"the sandbox does not decode {MEDIA_TYPE} bodies for {kind} ({api_version or 'no apiVersion'}); "
            f"it decodes {', '.join(supported_kinds())}",
            api_version,
            kind,
        )
    try:
        obj = decode_message(message, raw)
    except UnsupportedKind as exc:
        raise UnsupportedKind(
            f"the sandbox cannot decode this {MEDIA_TYPE} body for {kind} ({api_version}): {exc}", api_version, kind
        ) from exc
    return {"apiVersion": api_version, "kind": kind, **obj}


def supported_kinds() -> list[str]:
    return sorted(kind for _v, kind in KINDS)
