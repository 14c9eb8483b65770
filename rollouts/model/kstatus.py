"""Pure: the kstatus conditions (sigs.k8s.io/cli-utils kstatus, what Flux and kpt read) beside Argo's.

kstatus reads a custom resource through `status.observedGeneration` (an integer, equal to
metadata.generation once the spec is seen) and three conditions, derived here from Argo's phase:

| phase       | Ready | Reconciling            | Stalled       |
|-------------|-------|------------------------|---------------|
| Healthy     | True  | (absent)               | (absent)      |
| Progressing | False | True (reason Progressing) | (absent)   |
| Paused      | False | True (reason Paused)   | (absent)      |
| Degraded    | False | (absent)               | True (reason Degraded) |

kstatus's "abnormal-true" conditions (Reconciling, Stalled) are removed when they do not apply, as its
conventions ask. A condition is rewritten only when its status, reason or message changes, so a
steady rollout's status does not change from one reconcile to the next.
"""

from __future__ import annotations

from typing import Any

from rollouts.model import conditions as cs

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

_DEFAULT_MESSAGES = {
    cs.HEALTHY_PHASE: "Rollout is healthy",
    cs.PROGRESSING_PHASE: "Rollout is progressing",
    cs.PAUSED_PHASE: "Rollout is paused",
    cs.DEGRADED_PHASE: "Rollout is degraded",
}


def set_kstatus_conditions(status: dict[str, Any], now: str) -> None:
    """Add, update or remove Ready/Reconciling/Stalled in `status` from its phase and message."""
    phase = str(status.get("phase") or cs.PROGRESSING_PHASE)
    message = str(status.get("message") or _DEFAULT_MESSAGES.get(phase, ""))
    healthy = phase == cs.HEALTHY_PHASE
    wanted: dict[str, tuple[str, str] | None] = {
        READY: ("True" if healthy else "False", phase),
        RECONCILING: ("True", phase) if phase in (cs.PROGRESSING_PHASE, cs.PAUSED_PHASE) else None,
        STALLED: ("True", phase) if phase == cs.DEGRADED_PHASE else None,
    }
    for ctype, want in wanted.items():
        if want is None:
            if cs.get_condition(status, ctype) is not None:
                cs.remove_condition(status, ctype)
            continue
        current = cs.get_condition(status, ctype) or {}
        if (current.get("status"), current.get("reason"), current.get("message")) == (*want, message):
            continue
        cs.replace_condition(status, cs.new_condition(ctype, want[0], want[1], message, now))
