"""The subset of Go's ``text/template`` that Argo's notification templates use.

No maintained Python implementation of Go templates exists (the PyPI packages found wrap a Go shared
library and are unmaintained), so this implements the documented subset only (README "Notifications"):
``{{.a.b}}`` field references, ``$`` and ``$var.a``, ``{{ $x := ... }}``, pipelines with ``|``,
``if``/``else if``/``else``, ``range`` (with ``$i, $v :=``), ``with``, ``{{- -}}`` trimming, comments,
and the functions in :data:`FUNCTIONS`. Values are printed as Go prints JSON-decoded values (``<no value>``
for a missing key). Only mapping keys are read: a template can never reach a Python attribute."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class TemplateError(ValueError):
    """A template that does not parse, or an action that cannot be evaluated."""


MISSING = object()  # a key the data does not have; Go prints it as "<no value>"

# ----------------------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<declare>:=)
    | (?P<punct>[()|,=])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(source: str) -> list[Token]:
    found: list[Token] = []
    pos = 0
    source = source.strip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None or match.end() == pos:
            raise TemplateError(f"unexpected {source[pos : pos + 10]!r} in {{{{{source}}}}}")
        kind = match.lastgroup or ""
        found.append(Token(kind, match.group(kind)))
        pos = match.end()
    return found


# ----------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Field:
    variable: str | None  # None: the dot; "" : `$`; else the variable's name
    path: tuple[str, ...]


@dataclass(frozen=True)
class Function:
    name: str


@dataclass(frozen=True)
class Pipeline:
    declare: tuple[str, ...]
    commands: tuple[tuple[Any, ...], ...]  # each a tuple of operands (Literal, Field, Function, Pipeline)


@dataclass
class Text:
    text: str


@dataclass
class Action:
    pipeline: Pipeline


@dataclass
class Branch:
    """``if``, ``with`` or ``range``: a body run under a condition, and an ``else`` body."""

    keyword: str
    pipeline: Pipeline
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


def _parse_operand(toks: list[Token], i: int) -> tuple[Any, int]:
    tok = toks[i]
    if tok.kind == "string":
        text = tok.text[1:-1] if tok.text.startswith("`") else json.loads(tok.text)
        return Literal(text), i + 1
    if tok.kind == "number":
        return Literal(float(tok.text) if "." in tok.text else int(tok.text)), i + 1
    if tok.kind == "field":
        return Field(None, tuple(p for p in tok.text.split(".") if p)), i + 1
    if tok.kind == "var":
        name, *path = tok.text[1:].split(".")
        return Field(name, tuple(path)), i + 1
    if tok.kind == "ident":
        constants = {"true": True, "false": False, "nil": None}
        if tok.text in constants:
            return Literal(constants[tok.text]), i + 1
        return Function(tok.text), i + 1
    if tok.text == "(":
        inner, j = _parse_pipeline(toks, i + 1, closing=")")
        return inner, j + 1
    raise TemplateError(f"unexpected {tok.text!r}")


def _parse_pipeline(toks: list[Token], i: int = 0, closing: str | None = None) -> tuple[Pipeline, int]:
    declare: list[str] = []
    # `$a, $b :=` or `$a :=` (also `$a =`)
    j = i
    names: list[str] = []
    while j < len(toks) and toks[j].kind == "var" and "." not in toks[j].text:
        names.append(toks[j].text[1:])
        j += 1
        if j < len(toks) and toks[j].text == ",":
            j += 1
            continue
        break
    if names and j < len(toks) and (toks[j].kind == "declare" or toks[j].text == "="):
        declare, i = names, j + 1
    commands: list[tuple[Any, ...]] = []
    current: list[Any] = []
    while i < len(toks) and toks[i].text != closing:
        if toks[i].text == "|":
            if not current:
                raise TemplateError("a pipeline with an empty command")
            commands.append(tuple(current))
            current = []
            i += 1
            continue
        operand, i = _parse_operand(toks, i)
        current.append(operand)
    if closing is not None and i >= len(toks):
        raise TemplateError(f"missing {closing!r}")
    if not current:
        raise TemplateError("an empty pipeline")
    commands.append(tuple(current))
    return Pipeline(tuple(declare), tuple(commands)), i


def parse(source: str) -> list[Any]:
    """The template's tree: Text, Action and Branch nodes."""
    root: list[Any] = []
    # Open branches: (branch, the body to go back to at its end, whether it is an `else if` that the
    # parent's `end` closes too).
    stack: list[tuple[Branch, list[Any], bool]] = []
    body = root
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            body.append(Text(text))
        pos, trim_next = match.end(), bool(match.group(3))
        inner = match.group(2).strip()
        if inner.startswith("/*"):
            continue
        word, _, rest = inner.partition(" ")
        if word in ("if", "range", "with"):
            branch = Branch(word, _parse_pipeline(tokens(rest))[0])
            body.append(branch)
            stack.append((branch, body, False))
            body = branch.body
        elif word == "else":
            if not stack:
                raise TemplateError("{{else}} outside if/range/with")
            body = stack[-1][0].otherwise
            kind, _, cond = rest.strip().partition(" ")
            if kind in ("if", "with"):  # `else if`: a branch in the else body, closed by the same `end`
                chained = Branch(kind, _parse_pipeline(tokens(cond))[0])
                body.append(chained)
                stack.append((chained, body, True))
                body = chained.body
        elif word == "end":
            while stack and stack[-1][2]:
                stack.pop()
            if not stack:
                raise TemplateError("{{end}} without if/range/with")
            body = stack.pop()[1]
        else:
            body.append(Action(_parse_pipeline(tokens(inner))[0]))
    if stack:
        raise TemplateError(f"unclosed {{{{{stack[-1][0].keyword}}}}}: missing {{{{end}}}}")
    tail = source[pos:]
    if trim_next:
        tail = tail.lstrip()
    if tail:
        body.append(Text(tail))
    return root


