"""The spec check of ``provider.influxdb`` (pure; template validation imports it through the registry):
Argo's ``profile`` (the Secret holding ``address``, ``authToken`` and ``org``; default ``influxdb``) and
``query`` (Flux), and our ``timeout``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from analysis.providers.spec_checks import timeout_problem

__all__ = ["DEFAULT_PROFILE", "influxdb_problems"]

DEFAULT_PROFILE: Final = "influxdb"
_SECRET_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def influxdb_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [] if str(spec.get("query") or "").strip() else [f"{where}.query: required: a Flux query"]
    profile = spec.get("profile")
    if profile is not None and "{{" not in str(profile) and not _SECRET_NAME.fullmatch(str(profile)):
        problems.append(f'{where}.profile: Invalid value: "{profile}": the name of a Secret (lower case, digits, '
                        "-, .) holding address, authToken and org")
    problems.append(timeout_problem(spec.get("timeout"), f"{where}.timeout") or "")
    return [p for p in problems if p]
