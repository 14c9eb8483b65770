"""Which provider serves which key of a metric's ``provider`` block (``prometheus``, ``cloudWatch``, ``judge``, ...).

``PROVIDERS`` maps a key to a :class:`ProviderEntry`: where the key's provider class is (``"module:Class"``,
a :class:`~analysis.providers.base.Provider`) and where its spec check is (``"module:function"``, a pure
:class:`SpecCheck`). Both are imported on first use, so

* template validation (:mod:`analysis.spec`, which the planners run) imports a provider's spec check only,
  never its measuring code with the network libraries and the API client;
* a provider module may import :mod:`analysis.spec` (``SpecError``, ``duration_seconds``) without a cycle;
* a provider module never imports the others.

A provider plugs in with one line here or one :func:`register` call; :mod:`analysis.spec` and the
AnalysisRun controller (:func:`analysis.providers.base.build_providers`) only ask this module. Python
entry-point plugins (group ``pyrollouts.metric_providers``) are served under the one key ``plugin``, as
Argo writes them (:mod:`analysis.providers.plugin_registry`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "PROVIDERS",
    "ProviderEntry",
    "SpecCheck",
    "is_registered",
    "provider_class",
    "register",
    "spec_check",
    "spec_problems",
]


class SpecCheck(Protocol):
    """A provider's check of its metric's ``provider.<key>`` block: the problems, each naming its field
    under ``where`` (``spec.metrics[0].provider.judge``); ``metric`` is the whole metric. Pure."""

    def __call__(self, spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None) -> list[str]: ...


@dataclass(frozen=True)
class ProviderEntry:
    """Where a registered provider lives: its class and (for built-in providers) its pure spec check."""

    provider: str  # "module:Class"
    spec_check: str | None = None  # "module:function"; None: the provider class's own spec_problems


PROVIDERS: dict[str, ProviderEntry] = {
    "prometheus": ProviderEntry(
        "analysis.providers.prometheus:PrometheusProvider", "analysis.providers.spec_checks:prometheus_problems"
    ),
    "web": ProviderEntry("analysis.providers.web:WebProvider", "analysis.providers.spec_checks:web_problems"),
    "job": ProviderEntry("analysis.providers.job:JobProvider", "analysis.providers.spec_checks:job_problems"),
    "cloudWatch": ProviderEntry(
        "analysis.providers.cloudwatch:CloudWatchProvider", "analysis.providers.cloudwatch_spec:cloudwatch_problems"
    ),
    "graphite": ProviderEntry(
        "analysis.providers.graphite:GraphiteProvider", "analysis.providers.graphite_spec:graphite_problems"
    ),
    "kayenta": ProviderEntry(
        "analysis.providers.kayenta:KayentaProvider", "analysis.providers.kayenta_spec:kayenta_problems"
    ),
    "influxdb": ProviderEntry(
        "analysis.providers.influxdb:InfluxdbProvider", "analysis.providers.influxdb_spec:influxdb_problems"
    ),
    "judge": ProviderEntry(
        "analysis.providers.judge.provider:JudgeProvider", "analysis.providers.judge.score_spec:judge_problems"
    ),
    "datadog": ProviderEntry(
        "analysis.providers.datadog:DatadogProvider", "analysis.providers.hosted_spec:datadog_problems"
    ),
    "newRelic": ProviderEntry(
        "analysis.providers.newrelic:NewRelicProvider", "analysis.providers.hosted_spec:newrelic_problems"
    ),
    "wavefront": ProviderEntry(
        "analysis.providers.wavefront:WavefrontProvider", "analysis.providers.hosted_spec:wavefront_problems"
    ),
    "skywalking": ProviderEntry(
        "analysis.providers.skywalking:SkyWalkingProvider", "analysis.providers.hosted_spec:skywalking_problems"
    ),
    "plugin": ProviderEntry(
        "analysis.providers.plugin:PluginProvider", "analysis.providers.plugin_registry:plugin_problems"
    ),
}


def register(key: str, entry: ProviderEntry) -> None:
    """Serve ``provider.<key>`` with ``entry`` (a new provider, or a plugin replacing a built-in one)."""
    PROVIDERS[key] = entry


def is_registered(key: str) -> bool:
    return key in PROVIDERS


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def provider_class(key: str) -> type[Any] | None:
    """The provider class registered for ``key`` (imported now), or None."""
    entry = PROVIDERS.get(key)
    if entry is None:
        return None
    cls: type[Any] = _load(entry.provider)
    return cls


def spec_check(key: str) -> SpecCheck | None:
    """The spec check registered for ``key`` (imported now), or None."""
    entry = PROVIDERS.get(key)
    if entry is None:
        return None
    if entry.spec_check is None:
        check: SpecCheck = _load(entry.provider).spec_problems
        return check
    check = _load(entry.spec_check)
    return check


def spec_problems(key: str, spec: Any, where: str, metric: Mapping[str, Any]) -> list[str]:
    """The problems of a metric's ``provider.<key>`` block (``spec``) for a registered ``key``."""
    check = spec_check(key)
    assert check is not None, f"provider {key!r} is not registered"
    if not isinstance(spec, Mapping):
        return [f"{where}: expected an object"]
    return check(spec, where, metric)
