"""A safe evaluator for AnalysisTemplate ``successCondition`` / ``failureCondition``.

Argo Rollouts evaluates these strings with the Go ``expr-lang/expr`` language. We
implement the subset that analysis conditions use, with expr's semantics, as a small
tokenizer, a precedence-climbing parser producing an AST of frozen dataclasses, and an
interpreter over that AST. Nothing here calls ``eval``/``exec``/``getattr``: values are
only ever ``None``, ``bool``, ``int``, ``float``, ``str``, lists/tuples and mappings, and
member access only reads mapping keys, so a condition can never reach a Python attribute.

Public API: :func:`compile_condition`, :class:`Condition`, :func:`evaluate_condition`,
:func:`evaluate_expression`, :func:`check_syntax`, :class:`ConditionSyntaxError`,
:class:`ConditionEvalError`.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any, Final, NoReturn

__all__ = [
    "MAX_SOURCE_LENGTH",
    "Condition",
    "ConditionEvalError",
    "ConditionSyntaxError",
    "check_syntax",
    "compile_condition",
    "evaluate_condition",
    "evaluate_expression",
]

# Abuse guards. Real conditions are a few dozen characters and a handful of levels deep.
MAX_SOURCE_LENGTH: Final = 4096
MAX_PARSE_NESTING: Final = 64  # parenthesis / call / unary nesting while parsing
MAX_AST_DEPTH: Final = 128  # also bounds the interpreter's recursion
MAX_STEPS: Final = 1_000_000  # node evaluations per run (nested closures over big results)
MAX_REGEX_LENGTH: Final = 512
MAX_REGEX_SUBJECT: Final = 65_536
MAX_FLATTEN_DEPTH: Final = 16

DEFAULT_VARIABLES: Final = ("result",)
_NO_DATA_HINT: Final = " (the query returned no data)"


# --------------------------------------------------------------------------- errors


class ConditionSyntaxError(ValueError):
    """The expression cannot be parsed. ``position`` is the 0-based offset of the problem.

    The message shows a 1-based column (as editors and expr itself do), e.g.
    ``successCondition: unexpected token ")" at column 14: result[0] >= )``.
    """

    def __init__(self, field_name: str, source: str, position: int, detail: str) -> None:
        self.field = field_name
        self.source = source
        self.position = position
        self.detail = detail
        super().__init__(f"{field_name}: {detail} at {_location(source, position)}: {_one_line(source)}")


class ConditionEvalError(ValueError):
    """The expression parsed but could not be evaluated against this measurement."""

    def __init__(self, field_name: str, source: str, detail: str) -> None:
        self.field = field_name
        self.source = source
        self.detail = detail
        super().__init__(f'{field_name} "{_one_line(source)}": {detail}')


class _SyntaxFailure(Exception):
    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position
        self.detail = detail


class _EvalFailure(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _location(source: str, position: int) -> str:
    if "\n" not in source:
        return f"column {position + 1}"
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def _one_line(source: str, limit: int = 300) -> str:
    # Messages end up in Kubernetes conditions and events: keep them on one line and bounded.
    text = " ".join(source.split("\n")).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``pos``/``end`` are offsets into the source."""

    kind: str  # "number", "string", "name", "op", "eof"
    value: Any
    pos: int
    end: int


_WORD_OPERATORS: Final = frozenset(
    {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}
)
_SYMBOLS: Final = (
    "**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.",
    "+", "-", "*", "/", "%", "^", "<", ">", "!", "(", ")", "[", "]", "{", "}", ",", ".", "?", ":", "#",
)  # fmt: skip
_SIMPLE_ESCAPES: Final = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"',
}  # fmt: skip
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}


def _tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif source.startswith("//", i):
            nl = source.find("\n", i)
            i = n if nl < 0 else nl
        elif source.startswith("/*", i):
            close = source.find("*/", i + 2)
            if close < 0:
                raise _SyntaxFailure(i, "unterminated comment")
            i = close + 2
        elif c.isdigit():
            i = _lex_number(source, i, tokens)
        elif c in "'\"`":
            i = _lex_string(source, i, tokens)
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            word = source[i:j]
            tokens.append(Token("op" if word in _WORD_OPERATORS else "name", word, i, j))
            i = j
        else:
            for sym in _SYMBOLS:
                if source.startswith(sym, i):
                    # "a ?.5 : b" is a ternary with a number, not optional chaining.
                    if sym == "?." and i + 2 < n and source[i + 2].isdigit():
                        continue
                    tokens.append(Token("op", sym, i, i + len(sym)))
                    i += len(sym)
                    break
            else:
                raise _SyntaxFailure(i, f"unexpected character {c!r}")
    tokens.append(Token("eof", None, n, n))
    return tokens


