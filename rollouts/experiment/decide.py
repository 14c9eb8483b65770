"""What an Experiment needs next: observed objects in, writes and status out (Argo's experiment controller).

A pass: each template gets its ReplicaSet (and Service); a template not available within
``progressDeadlineSeconds`` fails the experiment; once every template is available (``availableAt``) the
analyses start; the experiment ends Successful when its ``duration`` has passed, when every analysis
``requiredForCompletion`` has succeeded, or when ``terminate`` is set, and ends with the phase of the first
analysis that fails, errs or is inconclusive. An ended experiment terminates its unfinished runs, deletes
its Services and scales its ReplicaSets to zero after ``scaleDownDelaySeconds``. Clearing the status (``retry
experiment``) starts it again: the ReplicaSets scale back up and the analyses get new runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.spec import ArgError, SpecError
from rollouts.experiment.manifests import (
    TemplateLookup,
    analysis_run_manifest,
    replicaset_manifest,
    replicaset_name,
    service_manifest,
    service_name,
    template_hash,
)
from rollouts.experiment.spec import COMPLETED_PHASES, ExperimentSpec, TemplateSpec, spec_errors
from rollouts.model.timestamps import format_time, parse_time

__all__ = ["SCALE_DOWN_DEADLINE", "ExperimentPlan", "Observed", "decide"]

SCALE_DOWN_DEADLINE: Final = "experiment.pyrollouts.io/scale-down-deadline"
# The analysis phases that end an experiment, worst first (Argo: failed before error before inconclusive).
_ENDING_RUN_PHASES: Final = ("Failed", "Error", "Inconclusive")


@dataclass(frozen=True)
class Observed:
    """An Experiment and what it owns, as the caches hold them."""

    experiment: Mapping[str, Any]
    replicasets: Mapping[str, Mapping[str, Any]]  # by template name
    services: Mapping[str, Mapping[str, Any]]  # by Service name
    runs: Mapping[str, Mapping[str, Any]]  # by AnalysisRun name
    lookup: TemplateLookup
    now: dt.datetime


@dataclass
class ExperimentPlan:
    """The writes of one pass, in this order: creations, ReplicaSet patches, run terminations, Service deletions,
    then the status (None when it is already right) and the Events."""

    create: list[dict[str, Any]] = field(default_factory=list)
    patch_replicasets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    terminate_runs: list[str] = field(default_factory=list)
    delete_services: list[str] = field(default_factory=list)
    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Pass:
    """One reconcile of one Experiment."""

    def __init__(self, seen: Observed) -> None:
        self.seen = seen
        self.exp = ExperimentSpec.parse(seen.experiment)
        self.old = _status(seen.experiment)
        self.now = seen.now.timestamp()
        self.stamp = format_time(seen.now)
        self.plan = ExperimentPlan()
        self.old_templates = {
            str(t.get("name")): t for t in self.old.get("templateStatuses") or [] if isinstance(t, Mapping)
        }
        self.old_runs = {str(r.get("name")): r for r in self.old.get("analysisRuns") or [] if isinstance(r, Mapping)}
        self.ended = str(self.old.get("phase") or "") in COMPLETED_PHASES

    # ------------------------------------------------------------------ templates

    def _template_status(self, template: TemplateSpec) -> dict[str, Any]:
        """The template's entry in ``templateStatuses``: counts from its ReplicaSet, and where it stands."""
        rs = self.seen.replicasets.get(template.name)
        rs_status = _status(rs) if rs is not None else {}
        old = self.old_templates.get(template.name) or {}
        entry: dict[str, Any] = {
            "name": template.name,
            "replicas": _int(rs_status.get("replicas")),
            "updatedReplicas": _int(rs_status.get("fullyLabeledReplicas", rs_status.get("replicas"))),
            "readyReplicas": _int(rs_status.get("readyReplicas")),
            "availableReplicas": _int(rs_status.get("availableReplicas")),
            "podTemplateHash": template_hash(self.exp, template),
            "replicaSetName": replicaset_name(self.exp, template),
        }
        if template.service is not None:
            entry["serviceName"] = service_name(self.exp, template)
        status, message = self._template_phase(template, entry, old)
        entry["status"] = status
        if message:
            entry["message"] = message
        same = old.get("status") == status and old.get("lastTransitionTime")
        entry["lastTransitionTime"] = old["lastTransitionTime"] if same else self.stamp
        return entry

    def _template_phase(
        self, template: TemplateSpec, entry: Mapping[str, Any], old: Mapping[str, Any]
    ) -> tuple[str, str]:
        if self.ended:
            return str(old.get("status") or "Successful"), str(old.get("message") or "")
        if template.name not in self.seen.replicasets:
            return "Progressing", ""
        if entry["availableReplicas"] >= template.replicas and entry["replicas"] == template.replicas:
            return "Running", ""
        started = parse_time(old.get("lastTransitionTime")) if old.get("status") == "Progressing" else None
        deadline = (started if started is not None else self.now) + self.exp.progress_deadline_seconds
        if self.now >= deadline:
            return "Failed", (
                f"ReplicaSet {entry['replicaSetName']} of template {template.name} has {entry['availableReplicas']} of "
                f"{template.replicas} pods available after progressDeadlineSeconds "
                f"({self.exp.progress_deadline_seconds}s): check its pods (kubectl describe replicaset "
                f"{entry['replicaSetName']})"
            )
        self.plan.wake_in(deadline - self.now)
        return "Progressing", ""

    def _run_templates(self) -> None:
        """Each template's ReplicaSet at the template's size, and its Service."""
        for template in self.exp.templates:
            rs = self.seen.replicasets.get(template.name)
            if rs is None:
                self.plan.create.append(replicaset_manifest(self.exp, template, template.replicas))
                continue
            spec_replicas = (rs.get("spec") or {}).get("replicas")
            deadline = ((rs.get("metadata") or {}).get("annotations") or {}).get(SCALE_DOWN_DEADLINE)
            if spec_replicas != template.replicas or deadline is not None:
                patch = {
                    "metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}},
                    "spec": {"replicas": template.replicas},
                }
                self.plan.patch_replicasets.append((str(rs["metadata"]["name"]), patch))
            if template.service is not None and service_name(self.exp, template) not in self.seen.services:
                self.plan.create.append(service_manifest(self.exp, template))

    def _scale_down(self) -> None:
        """An ended experiment: its ReplicaSets go to zero once their deadline passes, its Services go."""
        for rs in self.seen.replicasets.values():
            meta = rs.get("metadata") or {}
            if not _int((rs.get("spec") or {}).get("replicas")):
                continue
            deadline = parse_time((meta.get("annotations") or {}).get(SCALE_DOWN_DEADLINE))
            if deadline is None and self.exp.scale_down_delay_seconds > 0:
                due = format_time(self.now + self.exp.scale_down_delay_seconds)
                mark = {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: due}}}
                self.plan.patch_replicasets.append((str(meta["name"]), mark))
                self.plan.wake_in(self.exp.scale_down_delay_seconds)
            elif deadline is not None and deadline > self.now:
                self.plan.wake_in(deadline - self.now)
            else:
                patch = {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}}, "spec": {"replicas": 0}}
                self.plan.patch_replicasets.append((str(meta["name"]), patch))
        self.plan.delete_services.extend(sorted(self.seen.services))

    # ------------------------------------------------------------------ analyses

    def _current_run(self, name: str) -> Mapping[str, Any] | None:
        recorded = str((self.old_runs.get(name) or {}).get("analysisRun") or "")
        return self.seen.runs.get(recorded) if recorded else None

    def _free_run_name(self, manifest: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
        """The run's name for this attempt: the base name, or ``base.N`` after a retry; an unfinished run of
        ours already holding a name (a crash before the status was written) is taken up again."""
        base = str(manifest["metadata"]["name"])
        name, count = base, 1
        while name in self.seen.runs:
            existing = self.seen.runs[name]
            if str(_status(existing).get("phase") or "") not in COMPLETED_PHASES:
                return name, existing
            name, count = f"{base}.{count}", count + 1
        return name, None

    def _start_analyses(self, available_at: str) -> tuple[list[dict[str, Any]], str]:
        """Every analysis' entry in ``analysisRuns``, runs created where missing; an error message when a run
        cannot be built (the experiment's Error)."""
        entries: list[dict[str, Any]] = []
        for analysis in self.exp.analyses:
            run = self._current_run(analysis.name)
            if run is None and not self.ended:
                try:
                    manifest = analysis_run_manifest(
                        self.exp, self.seen.experiment, analysis, available_at, self.seen.lookup
                    )
                except (SpecError, ArgError) as exc:
                    return entries, f"analysis {analysis.name} (template {analysis.template_name}): {exc}"
                name, run = self._free_run_name(manifest)
                if run is None:
                    manifest["metadata"]["name"] = name
                    self.plan.create.append(manifest)
                    run = manifest
            if run is None:
                continue
            run_status = _status(run)
            entry = {
                "name": analysis.name,
                "analysisRun": str(run["metadata"]["name"]),
                "phase": str(run_status.get("phase") or "Pending"),
            }
            if run_status.get("message"):
                entry["message"] = str(run_status["message"])
            entries.append(entry)
        return entries, ""

    # ------------------------------------------------------------------ the phase

    def _verdict(self, templates: list[dict[str, Any]], runs: list[dict[str, Any]], available: bool) -> tuple[str, str]:
        """The phase and message of a running experiment."""
        for entry in templates:
            if entry["status"] in ("Failed", "Error"):
                return entry["status"], f"Template {entry['name']}: {entry.get('message', '')}"
        for phase in _ENDING_RUN_PHASES:
            for entry in runs:
                if entry["phase"] == phase:
                    said = f": {entry['message']}" if entry.get("message") else ""
                    return phase, f"Analysis {entry['name']} ({entry['analysisRun']}) is {phase}{said}"
        if self.exp.terminate:
            return "Successful", "Experiment terminated"
        if not available:
            return "Pending", "Waiting for every template to become available"
        available_at = parse_time(self.old.get("availableAt")) or self.now
        if self.exp.duration is not None:
            left = available_at + self.exp.duration - self.now
            if left <= 0:
                return "Successful", "Experiment ran its duration"
            self.plan.wake_in(left)
        required = {a.name for a in self.exp.analyses if a.required_for_completion}
        done = {e["name"] for e in runs if e["phase"] == "Successful"}
        if self.exp.duration is None and required and required <= done:
            return "Successful", "Every analysis required for completion succeeded"
        return "Running", ""

    def _end(self, templates: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
        """The experiment ends now or has ended: unfinished runs are terminated, templates marked done."""
        for entry in runs:
            run = self.seen.runs.get(entry["analysisRun"])
            if run is None or entry["phase"] in COMPLETED_PHASES:
                continue
            if not (run.get("spec") or {}).get("terminate"):
                self.plan.terminate_runs.append(entry["analysisRun"])
        for entry in templates:
            if entry["status"] in ("Pending", "Progressing", "Running"):
                entry["status"], entry["lastTransitionTime"] = "Successful", self.stamp
        self._scale_down()

    def run(self) -> ExperimentPlan:
        errors = spec_errors(self.seen.experiment)
        if errors and not self.ended:
            return self._finish({**self.old, "phase": "Error", "message": "InvalidSpec: " + "; ".join(errors)})
        if not self.ended:
            self._run_templates()
        templates = [self._template_status(t) for t in self.exp.templates]
        available = all(t["status"] == "Running" for t in templates) or bool(self.old.get("availableAt"))
        available_at = str(self.old.get("availableAt") or (self.stamp if available else ""))
        runs, error = self._start_analyses(available_at) if available_at and not self.exp.terminate else ([], "")
        if not runs and self.old_runs and (self.ended or self.exp.terminate):
            runs = [dict(r) for r in self.old_runs.values()]
        if self.ended:
            phase, message = str(self.old.get("phase")), str(self.old.get("message") or "")
        elif error:
            phase, message = "Error", error
        else:
            phase, message = self._verdict(templates, runs, available)
        if phase in COMPLETED_PHASES:
            self._end(templates, runs)
        status: dict[str, Any] = {"phase": phase, "templateStatuses": templates}
        if message:
            status["message"] = message
        if available_at:
            status["availableAt"] = available_at
        if runs:
            status["analysisRuns"] = runs
        return self._finish(status)

    def _finish(self, status: dict[str, Any]) -> ExperimentPlan:
        old_phase = str(self.old.get("phase") or "")
        if status != dict(self.old):
            self.plan.status = status
        phase = str(status.get("phase") or "")
        if phase != old_phase:
            warning = phase in ("Failed", "Error", "Inconclusive")
            message = str(status.get("message") or f"Experiment is {phase}")
            self.plan.events.append(("Warning" if warning else "Normal", f"Experiment{phase}", message))
        return self.plan


def decide(seen: Observed) -> ExperimentPlan:
    """The writes and status of one pass over ``seen``."""
    return _Pass(seen).run()
