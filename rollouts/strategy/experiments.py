"""The canary's ``experiment`` step (Argo's ``reconcileExperiments``): the Experiment it runs, and what its phase
means for the Rollout.

At an experiment step the Rollout creates ``<rollout>-<pod hash>-<revision>-<step index>``, owned by the
Rollout, its templates taken from the stable or the canary ReplicaSet (``specRef``); the step completes when
the Experiment is Successful; a Failed or Errored Experiment aborts the update, an Inconclusive one pauses
it. An Experiment that is no longer the current step's (the Rollout moved on, was promoted or aborted) is
terminated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from analysis.spec import ArgError, resolve_rollout_args
from rollouts.model.revisions import REVISION
from rollouts.model.spec import HASH_LABEL, INSTANCE_ID_LABEL
from rollouts.model.steps import current_step
from rollouts.strategy.plan import CreateExperiment, PatchExperiment
from rollouts.strategy.replicasets import owner_reference
from rollouts.traffic.router import WeightDestination

if TYPE_CHECKING:
    from rollouts.strategy.canary import CanaryPlanner

__all__ = ["ExperimentState", "experiment_destinations", "reconcile_experiment", "retired_experiment_services"]

API_VERSION: Final = "pyrollouts.io/v1alpha1"
COMPLETED: Final = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
PAUSE_INCONCLUSIVE_EXPERIMENT: Final = "InconclusiveExperiment"
TERMINATE: Final = {"spec": {"terminate": True}}


class ExperimentState:
    """What this pass knows of the current step's Experiment."""

    def __init__(self, name: str, phase: str, message: str) -> None:
        self.name, self.phase, self.message = name, phase, message


def _pod_template(planner: CanaryPlanner, spec_ref: str) -> dict[str, Any] | None:
    """The stable or canary ReplicaSet's pod template, without its hash label (the Experiment adds its own)."""
    if spec_ref == "canary":
        template: Mapping[str, Any] = planner.template
    else:
        stable = planner.stable_rs
        raw = next((rs for rs in planner.obs.replicasets if stable and rs["metadata"]["name"] == stable.name), None)
        if raw is None:
            return None
        template = (raw.get("spec") or {}).get("template") or {}
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return out


def _template(planner: CanaryPlanner, raw: Mapping[str, Any]) -> dict[str, Any] | None:
    pod_template = _pod_template(planner, str(raw.get("specRef") or "canary"))
    if pod_template is None:
        return None
    meta = pod_template.setdefault("metadata", {})
    extra = raw.get("metadata") or {}
    for key in ("labels", "annotations"):
        if extra.get(key):
            meta[key] = {**(meta.get(key) or {}), **extra[key]}
    selector = copy.deepcopy(dict(raw.get("selector") or planner.selector))
    out: dict[str, Any] = {
        "name": str(raw.get("name")),
        "replicas": raw.get("replicas", 1),
        "minReadySeconds": planner.ro.min_ready_seconds,
        "selector": selector,
        "template": pod_template,
    }
    for key in ("service", "weight"):
        if raw.get(key) is not None:
            out[key] = copy.deepcopy(raw[key])
    if raw.get("weight") is not None and out.get("service") is None:
        out["service"] = {}  # a weighted template needs a Service for the router to send its share to (Argo's)
    return out


def experiment_name(planner: CanaryPlanner, index: int) -> str:
    """Argo's name for the experiment of step ``index``."""
    return f"{planner.ro.name}-{planner.pod_hash}-{planner.revision()}-{index}"


def _manifest(planner: CanaryPlanner, step: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The Experiment of the step, or None when a template's version is not there yet (no stable ReplicaSet)."""
    templates = [_template(planner, t) for t in step.get("templates") or []]
    if any(t is None for t in templates):
        return None
    stable = planner.stable_rs.pod_hash if planner.stable_rs is not None else None
    analyses = []
    for raw in step.get("analyses") or []:
        analysis = copy.deepcopy(dict(raw))
        analysis["args"] = resolve_rollout_args(raw.get("args"), planner.obs.rollout, stable, planner.pod_hash)
        analyses.append(analysis)
    labels = {HASH_LABEL: planner.pod_hash}
    instance = ((planner.obs.rollout.get("metadata") or {}).get("labels") or {}).get(INSTANCE_ID_LABEL)
    if instance:
        labels[INSTANCE_ID_LABEL] = str(instance)
    spec: dict[str, Any] = {
        "templates": templates,
        "analyses": analyses,
        "progressDeadlineSeconds": planner.ro.progress_deadline_seconds,
    }
    for key in ("duration", "dryRun", "analysisRunMetadata", "scaleDownDelaySeconds"):
        if step.get(key) is not None:
            spec[key] = copy.deepcopy(step[key])
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {
            "name": name,
            "namespace": planner.ro.namespace,
            "labels": labels,
            "annotations": {REVISION: str(planner.revision())},
            "ownerReferences": [owner_reference(planner.ro)],
        },
        "spec": spec,
    }


