"""The interpreter over the syntax tree: every node kind, the closures (``all``, ``map`` ...) and the
step budget."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from analysis.expr.errors import EvalFailure, one_line
from analysis.expr.functions import PLAIN
from analysis.expr.nodes import (
    ArrayLit,
    Binary,
    Call,
    Conditional,
    Literal,
    MapLit,
    Member,
    Name,
    Node,
    Pointer,
    Predicate,
    Slice,
    Unary,
)
from analysis.expr.parser import FUNCTIONS, ORDERING
from analysis.expr.values import (
    compile_regex,
    divide,
    equal,
    flatten_numbers,
    go_format,
    go_remainder,
    is_array,
    is_number,
    is_plain,
    norm,
    power,
    show,
    to_float,
    type_name,
)

__all__ = ["MAX_REGEX_SUBJECT", "MAX_STEPS", "Interpreter"]

MAX_STEPS: Final = 1_000_000  # node evaluations per run (nested closures over big results)
MAX_REGEX_SUBJECT: Final = 65_536

_NO_DATA_HINT: Final = " (the query returned no data)"


class Interpreter:
    def __init__(self, source: str, env: Mapping[str, Any]) -> None:
        self.source = source
        self.env = env
        self.steps = 0
        self.elements: list[Any] = []  # the "#" of each enclosing predicate

    def text(self, node: Node) -> str:
        return one_line(self.source[node.start : node.end], 80) or "value"

    def no_data_hint(self, node: Node) -> str:
        return _NO_DATA_HINT if isinstance(node, Name) and node.name == "result" else ""

    def eval(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise EvalFailure(f"evaluation stopped after {MAX_STEPS} steps (expression too expensive)")
        return _DISPATCH[type(node)](self, node)

    def want_bool(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            raise EvalFailure(f"{what} must be a bool, got {show(value)}")
        return value

    # nodes
    def literal(self, node: Literal) -> Any:
        return node.value

    def name(self, node: Name) -> Any:
        if node.name not in self.env:
            raise EvalFailure(f'unknown name "{node.name}"')
        return norm(self.env[node.name])

    def pointer(self, node: Pointer) -> Any:
        if not self.elements:  # the parser prevents this; kept as a guard
            raise EvalFailure('"#" used outside a predicate')
        return self.elements[-1]

    def unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        if node.op == "!":
            return not self.want_bool(value, f'operand of "!" ({self.text(node.operand)})')
        if not is_number(value):
            raise EvalFailure(f'invalid operation: unary "{node.op}" on {show(value)}')
        return -value if node.op == "-" else value

    def conditional(self, node: Conditional) -> Any:
        cond = self.want_bool(self.eval(node.cond), f"condition of ?: ({self.text(node.cond)})")
        return self.eval(node.then if cond else node.otherwise)

    def binary(self, node: Binary) -> Any:
        op = node.op
        if op in ("&&", "||"):
            left = self.want_bool(self.eval(node.left), f'left operand of "{op}" ({self.text(node.left)})')
            if left == (op == "||"):  # short-circuit
                return left
            return self.want_bool(self.eval(node.right), f'right operand of "{op}" ({self.text(node.right)})')
        if op == "??":
            left = self.eval(node.left)
            return left if left is not None else self.eval(node.right)
        a = self.eval(node.left)
        b = self.eval(node.right)
        if op == "==":
            return equal(a, b)
        if op == "!=":
            return not equal(a, b)
        if op in ORDERING:
            return self.compare(node, a, b)
        if op in ("+", "-", "*", "/", "%", "**"):
            return self.arithmetic(node, a, b)
        if op == "in":
            return self.member_of(node, a, b)
        if not (isinstance(a, str) and isinstance(b, str)):
            raise EvalFailure(f'invalid operation: "{op}" needs two strings, got {show(a)} and {show(b)}')
        if op == "matches":
            if len(a) > MAX_REGEX_SUBJECT:
                raise EvalFailure(
                    f"string too long for matches ({len(a)} characters, limit {MAX_REGEX_SUBJECT})"
                )
            return compile_regex(b).search(a) is not None
        if op == "contains":
            return b in a
        if op == "startsWith":
            return a.startswith(b)
        if op == "endsWith":
            return a.endswith(b)
        raise EvalFailure(f"unknown operator {op}")  # pragma: no cover - parser emits only the above

    def compare(self, node: Binary, a: Any, b: Any) -> bool:
        if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            if node.op == "<":
                return bool(a < b)
            if node.op == "<=":
                return bool(a <= b)
            if node.op == ">":
                return bool(a > b)
            return bool(a >= b)
        hint = ""
        if is_array(a) or is_array(b):
            hint = " (compare an element such as result[0], or test every element with all(result, # < 1))"
        raise EvalFailure(f"invalid operation: {show(a)} {node.op} {show(b)}: mismatched types{hint}")

    def arithmetic(self, node: Binary, a: Any, b: Any) -> Any:
        op = node.op
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        if not (is_number(a) and is_number(b)):
            raise EvalFailure(f"invalid operation: {show(a)} {op} {show(b)}")
        both_int = isinstance(a, int) and isinstance(b, int)
        if op == "+":
            return a + b if both_int else to_float(a) + to_float(b)
        if op == "-":
            return a - b if both_int else to_float(a) - to_float(b)
        if op == "*":
            return a * b if both_int else to_float(a) * to_float(b)
        if op == "/":
            return divide(a, b)
        if op == "%":
            if not both_int:
                raise EvalFailure(f'invalid operation: "%" needs two ints, got {show(a)} and {show(b)}')
            if b == 0:
                raise EvalFailure("integer divide by zero")
            return go_remainder(a, b)
        return power(a, b)

    def member_of(self, node: Binary, needle: Any, haystack: Any) -> bool:
        if haystack is None:
            return False
        if is_array(haystack):
            return any(equal(needle, norm(item)) for item in haystack)
        if isinstance(haystack, Mapping):
            try:
                return needle in haystack
            except TypeError:
                return False  # unhashable needle (array/map) cannot be a key
        raise EvalFailure(f'operator "in" needs an array or a map on the right, got {show(haystack)}')

    def member(self, node: Member) -> Any:
        obj = self.eval(node.obj)
        if obj is None and node.optional:
            return None
        key = self.eval(node.key)
        subject = self.text(node.obj)
        if obj is None:
            what = f'field "{key}"' if node.dot else f"[{go_format(key) if is_plain(key) else '?'}]"
            raise EvalFailure(
                f"cannot fetch {what}: {subject} is nil{self.no_data_hint(node.obj)};"
                " use ?. or ?? to allow a missing value"
            )
        if isinstance(obj, Mapping):
            try:
                return norm(obj.get(key))
            except TypeError:
                raise EvalFailure(f"invalid map key {show(key)}") from None
        if is_array(obj) or isinstance(obj, str):
            if node.dot:
                hint = f" (use an index such as {subject}[0])" if is_array(obj) else ""
                raise EvalFailure(f'cannot fetch field "{key}" from {type_name(obj)} {subject}{hint}')
            if not isinstance(key, int) or isinstance(key, bool):
                raise EvalFailure(f"{type_name(obj)} index must be an int, got {show(key)}")
            size = len(obj)
            index = key + size if key < 0 else key
            if not 0 <= index < size:
                if size == 0:
                    empty = "an empty list" if is_array(obj) else "an empty string"
                    raise EvalFailure(
                        f"index {key} out of range: {subject} is {empty}{self.no_data_hint(node.obj)}"
                    )
                raise EvalFailure(f"index {key} out of range: {subject} has length {size}")
            return norm(obj[index])
        what = f'field "{key}"' if node.dot else "an index"
        raise EvalFailure(f"cannot fetch {what} from {show(obj)}")

    def slice(self, node: Slice) -> Any:
        obj = self.eval(node.obj)
        if not (is_array(obj) or isinstance(obj, str)):
            raise EvalFailure(f"cannot slice {show(obj)}")
        size = len(obj)
        bounds: list[int] = []
        for bound, default in ((node.lower, 0), (node.upper, size)):
            value = default if bound is None else self.eval(bound)
            if not isinstance(value, int) or isinstance(value, bool):
                raise EvalFailure(f"slice bounds must be ints, got {show(value)}")
            if value < 0:
                value += size
            bounds.append(min(max(value, 0), size))  # clamp like expr's runtime.Slice
        lo, hi = bounds
        lo = min(lo, hi)
        part = obj[lo:hi]
        return list(part) if is_array(obj) else part

    def array(self, node: ArrayLit) -> Any:
        return [self.eval(item) for item in node.items]

    def mapping(self, node: MapLit) -> Any:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.pairs:
            key = self.eval(key_node)
            if not isinstance(key, str | int | float) or isinstance(key, bool):
                raise EvalFailure(f"map keys must be strings or numbers, got {show(key)}")
            out[key] = self.eval(value_node)
        return out

    def predicate(self, node: Predicate) -> Any:  # pragma: no cover - only evaluated via calls
        return self.eval(node.body)

    # calls
    def call(self, node: Call) -> Any:
        impl = _CLOSURES.get(node.func)
        if impl is not None:
            return impl(self, node)
        args = [self.eval(arg) for arg in node.args]
        return PLAIN[node.func](args)

    def elements_of(self, node: Call) -> list[Any]:
        value = self.eval(node.args[0])
        if not is_array(value):
            hint = self.no_data_hint(node.args[0]) if value is None else ""
            raise EvalFailure(f"{node.func}() expects an array, got {show(value)}{hint}")
        return [norm(v) for v in value]

    def apply(self, body: Node, element: Any) -> Any:
        self.elements.append(element)
        try:
            return self.eval(body.body if isinstance(body, Predicate) else body)
        finally:
            self.elements.pop()

    def test(self, node: Call, element: Any) -> bool:
        return self.want_bool(self.apply(node.args[1], element), f"predicate of {node.func}()")


def _all(it: Interpreter, node: Call) -> bool:
    return all(it.test(node, e) for e in it.elements_of(node))


def _any(it: Interpreter, node: Call) -> bool:
    return any(it.test(node, e) for e in it.elements_of(node))


def _none(it: Interpreter, node: Call) -> bool:
    return not any(it.test(node, e) for e in it.elements_of(node))


def _one(it: Interpreter, node: Call) -> bool:
    return sum(1 for e in it.elements_of(node) if it.test(node, e)) == 1


def _filter(it: Interpreter, node: Call) -> list[Any]:
    return [e for e in it.elements_of(node) if it.test(node, e)]


def _map(it: Interpreter, node: Call) -> list[Any]:
    return [it.apply(node.args[1], e) for e in it.elements_of(node)]


def _count(it: Interpreter, node: Call) -> int:
    elements = it.elements_of(node)
    if len(node.args) == 1:  # count(array): how many elements are true
        return sum(1 for e in elements if it.want_bool(e, "element of count()"))
    return sum(1 for e in elements if it.test(node, e))


def _sum(it: Interpreter, node: Call) -> int | float:
    elements = it.elements_of(node)
    if len(node.args) == 2:
        elements = [it.apply(node.args[1], e) for e in elements]
    numbers_ = flatten_numbers("sum", elements)
    if all(isinstance(x, int) for x in numbers_):
        return sum(numbers_)
    return math.fsum(to_float(x) for x in numbers_)


_CLOSURES: Final[dict[str, Callable[[Interpreter, Call], Any]]] = {
    "all": _all,
    "any": _any,
    "none": _none,
    "one": _one,
    "filter": _filter,
    "map": _map,
    "count": _count,
    "sum": _sum,
}


_DISPATCH: Final[dict[type[Node], Callable[[Interpreter, Any], Any]]] = {
    Literal: Interpreter.literal,
    Name: Interpreter.name,
    Pointer: Interpreter.pointer,
    Unary: Interpreter.unary,
    Binary: Interpreter.binary,
    Conditional: Interpreter.conditional,
    Member: Interpreter.member,
    Slice: Interpreter.slice,
    ArrayLit: Interpreter.array,
    MapLit: Interpreter.mapping,
    Predicate: Interpreter.predicate,
    Call: Interpreter.call,
}

assert set(_CLOSURES) | set(PLAIN) == set(FUNCTIONS)
