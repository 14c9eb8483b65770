"""The plugin's duration flags (`--in`, `--timeout`): the text the user wrote and its seconds."""

from __future__ import annotations

from dataclasses import dataclass

from rollouts.model.durations import human_duration, parse_go_duration

__all__ = ["Duration", "human_duration", "parse_go_duration"]


@dataclass(frozen=True)
class Duration:
    """A duration flag: its value in seconds and the text the user wrote (echoed in messages)."""

    seconds: float
    text: str
