"""Who wants what: the subscription annotations on a Rollout.

``notifications.pyrollouts.io/subscribe.<trigger>.<service>: <recipient>[;<recipient>...]`` (Argo's
``notifications.argoproj.io/...`` too); ``subscribe.<service>`` subscribes to the ``defaultTriggers``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIXES = ("notifications.pyrollouts.io/subscribe.", "notifications.argoproj.io/subscribe.")


@dataclass(frozen=True, order=True)
class Destination:
    service: str
    recipient: str

    def __str__(self) -> str:
        return f"{self.service}:{self.recipient}" if self.recipient else self.service


def destinations(
    annotations: Mapping[str, str] | None, default_triggers: Iterable[str] = ()
) -> dict[str, set[Destination]]:
    """Trigger name -> the destinations subscribed to it."""
    found: dict[str, set[Destination]] = {}
    for key, value in (annotations or {}).items():
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        trigger, dot, service = key[len(prefix) :].rpartition(".")
        triggers = [trigger] if dot else list(default_triggers)
        recipients = [r.strip() for r in str(value).split(";") if r.strip()] or [""]
        for name in triggers:
            found.setdefault(name, set()).update(Destination(service, r) for r in recipients)
    return found


def subscribed(annotations: Mapping[str, str] | None) -> bool:
    """Whether the object has any subscription at all (the cheap test before reading the ConfigMap)."""
    return any(k.startswith(PREFIXES) for k in annotations or {})
