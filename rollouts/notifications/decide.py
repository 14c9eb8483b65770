"""Which notifications an Event on a Rollout calls for: trigger, conditions, subscriptions, rendering, and
the key under which each is recorded as sent (so it is sent once, whoever records the Event again)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.expr.condition import evaluate_expression
from analysis.expr.errors import ConditionEvalError, ConditionSyntaxError
from rollouts.notifications.catalog import trigger_of
from rollouts.notifications.config import CONFIGMAP, Condition, Config, ConfigError
from rollouts.notifications.gotemplate import TemplateError, render
from rollouts.notifications.subscriptions import Destination, destinations

#: The Rollout annotation recording what was sent: {key: unix time}, as Argo CD's
#: ``notified.notifications.argoproj.io``.
NOTIFIED_ANNOTATION = "notified.notifications.pyrollouts.io"


@dataclass(frozen=True)
class Notification:
    """One rendered template for one destination; ``key`` identifies it in the notified annotation."""

    key: str
    trigger: str
    template: str
    destination: Destination
    content: Mapping[str, Any]


def render_template(config: Config, name: str, rollout: Mapping[str, Any]) -> dict[str, Any]:
    """The template's fields with every string rendered over ``{"rollout": rollout}``."""
    template = config.templates.get(name)
    if template is None:
        raise ConfigError(f"ConfigMap {CONFIGMAP}: no template.{name} (a trigger sends it); add the key")
    data = {"rollout": rollout}

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, str):
            try:
                return render(value, data)
            except TemplateError as exc:
                raise ConfigError(f"ConfigMap {CONFIGMAP}: template.{name} {where}: {exc}; fix the template") from exc
        if isinstance(value, Mapping):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, where) for v in value]
        return value

    result: dict[str, Any] = walk(template, "")
    return result


def _holds(condition: Condition, trigger: str, rollout: Mapping[str, Any]) -> bool:
    if not condition.when:
        return True
    try:
        return bool(evaluate_expression(condition.when, {"rollout": rollout}, f"trigger.{trigger} when"))
    except (ConditionSyntaxError, ConditionEvalError) as exc:
        raise ConfigError(f"ConfigMap {CONFIGMAP}: trigger.{trigger} `when`: {exc}; fix the condition") from exc


def event_id(condition: Condition, trigger: str, rollout: Mapping[str, Any], reason: str, message: str) -> str:
    """What makes this occurrence of the event one: ``oncePer``'s value when the trigger has one, else the
    Event and the Rollout's revision and step (so the same Event recorded twice is one occurrence)."""
    if condition.once_per:
        try:
            return str(evaluate_expression(condition.once_per, {"rollout": rollout}, f"trigger.{trigger} oncePer"))
        except (ConditionSyntaxError, ConditionEvalError) as exc:
            raise ConfigError(f"ConfigMap {CONFIGMAP}: trigger.{trigger} `oncePer`: {exc}; fix it") from exc
    status = rollout.get("status") or {}
    parts = (reason, message, str(status.get("currentPodHash")), str(status.get("currentStepIndex")))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def notifications_for(config: Config, rollout: Mapping[str, Any], reason: str, message: str) -> list[Notification]:
    """The notifications an Event with ``reason`` on ``rollout`` sends (none without a subscription)."""
    trigger = trigger_of(reason)
    wanted = destinations((rollout.get("metadata") or {}).get("annotations"), config.default_triggers).get(trigger)
    if not wanted:
        return []
    found = []
    for condition in config.triggers.get(trigger, []):
        if not _holds(condition, trigger, rollout):
            continue
        once = event_id(condition, trigger, rollout, reason, message)
        for template in condition.send:
            content = render_template(config, template, rollout)
            for dest in sorted(wanted):
                key = f"{trigger}:{once}:{template}:{dest}"
                found.append(Notification(key, trigger, template, dest, content))
    return found
