"""The canary's `plugin:` steps (:mod:`rollouts.model.stepplugins`), as Argo's step plugins: the step runs its
plugin until it answers Successful (the step is done) or Failed (the update is aborted); Error is retried
after 10 s. A step left while Running is terminated; an aborted update has every plugin step that ran
aborted, newest first. What each call answered is kept in `status.canary.stepPluginStatuses[]` (one entry
per step index: name, phase, message, the plugin's own status, the last operation, times, executions)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from rollouts.model.stepplugins import PHASES, StepResult, load
from rollouts.model.steps import current_step

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner

STATUS_KEY: Final = "stepPluginStatuses"
ERROR_RETRY_SECONDS: Final = 10.0
DEFAULT_REQUEUE_SECONDS: Final = 10.0
FAILED_MESSAGE: Final = 'Step plugin "{name}" failed: {message}'


def _call(planner: Planner, entry: dict[str, Any], config: Mapping[str, Any], operation: str) -> StepResult:
    """One call of the entry's plugin; a missing plugin, a raise or a bad answer is an Error result."""
    name = str(entry.get("name"))
    plugin = load(name)
    if plugin is None:
        return StepResult("Error", f'step plugin "{name}" is not installed')
    try:
        method = {"Run": plugin.run, "Terminate": plugin.terminate, "Abort": plugin.abort}[operation]
        result = method(copy.deepcopy(dict(planner.obs.rollout)), config, dict(entry.get("status") or {}))
    except Exception as exc:  # a plugin's bug must not stop the controller: the step shows it
        return StepResult("Error", f"{operation} raised {type(exc).__name__}: {exc}")
    if not isinstance(result, StepResult) or result.phase not in PHASES:
        return StepResult("Error", f"{operation} returned {result!r}, not a StepResult with a phase of {PHASES}")
    return result


def _record(planner: Planner, entry: dict[str, Any], result: StepResult, operation: str) -> None:
    entry.update(phase=result.phase, message=result.message, status=dict(result.status), operation=operation)
    entry["updatedAt"] = planner.stamp
    entry["executions"] = int(entry.get("executions") or 0) + 1
    if result.phase in ("Successful", "Failed"):
        entry["finishedAt"] = planner.stamp
    if not entry["message"]:
        del entry["message"]


def _config(planner: Planner, index: int) -> Mapping[str, Any]:
    canary = planner.ro.canary
    assert canary is not None
    raw = canary.steps[index].raw.get("plugin") if index < len(canary.steps) else None
    config = raw.get("config") if isinstance(raw, Mapping) else None
    return config if isinstance(config, Mapping) else {}


def _terminate_left(planner: Planner, statuses: list[dict[str, Any]], index: int | None, leaving: bool) -> None:
    """Terminate a step that is Running but no longer the current one (or every one, ``leaving``)."""
    for ran in statuses:
        if ran.get("phase") == "Running" and (leaving or ran.get("index") != index):
            i = int(ran.get("index") or 0)
            _record(planner, ran, _call(planner, ran, _config(planner, i), "Terminate"), "Terminate")


def _abort_all(planner: Planner, statuses: list[dict[str, Any]]) -> None:
    """Abort every step that ran, newest first, once each."""
    for ran in sorted(statuses, key=lambda e: -int(e.get("index") or 0)):
        if ran.get("operation") != "Abort":
            i = int(ran.get("index") or 0)
            _record(planner, ran, _call(planner, ran, _config(planner, i), "Abort"), "Abort")


def _run_current(planner: Planner, statuses: list[dict[str, Any]], name: str, index: int) -> None:
    """Run the current step's plugin unless it has finished; a Failed answer aborts the update."""
    entry: dict[str, Any] | None = next((e for e in statuses if e.get("index") == index), None)
    if entry is None:
        entry = {"index": index, "name": name, "phase": "Running", "startedAt": planner.stamp}
        statuses.append(entry)
    if entry.get("phase") in ("Successful", "Failed"):
        return
    result = _call(planner, entry, _config(planner, index), "Run")
    _record(planner, entry, result, "Run")
    if result.phase == "Failed":
        planner.add_abort = True
        planner.abort_message = FAILED_MESSAGE.format(name=entry["name"], message=result.message)
    elif result.phase == "Running":
        planner.plan.requeue(result.requeue_after if result.requeue_after is not None else DEFAULT_REQUEUE_SECONDS)
    elif result.phase == "Error":
        planner.plan.requeue(ERROR_RETRY_SECONDS)


def reconcile_step_plugins(planner: Planner) -> list[dict[str, Any]]:
    """Call the plugins this pass needs; the statuses to write. Sets the planner's abort on a Failed step
    and requeues while a step runs."""
    old = planner.old.get("canary")
    kept = old.get(STATUS_KEY) if isinstance(old, Mapping) else None
    statuses = [copy.deepcopy(dict(e)) for e in kept or [] if isinstance(e, Mapping)]
    aborted = planner.aborted()
    if not aborted:  # a retry starts the steps again: the aborted steps' entries go
        statuses = [e for e in statuses if e.get("operation") != "Abort"]
    step, index = current_step(planner.ro, planner.old)
    promoting = bool(planner.old.get("promoteFull"))
    _terminate_left(planner, statuses, index, aborted or promoting)
    if aborted:
        _abort_all(planner, statuses)
    elif step is not None and index is not None and "plugin" in step.actions and not promoting:
        raw = step.raw.get("plugin")
        _run_current(planner, statuses, str(raw.get("name") or "") if isinstance(raw, Mapping) else "", index)
    return statuses


def step_plugin_succeeded(statuses: list[dict[str, Any]], index: int) -> bool:
    return any(e.get("index") == index and e.get("phase") == "Successful" for e in statuses)
