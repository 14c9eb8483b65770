"""Step plugins (Argo's `plugin:` canary step) as Python entry points of the group `pyrollouts.step_plugins`.

A distribution declares `[project.entry-points."pyrollouts.step_plugins"] my-plugin = "pkg.module:Plugin"`;
a step `{plugin: {name: my-plugin, config: {...}}}` then runs it. The object the entry point names (a class
is instantiated without arguments) follows :class:`StepPlugin`. The controller calls it while planning a
pass, so each call must return quickly: long work returns ``Running`` with a ``requeue_after`` and is
looked at again then, carrying the ``status`` it returned last time.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = ["GROUP", "PHASES", "StepPlugin", "StepResult", "installed", "load", "plugin_step_errors"]

GROUP: Final = "pyrollouts.step_plugins"
PHASES: Final = ("Running", "Successful", "Failed", "Error")


@dataclass(frozen=True)
class StepResult:
    """What a call answers: ``phase`` (one of :data:`PHASES`), a ``message``, the ``status`` the step keeps
    for the next call (JSON-able), and when to be called again while Running."""

    phase: str
    message: str = ""
    status: Mapping[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


class StepPlugin(Protocol):
    """``rollout`` is the Rollout object (read-only), ``config`` the step's ``plugin.config``, ``status``
    what the last call of this step returned (empty at first)."""

    def run(self, rollout: Mapping[str, Any], config: Mapping[str, Any], status: Mapping[str, Any]) -> StepResult:
        """Do (or go on with) the step's work."""

    def terminate(
        self, rollout: Mapping[str, Any], config: Mapping[str, Any], status: Mapping[str, Any]
    ) -> StepResult:
        """The Rollout left the step while it was Running (promoted past it): stop what it started."""

    def abort(self, rollout: Mapping[str, Any], config: Mapping[str, Any], status: Mapping[str, Any]) -> StepResult:
        """The update was aborted: undo what the step did."""


_loaded: dict[str, StepPlugin] = {}


def installed() -> dict[str, importlib.metadata.EntryPoint]:
    """The step plugins installed in this Python, by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def load(name: str) -> StepPlugin | None:
    """The plugin named ``name`` (loaded once per process), or None when none is installed by that name."""
    if name in _loaded:
        return _loaded[name]
    entry = installed().get(name)
    if entry is None:
        return None
    target = entry.load()
    plugin: StepPlugin = target() if isinstance(target, type) else target
    _loaded[name] = plugin
    return plugin


def plugin_step_errors(raw: Any, path: str) -> list[str]:
    """A `plugin:` step that names no plugin, or one not installed in this Python."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if not isinstance(name, str) or not name:
        return [f"{path}.name: Required value: the name of an installed step plugin"]
    known = installed()
    if name in known:
        return []
    names = ", ".join(sorted(known)) or "none"
    return [
        f'{path}.name: Invalid value: "{name}": no step plugin "{name}" is installed (installed: {names}): '
        f"install the package that provides it (entry point group {GROUP}) where the controller runs"
    ]
