"""The metric provider registry: provider keys -> provider classes and their spec checks, one line (or one
register call) to plug a provider in, and template validation without the providers' measuring code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from analysis.providers import registry
from analysis.providers.base import Context, ImmediateProvider, Measurement, ProviderSetup, build_providers
from analysis.providers.job import JobProvider
from analysis.providers.registry import ProviderEntry
from analysis.spec import validate_metrics


class EchoProvider(ImmediateProvider):
    """A provider a test plugs in; its spec check is its own (as an entry-point plugin's would be)."""

    kind = "echo"

    @staticmethod
    def spec_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None) -> list[str]:
        return [] if spec.get("say") else [f"{where}.say: required"]

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        raise NotImplementedError


def echo_check(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None) -> list[str]:
    return [f"{where}: checked by echo_check for {(metric or {}).get('name')}"]


def metric(provider: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "m", "provider": provider}


@pytest.mark.parametrize("key", sorted(registry.PROVIDERS))
def test_each_builtin_provider_is_registered_under_its_kind_with_its_own_check(key: str) -> None:
    cls = registry.provider_class(key)
    assert cls is not None and cls.kind == key
    assert registry.spec_check(key) is cls.spec_problems


def test_an_unknown_key_is_not_registered() -> None:
    assert not registry.is_registered("stackdriver")
    assert registry.provider_class("stackdriver") is None and registry.spec_check("stackdriver") is None
    assert validate_metrics([metric({"stackdriver": {}})]) == [
        "spec.metrics[0].provider.stackdriver: provider not supported by this controller"
    ]


def test_validation_asks_the_registered_check_and_wants_an_object() -> None:
    assert validate_metrics([metric({"prometheus": {}})]) == ["spec.metrics[0].provider.prometheus.query: required"]
    assert validate_metrics([metric({"web": "http://x"})]) == ["spec.metrics[0].provider.web: expected an object"]


def test_a_provider_plugs_in_with_one_register_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PROVIDERS", dict(registry.PROVIDERS))
    builtin = set(registry.PROVIDERS)
    registry.register("echo", ProviderEntry(f"{__name__}:EchoProvider"))
    assert validate_metrics([metric({"echo": {"say": "hi"}})]) == []
    assert validate_metrics([metric({"echo": {}})]) == ["spec.metrics[0].provider.echo.say: required"]
    registry.register("echo", ProviderEntry(f"{__name__}:EchoProvider", f"{__name__}:echo_check"))
    assert validate_metrics([metric({"echo": {"say": "hi"}})]) == [
        "spec.metrics[0].provider.echo: checked by echo_check for m"
    ]
    providers = build_providers(ProviderSetup(client=object(), cache=object()))  # type: ignore[arg-type]
    assert set(providers) == {"echo", *builtin}
    assert isinstance(providers["echo"], EchoProvider)


def test_the_controller_gets_one_provider_per_key_built_with_its_setup() -> None:
    client, cache = object(), object()
    providers = build_providers(ProviderSetup(client=client, cache=cache))  # type: ignore[arg-type]
    assert {key: p.kind for key, p in providers.items()} == {k: k for k in registry.PROVIDERS}
    job = providers["job"]
    assert isinstance(job, JobProvider) and job.client is client and job.cache is cache


def test_template_validation_imports_no_measuring_provider() -> None:
    """The planners validate templates: every provider's spec check, none of their network code."""
    script = """
import sys
from analysis.spec import validate_metrics
problems = validate_metrics([
    {"name": "p", "provider": {"prometheus": {"query": "up"}}},
    {"name": "w", "provider": {"web": {"url": "http://x"}}},
    {"name": "j", "provider": {"job": {"spec": {"template": {}}}}},
    {"name": "d", "provider": {"datadog": {"query": "avg:x{*}"}}},
    {"name": "s", "interval": "1m", "provider": {"judge": {"canary": {"errors": "e", "requests": "r"},
                                                "baseline": {"errors": "e", "requests": "r"}}}},
])
assert problems == [], problems
loaded = sorted(m for m in sys.modules if m.startswith(("analysis.providers", "rollouts.controller"))
                or m.split(".")[0] in ("httpx", "requests", "prometheus_api_client", "kubernetes", "kopf"))
print(" ".join(loaded))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == [
        "analysis.providers",
        "analysis.providers.hosted_spec",
        "analysis.providers.judge",
        "analysis.providers.judge.fields",
        "analysis.providers.judge.score_spec",
        "analysis.providers.judge.source_spec",
        "analysis.providers.judge.spec",
        "analysis.providers.registry",
        "analysis.providers.spec_checks",
    ]
