"""What the dashboard watches: Rollouts, their ReplicaSets and Pods, and AnalysisRuns, in the plugin's
namespace or in all of them, each kept current by an informer thread (:mod:`rollouts.cli.watch`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollouts.cli.client import ANALYSISRUNS, PODS, REPLICASETS, ROLLOUTS, Client, CLIError
from rollouts.cli.watch import Informer
from rollouts.model.spec import HASH_LABEL


@dataclass(frozen=True)
class Snapshot:
    """The watched objects at one moment."""

    rollouts: list[dict[str, Any]]
    replicasets: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    analysisruns: list[dict[str, Any]]

    def in_namespace(self, namespace: str) -> Snapshot:
        def keep(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [o for o in objects if (o.get("metadata") or {}).get("namespace") == namespace]

        return Snapshot(keep(self.rollouts), keep(self.replicasets), keep(self.pods), keep(self.analysisruns))


class Watches:
    """One informer per kind. ReplicaSets and Pods are selected by the label every rollout's pods carry
    (`rollouts-pod-template-hash`), so the dashboard does not copy every Pod of the cluster."""

    def __init__(self, client: Client, all_namespaces: bool, on_change: Callable[[], None]) -> None:
        self.rollouts = Informer(client, ROLLOUTS, on_change, all_namespaces=all_namespaces)
        self.replicasets = Informer(
            client, REPLICASETS, on_change, label_selector=HASH_LABEL, all_namespaces=all_namespaces
        )
        self.pods = Informer(client, PODS, on_change, label_selector=HASH_LABEL, all_namespaces=all_namespaces)
        self.analysisruns = Informer(client, ANALYSISRUNS, on_change, optional=True, all_namespaces=all_namespaces)
        self.informers = [self.rollouts, self.replicasets, self.pods, self.analysisruns]

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    def errors(self) -> list[str]:
        """The informers' current errors (each keeps retrying), for the page to show."""
        return [inf.error.message for inf in self.informers if isinstance(inf.error, CLIError)]

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.rollouts.objects(), self.replicasets.objects(), self.pods.objects(), self.analysisruns.objects()
        )
