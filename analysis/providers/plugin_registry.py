"""Metric provider plugins: third-party packages that declare a provider class in the entry-point group
``pyrollouts.metric_providers`` (name: the plugin's name as templates write it, such as
``example.com/threshold``; value: ``module:Class``), used in a metric as Argo's
``provider: {plugin: {<name>: {...its configuration...}}}``.

This module finds installed plugins (package metadata only) and checks a metric's ``provider.plugin``
block; a plugin's class is imported only to ask its own ``spec_problems`` when it has one (a plugin
should keep that import light: template validation runs in the planners). Pure: no network, no API client.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any, Final

__all__ = ["ENTRY_POINT_GROUP", "installed_plugins", "load_plugin", "plugin_name", "plugin_problems"]

ENTRY_POINT_GROUP: Final = "pyrollouts.metric_providers"


def installed_plugins() -> dict[str, metadata.EntryPoint]:
    """The installed plugins by name (read from the package metadata on ``sys.path`` now)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(name: str) -> type[Any]:
    """The provider class of the installed plugin ``name``; LookupError when none is installed."""
    entry = installed_plugins().get(name)
    if entry is None:
        raise LookupError(name)
    cls: type[Any] = entry.load()
    return cls


def plugin_name(spec: Mapping[str, Any]) -> str | None:
    """The one plugin a ``provider.plugin`` block names, or None."""
    names = [str(k) for k, v in spec.items() if v is not None]
    return names[0] if len(names) == 1 else None


def plugin_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    names = sorted(str(k) for k, v in spec.items() if v is not None)
    if len(names) != 1:
        got = f"got {', '.join(names)}" if names else "got none"
        return [f"{where}: name exactly one plugin, such as plugin: {{example.com/threshold: {{...}}}} ({got})"]
    name = names[0]
    field = f"{where}.{name}"
    if name not in installed_plugins():
        return [
            f'{field}: plugin "{name}" is not installed: install the Python package that provides it (entry point '
            f"group {ENTRY_POINT_GROUP}) beside the controller"
        ]
    config = spec[name]
    if not isinstance(config, Mapping):
        return [f"{field}: expected an object (the plugin's configuration)"]
    try:
        check = getattr(load_plugin(name), "spec_problems", None)
    except Exception as exc:  # a broken plugin must not break validation of the other metrics
        return [f'{field}: plugin "{name}" cannot be loaded: {type(exc).__name__}: {exc}']
    if check is None:
        return []
    problems: list[str] = check(config, field, metric)
    return problems