def _lex_number(source: str, i: int, tokens: list[Token]) -> int:
    n = len(source)
    start = i
    is_float = False
    if source[i] == "0" and i + 1 < n and source[i + 1] in "xXbBoO":
        base = {"x": 16, "b": 2, "o": 8}[source[i + 1].lower()]
        j = i + 2
        while j < n and (source[j].isalnum() or source[j] == "_"):
            j += 1
        text = source[i:j].replace("_", "")
        try:
            value: int | float = int(text[2:], base)
        except ValueError:
            raise _SyntaxFailure(start, f"invalid number literal {source[i:j]!r}") from None
        tokens.append(Token("number", value, start, j))
        return j
    j = i
    while j < n and (source[j].isdigit() or source[j] == "_"):
        j += 1
    # "1.5" is a float; "1..3" or "1.foo" are not fractions.
    if j + 1 < n and source[j] == "." and source[j + 1].isdigit():
        is_float = True
        j += 1
        while j < n and (source[j].isdigit() or source[j] == "_"):
            j += 1
    if j < n and source[j] in "eE":
        k = j + 1
        if k < n and source[k] in "+-":
            k += 1
        if k >= n or not source[k].isdigit():
            raise _SyntaxFailure(j, "invalid exponent in number literal")
        while k < n and source[k].isdigit():
            k += 1
        is_float = True
        j = k
    if j < n and (source[j].isalpha() or source[j] == "_"):
        raise _SyntaxFailure(start, f"invalid number literal {source[start : j + 1]!r}")
    text = source[start:j]
    if text.endswith("_") or "__" in text:
        raise _SyntaxFailure(start, f"invalid number literal {text!r}")
    text = text.replace("_", "")
    value = float(text) if is_float else int(text)
    tokens.append(Token("number", value, start, j))
    return j


