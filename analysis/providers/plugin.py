"""The ``plugin`` provider: measures with the installed metric provider plugin a metric names
(``provider: {plugin: {<name>: {...}}}``, see :mod:`analysis.providers.plugin_registry`).

Each plugin class is a :class:`~analysis.providers.base.Provider` (``measure``, and ``resume`` /
``terminate`` for measurements that take a while); it is built once, with the controller's
:class:`~analysis.providers.base.ProviderSetup` when it has a ``build`` classmethod. A plugin that is not
installed, fails to load, or raises is an Error measurement naming it (the run carries on).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self

from analysis.phases import AnalysisPhase
from analysis.providers.base import Context, Measurement, Provider, ProviderSetup, format_time
from analysis.providers.plugin_registry import load_plugin, plugin_name, plugin_problems

__all__ = ["PluginProvider"]

log = logging.getLogger(__name__)

Call = Callable[[Provider], Awaitable[Measurement]]


class PluginProvider:
    kind = "plugin"
    spec_problems = staticmethod(plugin_problems)

    def __init__(self, setup: ProviderSetup | None = None) -> None:
        self.setup = setup
        self.plugins: dict[str, Provider] = {}

    @classmethod
    def build(cls, setup: ProviderSetup) -> Self:
        return cls(setup)

    def _plugin(self, name: str) -> Provider:
        if name not in self.plugins:
            cls = load_plugin(name)
            build = getattr(cls, "build", None)
            self.plugins[name] = build(self.setup) if build is not None and self.setup is not None else cls()
        return self.plugins[name]

    async def _call(self, metric: Mapping[str, Any], context: Context, call: Call) -> Measurement:
        spec = (metric.get("provider") or {}).get("plugin") or {}
        name = plugin_name(spec) if isinstance(spec, Mapping) else None
        try:
            if name is None:
                raise LookupError("provider.plugin names no single plugin")
            return await call(self._plugin(name))
        except LookupError:
            message = f'metric provider plugin "{name}" is not installed'
        except Exception as exc:  # a plugin's bug is its measurement's Error, with the trace in the log
            log.exception("metric provider plugin %s failed", name)
            message = f'metric provider plugin "{name}" failed: {type(exc).__name__}: {exc}'
        return Measurement(
            AnalysisPhase.ERROR,
            message=message,
            started_at=format_time(context.now),
            finished_at=format_time(dt.datetime.now(dt.UTC)),
        )

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        return await self._call(metric, context, lambda plugin: plugin.measure(metric, context))

    async def resume(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        return await self._call(metric, context, lambda plugin: plugin.resume(metric, measurement, context))

    async def terminate(self, metric: Mapping[str, Any], measurement: Measurement, context: Context) -> Measurement:
        return await self._call(metric, context, lambda plugin: plugin.terminate(metric, measurement, context))
