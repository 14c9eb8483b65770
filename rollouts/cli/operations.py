"""The rollout verbs' effects through the API: read the Rollout, compute the patches with :mod:`actions`,
send them, and say what was done. The plugin's verbs and the dashboard's buttons both call these, so a
button does exactly what the command does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rollouts.cli import actions
from rollouts.cli import info as i
from rollouts.cli.client import REPLICASETS, ROLLOUTS, WORKLOAD_KINDS, Client, CLIError, Resource
from rollouts.model.labelselector import format_label_selector


def _action(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except actions.ActionError as exc:
        raise CLIError(str(exc)) from exc


def _send(client: Client, name: str, patches: list[actions.Patch], namespace: str | None) -> None:
    for patch in patches:
        client.patch(ROLLOUTS, name, patch, namespace)


def promote(
    client: Client, name: str, full: bool = False, skip_current_step: bool = False, skip_all_steps: bool = False,
    namespace: str | None = None,
) -> str:
    ro = client.get(ROLLOUTS, name, namespace)
    patches = _action(
        actions.promote_patches, ro, full=full, skip_current_step=skip_current_step, skip_all_steps=skip_all_steps
    )
    _send(client, name, patches, namespace)
    return f"rollout '{name}' {'fully promoted' if full else 'promoted'}"


def abort(client: Client, name: str, namespace: str | None = None) -> str:
    _send(client, name, actions.abort_patches(), namespace)
    return f"rollout '{name}' aborted"


def retry(client: Client, name: str, namespace: str | None = None) -> str:
    _send(client, name, actions.retry_patches(), namespace)
    return f"rollout '{name}' retried"


def pause(client: Client, name: str, namespace: str | None = None) -> str:
    _send(client, name, actions.pause_patches(), namespace)
    return f"rollout '{name}' paused"


def restart(
    client: Client, name: str, now: dt.datetime, delay_seconds: float = 0.0, delay_text: str = "0s",
    namespace: str | None = None,
) -> str:
    _send(client, name, actions.restart_patches(now, delay_seconds), namespace)
    return f"rollout '{name}' restarts in {delay_text}"


def _workload(client: Client, ro: Mapping[str, Any], namespace: str | None) -> tuple[Resource, dict[str, Any]] | None:
    """The object a `workloadRef` rollout takes its template from, or None for a plain rollout."""
    ref = i.spec_of(ro).get("workloadRef")
    if not isinstance(ref, Mapping):
        return None
    kind = str(ref.get("kind", ""))
    resource = WORKLOAD_KINDS.get(kind)
    if resource is None:
        raise CLIError(f"workload of type {kind} is not supported (use Deployment, ReplicaSet or PodTemplate)")
    return resource, client.get(resource, str(ref.get("name", "")), namespace)


def undo(client: Client, name: str, to_revision: int = 0, namespace: str | None = None) -> str:
    ro = client.get(ROLLOUTS, name, namespace)
    workload = _workload(client, ro, namespace)
    current_template = None
    if workload is not None:
        obj = workload[1]
        holder = obj if workload[0].plural == "podtemplates" else (obj.get("spec") or {})
        current_template = holder.get("template") or {}
    selector = format_label_selector(i.spec_of(ro).get("selector"))
    replicasets = client.list(REPLICASETS, namespace, label_selector=selector)
    plan = _action(actions.undo_plan, ro, replicasets.get("items") or [], to_revision, current_template)
    if plan.patch is None:
        return str(plan.message)
    if workload is None:
        client.patch(ROLLOUTS, name, plan.patch, namespace)
    else:
        client.patch(workload[0], str(i.meta(workload[1]).get("name", "")), plan.patch, namespace)
    return f"rollout '{name}' undo"
