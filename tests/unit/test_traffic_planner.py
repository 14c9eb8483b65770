"""The canary planner with traffic routers, in the in-memory world of fixtures/routed_world.py: the weight moves
only onto ready pods, back to the stable before the canary shrinks, all of it to the new stable before
header routes go and the old version is scaled down; every single write (a crash point) leaves the
traffic on ready pods."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from rollouts.strategy.plan import Plan, WriteRoutingObject
from tests.fixtures.routed_world import RoutedWorld, routed_rollout, stable_ingress

SMI = {"smi": {"rootService": "web"}}
NGINX = {"nginx": {"stableIngress": "web"}}
STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def world(routing: dict[str, Any] = SMI, steps: list[dict[str, Any]] = STEPS, **fields: Any) -> RoutedWorld:
    w = RoutedWorld(routed_rollout(routing, steps, **fields))
    w.add(stable_ingress())
    w.settle()
    assert w.status["phase"] == "Healthy"
    return w


def promote(w: RoutedWorld) -> None:
    w.patch_status({"pauseConditions": None, "controllerPause": True})


def run(w: RoutedWorld, passes: int = 30, seconds: float = 1.0) -> list[tuple[dict[str, int], dict[str, int]]]:
    """Reconcile ``passes`` times, ``seconds`` apart; the (sizes, weights) after each pass."""
    seen = []
    for _ in range(passes):
        w.now += seconds
        w.step()
        seen.append((w.by_image(), w.weights()))
    return seen


def distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def test_weights_follow_the_steps_only_once_the_canary_pods_are_ready() -> None:
    w = world()
    w.set_image("nginx:2")
    seen = run(w, 10)
    assert w.status["phase"] == "Paused" and w.status["currentStepIndex"] == 1
    # the canary ReplicaSet had its pod before the split moved
    assert distinct(seen) == [
        ({"nginx:1": 4}, {"web": 0}),
        ({"nginx:1": 4, "nginx:2": 1}, {"web": 0}),
        ({"nginx:1": 4, "nginx:2": 1}, {"web": 25}),
    ]
    assert w.status["canary"]["weights"]["canary"]["weight"] == 25
    assert w.status["canary"]["weights"]["stable"]["weight"] == 75
    assert w.status["canary"]["weights"]["verified"] is True
    assert w.status["canary"]["trafficRouters"] == [{"name": "smi", "setWeight": 25, "actualWeight": 25}]
    promote(w)
    run(w, 10)
    assert w.status["currentStepIndex"] == 3 and w.weights() == {"web": 50}
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 2}
    moved = [m for r, m in w.events if r == "TrafficWeightUpdated"]
    assert moved == ["Traffic weight updated from 0 to 25", "Traffic weight updated from 25 to 50"]


def test_a_canary_that_never_gets_ready_never_gets_traffic() -> None:
    w = world()
    w.never_ready.add("nginx:bad")
    w.set_image("nginx:bad")
    run(w, 15)
    assert w.weights() == {"web": 0}
    assert w.status["currentStepIndex"] == 0
    assert not [e for e in w.events if e[0] == "TrafficWeightUpdated"]


def test_abort_moves_the_weight_back_before_the_canary_shrinks() -> None:
    w = world()
    w.set_image("nginx:2")
    run(w, 10)
    w.abort()
    w.step()
    assert w.weights() == {"web": 0}
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1}  # still there: the weight went first
    # abortScaleDownDelaySeconds (default 30 s with a router) keeps the canary's pods a while
    run(w, 25)
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1}
    run(w, 10)
    assert w.by_image() == {"nginx:1": 4}
    assert w.status["phase"] == "Degraded"
    # retry: back to the first step
    w.retry()
    run(w, 10)
    assert w.weights() == {"web": 25} and w.status["phase"] == "Paused"


def test_completion_all_to_the_new_stable_then_routes_removed_then_old_scaled_down_after_the_delay() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}]}},
        {"pause": {}},
    ]
    w = world({**NGINX, "managedRoutes": [{"name": "beta"}]}, steps, scaleDownDelaySeconds=10)
    canary_ref = next(r for r in w.routing if r.name == "web-web-canary")

    def header() -> str | None:
        annotations: dict[str, str] = w.routing[canary_ref]["metadata"]["annotations"]
        return annotations.get("nginx.ingress.kubernetes.io/canary-by-header")

    w.set_image("nginx:2")
    run(w, 10)
    assert w.status["phase"] == "Paused" and header() == "X-Beta" and w.weights() == {"web-web-canary": 20}
    first = w.status["stableRS"]
    promote(w)
    timeline = []
    for _ in range(25):
        w.now += 1
        w.step()
        timeline.append(
            (
                w.weights()["web-web-canary"],
                header(),
                w.status["stableRS"] != first,
                w.services["web-stable"]["spec"]["selector"].get("rollouts-pod-template-hash") != first,
                w.by_image().get("nginx:1", 0),
            )
        )
    assert distinct(timeline) == [
        (20, "X-Beta", False, False, 4),  # the canary grows to full size first
        (100, "X-Beta", True, False, 4),  # all of it to the new version, which becomes the stable
        (0, "X-Beta", True, True, 4),  # the stable Service selects it, the weight returns to the stable Service
        (0, None, True, True, 4),  # then the header route goes
        (0, None, True, True, 0),  # and the old version only after scaleDownDelaySeconds
    ]
    assert w.status["phase"] == "Healthy"


def test_dynamic_stable_scale_shrinks_after_and_grows_before_the_weight_moves() -> None:
    w = world(dynamicStableScale=True, abortScaleDownDelaySeconds=0)
    w.set_image("nginx:2")
    seen = run(w, 10)
    assert distinct(seen) == [
        ({"nginx:1": 4}, {"web": 0}),
        ({"nginx:1": 4, "nginx:2": 1}, {"web": 0}),
        ({"nginx:1": 4, "nginx:2": 1}, {"web": 25}),
        ({"nginx:1": 3, "nginx:2": 1}, {"web": 25}),
    ]
    promote(w)
    seen = run(w, 10)
    assert seen[-1] == ({"nginx:1": 2, "nginx:2": 2}, {"web": 50})
    w.abort()
    seen = run(w, 10)
    assert distinct(seen) == [
        ({"nginx:1": 4, "nginx:2": 2}, {"web": 50}),  # the stable grows back first
        ({"nginx:1": 4, "nginx:2": 2}, {"web": 0}),  # then the traffic returns
        ({"nginx:1": 4}, {"web": 0}),  # then the canary goes
    ]


def test_set_canary_scale_is_independent_of_the_weight() -> None:
    steps: list[dict[str, Any]] = [
        {"setCanaryScale": {"replicas": 2}},
        {"setWeight": 0},
        {"pause": {}},
        {"setWeight": 25},
        {"pause": {}},
    ]
    w = world(steps=steps)
    w.set_image("nginx:2")
    run(w, 10)
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 2} and w.weights() == {"web": 0}
    promote(w)
    run(w, 10)
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 2} and w.weights() == {"web": 25}


def test_set_canary_scale_weight_is_kept_across_later_set_weights_until_match_traffic_weight() -> None:
    # Argo's UseSetCanaryScale: the last setCanaryScale stays in force over later setWeight steps
    steps: list[dict[str, Any]] = [
        {"setCanaryScale": {"weight": 25}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 75},
        {"pause": {}},
        {"setCanaryScale": {"matchTrafficWeight": True}},
        {"pause": {}},
    ]
    w = world(steps=steps)
    w.set_image("nginx:2")
    run(w, 10)
    assert w.status["currentStepIndex"] == 2
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1} and w.weights() == {"web": 50}
    promote(w)
    run(w, 10)
    assert w.status["currentStepIndex"] == 4
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1} and w.weights() == {"web": 75}
    promote(w)
    run(w, 10)
    assert w.status["currentStepIndex"] == 6
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 3} and w.weights() == {"web": 75}
    promote(w)
    run(w, 60)  # past the default scaleDownDelaySeconds (30)
    assert w.status["phase"] == "Healthy" and w.by_image() == {"nginx:2": 4}


def test_set_canary_scale_weight_is_kept_to_the_end_of_the_steps() -> None:
    steps: list[dict[str, Any]] = [{"setCanaryScale": {"weight": 25}}, {"setWeight": 50}, {"pause": {}}]
    w = world(steps=steps)
    w.set_image("nginx:2")
    run(w, 10)
    assert w.status["currentStepIndex"] == 2
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1} and w.weights() == {"web": 50}
    promote(w)
    run(w, 60)  # past the default scaleDownDelaySeconds (30)
    assert w.status["phase"] == "Healthy" and w.by_image() == {"nginx:2": 4}


def test_max_traffic_weight() -> None:
    w = world({"nginx": {"stableIngress": "web"}, "maxTrafficWeight": 1000}, [{"setWeight": 250}, {"pause": {}}])
    w.set_image("nginx:2")
    run(w, 10)
    canary = next(o for r, o in w.routing.items() if r.name == "web-web-canary")
    notes = canary["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary-weight"] == "250"
    assert notes["nginx.ingress.kubernetes.io/canary-weight-total"] == "1000"
    assert w.by_image() == {"nginx:1": 4, "nginx:2": 1}
    assert w.status["canary"]["weights"]["stable"]["weight"] == 750


def test_a_routing_problem_writes_nothing_and_holds_the_step() -> None:
    w = world(NGINX)
    w.set_image("nginx:2")
    stable = next(r for r in w.routing if r.name == "web")
    w.routing[stable]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "gone"
    before = copy.deepcopy(w.routing)
    run(w, 10)
    assert w.routing == before
    errors = [m for r, m in w.events if r == "TrafficRoutingError"]
    assert len(errors) == 1 and "has no rules using Service" in errors[0]  # recorded once, not every pass
    assert w.status["currentStepIndex"] == 0
    assert w.status["canary"]["weights"]["canary"]["weight"] == 0  # what is routed, not what the step wants
    [router] = w.status["canary"]["trafficRouters"]
    assert router["setWeight"] == 0 and "has no rules using Service" in router["message"]


def test_two_routers_at_once() -> None:
    w = world({"nginx": {"stableIngress": "web"}, "smi": {"rootService": "web"}})
    w.set_image("nginx:2")
    run(w, 10)
    assert w.weights() == {"web-web-canary": 25, "web": 25}
    assert [r["name"] for r in w.status["canary"]["trafficRouters"]] == ["nginx", "smi"]


@pytest.mark.parametrize("crash_at", [0, 1, 2, 3])
def test_a_crash_at_any_write_leaves_traffic_on_ready_pods_and_the_same_end(crash_at: int) -> None:
    """Stop each pass after ``crash_at`` writes (status unwritten, as when the controller is killed),
    then run a whole pass; every write is checked (RoutedWorld), and the rollout ends as usual."""
    w = world(NGINX, dynamicStableScale=True, abortScaleDownDelaySeconds=0, scaleDownDelaySeconds=0)
    w.set_image("nginx:2")
    for round_ in range(60):
        w.now += 1
        plan = w.plan()
        if round_ % 2 == 0 and len(plan.actions) > crash_at:
            w.apply(Plan(actions=plan.actions[:crash_at]))
        else:
            w.apply(plan)
        w.kubelet()
        if w.status.get("phase") == "Paused":
            promote(w)
    assert w.status["phase"] == "Healthy"
    assert w.by_image() == {"nginx:2": 4}
    assert w.weights() == {"web-web-canary": 0}


@pytest.mark.parametrize(
    ("routing", "steps", "field", "text"),
    [
        (
            NGINX,
            [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X", "headerValue": {"exact": "1"}}]}}],
            "steps[0].setHeaderRoute.name",
            "is not in spec.strategy.canary.trafficRouting.managedRoutes",
        ),
        (
            {**NGINX, "managedRoutes": [{"name": "copy"}]},
            [{"setMirrorRoute": {"name": "copy", "match": [{"path": {"prefix": "/"}}], "percentage": 10}}],
            "steps[0].setMirrorRoute",
            "traffic router nginx cannot do setMirrorRoute",
        ),
        (
            {**SMI, "managedRoutes": [{"name": "beta"}]},
            [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X", "headerValue": {"exact": "1"}}]}}],
            "steps[0].setHeaderRoute",
            "traffic router smi cannot do setHeaderRoute",
        ),
        ({**NGINX, "maxTrafficWeight": 10}, [{"setWeight": 20}], "steps[0].setWeight", "between 0 and 10"),
        ({"kong": {"ingress": "web"}}, [], "trafficRouting.kong", "not supported"),
        (
            {"alb": {"ingress": "web", "servicePort": 80}, "managedRoutes": [{"name": "copy"}]},
            [{"setMirrorRoute": {"name": "copy", "match": [{"path": {"prefix": "/"}}], "percentage": 10}}],
            "steps[0].setMirrorRoute",
            "traffic router alb cannot do setMirrorRoute",
        ),
        ({"maxTrafficWeight": 100}, [], "trafficRouting", "names no router"),
        (
            {**NGINX, "managedRoutes": [{"name": "beta"}]},
            [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X", "headerValue": {}}]}}],
            "setHeaderRoute.match[0].headerValue",
            "exactly one of exact, regex or prefix",
        ),
    ],
)
def test_invalid_traffic_routing(routing: dict[str, Any], steps: list[dict[str, Any]], field: str, text: str) -> None:
    ro = RolloutSpec.parse(routed_rollout(routing, steps))
    errors = validate_rollout(ro, ro.template)
    assert any(field in e and text in e for e in errors), errors


def test_missing_canary_service_names_the_field() -> None:
    raw = routed_rollout(NGINX, [])
    del raw["spec"]["strategy"]["canary"]["canaryService"]
    ro = RolloutSpec.parse(raw)
    errors = validate_rollout(ro, ro.template)
    assert any(e.startswith("spec.strategy.canary.canaryService: Required value") for e in errors), errors


def test_invalid_spec_moves_nothing() -> None:
    w = world(NGINX)
    before = copy.deepcopy(w.routing)
    w.patch_spec({"strategy": {"canary": {"steps": [{"setMirrorRoute": {"name": "x"}}]}}})
    plan = w.step()
    assert not [a for a in plan.actions if isinstance(a, WriteRoutingObject)]
    assert w.routing == before
    assert w.condition("InvalidSpec") is not None


def test_a_new_version_mid_canary_keeps_the_old_canary_while_a_service_sends_it_traffic() -> None:
    w = world()
    w.set_image("nginx:2")
    run(w, 10)
    assert w.weights() == {"web": 25} and w.by_image() == {"nginx:1": 4, "nginx:2": 1}
    w.never_ready.add("nginx:3")
    w.set_image("nginx:3")
    run(w, 15)
    # the canary Service still selects nginx:2's pods, which carry the 25%: they stay
    assert w.by_image()["nginx:2"] == 1 and w.weights() == {"web": 25}
    w.never_ready.discard("nginx:3")
    run(w, 15)
    assert w.by_image() == {"nginx:1": 4, "nginx:3": 1} and w.weights() == {"web": 25}


def finish(w: RoutedWorld, limit: int = 80) -> None:
    """Reconcile (retrying an abort, promoting every pause) until the new version is stable and alone."""
    for _ in range(limit):
        if w.status.get("abort") and w.by_image() == {"nginx:1": 4}:
            w.retry()
        if w.status.get("phase") == "Paused":
            promote(w)
        w.now += 1
        w.step()
        if w.status.get("phase") == "Healthy" and w.by_image() == {"nginx:2": 4} and w.weights() == {"web": 0}:
            return
    raise AssertionError(f"no recovery: {w.by_image()} {w.weights()} {w.status.get('phase')}")


def test_a_crash_after_any_write_of_any_pass_recovers() -> None:
    """For every pass of a routed canary (SMI, dynamicStableScale, abort on the way) and every prefix of its
    writes: stop there (status unwritten), start again, and finish. Every write is checked (RoutedWorld)."""
    w = world(SMI, dynamicStableScale=True, abortScaleDownDelaySeconds=0, scaleDownDelaySeconds=0)
    w.set_image("nginx:2")
    crashes = 0
    for round_ in range(40):
        if round_ == 12:
            w.abort()
        if round_ == 20:
            w.retry()
        if w.status.get("phase") == "Paused":
            promote(w)
        w.now += 1
        plan = w.plan()
        for k in range(len(plan.actions) + 1):  # the last: every write done, the status not
            crashed = copy.deepcopy(w)
            crashed.apply(Plan(actions=plan.actions[:k]))
            crashed.kubelet()
            finish(crashed)
            crashes += 1
        w.apply(plan)
        w.kubelet()
    finish(w)
    assert crashes >= 60
    moves = [m for r, m in w.events if r == "TrafficWeightUpdated"]
    assert "Traffic weight updated from 50 to 0" in moves  # the abort moved the weight back on the way
