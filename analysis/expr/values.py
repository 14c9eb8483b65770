"""Values as expr sees them: types, equality, Go's formatting and arithmetic, and the number parsing of
its conversion functions."""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from analysis.expr.errors import EvalFailure

MAX_REGEX_LENGTH: Final = 512
MAX_FLATTEN_DEPTH: Final = 16


def norm(value: Any) -> Any:
    """Map foreign numeric types (numpy scalars, Decimal, ...) onto int/float."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real | Decimal):  # Decimal is not registered as Real
        return float(value)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def type_name(value: Any) -> str:
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
    if is_array(value):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    """A value for an error message: its expr type and a short rendering."""
    text = go_format(value) if is_plain(value) else "?"
    if isinstance(value, str):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type_name(value)} ({text})" if value is not None else "nil"


def is_plain(value: Any, depth: int = 0) -> bool:
    if depth > MAX_FLATTEN_DEPTH:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if is_array(value):
        return all(is_plain(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str | int | float) and is_plain(v, depth + 1) for k, v in value.items())
    return False


def format_float(x: float) -> str:
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


def go_format(value: Any, depth: int = 0) -> str:
    if depth > MAX_FLATTEN_DEPTH:
        return "..."
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if is_array(value):
        return "[" + " ".join(go_format(norm(v), depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(((str(k), go_format(norm(v), depth + 1)) for k, v in value.items()))
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    raise EvalFailure(f"cannot convert {type_name(value)} to string")


def equal(a: Any, b: Any, depth: int = 0) -> bool:
    # expr: values of different types are simply not equal; numbers compare across int/float.
    if depth > MAX_FLATTEN_DEPTH:
        raise EvalFailure("values are nested too deeply to compare")
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if is_array(a) and is_array(b):
        return len(a) == len(b) and all(
            equal(norm(x), norm(y), depth + 1) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a.keys()) != set(b.keys()):
            return False
        return all(equal(norm(a[k]), norm(b[k]), depth + 1) for k in a)
    return False


@functools.lru_cache(maxsize=128)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise EvalFailure(
            f"regular expression is too long ({len(pattern)} characters, limit {MAX_REGEX_LENGTH})"
        )
    try:
        return _regex(pattern)
    except re.error as exc:
        raise EvalFailure(f"invalid regular expression {pattern!r}: {exc}") from None


def to_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        raise EvalFailure(f"number is too large: {value}") from None


def divide(a: Any, b: Any) -> float:
    # expr divides as float64, so 1/0 is +Inf and 0/0 is NaN, as in Go.
    x, y = to_float(a), to_float(b)
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def power(a: Any, b: Any) -> float:
    # Always float64 like Go's math.Pow: constant time whatever the exponent.
    x, y = to_float(a), to_float(b)
    try:
        return math.pow(x, y)
    except OverflowError:
        odd = y.is_integer() and int(y) % 2 == 1
        return -math.inf if (x < 0 and odd) else math.inf
    except ValueError:
        if x == 0:  # 0 ** negative
            return math.inf
        return math.nan  # negative ** fraction


def go_remainder(a: int, b: int) -> int:
    # Go's % truncates toward zero: the sign follows the dividend.
    r = abs(a) % abs(b)
    return -r if a < 0 else r


_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_WORDS: Final = frozenset(
    {"nan", "inf", "infinity", "+inf", "-inf", "+infinity", "-infinity", "+nan", "-nan"}
)


def parse_go_int(text: str, func: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise EvalFailure(f"{func}(): cannot parse {text!r} as an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise EvalFailure(f"{func}(): {text!r} is out of range for a 64-bit integer")
    return value


def parse_go_float(text: str, func: str) -> float:
    # Python's float() also accepts surrounding spaces and "1_0"; Go's ParseFloat does not.
    if text != text.strip() or "_" in text or not text:
        raise EvalFailure(f"{func}(): cannot parse {text!r} as a number")
    try:
        return float(text)
    except ValueError:
        if text.lower() in _FLOAT_WORDS:
            return float(text.lower())
        raise EvalFailure(f"{func}(): cannot parse {text!r} as a number") from None


def number_arg(func: str, value: Any) -> int | float:
    if not is_number(value):
        raise EvalFailure(f"{func}() expects a number, got {show(value)}")
    number: int | float = value
    return number


def flatten_numbers(func: str, values: Iterable[Any], depth: int = 0) -> list[int | float]:
    if depth > MAX_FLATTEN_DEPTH:
        raise EvalFailure(f"{func}(): arrays are nested too deeply")
    out: list[int | float] = []
    for raw in values:
        value = norm(raw)
        if is_array(value):
            out.extend(flatten_numbers(func, value, depth + 1))
        elif is_number(value):
            out.append(value)
        else:
            raise EvalFailure(f"{func}() expects numbers or arrays of numbers, got {show(value)}")
    return out


def round_half_away(x: float) -> float:
    # Go's math.Round (half away from zero), not Python's banker's rounding.
    if not math.isfinite(x):
        return x
    t = float(math.trunc(x))
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def truncate_to_int(func: str, value: int | float) -> int:
    if isinstance(value, int):
        return value
    if not math.isfinite(value):
        raise EvalFailure(f"{func}(): cannot convert {format_float(value)} to an integer")
    return int(value)
