"""The slow re-check of which routing kinds are served: only the groups of the kinds kopf does not watch
yet are scanned again, through kopf's own handling of a CRD event; kopf's repeated "Unresolved" warning
is said once, as information."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from kopf._cogs.structs import references
from kopf._core.reactor import observation

from rollouts.controller import discovery
from rollouts.controller.client import INGRESSES, kind_of

VS = kind_of("networking.istio.io/v1beta1", "virtualservices", "VirtualService")
SPLIT = kind_of("split.smi-spec.io/v1alpha2", "trafficsplits", "TrafficSplit")
MESH_VS = kind_of("appmesh.k8s.aws/v1beta2", "virtualservices", "VirtualService")


def test_kopfs_rescan_entry_point_is_still_there() -> None:
    params = inspect.signature(observation.process_discovered_resource_event).parameters
    assert {"raw_event", "settings", "registry", "insights"} <= set(params)


def test_only_the_groups_of_unserved_kinds_are_scanned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    insights = references.Insights()
    insights.watched_resources.add(
        references.Resource(group="networking.k8s.io", version="v1", plural="ingresses", namespaced=True)
    )
    scanned: list[str] = []

    async def fake_rescan(raw_event: Any, **_: Any) -> None:
        scanned.append(raw_event["object"]["spec"]["group"])
        if len(scanned) == 2:
            raise asyncio.CancelledError  # end the loop after one round

    monkeypatch.setattr(observation, "process_discovered_resource_event", fake_rescan)

    async def one_round() -> None:
        await discovery.rescan([INGRESSES, VS, SPLIT], registry=None, settings=None, insights=insights, interval=0)  # type: ignore[arg-type]

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(one_round())
    assert scanned == ["networking.istio.io", "split.smi-spec.io"]


def test_a_served_plural_of_another_group_does_not_count_as_served() -> None:
    """Istio's virtualservices are watched; App Mesh's (same plural) are not: its group is scanned again."""
    insights = references.Insights()
    insights.watched_resources.add(
        references.Resource(group="networking.istio.io", version="v1beta1", plural="virtualservices", namespaced=True)
    )
    assert discovery.unserved_groups([VS, MESH_VS], insights) == ["appmesh.k8s.aws"]


def test_kopfs_unresolved_warning_is_said_once_as_information() -> None:
    quiet = discovery.QuietUnresolved()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf", logging.WARNING, __file__, 1, message, None, None)

    first = record("Unresolved resources cannot be served (try creating their CRDs): Selector(virtualservices)")
    assert quiet.filter(first) and first.levelname == "INFO"
    assert "routing kinds not served" in first.getMessage() and "virtualservices" in first.getMessage()
    assert not quiet.filter(record("Unresolved resources cannot be served (try creating their CRDs): again"))
    assert quiet.filter(record("something else"))
