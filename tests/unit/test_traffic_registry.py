"""The router registry: trafficRouting keys -> routers, several at once, one line to plug a router in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from rollouts.traffic import registry
from rollouts.traffic.registry import RouterContext, build_routers
from rollouts.traffic.router import DesiredTraffic, ObjectRef, Owner, RouterResult, RoutingProblem


class EchoRouter:
    """A router a test plugs in through the table."""

    name = "echo"

    def __init__(self, context: RouterContext) -> None:
        self.context = context

    def objects(self) -> Sequence[ObjectRef]:
        return []

    def spec_problems(self) -> Sequence[RoutingProblem]:
        return []

    def reconcile(
        self, desired: DesiredTraffic, live: Mapping[ObjectRef, Mapping[str, Any] | None], owner: Owner
    ) -> RouterResult:
        return RouterResult(actual_canary_weight=desired.canary_weight)

    def supports_mirror(self) -> bool:
        return True

    def supports_header_routes(self) -> bool:
        return True


def test_no_routing_no_routers() -> None:
    assert build_routers(None, "web", "ns", "s", "c") == ([], [])


def test_several_routers_in_table_order_with_their_context() -> None:
    routing = {"smi": {"rootService": "web"}, "nginx": {"stableIngress": "web"}, "maxTrafficWeight": 1000}
    routers, problems = build_routers(routing, "web", "shop", "web-stable", "web-canary")
    assert problems == []
    assert [r.name for r in routers] == ["nginx", "smi"]
    context = routers[0].context  # type: ignore[attr-defined]
    assert (context.key, context.rollout, context.namespace, context.path) == (
        "nginx",
        "web",
        "shop",
        "spec.strategy.canary.trafficRouting.nginx",
    )
    assert context.traffic_routing["maxTrafficWeight"] == 1000


def test_an_unknown_key_is_a_problem_naming_it() -> None:
    routers, problems = build_routers({"kong": {"ingress": "web"}}, "web", "shop", "s", "c")
    assert routers == []
    [problem] = problems
    assert problem.field == "spec.strategy.canary.trafficRouting.kong"
    assert "not supported by this controller" in problem.message and "nginx" in problem.message


def test_a_router_plugs_in_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.ROUTERS, "echo", f"{__name__}:EchoRouter")
    routers, problems = build_routers({"echo": {"x": 1}, "smi": {}}, "web", "shop", "s", "c")
    assert problems == []
    assert sorted(r.name for r in routers) == ["echo", "smi"]
    echo = next(r for r in routers if r.name == "echo")
    assert echo.context.config == {"x": 1}  # type: ignore[attr-defined]
