"""The pod-template hash: which ReplicaSet belongs to which version of a Rollout's pod template.

As in Argo Rollouts: FNV-32a over the template's JSON (plus the collision count, when there is one),
printed as a decimal number and "safe encoded" into the alphabet Kubernetes uses for generated
names (no vowels, so no words). The JSON is canonical (sorted keys, compact), so the hash depends
only on the template's content: stable across controller restarts, Python versions and key order.
Our own label (``rollouts-pod-template-hash``) is removed first, so a template copied back from a
ReplicaSet (``undo``) hashes to that ReplicaSet's name again.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

from rollouts.model.jsoncopy import copy_object
from rollouts.model.spec import HASH_LABEL

#: Kubernetes' ``rand.SafeEncodeString`` alphabet.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes) -> int:
    value = _FNV32_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Kubernetes' ``rand.SafeEncodeString``: each byte mapped into a vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def canonical_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template without our hash label (and without an empty labels map left behind)."""
    clean = copy_object(template)
    meta = clean.get("metadata")
    if isinstance(meta, dict):
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels.pop(HASH_LABEL, None)
            if not labels:
                meta.pop("labels")
        if not meta:
            clean.pop("metadata")
    return clean


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The ``rollouts-pod-template-hash`` value (and ReplicaSet name suffix) of a pod template."""
    data = _canonical_json(canonical_template(template))
    if collision_count is not None:
        # Argo writes the count as 8 little-endian bytes (only the first 4 are set).
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\x00\x00\x00\x00"
    return safe_encode(str(fnv32a(data)))


def template_digest(template: Mapping[str, Any]) -> str:
    """A collision-proof digest of the template (kept on the ReplicaSet to detect hash collisions)."""
    return hashlib.sha256(_canonical_json(canonical_template(template))).hexdigest()[:32]


def step_hash(steps_json: str) -> str:
    """Argo's ``currentStepHash``: FNV-32a of the steps' JSON, safe encoded."""
    return safe_encode(str(fnv32a(steps_json.encode())))
