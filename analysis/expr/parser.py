"""A precedence-climbing parser from tokens to the syntax tree (expr-lang/expr's precedences), with the
abuse guards on source length and nesting."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, NoReturn

from analysis.expr.errors import EvalFailure, SyntaxFailure
from analysis.expr.lexer import WORD_OPERATORS, Token, tokenize
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
    children,
)
from analysis.expr.values import compile_regex

__all__ = ["FUNCTIONS", "MAX_AST_DEPTH", "MAX_PARSE_NESTING", "MAX_SOURCE_LENGTH", "ORDERING", "parse"]

# Abuse guards. Real conditions are a few dozen characters and a handful of levels deep.
MAX_SOURCE_LENGTH: Final = 4096
MAX_PARSE_NESTING: Final = 64  # parenthesis / call / unary nesting while parsing
MAX_AST_DEPTH: Final = 128  # also bounds the interpreter's recursion

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
ORDERING: Final = frozenset({"<", ">", "<=", ">="})
_CANONICAL: Final = {"and": "&&", "or": "||", "not": "!", "^": "**"}


@dataclass(frozen=True)
class _FuncSpec:
    min_args: int
    max_args: int | None  # None: variadic
    predicate: bool = False  # second argument is a closure


FUNCTIONS: Final[dict[str, _FuncSpec]] = {
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
        self.tokens = tokenize(source)
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
            raise SyntaxFailure(self.cur.pos, f'expected "{value}" but found {_describe_token(self.cur)}')
        return self._advance()

    def _unexpected(self, tok: Token) -> NoReturn:
        if tok.kind == "eof":
            raise SyntaxFailure(tok.pos, "unexpected end of expression")
        raise SyntaxFailure(tok.pos, f"unexpected {_describe_token(tok)}")

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_PARSE_NESTING:
            raise SyntaxFailure(self.cur.pos, f"expression is nested too deeply (limit {MAX_PARSE_NESTING})")

    # grammar
    def parse(self) -> Node:
        if self.cur.kind == "eof":
            raise SyntaxFailure(0, "expression is empty")
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
                raise SyntaxFailure(
                    tok.pos, f'operator "{op}" and "??" cannot be mixed: wrap either in parentheses'
                )
            if op in ORDERING:
                left = self._comparison(left, tok, prec)
            else:
                right = self._expression(prec if op in _RIGHT_ASSOC else prec + 1)
                if op == "matches" and isinstance(right, Literal) and isinstance(right.value, str):
                    # A literal pattern is checked now, so a bad regex is a lint error.
                    try:
                        compile_regex(right.value)
                    except EvalFailure as exc:
                        raise SyntaxFailure(right.start, exc.detail) from None
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
            if not (self.cur.kind == "op" and self.cur.value in ORDERING):
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
                raise SyntaxFailure(
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
                    hint = f" (did you mean {tok.value}(...)?)" if tok.value in FUNCTIONS else ""
                    known = ", ".join(sorted(self.variables)) or "none"
                    raise SyntaxFailure(tok.pos, f'unknown name "{tok.value}"{hint}; known names: {known}')
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
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise SyntaxFailure(name_tok.pos, f'unknown function "{name}"')
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
            raise SyntaxFailure(name_tok.pos, f"{name}() takes {wanted} argument{plural}, got {count}")
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
                tok.kind == "op" and tok.value in WORD_OPERATORS
            ):
                self._advance()
                key = Literal(tok.pos, tok.end, str(tok.value))
            elif self._is_op("("):
                key = self._expression(0)
            else:
                raise SyntaxFailure(
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
                if not (prop.kind == "name" or (prop.kind == "op" and prop.value in WORD_OPERATORS)):
                    raise SyntaxFailure(
                        prop.pos, f'expected a field name after "{tok.value}", found {_describe_token(prop)}'
                    )
                self._advance()
                if self._is_op("("):
                    raise SyntaxFailure(prop.pos, f'method calls are not supported: "{prop.value}(...)"')
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
        stack.extend((child, depth + 1) for child in children(node))
    return deepest, deepest_node


def parse(source: str, variables: frozenset[str]) -> Node:
    if len(source) > MAX_SOURCE_LENGTH:
        raise SyntaxFailure(
            MAX_SOURCE_LENGTH, f"expression is too long ({len(source)} characters, limit {MAX_SOURCE_LENGTH})"
        )
    tree = _Parser(source, variables).parse()
    depth, node = _ast_depth(tree)
    if depth > MAX_AST_DEPTH:
        raise SyntaxFailure(node.start, f"expression is nested too deeply (limit {MAX_AST_DEPTH} levels)")
    return tree
