"""The Services a Rollout names: who manages them, what they select (after this pass's patches),
pointing the canary's stable and canary Services at their ReplicaSets, and switching blue/green's
active and preview Services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.model.spec import HASH_LABEL
from rollouts.strategy.plan import PatchService
from rollouts.strategy.replicasets import MANAGED_BY, ReplicaSetView

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def services_managed_elsewhere(planner: Planner, path: str, fields: Sequence[tuple[str, str]]) -> list[str]:
    """An error for each named Service (field under `path`, name) another Rollout manages."""
    errors = []
    for key, name in fields:
        svc = planner.obs.services.get(name) if name else None
        if svc is None:
            continue
        owner = ((svc.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY)
        if owner and owner != planner.ro.name:
            errors.append(
                f'{path}.{key}: Invalid value: "{name}": Service "{name}" is managed by another '
                f'Rollout ("{owner}"); give each Rollout its own Service'
            )
    return errors


def reconcile_canary_services(planner: Planner) -> None:
    """Point the stable Service at the stable ReplicaSet, and the canary Service at the new one
    (at the stable one after an abort)."""
    canary = planner.ro.canary
    assert canary is not None
    _ensure_service(planner, canary.stable_service, planner.stable_rs)
    if planner.aborted():
        _ensure_service(planner, canary.canary_service, planner.stable_rs)
    else:
        _ensure_service(planner, canary.canary_service, planner.new_rs)


def _ensure_service(planner: Planner, name: str, rs: ReplicaSetView | None) -> None:
    """Point Service ``name`` at ``rs`` once ``rs`` has available pods (a Service not yet managed by us:
    once ``rs`` is fully available)."""
    if not name or rs is None:
        return
    svc = planner.obs.services.get(name)
    if svc is None:
        return
    selector = (svc.get("spec") or {}).get("selector") or {}
    current = selector.get(HASH_LABEL)
    if current == rs.pod_hash:
        return
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    fully_available = rs.replicas != 0 and rs.available != 0 and rs.replicas <= rs.available
    if MANAGED_BY not in annotations and not fully_available:
        return
    if rs.available == 0:
        return
    planner.plan.actions.append(
        PatchService(
            name,
            {
                "metadata": {"annotations": {MANAGED_BY: planner.ro.name}},
                "spec": {"selector": {HASH_LABEL: rs.pod_hash}},
            },
        )
    )
    planner.event(
        cs.SWITCH_SERVICE_REASON,
        f"Switched selector for service '{name}' from '{current or ''}' to '{rs.pod_hash}'",
    )


def stable_service_selects(planner: Planner, pod_hash: str) -> bool:
    """Does the stable Service select ``pod_hash`` (now, or after this pass's Service patches)? True
    without a stable Service (Istio subset-level routing: the router moves the subsets itself)."""
    canary = planner.ro.canary
    assert canary is not None
    if not canary.stable_service:
        return True
    return service_selector_hash(planner, canary.stable_service) == pod_hash


def service_selector_hash(planner: Planner, name: str) -> str | None:
    """The pod hash Service ``name`` selects after this pass's Service patches (None: none)."""
    selected = ((planner.obs.services.get(name) or {}).get("spec") or {}).get("selector") or {}
    current = selected.get(HASH_LABEL)
    for action in planner.plan.actions:
        if isinstance(action, PatchService) and action.name == name:
            current = ((action.patch.get("spec") or {}).get("selector") or {}).get(HASH_LABEL, current)
    return str(current) if current is not None else None


def service_hash(svc: Mapping[str, Any] | None) -> str:
    """The pod-template hash a Service selects ("" when it selects none)."""
    if svc is None:
        return ""
    return str(((svc.get("spec") or {}).get("selector") or {}).get(HASH_LABEL) or "")


def switch_service(planner: Planner, name: str, svc: Mapping[str, Any], pod_hash: str) -> None:
    """Point Service ``name`` at ``pod_hash`` at once (blue/green's active and preview Services; the caller
    decides when), marking it as managed by this Rollout."""
    current = service_hash(svc)
    patch: dict[str, Any] = {"spec": {"selector": {HASH_LABEL: pod_hash}}}
    if MANAGED_BY not in ((svc.get("metadata") or {}).get("annotations") or {}):
        patch["metadata"] = {"annotations": {MANAGED_BY: planner.ro.name}}
    planner.plan.actions.append(PatchService(name, patch))
    planner.event(cs.SWITCH_SERVICE_REASON, f"Switched selector for service '{name}' from '{current}' to '{pod_hash}'")