def _lex_string(source: str, i: int, tokens: list[Token]) -> int:
    quote = source[i]
    n = len(source)
    start = i
    if quote == "`":  # raw string: no escapes
        close = source.find("`", i + 1)
        if close < 0:
            raise _SyntaxFailure(start, "unterminated string literal")
        tokens.append(Token("string", source[i + 1 : close], start, close + 1))
        return close + 1
    out: list[str] = []
    i += 1
    while True:
        if i >= n:
            raise _SyntaxFailure(start, "unterminated string literal")
        c = source[i]
        if c == quote:
            tokens.append(Token("string", "".join(out), start, i + 1))
            return i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise _SyntaxFailure(start, "unterminated string literal")
        e = source[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in _HEX_ESCAPES:
            width = _HEX_ESCAPES[e]
            digits = source[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise _SyntaxFailure(i, f"invalid escape sequence \\{e}{digits}")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise _SyntaxFailure(i, f"invalid escape sequence \\{e}{digits}")
            out.append(chr(code))
            i += 2 + width
        elif e in "01234567":
            digits = source[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise _SyntaxFailure(i, "invalid octal escape sequence (expected 3 octal digits)")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise _SyntaxFailure(i, f"invalid escape sequence \\{e}")


# --------------------------------------------------------------------------- AST


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


def _children(node: Node) -> tuple[Node, ...]:
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


# --------------------------------------------------------------------------- parser

# Precedences as in expr-lang/expr parser/operator/operator.go.
_BINARY: Final = {
    "or": 10, "||": 10, "and": 15, "&&": 15,
    "==": 20, "!=": 20, "<": 20, ">": 20, "<=": 20, ">=": 20,
    "in": 20, "matches": 20, "contains": 20, "startsWith": 20, "endsWith": 20,
    "+": 30, "-": 30, "*": 60, "/": 60, "%": 60, "**": 100, "^": 100, "??": 500,
}  # fmt: skip
_RIGHT_ASSOC: Final = frozenset({"**", "^"})
_UNARY: Final = {"not": 50, "!": 50, "-": 90, "+": 90}
_NEGATABLE: Final = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
_ORDERING: Final = frozenset({"<", ">", "<=", ">="})
_CANONICAL: Final = {"and": "&&", "or": "||", "not": "!", "^": "**"}


@dataclass(frozen=True)
class _FuncSpec:
    min_args: int
    max_args: int | None  # None: variadic
    predicate: bool = False  # second argument is a closure


_FUNCTIONS: Final[dict[str, _FuncSpec]] = {
    # closures
    "all": _FuncSpec(2, 2, True),
    "any": _FuncSpec(2, 2, True),
    "none": _FuncSpec(2, 2, True),
    "one": _FuncSpec(2, 2, True),
    "filter": _FuncSpec(2, 2, True),
    "map": _FuncSpec(2, 2, True),
    "count": _FuncSpec(1, 2, True),
    "sum": _FuncSpec(1, 2, True),
    # plain functions
    "len": _FuncSpec(1, 1),
    "abs": _FuncSpec(1, 1),
    "ceil": _FuncSpec(1, 1),
    "floor": _FuncSpec(1, 1),
    "round": _FuncSpec(1, 1),
    "int": _FuncSpec(1, 1),
    "float": _FuncSpec(1, 1),
    "string": _FuncSpec(1, 1),
    "min": _FuncSpec(1, None),
    "max": _FuncSpec(1, None),
    "mean": _FuncSpec(1, None),
    "median": _FuncSpec(1, None),
    "first": _FuncSpec(1, 1),
    "last": _FuncSpec(1, 1),
    # the functions Argo Rollouts adds to the environment (utils/evaluate/evaluate.go)
    "asInt": _FuncSpec(1, 1),
    "asFloat": _FuncSpec(1, 1),
    "isNaN": _FuncSpec(1, 1),
    "isInf": _FuncSpec(1, 1),
    "isNil": _FuncSpec(1, 1),
    "default": _FuncSpec(2, 2),
}


def _describe_token(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of expression"
    if tok.kind == "string":
        return f"string {tok.value!r}"
    if tok.kind == "number":
        return f"number {tok.value}"
    return f'token "{tok.value}"'


class _Parser:
    def __init__(self, source: str, variables: frozenset[str]) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0
        self.variables = variables
        self.nesting = 0
        self.closures = 0

    # token helpers
    @property
    def cur(self) -> Token:
        return self.tokens[self.index]

    def _peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        tok = self.tokens[self.index]
        if tok.kind != "eof":
            self.index += 1
        return tok

    def _is_op(self, value: str) -> bool:
        return self.cur.kind == "op" and self.cur.value == value

    def _expect_op(self, value: str) -> Token:
        if not self._is_op(value):
            raise _SyntaxFailure(self.cur.pos, f'expected "{value}" but found {_describe_token(self.cur)}')
        return self._advance()

    def _unexpected(self, tok: Token) -> NoReturn:
        if tok.kind == "eof":
            raise _SyntaxFailure(tok.pos, "unexpected end of expression")
        raise _SyntaxFailure(tok.pos, f"unexpected {_describe_token(tok)}")

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_PARSE_NESTING:
            raise _SyntaxFailure(self.cur.pos, f"expression is nested too deeply (limit {MAX_PARSE_NESTING})")

    # grammar
    def parse(self) -> Node:
        if self.cur.kind == "eof":
            raise _SyntaxFailure(0, "expression is empty")
        node = self._expression(0)
        if self.cur.kind != "eof":
            self._unexpected(self.cur)
        return node

    def _expression(self, min_prec: int) -> Node:
        self._enter()
        left = self._primary()
        prev_op = ""
        while self.cur.kind == "op":
            tok = self.cur
            negate = False
            if tok.value == "not":
                # "not in", "not matches", ...: the only binary use of "not".
                nxt = self._peek()
                if nxt.kind == "op" and nxt.value in _NEGATABLE and _BINARY[nxt.value] >= min_prec:
                    self._advance()
                    negate = True
                    tok = self.cur
                else:
                    break
            op = tok.value
            prec = _BINARY.get(op)
            if prec is None or prec < min_prec:
                break
            self._advance()
            if prev_op == "??" and op != "??":
                raise _SyntaxFailure(
                    tok.pos, f'operator "{op}" and "??" cannot be mixed: wrap either in parentheses'
                )
            if op in _ORDERING:
                left = self._comparison(left, tok, prec)
            else:
                right = self._expression(prec if op in _RIGHT_ASSOC else prec + 1)
                if op == "matches" and isinstance(right, Literal) and isinstance(right.value, str):
                    # A literal pattern is checked now, so a bad regex is a lint error.
                    try:
                        _compile_regex(right.value)
                    except _EvalFailure as exc:
                        raise _SyntaxFailure(right.start, exc.detail) from None
                left = Binary(left.start, right.end, _CANONICAL.get(op, op), left, right)
                if negate:
                    left = Unary(left.start, left.end, "!", left)
            prev_op = op
        if min_prec == 0 and self._is_op("?"):
            left = self._conditional(left)
        self.nesting -= 1
        return left

    def _comparison(self, left: Node, tok: Token, prec: int) -> Node:
        # expr turns "a < b < c" into "a < b && b < c".
        root: Node | None = None
        while True:
            right = self._expression(prec + 1)
            cmp = Binary(left.start, right.end, tok.value, left, right)
            root = cmp if root is None else Binary(root.start, cmp.end, "&&", root, cmp)
            left = right
            if not (self.cur.kind == "op" and self.cur.value in _ORDERING):
                return root
            tok = self._advance()

    def _conditional(self, cond: Node) -> Node:
        self._expect_op("?")
        then = self._expression(0)
        self._expect_op(":")
        otherwise = self._expression(0)
        return Conditional(cond.start, otherwise.end, cond, then, otherwise)

    def _primary(self) -> Node:
        tok = self.cur
        if tok.kind == "op" and tok.value in _UNARY:
            self._advance()
            operand = self._expression(_UNARY[tok.value])
            return Unary(tok.pos, operand.end, _CANONICAL.get(tok.value, tok.value), operand)
        if tok.kind == "op" and tok.value == "(":
            self._advance()
            inner = self._expression(0)
            close = self._expect_op(")")
            # Keep the parentheses in the span so messages quote what the user wrote.
            return self._postfix(_respan(inner, tok.pos, close.end))
        if tok.kind == "op" and tok.value in ("#", "."):
            if self.closures == 0:
                raise _SyntaxFailure(
                    tok.pos, f'"{tok.value}" can only be used inside a predicate such as all(result, # < 1)'
                )
            if tok.value == "#":
                self._advance()
                return self._postfix(Pointer(tok.pos, tok.end))
            # ".field" is shorthand for "#.field": leave the dot for _postfix.
            return self._postfix(Pointer(tok.pos, tok.pos))
        return self._secondary()

    def _secondary(self) -> Node:
        tok = self.cur
        node: Node
        if tok.kind == "name":
            self._advance()
            if tok.value in ("true", "false"):
                return Literal(tok.pos, tok.end, tok.value == "true")
            if tok.value == "nil":
                return Literal(tok.pos, tok.end, None)
            if self._is_op("("):
                node = self._call(tok)
            else:
                if tok.value not in self.variables:
                    hint = f" (did you mean {tok.value}(...)?)" if tok.value in _FUNCTIONS else ""
                    known = ", ".join(sorted(self.variables)) or "none"
                    raise _SyntaxFailure(tok.pos, f'unknown name "{tok.value}"{hint}; known names: {known}')
                node = Name(tok.pos, tok.end, tok.value)
        elif tok.kind in ("number", "string"):
            self._advance()
            node = Literal(tok.pos, tok.end, tok.value)
        elif tok.kind == "op" and tok.value == "[":
            node = self._array()
        elif tok.kind == "op" and tok.value == "{":
            node = self._map()
        else:
            self._unexpected(tok)
        return self._postfix(node)

    def _call(self, name_tok: Token) -> Node:
        name = name_tok.value
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise _SyntaxFailure(name_tok.pos, f'unknown function "{name}"')
        self._enter()
        self._expect_op("(")
        args: list[Node] = []
        while not self._is_op(")"):
            if args:
                self._expect_op(",")
                if self._is_op(")"):  # trailing comma
                    break
            if spec.predicate and len(args) == 1:
                args.append(self._predicate())
            else:
                args.append(self._expression(0))
        close = self._expect_op(")")
        self.nesting -= 1
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            if spec.max_args is None:
                wanted = f"at least {spec.min_args}"
            elif spec.min_args == spec.max_args:
                wanted = str(spec.min_args)
            else:
                wanted = f"{spec.min_args} or {spec.max_args}"
            plural = "" if wanted.endswith("1") and not wanted.endswith("or 1") else "s"
            raise _SyntaxFailure(name_tok.pos, f"{name}() takes {wanted} argument{plural}, got {count}")
        return Call(name_tok.pos, close.end, name, tuple(args))

    def _predicate(self) -> Node:
        start = self.cur
        braces = self._is_op("{")
        if braces:
            self._advance()
        self.closures += 1
        body = self._expression(0)
        self.closures -= 1
        end = self._expect_op("}").end if braces else body.end
        return Predicate(start.pos, end, body)

    def _array(self) -> Node:
        open_tok = self._expect_op("[")
        self._enter()
        items: list[Node] = []
        while not self._is_op("]"):
            if items:
                self._expect_op(",")
                if self._is_op("]"):
                    break
            items.append(self._expression(0))
        close = self._expect_op("]")
        self.nesting -= 1
        return ArrayLit(open_tok.pos, close.end, tuple(items))

    def _map(self) -> Node:
        open_tok = self._expect_op("{")
        self._enter()
        pairs: list[tuple[Node, Node]] = []
        while not self._is_op("}"):
            if pairs:
                self._expect_op(",")
                if self._is_op("}"):
                    break
            tok = self.cur
            key: Node
            if tok.kind in ("name", "string", "number") or (
                tok.kind == "op" and tok.value in _WORD_OPERATORS
            ):
                self._advance()
                key = Literal(tok.pos, tok.end, str(tok.value))
            elif self._is_op("("):
                key = self._expression(0)
            else:
                raise _SyntaxFailure(
                    tok.pos, f"a map key must be a name, a string or a number, not {_describe_token(tok)}"
                )
            self._expect_op(":")
            pairs.append((key, self._expression(0)))
        close = self._expect_op("}")
        self.nesting -= 1
        return MapLit(open_tok.pos, close.end, tuple(pairs))

    def _postfix(self, node: Node) -> Node:
        while self.cur.kind == "op":
            tok = self.cur
            if tok.value in (".", "?."):
                optional = tok.value == "?."
                self._advance()
                if optional and self._is_op("["):
                    node = self._index(node, optional=True)
                    continue
                prop = self.cur
                if not (prop.kind == "name" or (prop.kind == "op" and prop.value in _WORD_OPERATORS)):
                    raise _SyntaxFailure(
                        prop.pos, f'expected a field name after "{tok.value}", found {_describe_token(prop)}'
                    )
                self._advance()
                if self._is_op("("):
                    raise _SyntaxFailure(prop.pos, f'method calls are not supported: "{prop.value}(...)"')
                key = Literal(prop.pos, prop.end, prop.value)
                node = Member(node.start, prop.end, node, key, optional, True)
            elif tok.value == "[":
                node = self._index(node, optional=False)
            else:
                break
        return node

    def _index(self, node: Node, optional: bool) -> Node:
        self._expect_op("[")
        self._enter()
        lower: Node | None = None
        upper: Node | None = None
        if not self._is_op(":"):
            lower = self._expression(0)
            if self._is_op("]"):
                close = self._advance()
                self.nesting -= 1
                return Member(node.start, close.end, node, lower, optional, False)
            if not self._is_op(":"):
                self._expect_op("]")
        self._expect_op(":")
        if not self._is_op("]"):
            upper = self._expression(0)
        close = self._expect_op("]")
        self.nesting -= 1
        return Slice(node.start, close.end, node, lower, upper)


def _respan(node: Node, start: int, end: int) -> Node:
    return replace(node, start=start, end=end)


def _ast_depth(root: Node) -> tuple[int, Node]:
    """Depth of the tree (iteratively, so a pathological tree cannot blow the stack)."""
    deepest, deepest_node = 0, root
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, deepest_node = depth, node
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest, deepest_node


def _parse(source: str, variables: frozenset[str]) -> Node:
    if len(source) > MAX_SOURCE_LENGTH:
        raise _SyntaxFailure(
            MAX_SOURCE_LENGTH, f"expression is too long ({len(source)} characters, limit {MAX_SOURCE_LENGTH})"
        )
    tree = _Parser(source, variables).parse()
    depth, node = _ast_depth(tree)
    if depth > MAX_AST_DEPTH:
        raise _SyntaxFailure(node.start, f"expression is nested too deeply (limit {MAX_AST_DEPTH} levels)")
    return tree


# --------------------------------------------------------------------------- values


def _norm(value: Any) -> Any:
    """Map foreign numeric types (numpy scalars, Decimal, ...) onto int/float."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real | Decimal):  # Decimal is not registered as Real
        return float(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if _is_array(value):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    """A value for an error message: its expr type and a short rendering."""
    text = _go_format(value) if _is_plain(value) else "?"
    if isinstance(value, str):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{_type_name(value)} ({text})" if value is not None else "nil"


def _is_plain(value: Any, depth: int = 0) -> bool:
    if depth > MAX_FLATTEN_DEPTH:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if _is_array(value):
        return all(_is_plain(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str | int | float) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _format_float(x: float) -> str:
    # Go's %v for float64: shortest representation, exponent form outside [1e-4, 1e21).
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    d = Decimal(repr(x)).normalize()
    exponent = d.adjusted()
    if -4 <= exponent < 21:
        return format(d, "f")
    mantissa, _, exp = format(d, "e").partition("e")
    sign = "-" if exp.startswith("-") else "+"
    return f"{mantissa}e{sign}{exp.lstrip('+-').zfill(2)}"


def _go_format(value: Any, depth: int = 0) -> str:
    if depth > MAX_FLATTEN_DEPTH:
        return "..."
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, str):
        return value
    if _is_array(value):
        return "[" + " ".join(_go_format(_norm(v), depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(((str(k), _go_format(_norm(v), depth + 1)) for k, v in value.items()))
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    raise _EvalFailure(f"cannot convert {_type_name(value)} to string")


def _equal(a: Any, b: Any, depth: int = 0) -> bool:
    # expr: values of different types are simply not equal; numbers compare across int/float.
    if depth > MAX_FLATTEN_DEPTH:
        raise _EvalFailure("values are nested too deeply to compare")
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_array(a) and _is_array(b):
        return len(a) == len(b) and all(
            _equal(_norm(x), _norm(y), depth + 1) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a.keys()) != set(b.keys()):
            return False
        return all(_equal(_norm(a[k]), _norm(b[k]), depth + 1) for k in a)
    return False


@functools.lru_cache(maxsize=128)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise _EvalFailure(
            f"regular expression is too long ({len(pattern)} characters, limit {MAX_REGEX_LENGTH})"
        )
    try:
        return _regex(pattern)
    except re.error as exc:
        raise _EvalFailure(f"invalid regular expression {pattern!r}: {exc}") from None


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        raise _EvalFailure(f"number is too large: {value}") from None


def _divide(a: Any, b: Any) -> float:
    # expr divides as float64, so 1/0 is +Inf and 0/0 is NaN, as in Go.
    x, y = _to_float(a), _to_float(b)
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _power(a: Any, b: Any) -> float:
    # Always float64 like Go's math.Pow: constant time whatever the exponent.
    x, y = _to_float(a), _to_float(b)
    try:
        return math.pow(x, y)
    except OverflowError:
        odd = y.is_integer() and int(y) % 2 == 1
        return -math.inf if (x < 0 and odd) else math.inf
    except ValueError:
        if x == 0:  # 0 ** negative
            return math.inf
        return math.nan  # negative ** fraction


def _go_remainder(a: int, b: int) -> int:
    # Go's % truncates toward zero: the sign follows the dividend.
    r = abs(a) % abs(b)
    return -r if a < 0 else r


_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_WORDS: Final = frozenset(
    {"nan", "inf", "infinity", "+inf", "-inf", "+infinity", "-infinity", "+nan", "-nan"}
)


def _parse_go_int(text: str, func: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise _EvalFailure(f"{func}(): cannot parse {text!r} as an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise _EvalFailure(f"{func}(): {text!r} is out of range for a 64-bit integer")
    return value


def _parse_go_float(text: str, func: str) -> float:
    # Python's float() also accepts surrounding spaces and "1_0"; Go's ParseFloat does not.
    if text != text.strip() or "_" in text or not text:
        raise _EvalFailure(f"{func}(): cannot parse {text!r} as a number")
    try:
        return float(text)
    except ValueError:
        if text.lower() in _FLOAT_WORDS:
            return float(text.lower())
        raise _EvalFailure(f"{func}(): cannot parse {text!r} as a number") from None


def _number_arg(func: str, value: Any) -> int | float:
    if not _is_number(value):
        raise _EvalFailure(f"{func}() expects a number, got {_show(value)}")
    number: int | float = value
    return number


def _flatten_numbers(func: str, values: Iterable[Any], depth: int = 0) -> list[int | float]:
    if depth > MAX_FLATTEN_DEPTH:
        raise _EvalFailure(f"{func}(): arrays are nested too deeply")
    out: list[int | float] = []
    for raw in values:
        value = _norm(raw)
        if _is_array(value):
            out.extend(_flatten_numbers(func, value, depth + 1))
        elif _is_number(value):
            out.append(value)
        else:
            raise _EvalFailure(f"{func}() expects numbers or arrays of numbers, got {_show(value)}")
    return out


def _round_half_away(x: float) -> float:
    # Go's math.Round (half away from zero), not Python's banker's rounding.
    if not math.isfinite(x):
        return x
    t = float(math.trunc(x))
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def _truncate_to_int(func: str, value: int | float) -> int:
    if isinstance(value, int):
        return value
    if not math.isfinite(value):
        raise _EvalFailure(f"{func}(): cannot convert {_format_float(value)} to an integer")
    return int(value)


# --------------------------------------------------------------------------- interpreter


class _Interpreter:
    def __init__(self, source: str, env: Mapping[str, Any]) -> None:
        self.source = source
        self.env = env
        self.steps = 0
        self.elements: list[Any] = []  # the "#" of each enclosing predicate

    def text(self, node: Node) -> str:
        return _one_line(self.source[node.start : node.end], 80) or "value"

    def no_data_hint(self, node: Node) -> str:
        return _NO_DATA_HINT if isinstance(node, Name) and node.name == "result" else ""

    def eval(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _EvalFailure(f"evaluation stopped after {MAX_STEPS} steps (expression too expensive)")
        return _DISPATCH[type(node)](self, node)

    def want_bool(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            raise _EvalFailure(f"{what} must be a bool, got {_show(value)}")
        return value

    # nodes
    def literal(self, node: Literal) -> Any:
        return node.value

    def name(self, node: Name) -> Any:
        if node.name not in self.env:
            raise _EvalFailure(f'unknown name "{node.name}"')
        return _norm(self.env[node.name])

    def pointer(self, node: Pointer) -> Any:
        if not self.elements:  # the parser prevents this; kept as a guard
            raise _EvalFailure('"#" used outside a predicate')
        return self.elements[-1]

    def unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        if node.op == "!":
            return not self.want_bool(value, f'operand of "!" ({self.text(node.operand)})')
        if not _is_number(value):
            raise _EvalFailure(f'invalid operation: unary "{node.op}" on {_show(value)}')
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
            return _equal(a, b)
        if op == "!=":
            return not _equal(a, b)
        if op in _ORDERING:
            return self.compare(node, a, b)
        if op in ("+", "-", "*", "/", "%", "**"):
            return self.arithmetic(node, a, b)
        if op == "in":
            return self.member_of(node, a, b)
        if not (isinstance(a, str) and isinstance(b, str)):
            raise _EvalFailure(f'invalid operation: "{op}" needs two strings, got {_show(a)} and {_show(b)}')
        if op == "matches":
            if len(a) > MAX_REGEX_SUBJECT:
                raise _EvalFailure(
                    f"string too long for matches ({len(a)} characters, limit {MAX_REGEX_SUBJECT})"
                )
            return _compile_regex(b).search(a) is not None
        if op == "contains":
            return b in a
        if op == "startsWith":
            return a.startswith(b)
        if op == "endsWith":
            return a.endswith(b)
        raise _EvalFailure(f"unknown operator {op}")  # pragma: no cover - parser emits only the above

    def compare(self, node: Binary, a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            if node.op == "<":
                return bool(a < b)
            if node.op == "<=":
                return bool(a <= b)
            if node.op == ">":
                return bool(a > b)
            return bool(a >= b)
        hint = ""
        if _is_array(a) or _is_array(b):
            hint = " (compare an element such as result[0], or test every element with all(result, # < 1))"
        raise _EvalFailure(f"invalid operation: {_show(a)} {node.op} {_show(b)}: mismatched types{hint}")

    def arithmetic(self, node: Binary, a: Any, b: Any) -> Any:
        op = node.op
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        if not (_is_number(a) and _is_number(b)):
            raise _EvalFailure(f"invalid operation: {_show(a)} {op} {_show(b)}")
        both_int = isinstance(a, int) and isinstance(b, int)
        if op == "+":
            return a + b if both_int else _to_float(a) + _to_float(b)
        if op == "-":
            return a - b if both_int else _to_float(a) - _to_float(b)
        if op == "*":
            return a * b if both_int else _to_float(a) * _to_float(b)
        if op == "/":
            return _divide(a, b)
        if op == "%":
            if not both_int:
                raise _EvalFailure(f'invalid operation: "%" needs two ints, got {_show(a)} and {_show(b)}')
            if b == 0:
                raise _EvalFailure("integer divide by zero")
            return _go_remainder(a, b)
        return _power(a, b)

    def member_of(self, node: Binary, needle: Any, haystack: Any) -> bool:
        if haystack is None:
            return False
        if _is_array(haystack):
            return any(_equal(needle, _norm(item)) for item in haystack)
        if isinstance(haystack, Mapping):
            try:
                return needle in haystack
            except TypeError:
                return False  # unhashable needle (array/map) cannot be a key
        raise _EvalFailure(f'operator "in" needs an array or a map on the right, got {_show(haystack)}')

    def member(self, node: Member) -> Any:
        obj = self.eval(node.obj)
        if obj is None and node.optional:
            return None
        key = self.eval(node.key)
        subject = self.text(node.obj)
        if obj is None:
            what = f'field "{key}"' if node.dot else f"[{_go_format(key) if _is_plain(key) else '?'}]"
            raise _EvalFailure(
                f"cannot fetch {what}: {subject} is nil{self.no_data_hint(node.obj)};"
                " use ?. or ?? to allow a missing value"
            )
        if isinstance(obj, Mapping):
            try:
                return _norm(obj.get(key))
            except TypeError:
                raise _EvalFailure(f"invalid map key {_show(key)}") from None
        if _is_array(obj) or isinstance(obj, str):
            if node.dot:
                hint = f" (use an index such as {subject}[0])" if _is_array(obj) else ""
                raise _EvalFailure(f'cannot fetch field "{key}" from {_type_name(obj)} {subject}{hint}')
            if not isinstance(key, int) or isinstance(key, bool):
                raise _EvalFailure(f"{_type_name(obj)} index must be an int, got {_show(key)}")
            size = len(obj)
            index = key + size if key < 0 else key
            if not 0 <= index < size:
                if size == 0:
                    empty = "an empty list" if _is_array(obj) else "an empty string"
                    raise _EvalFailure(
                        f"index {key} out of range: {subject} is {empty}{self.no_data_hint(node.obj)}"
                    )
                raise _EvalFailure(f"index {key} out of range: {subject} has length {size}")
            return _norm(obj[index])
        what = f'field "{key}"' if node.dot else "an index"
        raise _EvalFailure(f"cannot fetch {what} from {_show(obj)}")

    def slice(self, node: Slice) -> Any:
        obj = self.eval(node.obj)
        if not (_is_array(obj) or isinstance(obj, str)):
            raise _EvalFailure(f"cannot slice {_show(obj)}")
        size = len(obj)
        bounds: list[int] = []
        for bound, default in ((node.lower, 0), (node.upper, size)):
            value = default if bound is None else self.eval(bound)
            if not isinstance(value, int) or isinstance(value, bool):
                raise _EvalFailure(f"slice bounds must be ints, got {_show(value)}")
            if value < 0:
                value += size
            bounds.append(min(max(value, 0), size))  # clamp like expr's runtime.Slice
        lo, hi = bounds
        lo = min(lo, hi)
        part = obj[lo:hi]
        return list(part) if _is_array(obj) else part

    def array(self, node: ArrayLit) -> Any:
        return [self.eval(item) for item in node.items]

    def mapping(self, node: MapLit) -> Any:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.pairs:
            key = self.eval(key_node)
            if not isinstance(key, str | int | float) or isinstance(key, bool):
                raise _EvalFailure(f"map keys must be strings or numbers, got {_show(key)}")
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
        return _PLAIN[node.func](args)

    def elements_of(self, node: Call) -> list[Any]:
        value = self.eval(node.args[0])
        if not _is_array(value):
            hint = self.no_data_hint(node.args[0]) if value is None else ""
            raise _EvalFailure(f"{node.func}() expects an array, got {_show(value)}{hint}")
        return [_norm(v) for v in value]

    def apply(self, body: Node, element: Any) -> Any:
        self.elements.append(element)
        try:
            return self.eval(body.body if isinstance(body, Predicate) else body)
        finally:
            self.elements.pop()

    def test(self, node: Call, element: Any) -> bool:
        return self.want_bool(self.apply(node.args[1], element), f"predicate of {node.func}()")


def _all(it: _Interpreter, node: Call) -> bool:
    return all(it.test(node, e) for e in it.elements_of(node))


def _any(it: _Interpreter, node: Call) -> bool:
    return any(it.test(node, e) for e in it.elements_of(node))


def _none(it: _Interpreter, node: Call) -> bool:
    return not any(it.test(node, e) for e in it.elements_of(node))


def _one(it: _Interpreter, node: Call) -> bool:
    return sum(1 for e in it.elements_of(node) if it.test(node, e)) == 1


def _filter(it: _Interpreter, node: Call) -> list[Any]:
    return [e for e in it.elements_of(node) if it.test(node, e)]


def _map(it: _Interpreter, node: Call) -> list[Any]:
    return [it.apply(node.args[1], e) for e in it.elements_of(node)]


def _count(it: _Interpreter, node: Call) -> int:
    elements = it.elements_of(node)
    if len(node.args) == 1:  # count(array): how many elements are true
        return sum(1 for e in elements if it.want_bool(e, "element of count()"))
    return sum(1 for e in elements if it.test(node, e))


def _sum(it: _Interpreter, node: Call) -> int | float:
    elements = it.elements_of(node)
    if len(node.args) == 2:
        elements = [it.apply(node.args[1], e) for e in elements]
    numbers_ = _flatten_numbers("sum", elements)
    if all(isinstance(x, int) for x in numbers_):
        return sum(numbers_)
    return math.fsum(_to_float(x) for x in numbers_)


_CLOSURES: Final[dict[str, Callable[[_Interpreter, Call], Any]]] = {
    "all": _all,
    "any": _any,
    "none": _none,
    "one": _one,
    "filter": _filter,
    "map": _map,
    "count": _count,
    "sum": _sum,
}


def _len(args: list[Any]) -> int:
    (value,) = args
    if _is_array(value) or isinstance(value, str | Mapping):
        return len(value)
    raise _EvalFailure(f"len() expects an array, a string or a map, got {_show(value)}")


def _abs(args: list[Any]) -> int | float:
    return abs(_number_arg("abs", args[0]))


def _ceil(args: list[Any]) -> float:
    x = _to_float(_number_arg("ceil", args[0]))
    return float(math.ceil(x)) if math.isfinite(x) else x


def _floor(args: list[Any]) -> float:
    x = _to_float(_number_arg("floor", args[0]))
    return float(math.floor(x)) if math.isfinite(x) else x


def _round(args: list[Any]) -> float:
    return _round_half_away(_to_float(_number_arg("round", args[0])))


def _int(args: list[Any]) -> int:
    (value,) = args
    if isinstance(value, str):
        return _parse_go_int(value, "int")
    return _truncate_to_int("int", _number_arg("int", value))


def _float(args: list[Any]) -> float:
    (value,) = args
    if isinstance(value, str):
        return _parse_go_float(value, "float")
    return _to_float(_number_arg("float", value))


def _string(args: list[Any]) -> str:
    return _go_format(args[0])


def _as_int(args: list[Any]) -> int:
    # Argo's asInt: numbers are truncated, strings parsed as base-10 integers.
    (value,) = args
    if isinstance(value, str):
        return _parse_go_int(value, "asInt")
    if not _is_number(value):
        raise _EvalFailure(f"asInt() not supported on {_show(value)}")
    return _truncate_to_int("asInt", value)


def _as_float(args: list[Any]) -> float:
    (value,) = args
    if isinstance(value, str):
        return _parse_go_float(value, "asFloat")
    if not _is_number(value):
        raise _EvalFailure(f"asFloat() not supported on {_show(value)}")
    return _to_float(value)


def _is_nan(args: list[Any]) -> bool:
    value = _number_arg("isNaN", args[0])
    return isinstance(value, float) and math.isnan(value)


def _is_inf(args: list[Any]) -> bool:
    value = _number_arg("isInf", args[0])
    return isinstance(value, float) and math.isinf(value)


def _is_nil(args: list[Any]) -> bool:
    return args[0] is None


def _default(args: list[Any]) -> Any:
    value, fallback = args
    return fallback if value is None else value


def _first(args: list[Any]) -> Any:
    (value,) = args
    if value is None:
        return None
    if not _is_array(value):
        raise _EvalFailure(f"first() expects an array, got {_show(value)}")
    return _norm(value[0]) if value else None


def _last(args: list[Any]) -> Any:
    (value,) = args
    if value is None:
        return None
    if not _is_array(value):
        raise _EvalFailure(f"last() expects an array, got {_show(value)}")
    return _norm(value[-1]) if value else None


def _min(args: list[Any]) -> int | float | None:
    values = _flatten_numbers("min", args)
    return min(values) if values else None


def _max(args: list[Any]) -> int | float | None:
    values = _flatten_numbers("max", args)
    return max(values) if values else None


def _mean(args: list[Any]) -> float:
    values = _flatten_numbers("mean", args)
    return math.fsum(_to_float(v) for v in values) / len(values) if values else 0.0


def _median(args: list[Any]) -> float:
    values = sorted(_to_float(v) for v in _flatten_numbers("median", args))
    n = len(values)
    if n == 0:
        return 0.0
    if n % 2:
        return values[n // 2]
    return (values[n // 2 - 1] + values[n // 2]) / 2


_PLAIN: Final[dict[str, Callable[[list[Any]], Any]]] = {
    "len": _len,
    "abs": _abs,
    "ceil": _ceil,
    "floor": _floor,
    "round": _round,
    "int": _int,
    "float": _float,
    "string": _string,
    "asInt": _as_int,
    "asFloat": _as_float,
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "isNil": _is_nil,
    "default": _default,
    "first": _first,
    "last": _last,
    "min": _min,
    "max": _max,
    "mean": _mean,
    "median": _median,
}

_DISPATCH: Final[dict[type[Node], Callable[[_Interpreter, Any], Any]]] = {
    Literal: _Interpreter.literal,
    Name: _Interpreter.name,
    Pointer: _Interpreter.pointer,
    Unary: _Interpreter.unary,
    Binary: _Interpreter.binary,
    Conditional: _Interpreter.conditional,
    Member: _Interpreter.member,
    Slice: _Interpreter.slice,
    ArrayLit: _Interpreter.array,
    MapLit: _Interpreter.mapping,
    Predicate: _Interpreter.predicate,
    Call: _Interpreter.call,
}

assert set(_CLOSURES) | set(_PLAIN) == set(_FUNCTIONS)


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Condition:
    """A parsed expression; immutable, reusable and safe to share between threads."""

    source: str
    field: str
    variables: frozenset[str]
    tree: Node = dc_field(repr=False, compare=False)

    def evaluate_value(self, env: Mapping[str, Any]) -> Any:
        """Evaluate to any value. Raises :class:`ConditionEvalError`."""
        interpreter = _Interpreter(self.source, env)
        try:
            return interpreter.eval(self.tree)
        except _EvalFailure as exc:
            raise ConditionEvalError(self.field, self.source, exc.detail) from None
        except RecursionError:
            raise ConditionEvalError(self.field, self.source, "expression is nested too deeply") from None

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Evaluate as a condition: the value must be a bool."""
        value = self.evaluate_value(env)
        if not isinstance(value, bool):
            raise ConditionEvalError(
                self.field, self.source, f"condition must evaluate to a bool, got {_show(value)}"
            )
        return value


def compile_condition(
    source: str, field: str = "condition", variables: Collection[str] = DEFAULT_VARIABLES
) -> Condition:
    """Parse ``source`` once. ``variables`` are the names it may use (``result`` by default).

    Raises :class:`ConditionSyntaxError` naming ``field`` and the position of the problem.
    """
    return _compile_cached(source, field, frozenset(variables))


@functools.lru_cache(maxsize=512)
def _compile_cached(source: str, field_name: str, variables: frozenset[str]) -> Condition:
    try:
        tree = _parse(source, variables)
    except _SyntaxFailure as exc:
        raise ConditionSyntaxError(field_name, source, exc.position, exc.detail) from None
    return Condition(source, field_name, variables, tree)


def check_syntax(
    source: str, field: str, variables: Collection[str] = DEFAULT_VARIABLES
) -> ConditionSyntaxError | None:
    """For admission and linting: the syntax error, or ``None`` when ``source`` parses."""
    try:
        compile_condition(source, field, variables)
    except ConditionSyntaxError as exc:
        return exc
    return None


def evaluate_condition(source: str, result: Any, field: str = "condition") -> bool:
    """Compile (cached) and evaluate ``source`` with ``result`` bound to the measurement value."""
    return compile_condition(source, field).evaluate({"result": result})


def evaluate_expression(source: str, env: Mapping[str, Any], field: str = "expression") -> Any:
    """Evaluate a non-boolean expression over ``env`` (its keys are the known names)."""
    return compile_condition(source, field, frozenset(env)).evaluate_value(env)
