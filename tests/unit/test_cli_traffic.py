"""`kubectl rollouts get rollout` with traffic routers: set and actual weight per router, and a router's problem."""

from __future__ import annotations

from rollouts.cli import info, render
from tests.fixtures.cli_objects import paused_canary


def routed() -> tuple[dict, list[dict], list[dict], list[dict]]:  # type: ignore[type-arg]
    ro, replicasets, pods, runs = paused_canary()
    ro["spec"]["strategy"]["canary"]["trafficRouting"] = {
        "nginx": {"stableIngress": "demo"},
        "smi": {"rootService": "demo"},
    }
    ro["status"]["canary"] = {
        "weights": {"canary": {"weight": 20}, "stable": {"weight": 80}, "verified": False},
        "trafficRouters": [
            {"name": "nginx", "setWeight": 20, "actualWeight": 20},
            {"name": "smi", "setWeight": 20, "actualWeight": 10},
        ],
    }
    return ro, replicasets, pods, runs


def test_set_and_actual_weight_per_router() -> None:
    header = render.render_header(info.rollout_info(*routed()))
    at = header.index("  SetWeight:     20")
    assert header[at : at + 4] == [
        "  SetWeight:     20",
        "  ActualWeight:  20",
        "  nginx:         SetWeight 20, ActualWeight 20",
        "  smi:           SetWeight 20, ActualWeight 10",
    ]


def test_actual_weight_is_what_the_routers_route_when_they_agree() -> None:
    ro, replicasets, pods, runs = routed()
    ro["status"]["canary"]["trafficRouters"][1]["actualWeight"] = 20
    ro["status"]["canary"]["weights"]["canary"]["weight"] = 40  # set, not routed yet
    assert info.rollout_info(ro, replicasets, pods, runs).actual_weight == "20"


def test_a_router_problem_is_shown_under_it() -> None:
    ro, replicasets, pods, runs = routed()
    ro["status"]["canary"]["trafficRouters"] = [
        {"name": "nginx", "setWeight": 0, "message": 'Ingress prod/demo: spec.rules: Ingress "demo" has no rules'}
    ]
    header = render.render_header(info.rollout_info(ro, replicasets, pods, runs))
    at = header.index("  nginx:         SetWeight 0, ActualWeight unknown")
    assert header[at + 1] == '                 Ingress prod/demo: spec.rules: Ingress "demo" has no rules'