# ----------------------------------------------------------------------------- values


def truthy(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return bool(value)


def go_string(value: Any) -> str:
    """How ``fmt.Print`` shows a JSON-decoded value."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def _lookup(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if value is MISSING or value is None:
            return MISSING
        if not isinstance(value, Mapping):
            raise TemplateError(f"can't evaluate field {key} in a {type(value).__name__}")
        value = value.get(key, MISSING)
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return int(str(value))
        except ValueError:
            try:
                return float(str(value))
            except ValueError:
                return 0
    return value


def _printf(fmt: str, *args: Any) -> str:
    """Go's printf for the verbs templates use: %s %v %d %q %f %%."""
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        verb = match.group(0)
        if verb == "%%":
            return "%"
        value = next(values, MISSING)
        if verb[-1] == "q":
            return json.dumps(go_string(value))
        if verb[-1] in "df":
            return (verb.replace("v", "s")) % _number(value)
        return go_string(value)

    return re.sub(r"%[-+ 0#]*\d*(?:\.\d+)?[svdqf%]", one, fmt)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, MISSING)
        elif isinstance(value, (list, tuple)) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            raise TemplateError(f"index of {go_string(key)} out of range")
    return value


def _default(fallback: Any, value: Any = MISSING) -> Any:
    return value if truthy(value) else fallback


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: next((v for v in a if not truthy(v)), a[-1]),
    "or": lambda *a: next((v for v in a if truthy(v)), a[-1]),
    "not": lambda v: not truthy(v),
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: _number(a) < _number(b),
    "le": lambda a, b: _number(a) <= _number(b),
    "gt": lambda a, b: _number(a) > _number(b),
    "ge": lambda a, b: _number(a) >= _number(b),
    "len": lambda v: 0 if v is MISSING or v is None else len(v),
    "index": _index,
    "print": lambda *a: "".join(go_string(v) for v in a),
    "println": lambda *a: " ".join(go_string(v) for v in a) + "\n",
    "printf": _printf,
    # Sprig's (Argo templates use these): arithmetic, strings, defaults, JSON
    "add": lambda *a: sum(_number(v) for v in a),
    "sub": lambda a, b: _number(a) - _number(b),
    "mul": lambda a, b: _number(a) * _number(b),
    "upper": lambda v: go_string(v).upper(),
    "lower": lambda v: go_string(v).lower(),
    "title": lambda v: go_string(v).title(),
    "trim": lambda v: go_string(v).strip(),
    "quote": lambda *a: " ".join(json.dumps(go_string(v)) for v in a),
    "replace": lambda old, new, v: go_string(v).replace(old, new),
    "contains": lambda sub, v: sub in go_string(v),
    "hasPrefix": lambda pre, v: go_string(v).startswith(pre),
    "join": lambda sep, v: sep.join(go_string(x) for x in v or ()),
    "default": _default,
    "toJson": lambda v: json.dumps(None if v is MISSING else v, separators=(",", ":")),
}

