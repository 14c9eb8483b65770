"""The syntax tree of a condition: frozen dataclasses, each with the span of its source text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArrayLit", "Binary", "Call", "Conditional", "Literal", "MapLit", "Member", "Name", "Node", "Pointer", "Predicate",
    "Slice", "Unary", "children",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all AST nodes; ``start``/``end`` delimit the node's source text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    """``#`` inside a predicate: the element currently being tested."""


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``obj.key`` (``dot``), ``obj[key]`` or the optional ``obj?.key`` / ``obj?.[key]``."""

    obj: Node
    key: Node
    optional: bool
    dot: bool


@dataclass(frozen=True, slots=True)
class Slice(Node):
    obj: Node
    lower: Node | None
    upper: Node | None


@dataclass(frozen=True, slots=True)
class ArrayLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Predicate(Node):
    """A closure argument such as ``# < 1`` in ``all(result, # < 1)``."""

    body: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Conditional):
        return (node.cond, node.then, node.otherwise)
    if isinstance(node, Member):
        return (node.obj, node.key)
    if isinstance(node, Slice):
        return tuple(x for x in (node.obj, node.lower, node.upper) if x is not None)
    if isinstance(node, ArrayLit | Call):
        return node.items if isinstance(node, ArrayLit) else node.args
    if isinstance(node, MapLit):
        return tuple(x for pair in node.pairs for x in pair)
    if isinstance(node, Predicate):
        return (node.body,)
    return ()
