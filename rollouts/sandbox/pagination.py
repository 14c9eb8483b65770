"""Paginated LIST as kube-apiserver answers it from etcd3: limit, continue tokens, remainingItemCount.

A continue token names the last key returned and the resourceVersion of the first page, so every
page of one LIST reads at that version, as the real server's tokens do.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollouts.sandbox.errors import bad_request
from rollouts.sandbox.selectors import FieldMatcher, Requirement, matches_labels

ObjKey = tuple[str, str]  # (namespace, name)


def list_page(
    table: Mapping[ObjKey, dict[str, Any]],
    keys: Sequence[ObjKey],
    labels: list[Requirement],
    fields: FieldMatcher | None,
    limit: int,
    continue_token: str,
    current_rv: int,
) -> tuple[list[dict[str, Any]], str, str, int | None]:
    """(items, resourceVersion, continue, remainingItemCount) of the objects under `keys` (in key order)
    that match the selectors, from where `continue_token` left off."""
    start_after: tuple[str, str] | None = None
    list_rv = current_rv
    if continue_token:
        start_after, list_rv = _decode_continue(continue_token)
    items: list[dict[str, Any]] = []
    next_token = ""
    remaining: int | None = None
    for index, k in enumerate(keys):
        if start_after is not None and k <= start_after:
            continue
        obj = table[k]
        meta = obj["metadata"]
        if not matches_labels(labels, meta.get("labels")):
            continue
        if fields is not None and not fields(obj):
            continue
        if limit and len(items) >= limit:
            next_token = _encode_continue(keys[index - 1] if index else k, list_rv)
            # As etcd3's GetList: remainingItemCount is known only when nothing is filtered.
            if not labels and fields is None:
                remaining = len(keys) - index
            break
        items.append(obj)
    if next_token:
        last = items[-1]["metadata"]
        next_token = _encode_continue((last.get("namespace", ""), last["name"]), list_rv)
    return items, str(list_rv), next_token, remaining


def _encode_continue(last: tuple[str, str], rv: int) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{last[0]}/{last[1]}\u0000"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[tuple[str, str], int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = raw["start"].rstrip("\u0000").partition("/")
        return (ns, name), int(raw["rv"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from exc
