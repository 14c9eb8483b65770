"""A tiny in-memory cluster for the pure canary planner: applies a Plan's writes, and plays the
ReplicaSet controller (pods are created and become available at once, or never)."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from rollouts.model.timestamps import format_time
from rollouts.strategy import canary
from rollouts.strategy.plan import (
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeletePod,
    DeleteReplicaSet,
    Observed,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutMetadata,
    PatchService,
    Plan,
    ScaleWorkload,
)

T0 = 1_700_000_000.0


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def rollout(
    name: str = "web",
    replicas: int = 5,
    steps: list[dict[str, Any]] | None = None,
    image: str = "nginx:1",
    **canary_fields: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            "strategy": {"canary": {"steps": steps if steps is not None else [], **canary_fields}},
        },
    }


@dataclass
class World:
    ro: dict[str, Any]
    now: float = T0
    rss: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    never_ready: set[str] = field(default_factory=set)  # images whose pods never become available
    events: list[tuple[str, str]] = field(default_factory=list)
    deployment: dict[str, Any] | None = None
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # AnalysisRuns, by name
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # AnalysisTemplates, by name
    cluster_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    _uids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def observed(self) -> Observed:
        return Observed(
            rollout=copy.deepcopy(self.ro),
            replicasets=[copy.deepcopy(r) for r in self.rss.values()],
            services=copy.deepcopy(self.services),
            now=self.now,
            workload=copy.deepcopy(self.deployment),
            analysis_runs=[copy.deepcopy(r) for r in self.runs.values()],
            analysis_templates=copy.deepcopy(self.templates),
            cluster_analysis_templates=copy.deepcopy(self.cluster_templates),
        )

    def plan(self) -> Plan:
        return canary.plan(self.observed())

    def step(self) -> Plan:
        """One reconcile: plan, apply, then let the simulated ReplicaSet controller catch up."""
        plan = self.plan()
        self.apply(plan)
        self.kubelet()
        return plan

    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            if isinstance(action, CreateReplicaSet):
                rs = copy.deepcopy(dict(action.manifest))
                name = rs["metadata"]["name"]
                assert name not in self.rss, f"{name} created twice"
                rs["metadata"]["uid"] = f"rs-{next(self._uids)}"
                rs["metadata"]["creationTimestamp"] = format_time(self.now)
                rs["metadata"]["generation"] = 1
                rs["status"] = {"replicas": 0, "availableReplicas": 0, "readyReplicas": 0}
                self.rss[name] = rs
            elif isinstance(action, PatchReplicaSet):
                merge(self.rss[action.name], dict(action.patch))
            elif isinstance(action, DeleteReplicaSet):
                del self.rss[action.name]
            elif isinstance(action, PatchService):
                merge(self.services[action.name], dict(action.patch))
            elif isinstance(action, PatchRolloutMetadata):
                merge(self.ro["metadata"].setdefault("annotations", {}), dict(action.annotations))
            elif isinstance(action, ScaleWorkload):
                assert self.deployment is not None
                self.deployment["spec"]["replicas"] = action.replicas
            elif isinstance(action, DeletePod):
                pass
            elif isinstance(action, CreateAnalysisRun):
                run = copy.deepcopy(dict(action.manifest))
                name = run["metadata"]["name"]
                assert name not in self.runs, f"AnalysisRun {name} created twice"
                run["metadata"]["uid"] = f"ar-{next(self._uids)}"
                run["metadata"]["creationTimestamp"] = format_time(self.now)
                self.runs[name] = run
            elif isinstance(action, PatchAnalysisRun):
                merge(self.runs[action.name], dict(action.patch))
            elif isinstance(action, DeleteAnalysisRun):
                del self.runs[action.name]
        if plan.status is not None:
            self.ro["status"] = copy.deepcopy(plan.status)
        self.events += [(e.reason, e.message) for e in plan.events]

    def kubelet(self) -> None:
        for rs in self.rss.values():
            replicas = rs["spec"]["replicas"]
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            ready = 0 if image in self.never_ready else replicas
            rs["status"] = {
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"].get("generation", 1),
            }

    def settle(self, limit: int = 60) -> Plan:
        """Reconcile until a pass changes nothing (or asks to wait)."""
        for _ in range(limit):
            before = (copy.deepcopy(self.rss), copy.deepcopy(self.ro.get("status")), copy.deepcopy(self.services))
            plan = self.step()
            after = (self.rss, self.ro.get("status"), self.services)
            if before == after and not plan.actions:
                return plan
        raise AssertionError(f"no steady state after {limit} passes: {self.ro.get('status')}")

    def sizes(self) -> dict[str, int]:
        return {name.rsplit("-", 1)[1]: rs["spec"]["replicas"] for name, rs in self.rss.items()}

    def by_image(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rs in self.rss.values():
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            out[image] = out.get(image, 0) + rs["spec"]["replicas"]
        return {k: v for k, v in out.items() if v}

    def set_run_phase(self, name: str, phase: str, message: str = "") -> None:
        """Play the analysis controller: set an AnalysisRun's phase (and message)."""
        status: dict[str, Any] = {"phase": phase}
        if message:
            status["message"] = message
        self.runs[name]["status"] = status

    def run_phases(self) -> dict[str, str]:
        return {name: str((r.get("status") or {}).get("phase", "")) for name, r in self.runs.items()}

    def set_image(self, image: str) -> None:
        self.ro["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.ro["metadata"]["generation"] += 1

    def patch_status(self, patch: dict[str, Any]) -> None:
        merge(self.ro.setdefault("status", {}), patch)

    def patch_spec(self, patch: dict[str, Any]) -> None:
        merge(self.ro["spec"], patch)
        self.ro["metadata"]["generation"] += 1

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.ro.get("status") or {})

    def condition(self, ctype: str) -> dict[str, Any] | None:
        return next((c for c in self.status.get("conditions") or [] if c["type"] == ctype), None)
