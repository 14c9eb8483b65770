"""Unit tests of the protobuf body decoder on request bodies recorded from kubectl 1.32.

Each constant is the body kubectl POSTed (Content-Type application/vnd.kubernetes.protobuf) for the
command in the comment above it, captured once from the sandbox and stored as hex.
"""

from __future__ import annotations

import base64

import pytest

from rollouts.sandbox import protobuf
from rollouts.sandbox.protobuf import ProtobufError, UnsupportedKind, decode, decode_envelope, decode_message

# kubectl create namespace pb-ns
NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121d0a150a0570622d6e7312001a0022002a0032003800420012001a02"
    "0a001a002200"
)

# kubectl create configmap cm1 --from-literal=a=b '--from-literal=key.two=value two' -n default
CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170123a0a1a0a03636d3112001a0764656661756c7422002a003200380042"
    "0012060a016112016212140a076b65792e74776f120976616c75652074776f1a002200"
)

# kubectl create secret generic s1 --from-literal=user=admin --from-literal=pw=s3cr3t
SECRET = bytes.fromhex(
    "6b3873000a0c0a027631120653656372657412330a120a02733112001a0022002a00320038004200120c0a02707712067333"
    "63723374120d0a0475736572120561646d696e1a001a002200"
)

# kubectl create serviceaccount sa1
SERVICEACCOUNT = bytes.fromhex(
    "6b3873000a140a027631120e536572766963654163636f756e7412150a130a0373613112001a0022002a003200380042001a"
    "002200"
)

# kubectl create deployment d1 --image=nginx:1.25 --replicas=3 --port=8080
DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ba010a1d0a02643112001a0022002a00320038004200"
    "5a090a0361707012026431128a010803120b0a090a03617070120264311a710a1b0a0012001a0022002a003200380042005a"
    "090a0361707012026431125212340a056e67696e78120a6e67696e783a312e32352a00320b0a00100018903f22002a004200"
    "6a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a002800"
    "38001a0c0800100018002000280038001a002200"
)

# kubectl create job j1 --image=busybox -- echo hi
JOB = bytes.fromhex(
    "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3112001a0022002a00320038004200126432620a10"
    "0a0012001a0022002a00320038004200124e122b0a026a31120762757379626f781a046563686f1a0268692a0042006a0072"
    "00800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000"
    "280030003a001a002200"
)

# kubectl create service clusterip svc1 --tcp=80:8080
SERVICE = bytes.fromhex(
    "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a003200380042005a0b0a03617070"
    "12047376633112430a1b0a0738302d38303830120354435018502207080010903f1a002800120b0a03617070120473766331"
    "1a002209436c757374657249503a00420052005a00600068001a020a001a002200"
)

# kubectl create ingress ing1 --rule=foo.com/bar=svc1:8080
INGRESS = bytes.fromhex(
    "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e6772657373124b0a140a04696e673112001a"
    "0022002a00320038004200122f1a2d0a07666f6f2e636f6d12220a200a1e0a042f626172120f220d0a047376633112050a00"
    "10903f1a0545786163741a020a001a002200"
)

# kubectl create deployment d0 --image=nginx --replicas=0
DEPLOYMENT_ZERO = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412a7010a1d0a02643012001a0022002a00320038004200"
    "5a090a036170701202643012780800120b0a090a03617070120264301a5f0a1b0a0012001a0022002a003200380042005a09"
    "0a0361707012026430124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201001a0032"
    "0042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a0022"
    "00"
)

# kubectl create secret generic s2 --type=example.com/x --from-literal=k=v
SECRET_TYPED = bytes.fromhex(
    "6b3873000a0c0a0276311206536563726574122b0a120a02733212001a0022002a0032003800420012060a016b1201761a0d"
    "6578616d706c652e636f6d2f781a002200"
)


def test_envelope_names_the_kind() -> None:
    api_version, kind, raw = decode_envelope(DEPLOYMENT)
    assert (api_version, kind) == ("apps/v1", "Deployment")
    assert raw and not raw.startswith(protobuf.MAGIC)


def test_namespace() -> None:
    assert decode(NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb-ns"}}


def test_configmap_keeps_namespace_and_data() -> None:
    assert decode(CONFIGMAP) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm1", "namespace": "default"},
        "data": {"a": "b", "key.two": "value two"},
    }


def test_secret_data_is_base64_as_in_json() -> None:
    obj = decode(SECRET)
    assert obj["metadata"] == {"name": "s1"}
    assert {k: base64.b64decode(v).decode() for k, v in obj["data"].items()} == {"user": "admin", "pw": "s3cr3t"}
    assert "type" not in obj  # empty string on the wire: omitted, the server defaults it to Opaque
    assert decode(SECRET_TYPED)["type"] == "example.com/x"


def test_serviceaccount() -> None:
    assert decode(SERVICEACCOUNT) == {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}}


def test_deployment() -> None:
    assert decode(DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d1", "labels": {"app": "d1"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d1"}},
            "template": {
                "metadata": {"labels": {"app": "d1"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 8080}], "resources": {}}
                    ]
                },
            },
        },
    }


def test_pointer_field_keeps_its_zero_value() -> None:
    # replicas is *int32: written only when set, so 0 means "zero replicas", not "unset".
    assert decode(DEPLOYMENT_ZERO)["spec"]["replicas"] == 0


def test_job_command_and_restart_policy() -> None:
    spec = decode(JOB)["spec"]
    assert spec == {
        "template": {
            "spec": {
                "containers": [{"name": "j1", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                "restartPolicy": "Never",
            }
        }
    }


def test_service_ports_and_int_or_string() -> None:
    obj = decode(SERVICE)
    assert obj["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "svc1"},
        "type": "ClusterIP",
    }
    assert "status" not in obj


def test_unsupported_kind_is_named() -> None:
    with pytest.raises(UnsupportedKind) as info:
        decode(INGRESS)
    assert info.value.kind == "Ingress"
    assert "Ingress (networking.k8s.io/v1)" in str(info.value)


def test_malformed_bodies() -> None:
    with pytest.raises(ProtobufError, match="magic"):
        decode(b'{"kind": "Namespace"}')
    with pytest.raises(ProtobufError, match="truncated"):
        decode(NAMESPACE[:-9])
    with pytest.raises(ProtobufError, match="no kind"):
        decode(protobuf.MAGIC)


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def test_unknown_fields_zero_ignored_data_refused() -> None:
    # ObjectMeta field 15 (the removed clusterName) empty on the wire: nothing lost, so it is skipped.
    assert decode_message("ObjectMeta", _field(1, b"x") + _field(15, b"")) == {"name": "x"}
    with pytest.raises(UnsupportedKind, match="field number 15 of ObjectMeta"):
        decode_message("ObjectMeta", _field(1, b"x") + _field(15, b"data"))


def test_negative_int32_and_timestamps() -> None:
    minus_one = bytes([0x08]) + b"\xff" * 9 + b"\x01"  # replicas=-1 as a sign-extended varint
    assert decode_message("DeploymentSpec", minus_one) == {"replicas": -1}
    stamp = bytes([0x08]) + _varint(1745000000)  # Time{seconds}
    assert decode_message("ObjectMeta", _field(8, stamp)) == {"creationTimestamp": "2025-04-18T18:13:20Z"}
