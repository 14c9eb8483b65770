"""The plain functions a condition may call (``len``, ``mean``, Argo's ``asInt`` ...); the closures
(``all``, ``map`` ...) need the interpreter and live there."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from analysis.expr.errors import EvalFailure
from analysis.expr.values import (
    flatten_numbers,
    go_format,
    is_array,
    is_number,
    norm,
    number_arg,
    parse_go_float,
    parse_go_int,
    round_half_away,
    show,
    to_float,
    truncate_to_int,
)

__all__ = ["PLAIN"]


def _len(args: list[Any]) -> int:
    (value,) = args
    if is_array(value) or isinstance(value, str | Mapping):
        return len(value)
    raise EvalFailure(f"len() expects an array, a string or a map, got {show(value)}")


def _abs(args: list[Any]) -> int | float:
    return abs(number_arg("abs", args[0]))


def _ceil(args: list[Any]) -> float:
    x = to_float(number_arg("ceil", args[0]))
    return float(math.ceil(x)) if math.isfinite(x) else x


def _floor(args: list[Any]) -> float:
    x = to_float(number_arg("floor", args[0]))
    return float(math.floor(x)) if math.isfinite(x) else x


def _round(args: list[Any]) -> float:
    return round_half_away(to_float(number_arg("round", args[0])))


def _int(args: list[Any]) -> int:
    (value,) = args
    if isinstance(value, str):
        return parse_go_int(value, "int")
    return truncate_to_int("int", number_arg("int", value))


def _float(args: list[Any]) -> float:
    (value,) = args
    if isinstance(value, str):
        return parse_go_float(value, "float")
    return to_float(number_arg("float", value))


def _string(args: list[Any]) -> str:
    return go_format(args[0])


def _as_int(args: list[Any]) -> int:
    # Argo's asInt: numbers are truncated, strings parsed as base-10 integers.
    (value,) = args
    if isinstance(value, str):
        return parse_go_int(value, "asInt")
    if not is_number(value):
        raise EvalFailure(f"asInt() not supported on {show(value)}")
    return truncate_to_int("asInt", value)


def _as_float(args: list[Any]) -> float:
    (value,) = args
    if isinstance(value, str):
        return parse_go_float(value, "asFloat")
    if not is_number(value):
        raise EvalFailure(f"asFloat() not supported on {show(value)}")
    return to_float(value)


def _is_nan(args: list[Any]) -> bool:
    value = number_arg("isNaN", args[0])
    return isinstance(value, float) and math.isnan(value)


def _is_inf(args: list[Any]) -> bool:
    value = number_arg("isInf", args[0])
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
    if not is_array(value):
        raise EvalFailure(f"first() expects an array, got {show(value)}")
    return norm(value[0]) if value else None


def _last(args: list[Any]) -> Any:
    (value,) = args
    if value is None:
        return None
    if not is_array(value):
        raise EvalFailure(f"last() expects an array, got {show(value)}")
    return norm(value[-1]) if value else None


def _min(args: list[Any]) -> int | float | None:
    values = flatten_numbers("min", args)
    return min(values) if values else None


def _max(args: list[Any]) -> int | float | None:
    values = flatten_numbers("max", args)
    return max(values) if values else None


def _mean(args: list[Any]) -> float:
    values = flatten_numbers("mean", args)
    return math.fsum(to_float(v) for v in values) / len(values) if values else 0.0


def _median(args: list[Any]) -> float:
    values = sorted(to_float(v) for v in flatten_numbers("median", args))
    n = len(values)
    if n == 0:
        return 0.0
    if n % 2:
        return values[n // 2]
    return (values[n // 2 - 1] + values[n // 2]) / 2


PLAIN: Final[dict[str, Callable[[list[Any]], Any]]] = {
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
