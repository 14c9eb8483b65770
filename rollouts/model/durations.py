"""Durations and ages the way the Go tools spell them (shared by the controller, the analysis
engine, the sandbox and the plugin).

`parse_go_duration` accepts what Go's `time.ParseDuration` accepts ("30s", "1m30s", "1.5h", "300ms", "0");
it is the only Go-duration grammar here: `int_or_duration_seconds` (a pause step's IntOrString duration)
calls it.
`human_duration` is Kubernetes' `duration.HumanDuration`, the AGE column of kubectl and of the rollout tree.
"""

from __future__ import annotations

import re
from typing import Any

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError (naming the text) when Go would reject it."""
    original = text
    if not text:
        raise ValueError('invalid duration ""')
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'invalid duration "{original}"')
    total = 0.0
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f'invalid duration "{original}"')
        number, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f'unknown unit "{unit}" in duration "{original}"')
        total += float(number) * _UNITS[unit]
        position = match.end()
    return sign * total


class DurationError(ValueError):
    """A duration that is neither whole seconds nor a Go duration string such as ``30s``, ``5m``, ``1h30m``."""


def int_or_duration_seconds(value: Any) -> int:
    """Whole seconds of an IntOrString duration (a pause step's ``duration``, Argo's ``DurationSeconds``):
    ``30`` or ``"30"`` (seconds), or a Go duration ``"30s"``, ``"5m"``, ``"1h30m"``.

    Fractions of a second are dropped, as Argo does (``int32(d.Seconds())``)."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    try:
        return int(parse_go_duration(text))
    except ValueError:
        raise DurationError(f"{text!r} is not a duration (use seconds, or a unit: 30s, 5m, 1h)") from None


def human_duration(seconds: float) -> str:
    """Kubernetes' `duration.HumanDuration`: "45s", "3m12s", "12m", "5h3m", "2d4h", "400d", "3y20d"."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"
