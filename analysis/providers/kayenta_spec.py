"""The spec check of ``provider.kayenta`` (pure; template validation imports it through the registry):
Argo's ``address``, ``application``, ``canaryConfigName``, ``metricsAccountName``,
``configurationAccountName``, ``storageAccountName``, ``threshold{pass,marginal}`` and ``scopes[]{name,
controlScope, experimentScope}`` (each scope ``{scope, region, step, start, end}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.providers.spec_checks import url_problem

__all__ = ["kayenta_problems"]

_REQUIRED = ("address", "application", "canaryConfigName", "metricsAccountName", "configurationAccountName",
             "storageAccountName")


def _score(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100


def _threshold_problems(threshold: Any, where: str) -> list[str]:
    if not isinstance(threshold, Mapping):
        return [f"{where}: required: {{pass: 90, marginal: 75}}"]
    problems = [f"{where}.{key}: Invalid value: {threshold.get(key)!r}: a score from 0 to 100"
                for key in ("pass", "marginal") if not _score(threshold.get(key))]
    if not problems and threshold["marginal"] > threshold["pass"]:
        problems.append(f"{where}.marginal: Invalid value: {threshold['marginal']}: at most pass ({threshold['pass']})")
    return problems


def _scope_problems(scope: Any, where: str) -> list[str]:
    if not isinstance(scope, Mapping):
        return [f"{where}: expected an object with name, controlScope, experimentScope"]
    problems = [] if scope.get("name") else [f"{where}.name: required"]
    for key in ("controlScope", "experimentScope"):
        part = scope.get(key)
        if not isinstance(part, Mapping) or not part.get("scope"):
            problems.append(f"{where}.{key}.scope: required (the scope's selector, e.g. the ReplicaSet's hash)")
        elif part.get("step") is not None and not isinstance(part["step"], int):
            problems.append(f"{where}.{key}.step: expected seconds as an integer")
    return problems


def kayenta_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [f"{where}.{key}: required" for key in _REQUIRED if not spec.get(key)]
    if spec.get("address"):
        problems.append(url_problem(spec["address"], f"{where}.address") or "")
    problems += _threshold_problems(spec.get("threshold"), f"{where}.threshold")
    scopes = spec.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        problems.append(f"{where}.scopes: required: at least one scope with controlScope and experimentScope")
    else:
        for i, scope in enumerate(scopes):
            problems += _scope_problems(scope, f"{where}.scopes[{i}]")
    return [p for p in problems if p]
