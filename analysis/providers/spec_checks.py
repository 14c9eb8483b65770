"""The spec checks of the providers whose check is a few lines: ``provider.prometheus``, ``provider.web``,
``provider.job`` (the judge's is :mod:`analysis.providers.judge.spec`).

Pure and apart from the providers' measuring modules: template validation imports them through
:mod:`analysis.providers.registry` without the network libraries or the API client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["job_problems", "prometheus_problems", "web_problems"]


def prometheus_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    if not spec.get("query"):
        return [f"{where}.query: required"]
    return []


def web_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    if not spec.get("url") and not spec.get("urlFrom"):
        return [f"{where}.url: url or urlFrom is required"]
    if spec.get("body") and spec.get("jsonBody"):
        return [f"{where}: body and jsonBody are mutually exclusive"]
    return []


def job_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    template = (spec.get("spec") or {}).get("template") if isinstance(spec.get("spec"), Mapping) else None
    if not isinstance(template, Mapping):
        return [f"{where}.spec.template: required"]
    return []
