"""The plugin's duration flags (`--in`, `--timeout`): the text the user wrote and its seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Duration:
    """A duration flag: its value in seconds and the text the user wrote (echoed in messages)."""

    seconds: float
    text: str
