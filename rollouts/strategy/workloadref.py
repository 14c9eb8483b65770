"""``spec.workloadRef``: the pod template and selector from a referenced Deployment, and scaling that
Deployment down (``scaleDown: progressively`` / ``onsuccess``) while its first Rollout revision takes over."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rollouts.model import conditions as cs
from rollouts.strategy.plan import ScaleWorkload

if TYPE_CHECKING:
    from rollouts.strategy.base import Planner


def resolve_template(planner: Planner) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, str | None]:
    """The pod template and selector (from ``spec.workloadRef``'s Deployment if set), or the error why not."""
    ro = planner.ro
    if ro.workload_ref is None:
        return ro.template, ro.selector, None
    ref = ro.workload_ref
    if ref.kind != "Deployment" or not ref.api_version.startswith("apps/"):
        return None, ro.selector, f"workloadRef kind {ref.kind!r} is not supported: use apps/v1 Deployment"
    if not ref.name:
        return None, ro.selector, "workloadRef.name is required"
    deploy = planner.obs.workload
    if deploy is None:
        return (
            None,
            ro.selector,
            f'Deployment "{ref.name}" not found in namespace "{ro.namespace}": create it or fix spec.workloadRef.name',
        )
    dspec = deploy.get("spec") or {}
    template = dspec.get("template")
    selector = ro.selector or dspec.get("selector")
    return template if isinstance(template, Mapping) else None, selector, None


def progressive_workload_scale_down(planner: Planner) -> None:
    """``scaleDown: progressively``: the Deployment gives up pods as the first revision becomes ready."""
    ref = planner.ro.workload_ref
    deploy = planner.obs.workload
    if ref is None or deploy is None or planner.new_rs is None or planner.revision() != 1:
        return
    current = int((deploy.get("spec") or {}).get("replicas", 1) or 0)
    target: int | None = None
    if ref.scale_down == "progressively":
        if planner.old.get("phase") == cs.HEALTHY_PHASE:
            target = 0
        elif int(planner.old.get("readyReplicas") or 0) > 0:
            target = max(planner.ro.replicas - int(planner.old.get("readyReplicas") or 0), 0)
    if target is not None and target != current:
        planner.plan.actions.append(ScaleWorkload(ref.kind, ref.name, target))


def workload_scale_down_on_success(planner: Planner) -> None:
    """``scaleDown: onsuccess``: the Deployment goes to zero once the first revision is Healthy."""
    ref = planner.ro.workload_ref
    deploy = planner.obs.workload
    if ref is None or deploy is None or ref.scale_down != "onsuccess" or planner.revision() != 1:
        return
    if planner.old.get("phase") != cs.HEALTHY_PHASE:
        return
    if int((deploy.get("spec") or {}).get("replicas", 1) or 0) != 0:
        planner.plan.actions.append(ScaleWorkload(ref.kind, ref.name, 0))