# ----------------------------------------------------------------------------- evaluation


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable ${name}")


def _operand(node: Any, dot: Any, scope: _Scope) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        base = dot if node.variable is None else scope.get(node.variable)
        return _lookup(base, node.path)
    if isinstance(node, Pipeline):
        return _pipeline(node, dot, scope)
    if isinstance(node, Function):
        return _call(node.name, [])
    raise TemplateError(f"unexpected {node!r}")


def _call(name: str, args: list[Any]) -> Any:
    function = FUNCTIONS.get(name)
    if function is None:
        raise TemplateError(f'function "{name}" not defined')
    try:
        return function(*args)
    except TypeError as exc:
        raise TemplateError(f"wrong number of arguments for {name}") from exc


def _pipeline(pipe: Pipeline, dot: Any, scope: _Scope) -> Any:
    value: Any = MISSING
    for n, command in enumerate(pipe.commands):
        head, rest = command[0], command[1:]
        piped = [value] if n > 0 else []
        if isinstance(head, Function):
            value = _call(head.name, [_operand(a, dot, scope) for a in rest] + piped)
        elif rest or piped:
            raise TemplateError("only a function takes arguments")
        else:
            value = _operand(head, dot, scope)
    for name in pipe.declare:
        scope.frames[-1][name] = value
    return value


def _render(nodes: list[Any], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Action):
            value = _pipeline(node.pipeline, dot, scope)
            if not node.pipeline.declare:
                out.append(go_string(value))
        else:
            _branch(node, dot, scope, out)


def _branch(node: Branch, dot: Any, scope: _Scope, out: list[str]) -> None:
    scope.frames.append({})
    try:
        if node.keyword == "range":
            _range(node, dot, scope, out)
            return
        cond = Pipeline((), node.pipeline.commands)
        value = _pipeline(cond, dot, scope)
        for name in node.pipeline.declare:
            scope.frames[-1][name] = value
        if truthy(value):
            _render(node.body, value if node.keyword == "with" else dot, scope, out)
        else:
            _render(node.otherwise, dot, scope, out)
    finally:
        scope.frames.pop()


def _range(node: Branch, dot: Any, scope: _Scope, out: list[str]) -> None:
    items = _pipeline(Pipeline((), node.pipeline.commands), dot, scope)
    if isinstance(items, Mapping):
        pairs: list[tuple[Any, Any]] = [(k, items[k]) for k in sorted(items)]
    elif isinstance(items, (list, tuple)):
        pairs = list(enumerate(items))
    elif isinstance(items, int) and not isinstance(items, bool):
        pairs = [(i, i) for i in range(items)]
    elif items is MISSING or items is None:
        pairs = []
    else:
        raise TemplateError(f"range can't iterate over {go_string(items)}")
    if not pairs:
        _render(node.otherwise, dot, scope, out)
        return
    names = node.pipeline.declare
    for key, value in pairs:
        if len(names) == 2:
            scope.frames[-1][names[0]], scope.frames[-1][names[1]] = key, value
        elif names:
            scope.frames[-1][names[0]] = value
        _render(node.body, value, scope, out)


@dataclass(frozen=True)
class Template:
    """A parsed template; :meth:`render` runs it over JSON-like data."""

    source: str
    nodes: list[Any]

    def render(self, data: Mapping[str, Any]) -> str:
        out: list[str] = []
        _render(self.nodes, data, _Scope(data), out)
        return "".join(out)


def compile_template(source: str) -> Template:
    return Template(source, parse(source))


def render(source: str, data: Mapping[str, Any]) -> str:
    return compile_template(source).render(data)
