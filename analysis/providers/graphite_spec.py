"""The spec check of ``provider.graphite`` (pure; template validation imports it through the registry):
Argo's ``address`` and ``query`` (the render API's parameters, ``target=...&from=-5min``) and our
``timeout``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from analysis.providers.spec_checks import timeout_problem, url_problem

__all__ = ["graphite_problems"]


def graphite_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [] if spec.get("address") else [f"{where}.address: required: the Graphite web URL, http://HOST:PORT"]
    if spec.get("address"):
        problems.append(url_problem(spec["address"], f"{where}.address") or "")
    query = " ".join(str(spec.get("query") or "").split())
    if not query:
        problems.append(f"{where}.query: required: render API parameters, e.g. target=app.errors&from=-5min")
    elif "{{" not in query and not parse_qs(query).get("target"):
        problems.append(f'{where}.query: Invalid value: "{query[:80]}": no target=...: the query is the render '
                        "API's parameters, e.g. target=app.errors&from=-5min")
    problems.append(timeout_problem(spec.get("timeout"), f"{where}.timeout") or "")
    return [p for p in problems if p]
