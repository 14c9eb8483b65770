"""Label selectors (equality- and set-based) and field selectors, parsed once and matched many times."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollouts.sandbox.errors import ApiError, bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # in, notin, exists, !exists
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "in":
            return present and labels[self.key] in self.values
        if self.operator == "notin":
            return not present or labels[self.key] not in self.values
        if self.operator == "exists":
            return present
        return not present


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (x,y),!f` into requirements; 400 BadRequest on a malformed selector."""
    requirements: list[Requirement] = []
    for part in _split_top_level(text or ""):
        if m := _SET_RE.match(part):
            values = frozenset(v.strip() for v in m.group(4).split(",") if v.strip())
            if not values:
                raise bad_request(
                    f"unable to parse requirement: values: Invalid value: {text!r}: "
                    "for 'in', 'notin' operators, values set can't be empty"
                )
            requirements.append(Requirement(m.group(1), m.group(3), values))
        elif m := _EQ_RE.match(part):
            operator = "notin" if m.group(3) == "!=" else "in"
            requirements.append(Requirement(m.group(1), operator, frozenset([m.group(4)])))
        elif m := _EXISTS_RE.match(part):
            requirements.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists", frozenset()))
        else:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}: {part.strip()!r}")
    return requirements


def selector_from_label_selector(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """Requirements of a metav1.LabelSelector object (matchLabels + matchExpressions)."""
    if not selector:
        return []
    reqs = [Requirement(k, "in", frozenset([str(v)])) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"invalid label selector operator {expr.get('operator')!r}")
        reqs.append(Requirement(expr["key"], op, frozenset(expr.get("values") or [])))
    return reqs


def matches_labels(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in requirements)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


FieldMatcher = Callable[[Mapping[str, Any]], bool]

# Field labels that name another path of the object (the API server's field label conversions).
_FIELD_LABEL_PATHS: dict[tuple[str, str], str] = {("Event", "source"): "source.component"}


def parse_field_selector(text: str, allowed: tuple[str, ...], kind: str) -> FieldMatcher:
    """Field selectors over metadata.name/namespace and the kind's extra fields; 400 for others."""
    checks: list[tuple[str, bool, str]] = []
    for part in _split_top_level(text or ""):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid field selector: {part.strip()!r}")
        path, op, value = m.group(1), m.group(2), m.group(3)
        if path not in ("metadata.name", "metadata.namespace", *allowed):
            raise ApiError(400, "BadRequest", f"field label not supported: {path}", {})
        checks.append((_FIELD_LABEL_PATHS.get((kind, path), path), op != "!=", value))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in checks)

    return match
