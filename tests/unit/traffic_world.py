"""The in-memory cluster of test_canary_world, plus routing objects: applies the traffic routers'
writes one at a time and checks after each one that every weight lands on ready pods (a crash
between any two writes leaves the cluster in exactly one of these states)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from rollouts.model.spec import HASH_LABEL
from rollouts.strategy import canary
from rollouts.strategy.canary import Observed, Plan, WriteRoutingObject
from rollouts.traffic.router import ObjectRef
from tests.fixtures.world import World, merge, rollout

INGRESS = ("networking.k8s.io/v1", "Ingress", "ingresses")
SPLIT = ("split.smi-spec.io/v1alpha2", "TrafficSplit", "trafficsplits")


def service(name: str, app: str = "web") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"selector": {"app": app}}}


def stable_ingress(name: str = "web", backend: str = "web-stable") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def routed_rollout(
    routing: dict[str, Any], steps: list[dict[str, Any]], replicas: int = 4, **fields: Any
) -> dict[str, Any]:
    return rollout(
        replicas=replicas,
        steps=steps,
        canaryService="web-canary",
        stableService="web-stable",
        trafficRouting=routing,
        **fields,
    )


@dataclass
class RoutedWorld(World):
    routing: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str, Any]] = field(default_factory=list)  # (op, object, body), in order
    check_each_write: bool = True

    def __post_init__(self) -> None:
        self.services.setdefault("web-stable", service("web-stable"))
        self.services.setdefault("web-canary", service("web-canary"))

    def add(self, obj: dict[str, Any]) -> None:
        api, kind = obj["apiVersion"], obj["kind"]
        plural = {"Ingress": "ingresses", "TrafficSplit": "trafficsplits"}[kind]
        ref = ObjectRef(api, kind, plural, "default", obj["metadata"]["name"])
        self.routing[ref] = copy.deepcopy(obj)

    def observed(self) -> Observed:
        from rollouts.controller.reconciler import routing_refs

        obs = super().observed()
        refs = routing_refs(self.ro)
        live = {ref: copy.deepcopy(self.routing.get(ref)) for ref in refs}
        return Observed(**{**obs.__dict__, "routing": live})

    def plan(self) -> Plan:
        return canary.plan(self.observed())

    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            if isinstance(action, WriteRoutingObject):
                write = action.write
                ref = write.ref
                self.writes.append((write.op, ref.name, copy.deepcopy(write.body)))
                if write.op == "create":
                    assert ref not in self.routing, f"{ref.describe()} created twice"
                    self.routing[ref] = copy.deepcopy(dict(write.body))
                elif write.op == "merge-patch":
                    merge(self.routing[ref], copy.deepcopy(dict(write.body)))
                elif write.op == "json-patch":
                    self.routing[ref] = jsonpatch.apply_patch(self.routing[ref], write.body)
                elif write.op == "delete":
                    self.routing.pop(ref, None)
            else:
                super().apply(Plan(actions=[action]))
            if self.check_each_write:
                self.assert_traffic_on_ready_pods()
        super().apply(Plan(status=plan.status, events=plan.events))

    # ------------------------------------------------------------------ what the routers route

    def service_pods(self, name: str) -> int:
        """Available pods the Service selects (through the hash label the controller sets), not counting
        pods a scale-down in this pass already took away."""
        selector = self.services[name]["spec"]["selector"]
        wanted = selector.get(HASH_LABEL)
        total = 0
        for rs in self.rss.values():
            labels = rs["spec"]["template"]["metadata"].get("labels") or {}
            if wanted is not None and labels.get(HASH_LABEL) != wanted:
                continue
            # a scale-down takes pods away at once (the kubelet only adds them after the pass)
            total += min(int(rs["status"].get("availableReplicas") or 0), int(rs["spec"]["replicas"]))
        return total

    def weights(self) -> dict[str, int]:
        """Canary weight per routing object the controller writes (canary Ingress / TrafficSplit)."""
        out: dict[str, int] = {}
        for ref, obj in self.routing.items():
            if ref.kind == "Ingress":
                notes = obj["metadata"].get("annotations") or {}
                if notes.get("nginx.ingress.kubernetes.io/canary") == "true":
                    out[ref.name] = int(notes["nginx.ingress.kubernetes.io/canary-weight"])
            elif ref.kind == "TrafficSplit":
                for backend in obj["spec"]["backends"]:
                    if backend["service"] == "web-canary":
                        out[ref.name] = int(backend["weight"])
        return out

    def assert_traffic_on_ready_pods(self) -> None:
        if not any(rs["status"].get("availableReplicas") for rs in self.rss.values()):
            return  # the first version is still starting: there is nothing to route to yet
        for name, weight in self.weights().items():
            if weight > 0:
                assert self.service_pods("web-canary") > 0, f"{name}: weight {weight} on a canary without ready pods"
            if weight < 100:
                assert self.service_pods("web-stable") > 0, f"{name}: weight {100 - weight} on no stable pods"
