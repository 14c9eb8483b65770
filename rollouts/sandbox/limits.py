"""The size and shape limits of a real API server: request bodies, stored objects, JSON nesting.

kube-apiserver refuses a request body over 3 MiB (413) and etcd an object over 1.5 MiB (its default
`--max-request-bytes`); the sandbox answers both before anything is stored, so a runaway writer
(a controller copying a 10 MB answer into a status) fails here as it would on a cluster.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rollouts.sandbox.errors import ApiError, bad_request
from rollouts.sandbox.resources import ResourceType

MAX_REQUEST_BODY = 3 * 1024 * 1024
MAX_OBJECT_BYTES = 1536 * 1024  # etcd's default --max-request-bytes
# Deep enough for any Kubernetes object (a CRD with a whole pod template schema nests about 60
# levels); shallow enough that decoding, pruning and copying stay within Python's recursion limit.
MAX_NESTING = 128


def body_too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BODY}", {})


def too_deep() -> ApiError:
    return bad_request(
        f"the request body could not be decoded: exceeded max depth: objects may nest at most {MAX_NESTING} "
        "levels of maps and lists"
    )


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of the range of a float64")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def decode_json(raw: bytes) -> Any:
    """JSON as Go decodes it: NaN, Infinity and numbers past float64 are errors (Python accepts them,
    and would then write bodies no other client can read)."""
    return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)


def check_nesting(value: Any) -> None:
    """400 when the decoded body nests deeper than MAX_NESTING, holds more values than a 3 MiB body
    can spell (YAML aliases repeating one node: expanded, they would stall every later step) or a
    number JSON cannot carry."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    values = 0
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > MAX_NESTING:
            raise too_deep()
        values += len(children)
        if values > MAX_REQUEST_BODY:
            raise bad_request("the request body could not be decoded: excessive aliasing (too many values)")
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, float) and not math.isfinite(child):
                # YAML's .inf and .nan: no JSON client could read the stored object back.
                raise bad_request(f"the request body could not be decoded: {child} is not a JSON number")


def check_object_size(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """422 when the object as stored would be over etcd's limit; the message names the object and the fix."""
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size <= MAX_OBJECT_BYTES:
        return
    name = (obj.get("metadata") or {}).get("name", "")
    kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    raise ApiError(
        422,
        "RequestEntityTooLarge",
        f'{kind} "{name}" is invalid: Request entity too large: the object is {size} bytes, the limit is '
        f"{MAX_OBJECT_BYTES} (etcd's request limit); keep large data out of the object "
        "(split it over several objects or mount it from a volume)",
        {"name": name, "kind": rtype.plural, **({"group": rtype.group} if rtype.group else {})},
    )
