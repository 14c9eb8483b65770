"""A Rollout's phase and message (Healthy, Progressing, Paused, Degraded), as Argo Rollouts derives them
(``utils/rollout/rolloututil.go``): ``calculate_phase`` is what the controller records in
``status.phase``; ``rollout_phase`` is what a client shows, and falls back to ``calculate_phase`` for a
status without a phase. The controller and the plugin both call these.

Pure functions over the typed spec view and the status dict (the JSON of ``Rollout.status``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rollouts.model.conditions import (
    DEGRADED_PHASE,
    FAILED_RS_CREATE_REASON,
    HEALTHY_PHASE,
    INCONCLUSIVE_ANALYSIS_PAUSE,
    INVALID_SPEC,
    PAUSED_PHASE,
    PROGRESSING_PHASE,
    ROLLOUT_ABORTED_REASON,
    TIMED_OUT_REASON,
    rollout_completed,
)
from rollouts.model.shortfall import analysis_shortfall
from rollouts.model.spec import BlueGreenSpec, RolloutSpec
from rollouts.model.timestamps import parse_time

_COMPLETED_ANALYSIS = ("Successful", "Failed", "Error", "Inconclusive")

Phase = tuple[str, str]  # (phase, message)


def is_generation_observed(ro: RolloutSpec, status: Mapping[str, Any]) -> bool:
    """Argo's ``isGenerationObserved``: has the controller seen this spec? True for an observedGeneration
    that is not a number (a pre-1.0 hash: nothing to compare)."""
    observed = status.get("observedGeneration")
    try:
        return int(str(observed)) >= ro.generation
    except (TypeError, ValueError):
        return True


def is_unpausing(status: Mapping[str, Any]) -> bool:
    """Argo's ``IsUnpausing``: a user cleared the pause conditions but the controller has not reacted yet."""
    return bool(status.get("controllerPause")) and not status.get("pauseConditions")


def rollout_phase(obj: Mapping[str, Any]) -> Phase:
    """Argo's ``GetRolloutPhase``: the phase and message to show for a Rollout as read from the API.

    A spec change the controller has not observed yet, or a promote it has not acted on yet, shows as
    Progressing whatever status.phase says (so that `status --watch` never reports a stale Healthy);
    otherwise the phase the controller recorded, or ``calculate_phase`` when it recorded none."""
    ro = RolloutSpec.parse(obj)
    status = obj.get("status") or {}
    if not is_generation_observed(ro, status):
        return PROGRESSING_PHASE, "waiting for rollout spec update to be observed"
    if is_unpausing(status):
        return PROGRESSING_PHASE, "waiting for rollout to unpause"
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    return calculate_phase(ro, status)


def calculate_phase(ro: RolloutSpec, status: Mapping[str, Any], runs: Iterable[Mapping[str, Any]] = ()) -> Phase:
    """Argo's ``CalculateRolloutPhase``: (phase, message) from the spec and the (new) status; ``runs``: the
    AnalysisRuns the Rollout owns, for the judge's "too little traffic" outcome of a current Inconclusive
    run (:mod:`rollouts.model.shortfall`; Argo's message is the pause reason alone)."""
    return (
        _degraded(status)
        or _paused(ro, status, runs)
        or _updating(ro, status)
        or (_blue_green_phase(ro.blue_green, status) if ro.blue_green is not None else _canary_phase(ro, status))
        or (HEALTHY_PHASE, "")
    )


def _degraded(status: Mapping[str, Any]) -> Phase | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == INVALID_SPEC:
            return DEGRADED_PHASE, f"{INVALID_SPEC}: {cond.get('message', '')}"
        # A ReplicaSet the API server refuses (Argo leaves the phase as it was): the Rollout cannot
        # progress until its template is fixed, so it says so where `kubectl get rollout` looks.
        if cond.get("reason") in (ROLLOUT_ABORTED_REASON, TIMED_OUT_REASON, FAILED_RS_CREATE_REASON):
            return DEGRADED_PHASE, f"{cond.get('reason')}: {cond.get('message', '')}"
    return None


def _paused(ro: RolloutSpec, status: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> Phase | None:
    if ro.paused:
        return PAUSED_PHASE, "manually paused"
    for pause in status.get("pauseConditions") or []:
        reason = str(pause.get("reason", ""))
        shortfall = analysis_shortfall(status, runs) if reason == INCONCLUSIVE_ANALYSIS_PAUSE else ""
        return PAUSED_PHASE, f"{reason}: {shortfall}" if shortfall else reason
    return None


def _same_time(a: str, b: Any) -> bool:
    """Argo compares restartAt and restartedAt as times (``Time.Equal``); text that is no time, as text."""
    a_time, b_time = parse_time(a), parse_time(b)
    if a_time is None or b_time is None:
        return bool(a == b)
    return a_time == b_time


def _updating(ro: RolloutSpec, status: Mapping[str, Any]) -> Phase | None:
    """A restart or a scale-up of the new pod template in progress (any strategy)."""
    if ro.restart_at and not _same_time(ro.restart_at, status.get("restartedAt")):
        return PROGRESSING_PHASE, "rollout is restarting"
    updated = int(status.get("updatedReplicas") or 0)
    if updated < ro.replicas:
        return PROGRESSING_PHASE, "more replicas need to be updated"
    if int(status.get("availableReplicas") or 0) < updated:
        return PROGRESSING_PHASE, "updated replicas are still becoming available"
    return None


def _blue_green_phase(bg: BlueGreenSpec, status: Mapping[str, Any]) -> Phase | None:
    selectors = status.get("blueGreen") or {}
    active = selectors.get("activeSelector") or ""
    if not active or active != status.get("currentPodHash"):
        return PROGRESSING_PHASE, "active service cutover pending"
    if rollout_completed(status):
        return None
    # switched, not yet stable: post-promotion analysis (or its verification) is still running
    run = selectors.get("postPromotionAnalysisRunStatus") or {}
    if bg.post_promotion_analysis is not None and run.get("status") not in _COMPLETED_ANALYSIS:
        return PROGRESSING_PHASE, "waiting for analysis to complete"
    return PROGRESSING_PHASE, "waiting for post-promotion verification to complete"


def _canary_phase(ro: RolloutSpec, status: Mapping[str, Any]) -> Phase | None:
    if ro.canary is None:
        return None
    # Argo skips this check for the strategies whose old ReplicaSets stay up for scaleDownDelaySeconds
    # (blue/green and the traffic-routed canary); we honour scaleDownDelaySeconds on the canary without
    # a router too (RolloutSpec.scale_down_delay), whose previous stable then stays up the same way.
    delayed = ro.uses_traffic_routing() or ro.scale_down_delay() is not None
    if not delayed and int(status.get("replicas") or 0) > int(status.get("updatedReplicas") or 0):
        return PROGRESSING_PHASE, "old replicas are pending termination"
    if not rollout_completed(status):
        return PROGRESSING_PHASE, "waiting for all steps to complete"
    return None
