"""The spec checks of the providers whose check is a few lines: ``provider.prometheus``, ``provider.web``,
``provider.job`` (the judge's is :mod:`analysis.providers.judge.spec`).

Pure and apart from the providers' measuring modules: template validation imports them through
:mod:`analysis.providers.registry` without the network libraries or the API client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from jsonpath_ng.ext.parser import parse as parse_jsonpath

__all__ = [
    "MAX_TIMEOUT_SECONDS", "job_problems", "oauth2_problems", "prometheus_problems", "sigv4_problems",
    "timeout_problem", "url_problem", "web_problems",
]

#: The longest ``timeout`` / ``timeoutSeconds`` a measurement may have: it holds a worker (and the
#: run's reconcile) for that long.
MAX_TIMEOUT_SECONDS: Final = 600


def url_problem(value: Any, field: str) -> str | None:
    """Why ``value`` is no http(s) URL with a host, or None (text with ``{{args.x}}`` is checked once substituted)."""
    text = str(value)
    if "{{" in text:
        return None
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - reading it checks the port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f'{field}: Invalid value: "{text}": not a URL: use http://HOST:PORT or https://HOST:PORT'
    return None


def timeout_problem(value: Any, field: str) -> str | None:
    """A ``timeout`` that is not a number of seconds from 1 to :data:`MAX_TIMEOUT_SECONDS`."""
    if value is None or (isinstance(value, str) and "{{" in value):
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_SECONDS:
        return f"{field}: Invalid value: {value!r}: must be a number of seconds from 1 to {MAX_TIMEOUT_SECONDS}"
    return None


def _json_path_problem(value: Any, field: str) -> str | None:
    """A ``jsonPath`` that does not parse (as :func:`analysis.providers.web.json_path` reads it)."""
    if not value or "{{" in str(value):
        return None
    text = str(value).strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    try:
        parse_jsonpath("$" + text if text.startswith(".") else text)
    except Exception as exc:  # JSONPathError, and plain Exceptions the parser raises for some input
        return f'{field}: Invalid value: "{value}": not a JSONPath ({exc}): use one like {{$.data.ok}}'
    return None


def oauth2_problems(spec: Any, where: str) -> list[str]:
    """``authentication.oauth2``: client credentials need all of tokenUrl, clientId and clientSecret."""
    if not isinstance(spec, Mapping):
        return [f"{where}: expected an object with tokenUrl, clientId, clientSecret"]
    problems = [f"{where}.{key}: required for the client-credentials flow"
                for key in ("tokenUrl", "clientId", "clientSecret") if not spec.get(key)]
    if spec.get("tokenUrl"):
        problems.append(url_problem(spec["tokenUrl"], f"{where}.tokenUrl") or "")
    scopes = spec.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
        problems.append(f"{where}.scopes: expected a list of strings")
    return [p for p in problems if p]


def sigv4_problems(spec: Any, where: str) -> list[str]:
    """``sigv4`` (region, profile, roleArn: each optional, the AWS default chain fills in the rest)."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        return [f"{where}: expected an object with region, profile, roleArn"]
    problems = [f"{where}.{key}: expected a string" for key in ("region", "profile", "roleArn")
                if spec.get(key) is not None and not isinstance(spec[key], str)]
    role = spec.get("roleArn")
    if isinstance(role, str) and role and "{{" not in role and not role.startswith("arn:"):
        problems.append(f'{where}.roleArn: Invalid value: "{role}": use a role ARN, arn:aws:iam::ACCOUNT:role/NAME')
    return problems


def _authentication_problems(spec: Any, where: str) -> list[str]:
    if not isinstance(spec, Mapping):
        return [f"{where}: expected an object"]
    chosen = [key for key in ("bearerToken", "basicAuth", "sigv4", "oauth2") if spec.get(key) is not None]
    if len(chosen) > 1:
        return [f"{where}: {' and '.join(chosen)} are mutually exclusive: choose one way to authenticate"]
    problems = sigv4_problems(spec.get("sigv4"), f"{where}.sigv4")
    if spec.get("oauth2") is not None:
        problems += oauth2_problems(spec["oauth2"], f"{where}.oauth2")
    return problems


def prometheus_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    problems = [] if spec.get("query") else [f"{where}.query: required"]
    if spec.get("address"):
        problems.append(url_problem(spec["address"], f"{where}.address") or "")
    problems.append(timeout_problem(spec.get("timeout"), f"{where}.timeout") or "")
    if spec.get("authentication") is not None:
        problems += _authentication_problems(spec["authentication"], f"{where}.authentication")
    return [p for p in problems if p]


def web_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    if not spec.get("url") and not spec.get("urlFrom"):
        return [f"{where}.url: url or urlFrom is required"]
    if spec.get("body") and spec.get("jsonBody"):
        return [f"{where}: body and jsonBody are mutually exclusive"]
    problems = [url_problem(spec["url"], f"{where}.url") if spec.get("url") else None]
    authentication = spec.get("authentication")
    if authentication is not None:
        # Argo's web provider signs with sigv4 or fetches an oauth2 token; ours does neither yet: refuse
        # rather than send the request unauthenticated.
        problems.append(
            f"{where}.authentication: not supported by the web provider (use headers with a "
            "secretKeyRef, or the prometheus provider's authentication)"
        )
    problems.append(_json_path_problem(spec.get("jsonPath"), f"{where}.jsonPath"))
    problems.append(timeout_problem(spec.get("timeoutSeconds"), f"{where}.timeoutSeconds"))
    return [p for p in problems if p]


def job_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None = None) -> list[str]:
    template = (spec.get("spec") or {}).get("template") if isinstance(spec.get("spec"), Mapping) else None
    if not isinstance(template, Mapping):
        return [f"{where}.spec.template: required"]
    return []
