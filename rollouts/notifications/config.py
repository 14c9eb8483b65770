"""The notification ConfigMap and Secret, parsed: services, templates, triggers (Argo's keys).

``service.<type>[.<name>]`` (the service is called ``<name>``, else ``<type>``), ``template.<name>``,
``trigger.<name>`` and ``defaultTriggers`` hold YAML. A ``$key`` in a service's values is replaced by the
Secret's ``key``; the values so used are kept in :attr:`Config.secrets` so that nothing prints them."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from rollouts.notifications.catalog import DEFAULT_TEMPLATES, DEFAULT_TRIGGERS

CONFIGMAP = "pyrollouts-notification-configmap"
SECRET = "pyrollouts-notification-secret"
SERVICE_TYPES = ("webhook", "slack", "teams", "email", "apprise")
_REFERENCE = re.compile(r"\$([A-Za-z0-9_.-]+)")


class ConfigError(ValueError):
    """A key of the ConfigMap that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class Service:
    type: str
    name: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Condition:
    """One entry of a trigger: send ``send`` templates when ``when`` holds, once per ``once_per``."""

    send: tuple[str, ...]
    when: str = ""
    once_per: str = ""


@dataclass
class Config:
    services: dict[str, Service] = field(default_factory=dict)
    templates: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    triggers: dict[str, list[Condition]] = field(default_factory=dict)
    default_triggers: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def redact(self, text: str) -> str:
        """``text`` with every Secret value this configuration used replaced by ``***``."""
        for value in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def secret_values(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """The Secret's ``data`` (base64) and ``stringData`` as text."""
    if not secret:
        return {}
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


def _substitute(value: Any, secrets: Mapping[str, str], used: set[str]) -> Any:
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in secrets:
                return match.group(0)
            if secrets[key]:
                used.add(secrets[key])
            return secrets[key]

        return _REFERENCE.sub(one, value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, secrets, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, secrets, used) for v in value]
    return value


def _yaml(key: str, text: str, want: type) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"ConfigMap {CONFIGMAP}: key {key!r} is not valid YAML ({exc}); fix its value") from exc
    if not isinstance(value, want):
        raise ConfigError(f"ConfigMap {CONFIGMAP}: key {key!r} must be a YAML {want.__name__}; fix its value")
    return value


def _trigger(key: str, text: str) -> list[Condition]:
    conditions = []
    for entry in _yaml(key, text, list):
        send = entry.get("send") if isinstance(entry, Mapping) else None
        if not isinstance(send, list) or not send:
            raise ConfigError(f"ConfigMap {CONFIGMAP}: {key!r}: every entry needs `send: [template, ...]`")
        conditions.append(
            Condition(tuple(map(str, send)), str(entry.get("when") or ""), str(entry.get("oncePer") or ""))
        )
    return conditions


def parse_config(data: Mapping[str, str] | None, secret: Mapping[str, Any] | None = None) -> Config:
    """The ConfigMap's ``data`` (and the Secret object) as a :class:`Config`, over Argo's built-in triggers."""
    secrets = secret_values(secret)
    config = Config()
    config.templates = {name: _yaml(f"template.{name}", text, dict) for name, text in DEFAULT_TEMPLATES.items()}
    config.triggers = {name: _trigger(f"trigger.{name}", text) for name, text in DEFAULT_TRIGGERS.items()}
    for key, text in (data or {}).items():
        kind, _, rest = key.partition(".")
        if kind == "service":
            stype, _, name = rest.partition(".")
            if stype not in SERVICE_TYPES:
                raise ConfigError(
                    f"ConfigMap {CONFIGMAP}: {key!r}: unknown service type {stype!r}; "
                    f"use one of {', '.join(SERVICE_TYPES)} (others through `apprise`)"
                )
            options = _substitute(_yaml(key, text, dict) if text.strip() else {}, secrets, config.secrets)
            config.services[name or stype] = Service(stype, name or stype, options)
        elif kind == "template" and rest:
            config.templates[rest] = _yaml(key, text, dict)
        elif kind == "trigger" and rest:
            config.triggers[rest] = _trigger(key, text)
        elif key == "defaultTriggers":
            config.default_triggers = [str(t) for t in _yaml(key, text, list)]
    return config