def _terminate_others(planner: CanaryPlanner, keep: str) -> None:
    for exp in planner.obs.experiments:
        name = str(exp["metadata"]["name"])
        phase = str((exp.get("status") or {}).get("phase") or "")
        if name != keep and phase not in COMPLETED and not (exp.get("spec") or {}).get("terminate"):
            planner.plan.actions.append(PatchExperiment(name, TERMINATE))


def _current(planner: CanaryPlanner, base: str) -> tuple[str, Mapping[str, Any] | None]:
    """This attempt's Experiment of the step: ``base``, or ``base.N`` after a retried abort (an Experiment that
    ended Failed, Errored or Inconclusive and is no longer the Rollout's current one belongs to an earlier try)."""
    by_name = {str(e["metadata"]["name"]): e for e in planner.obs.experiments}
    recorded = str(((planner.old.get("canary") or {}).get("currentExperiment")) or "")
    name, count = base, 1
    while name in by_name:
        exp = by_name[name]
        if name == recorded or str((exp.get("status") or {}).get("phase") or "") in (
            "",
            "Pending",
            "Running",
            "Successful",
        ):
            return name, exp
        name, count = f"{base}.{count}", count + 1
    return name, None


def reconcile_experiment(planner: CanaryPlanner) -> ExperimentState | None:
    """Create, follow or terminate the step's Experiment; None when the current step runs none."""
    step, index = current_step(planner.ro, planner.old)
    if step is None or index is None or "experiment" not in step.actions or planner.aborted():
        _terminate_others(planner, "")
        return None
    name, current = _current(planner, experiment_name(planner, index))
    _terminate_others(planner, name)
    if current is None:
        try:
            manifest = _manifest(planner, step.raw.get("experiment") or {}, name)
        except ArgError as exc:
            planner.add_abort = True
            planner.abort_message = f"Experiment {name}: {exc}"
            return None
        if manifest is None:
            return None
        planner.plan.actions.append(CreateExperiment(manifest))
        return ExperimentState(name, "Pending", "")
    status = current.get("status") or {}
    state = ExperimentState(name, str(status.get("phase") or "Pending"), str(status.get("message") or ""))
    if state.phase in ("Failed", "Error"):
        planner.add_abort = True
        planner.abort_message = f"Experiment '{name}' ended {state.phase}: {state.message}"
    elif state.phase == "Inconclusive" and not planner.pause_condition(PAUSE_INCONCLUSIVE_EXPERIMENT):
        planner.add_pause.append(PAUSE_INCONCLUSIVE_EXPERIMENT)
    return state


def experiment_destinations(planner: CanaryPlanner) -> tuple[WeightDestination, ...]:
    """The traffic the current experiment step's weighted templates get: each template with a ``weight``
    that has a Service, while its Experiment is Running (Argo's ``additionalDestinations``); none once the
    Rollout is aborted, moves on, or the Experiment ends."""
    step, index = current_step(planner.ro, planner.old)
    if step is None or index is None or "experiment" not in step.actions or planner.aborted():
        return ()
    _, current = _current(planner, experiment_name(planner, index))
    status = (current or {}).get("status") or {}
    if status.get("phase") != "Running":
        return ()
    weights = {
        str(t.get("name")): t.get("weight")
        for t in (step.raw.get("experiment") or {}).get("templates") or []
        if isinstance(t, Mapping)
    }
    out = []
    for entry in status.get("templateStatuses") or []:
        weight = weights.get(str(entry.get("name")))
        if isinstance(weight, int) and not isinstance(weight, bool) and entry.get("serviceName"):
            out.append(WeightDestination(str(entry["serviceName"]), str(entry.get("podTemplateHash") or ""), weight))
    return tuple(out)


def retired_experiment_services(planner: CanaryPlanner, keep: tuple[WeightDestination, ...]) -> frozenset[str]:
    """Services of the Rollout's experiments (and those the last status routed to) that ``keep`` does not
    name: a router drops their destinations."""
    names = {
        str(entry["serviceName"])
        for exp in planner.obs.experiments
        for entry in (exp.get("status") or {}).get("templateStatuses") or []
        if isinstance(entry, Mapping) and entry.get("serviceName")
    }
    weights = (planner.old.get("canary") or {}).get("weights") or {}
    names |= {str(d.get("serviceName")) for d in weights.get("additional") or [] if isinstance(d, Mapping)}
    return frozenset(names - {d.service_name for d in keep})
