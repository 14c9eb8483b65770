"""Router plugins: a package's entry point in `pyrollouts.traffic_routers` serves
`trafficRouting.plugins.<name>`; a plugin that is not installed, or fails to load, is a problem naming
the field and the fix; the kinds a plugin declares are watched like the built-in routers'."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollouts.controller.kubeconfig import Connection
from rollouts.controller.operator import Controller
from rollouts.traffic import registry
from rollouts.traffic.registry import build_routers
from rollouts.traffic.router import ObjectRef, RoutedKind
from tests.fixtures.router_plugin import PLUGIN_NAME, install_example_plugin
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example plugin installed on sys.path for this test only."""
    target = install_example_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(target))
    registry.installed_plugins.cache_clear()
    yield target
    registry.installed_plugins.cache_clear()
    sys.modules.pop("pyrollouts_example_router", None)


def test_an_installed_plugin_serves_its_name(plugin_path: Path) -> None:
    routing = {"plugins": {PLUGIN_NAME: {"rootService": "web", "splitName": "web-split"}}}
    routers, problems = build_routers(routing, "web", "shop", "web-stable", "web-canary")
    assert problems == []
    [router] = routers
    assert router.name == f"plugins/{PLUGIN_NAME}"
    ref = ObjectRef("split.smi-spec.io/v1alpha2", "TrafficSplit", "trafficsplits", "shop", "web-split")
    assert list(router.objects()) == [ref]
    [write] = router.reconcile(desired(20), {ref: None}, OWNER).writes
    assert write.op == "create"
    assert write.body["spec"]["backends"] == [
        {"service": "web-canary", "weight": 20},
        {"service": "web-stable", "weight": 80},
    ]


def test_a_plugin_beside_a_built_in_router(plugin_path: Path) -> None:
    routing: dict[str, Any] = {"smi": {}, "plugins": {PLUGIN_NAME: {}}}
    routers, problems = build_routers(routing, "web", "shop", "web-stable", "web-canary")
    assert problems == [] and [r.name for r in routers] == ["smi", f"plugins/{PLUGIN_NAME}"]


def test_a_plugin_that_is_not_installed() -> None:
    registry.installed_plugins.cache_clear()
    routers, [problem] = build_routers({"plugins": {"acme/router": {}}}, "web", "shop", "s", "c")
    assert routers == []
    assert problem.field == "spec.strategy.canary.trafficRouting.plugins.acme/router"
    assert "'acme/router' is not installed" in problem.message
    assert "entry point 'acme/router' is in group 'pyrollouts.traffic_routers'" in problem.message


def test_a_plugin_that_fails_to_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pyrollouts.traffic_routers]\nbroken = no_such_module_here:Router\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.installed_plugins.cache_clear()
    try:
        routers, [problem] = build_routers({"plugins": {"broken": {}}}, "web", "shop", "s", "c")
    finally:
        registry.installed_plugins.cache_clear()
    assert routers == []
    assert "'broken' (no_such_module_here:Router) failed to load: ModuleNotFoundError" in problem.message
    assert problem.message.endswith("fix or reinstall the plugin's package")


def test_the_kinds_installed_plugins_declare_are_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's `KINDS` join the built-in routers' (the controller watches them); a plugin without
    `KINDS`, or one that fails to import, adds none (its objects are read with a GET on every pass)."""
    (tmp_path / "widget_router.py").write_text(
        "from rollouts.traffic.router import RoutedKind\n\n\n"
        "class WidgetRouter:\n    KINDS = (RoutedKind('example.com/v1', 'Widget', 'widgets'),)\n\n\n"
        "class UndeclaredRouter:\n    pass\n"
    )
    info = tmp_path / "widgets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: widgets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pyrollouts.traffic_routers]\nwidgets = widget_router:WidgetRouter\n"
        "undeclared = widget_router:UndeclaredRouter\nbroken = no_such_module_here:Router\n"
    )
    built_in = registry.routed_kinds()
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.installed_plugins.cache_clear()
    try:
        kinds = registry.routed_kinds()
        watched = Controller(Connection(server="https://127.0.0.1:1")).routing
    finally:
        registry.installed_plugins.cache_clear()
        sys.modules.pop("widget_router", None)
    assert kinds == [*built_in, RoutedKind("example.com/v1", "Widget", "widgets")]
    assert watched.wants("widgets.example.com")


def test_the_example_plugin_declares_the_kind_it_reads(plugin_path: Path) -> None:
    routers, _ = build_routers({"plugins": {PLUGIN_NAME: {}}}, "web", "shop", "web-stable", "web-canary")
    [router] = routers
    assert {(ref.api_version, ref.kind, ref.plural) for ref in router.objects()} == {
        (k.api_version, k.kind, k.plural) for k in router.KINDS
    }
