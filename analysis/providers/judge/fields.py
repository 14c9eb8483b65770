"""Reading ``provider.judge`` fields: each value parsed and range-checked, an error naming the field, its
range and what it means; and the table form (:class:`Field`) in which the judge spec lists the settings
that map one field to configuration arguments (pure; no I/O)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from analysis.stats import InvalidInput

__all__ = [
    "MAX_HORIZON",
    "Field",
    "JudgeSpecError",
    "Parser",
    "at_least_zero",
    "boolean",
    "converted",
    "field",
    "field_kwargs",
    "field_names",
    "intervals",
    "number",
    "one_of",
    "positive",
    "probability",
    "real",
    "whole",
]


class JudgeSpecError(InvalidInput):
    """A ``provider.judge`` field is wrong; the message starts with the field's name."""


class Parser(Protocol):
    """Reads ``spec[key]``: its value (None when unset), or JudgeSpecError naming ``where`` + ``key``."""

    def __call__(self, spec: Mapping[str, Any], key: str, where: str = "") -> object: ...


class NumberParser(Protocol):
    def __call__(self, spec: Mapping[str, Any], key: str, where: str = "") -> float | None: ...


class WholeParser(Protocol):
    def __call__(self, spec: Mapping[str, Any], key: str, where: str = "") -> int | None: ...


def number(spec: Mapping[str, Any], key: str, where: str = "") -> float | None:
    """``spec[key]`` as a finite number, None when unset; ``where`` prefixes the field's name in errors."""
    value = spec.get(key)
    if value is None or value == "":
        return None
    name = f"{where}{key}"
    if isinstance(value, bool):
        raise JudgeSpecError(f"{name}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise JudgeSpecError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise JudgeSpecError(f"{name}: expected a finite number, got {value!r}")
    return out


def real(rule: str, accepts: Callable[[float], bool]) -> NumberParser:
    """A parser of numbers that ``accepts`` takes; any other is "<field>: <rule>, got <value>"."""

    def parse(spec: Mapping[str, Any], key: str, where: str = "") -> float | None:
        value = number(spec, key, where)
        if value is not None and not accepts(value):
            raise JudgeSpecError(f"{where}{key}: {rule}, got {spec.get(key)!r}")
        return value

    return parse


probability: Final = real("must be between 0 and 1 (exclusive)", lambda v: 0.0 < v < 1.0)
positive: Final = real("must be > 0", lambda v: v > 0.0)
at_least_zero: Final = real("must be >= 0", lambda v: v >= 0.0)


def whole(least: int, most: int | None = None, unit: str = "") -> WholeParser:
    """A parser of integers from ``least`` (to ``most``, described by ``unit``, when given)."""

    def parse(spec: Mapping[str, Any], key: str, where: str = "") -> int | None:
        value = number(spec, key, where)
        if value is None:
            return None
        if not value.is_integer() or value < least:
            raise JudgeSpecError(f"{where}{key}: expected an integer >= {least}, got {spec.get(key)!r}")
        if most is not None and value > most:
            raise JudgeSpecError(
                f"{where}{key}: expected an integer from {least} to {most} ({unit}), got {spec.get(key)!r}"
            )
        return int(value)

    return parse


# The most intervals a horizon may name (LatencyTestConfig's and SparseRule's own limit).
MAX_HORIZON: Final = 100_000
intervals: Final = whole(1, MAX_HORIZON, "intervals")


def boolean(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise JudgeSpecError(f"{key}: expected true or false, got {value!r}")


def one_of(allowed: tuple[str, ...], wording: str = "must be") -> Parser:
    """A parser of one of the ``allowed`` words; any other is "<field>: <wording> one of <allowed>, got <value>"."""

    def parse(spec: Mapping[str, Any], key: str, where: str = "") -> str | None:
        value = spec.get(key)
        if value is None or value == "":
            return None
        if value not in allowed:
            raise JudgeSpecError(f"{where}{key}: {wording} one of {', '.join(allowed)}, got {value!r}")
        return str(value)

    return parse


def converted(parse: Parser, convert: Callable[[Any], object]) -> Parser:
    """``parse``, then ``convert`` of the value it read (a unit, an enum type)."""

    def read(spec: Mapping[str, Any], key: str, where: str = "") -> object:
        value = parse(spec, key, where)
        return None if value is None else convert(value)

    return read


@dataclass(frozen=True)
class Field:
    """A setting: the spec's ``key``, how its value is read and checked, and the configuration arguments
    (``kwargs``, usually one) it sets when given."""

    key: str
    parse: Parser
    kwargs: tuple[str, ...]


def field(key: str, parse: Parser, *kwargs: str) -> Field:
    return Field(key, parse, kwargs)


def field_names(table: tuple[Field, ...]) -> tuple[str, ...]:
    return tuple(f.key for f in table)


def field_kwargs(spec: Mapping[str, Any], table: tuple[Field, ...], where: str = "") -> dict[str, Any]:
    """The configuration arguments of the table's fields that ``spec`` sets, in table order (the first bad
    field raises JudgeSpecError naming it, after ``where``)."""
    kwargs: dict[str, Any] = {}
    for setting in table:
        value = setting.parse(spec, setting.key, where)
        if value is not None:
            kwargs.update(dict.fromkeys(setting.kwargs, value))
    return kwargs
