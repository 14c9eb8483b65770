"""Timestamps the way the API server spells them: RFC 3339 in UTC ("2024-05-01T10:00:00Z").

One parser for the controller (which counts in POSIX seconds) and the plugin (which shows datetimes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_datetime(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC when it names no zone); None when missing or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_time(value: Any) -> float | None:
    """An RFC 3339 timestamp as POSIX seconds; None when missing or unreadable."""
    parsed = parse_datetime(value)
    return parsed.timestamp() if parsed is not None else None


def format_time(moment: float | dt.datetime) -> str:
    """POSIX seconds or a datetime as RFC 3339 in UTC with whole seconds, as metav1.Time serialises."""
    seconds = moment.timestamp() if isinstance(moment, dt.datetime) else moment
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime(_FORMAT)
