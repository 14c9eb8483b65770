"""rollouts.model.kstatus: Ready / Reconciling / Stalled from Argo's phase, rewritten only on change."""

from __future__ import annotations

from typing import Any

from rollouts.model.kstatus import set_kstatus_conditions

T0, T1 = "2026-12-03T10:00:00Z", "2026-12-03T10:05:00Z"


def kinds(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status.get("conditions") or []}


def test_each_phase_gives_its_conditions() -> None:
    available = {"type": "Available", "status": "True", "reason": "AvailableReason", "message": ""}
    status: dict[str, Any] = {
        "phase": "Progressing", "message": "more replicas need to be updated", "conditions": [available]
    }
    set_kstatus_conditions(status, T0)
    assert kinds(status) == {
        "Available": ("True", "AvailableReason", ""),
        "Ready": ("False", "Progressing", "more replicas need to be updated"),
        "Reconciling": ("True", "Progressing", "more replicas need to be updated"),
    }
    status.update(phase="Paused", message="CanaryPauseStep")
    set_kstatus_conditions(status, T1)
    assert kinds(status)["Reconciling"] == ("True", "Paused", "CanaryPauseStep")
    status.update(phase="Degraded", message="RolloutAborted: aborted")
    set_kstatus_conditions(status, T1)
    assert kinds(status)["Stalled"] == ("True", "Degraded", "RolloutAborted: aborted")
    assert "Reconciling" not in kinds(status)
    status["phase"] = "Healthy"
    del status["message"]
    set_kstatus_conditions(status, T1)
    assert kinds(status)["Ready"] == ("True", "Healthy", "Rollout is healthy")
    assert "Stalled" not in kinds(status) and "Reconciling" not in kinds(status)
    assert kinds(status)["Available"][0] == "True"  # Argo's conditions are left alone


def test_a_steady_status_is_not_rewritten() -> None:
    status: dict[str, Any] = {"phase": "Healthy"}
    set_kstatus_conditions(status, T0)
    before = [dict(c) for c in status["conditions"]]
    set_kstatus_conditions(status, T1)
    assert status["conditions"] == before  # same times: no write from one reconcile to the next
