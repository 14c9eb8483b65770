"""Tokens of a condition: numbers (Go's literal forms), strings (Go's escapes), names, operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from analysis.expr.errors import SyntaxFailure

__all__ = ["WORD_OPERATORS", "Token", "tokenize"]


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``pos``/``end`` are offsets into the source."""

    kind: str  # "number", "string", "name", "op", "eof"
    value: Any
    pos: int
    end: int


WORD_OPERATORS: Final = frozenset(
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


def tokenize(source: str) -> list[Token]:
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
                raise SyntaxFailure(i, "unterminated comment")
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
            tokens.append(Token("op" if word in WORD_OPERATORS else "name", word, i, j))
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
                raise SyntaxFailure(i, f"unexpected character {c!r}")
    tokens.append(Token("eof", None, n, n))
    return tokens


def _lex_number(source: str, i: int, tokens: list[Token]) -> int:
    n = len(source)
    start = i
    is_float = False
    if source[i] == "0" and i + 1 < n and source[i + 1] in "xXbBoO":
        return _lex_prefixed_int(source, i, tokens)
    j = _skip_digits(source, i)
    # "1.5" is a float; "1..3" or "1.foo" are not fractions.
    if j + 1 < n and source[j] == "." and source[j + 1].isdigit():
        is_float = True
        j = _skip_digits(source, j + 1)
    if j < n and source[j] in "eE":
        is_float = True
        j = _skip_exponent(source, j)
    if j < n and (source[j].isalpha() or source[j] == "_"):
        raise SyntaxFailure(start, f"invalid number literal {source[start : j + 1]!r}")
    text = source[start:j]
    if text.endswith("_") or "__" in text:
        raise SyntaxFailure(start, f"invalid number literal {text!r}")
    text = text.replace("_", "")
    value = float(text) if is_float else int(text)
    tokens.append(Token("number", value, start, j))
    return j


def _lex_prefixed_int(source: str, i: int, tokens: list[Token]) -> int:
    """``0x1f``, ``0b101``, ``0o17`` (``_`` separators allowed)."""
    n = len(source)
    start = i
    base = {"x": 16, "b": 2, "o": 8}[source[i + 1].lower()]
    j = i + 2
    while j < n and (source[j].isalnum() or source[j] == "_"):
        j += 1
    text = source[i:j].replace("_", "")
    try:
        value: int | float = int(text[2:], base)
    except ValueError:
        raise SyntaxFailure(start, f"invalid number literal {source[i:j]!r}") from None
    tokens.append(Token("number", value, start, j))
    return j


def _skip_digits(source: str, j: int) -> int:
    """The end of a run of digits (and ``_`` separators) starting at ``j``."""
    n = len(source)
    while j < n and (source[j].isdigit() or source[j] == "_"):
        j += 1
    return j


def _skip_exponent(source: str, j: int) -> int:
    """The end of the exponent ``e+10`` starting at ``j`` (the ``e``)."""
    n = len(source)
    k = j + 1
    if k < n and source[k] in "+-":
        k += 1
    if k >= n or not source[k].isdigit():
        raise SyntaxFailure(j, "invalid exponent in number literal")
    while k < n and source[k].isdigit():
        k += 1
    return k


def _lex_string(source: str, i: int, tokens: list[Token]) -> int:
    quote = source[i]
    n = len(source)
    start = i
    if quote == "`":  # raw string: no escapes
        close = source.find("`", i + 1)
        if close < 0:
            raise SyntaxFailure(start, "unterminated string literal")
        tokens.append(Token("string", source[i + 1 : close], start, close + 1))
        return close + 1
    out: list[str] = []
    i += 1
    while True:
        if i >= n:
            raise SyntaxFailure(start, "unterminated string literal")
        c = source[i]
        if c == quote:
            tokens.append(Token("string", "".join(out), start, i + 1))
            return i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise SyntaxFailure(start, "unterminated string literal")
        e = source[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in _HEX_ESCAPES:
            width = _HEX_ESCAPES[e]
            digits = source[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise SyntaxFailure(i, f"invalid escape sequence \\{e}{digits}")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise SyntaxFailure(i, f"invalid escape sequence \\{e}{digits}")
            out.append(chr(code))
            i += 2 + width
        elif e in "01234567":
            digits = source[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise SyntaxFailure(i, "invalid octal escape sequence (expected 3 octal digits)")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise SyntaxFailure(i, f"invalid escape sequence \\{e}")
