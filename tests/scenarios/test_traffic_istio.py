"""Istio traffic routing on the sandbox: the VirtualService weights follow the plan at every step, the
header route comes and goes with its steps, abort returns the weight to stable before the canary
scales down, and with subset-level routing the DestinationRule's canary subset moves to the new
pods, which then get the share of the simulated requests that the VirtualService gives them.
The CRDs come from examples/crds/istio.yaml."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest

from rollouts.sandbox.traffic import parse_text_metrics, series_value
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.istio import (
    DESTINATION_RULE,
    SUBSET_ROUTING,
    SUBSET_VS,
    custom,
    http_routes,
    install_istio_crds,
    subset_hashes,
    virtual_service,
)
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import given
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.tools import REPO
from tests.fixtures.traffic import (
    READY_FAST,
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    routed_manifests,
    status_weights,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

HEADER = "canary-header"
MIRROR = "mirror-api"
STEPS: list[Step] = [
    {"setWeight": 25},
    {"setHeaderRoute": {"name": HEADER, "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
    {
        "setMirrorRoute": {
            "name": MIRROR,
            "match": [{"method": {"exact": "GET"}, "path": {"prefix": "/api"}}],
            "percentage": 30,
        }
    },
    {"pause": {}},
    {"setWeight": 50},
    {"setHeaderRoute": {"name": HEADER}},
    {"setMirrorRoute": {"name": MIRROR}},
    {"pause": {}},
]
ROUTING = {
    "istio": {"virtualService": {"name": "web", "routes": ["primary"]}},
    "managedRoutes": [{"name": MIRROR}, {"name": HEADER}],
}


@pytest.fixture(scope="module")
def istio_crds(cluster: Cluster) -> None:
    install_istio_crds(cluster)


def split(canary: int) -> tuple[str, dict[str, int]]:
    return ("primary", {"web-stable": 100 - canary, "web-canary": canary})


HOST_LEVEL_VS = virtual_service(
    {
        "name": "primary",
        "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}, "weight": 0},
        ],
    }
)


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        HOST_LEVEL_VS,
        *routed_manifests(
            ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
        ),
    ]


def test_host_level_weights_header_route_abort_retry_promote(
    cluster: Cluster, controller: ControllerProcess | None, istio_crds: None
) -> None:
    namespace = given(cluster, "istio")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    assert http_routes(namespace) == [split(0)]

    namespace.apply(*manifests("nginx:2"))
    rollout.wait_paused(timeout=60)
    header_route = (HEADER, {"web-canary": 100})
    mirror_route = (MIRROR, split(25)[1])
    assert http_routes(namespace) == [mirror_route, header_route, split(25)]
    vs = custom(namespace, "virtualservices", "web")
    assert vs is not None
    mirror, header = vs["spec"]["http"][:2]
    assert mirror["match"] == [{"method": {"exact": "GET"}, "uri": {"prefix": "/api"}}]
    assert mirror["mirror"] == {"host": "web-canary"} and mirror["mirrorPercentage"] == {"value": 30.0}
    assert header["match"] == [{"headers": {"X-Canary": {"exact": "yes"}}}]
    assert status_weights(rollout) == (25, 75, True)

    rollout.abort().wait_for("weight back to stable", lambda: split(0) in http_routes(namespace), 60)
    rollout.wait_sizes({"nginx:1": 4}, timeout=60)
    rollout.wait_for("the header and mirror routes removed", lambda: http_routes(namespace) == [split(0)], 60)
    assert_weight_back_before_scale_down(rollout, 25)

    rollout.retry().wait_paused(timeout=60)
    rollout.wait_for(
        "weight 25 and the managed routes",
        lambda: http_routes(namespace) == [mirror_route, header_route, split(25)],
        60,
    )
    rollout.promote().wait_status("step 7", lambda st: st.get("currentStepIndex") == 7, 60)
    rollout.wait_for("weight 50, managed routes gone", lambda: http_routes(namespace) == [split(50)], 60)
    rollout.promote_full().wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
    rollout.wait_for("all traffic on the new stable", lambda: http_routes(namespace) == [split(0)], 60)
    assert_weight_moves(rollout, [0, 25, 0, 25, 50, 100, 0])


def test_a_missing_route_is_reported_and_moves_nothing(
    cluster: Cluster, controller: ControllerProcess | None, istio_crds: None
) -> None:
    namespace = given(cluster, "istiobad")
    routing = {"istio": {"virtualService": {"name": "web", "routes": ["main"]}}}
    objects = routed_manifests(routing, [{"setWeight": 50}, {"pause": {}}], replicas=2)
    rollout = namespace.rollout_of([HOST_LEVEL_VS, *objects]).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert "VirtualService" in message and "'main'" in message and "virtualService.routes" in message
    assert http_routes(namespace) == [split(0)]


def canary_share(metrics_url: str, ns: str, canary_hash: str, seconds: float = 3.0) -> float:
    """The canary's share of the requests to Service `web` over `seconds`, from the sandbox's /metrics."""

    def counts() -> tuple[float, float]:
        samples = parse_text_metrics(httpx.get(metrics_url, timeout=5).text)
        total = series_value(samples, "http_requests_total", namespace=ns, service="web")
        canary = series_value(
            samples, "http_requests_total", namespace=ns, service="web", rollouts_pod_template_hash=canary_hash
        )
        return total, canary

    total0, canary0 = counts()
    time.sleep(seconds)
    total1, canary1 = counts()
    assert total1 - total0 > 500
    return (canary1 - canary0) / (total1 - total0)


def subset_objects(image: str, services: bool) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {"stableService": "web-stable", "canaryService": "web-canary"} if services else {}
    rollout = rollout_manifest(
        "web",
        replicas=2,
        steps=[{"setWeight": 20}, {"pause": {}}],
        image=image,
        annotations=READY_FAST,
        trafficRouting=SUBSET_ROUTING,
        scaleDownDelaySeconds=1,
        **extra,
    )
    objects = [service_manifest("web", "web"), SUBSET_VS, DESTINATION_RULE, rollout]
    if services:
        objects += [service_manifest("web-stable", "web"), service_manifest("web-canary", "web")]
    return objects


@pytest.mark.skipif(os.environ.get("PYROLLOUTS_E2E") == "1", reason="reads the sandbox's simulated traffic")
def test_subset_level_moves_the_canary_subset_and_the_traffic_follows(
    cluster: Cluster, controller: ControllerProcess | None, istio_crds: None, sandbox: SandboxHandle
) -> None:
    namespace = given(cluster, "istiosub")
    rollout = namespace.rollout_named("web")
    # stableService/canaryService are optional with a DestinationRule; set here, see the next test
    namespace.apply(*subset_objects("nginx:1", services=True))
    stable = rollout.wait_healthy(timeout=60).seen["stableRS"]
    rollout.wait_for(
        "both subsets on the stable pods",
        lambda: subset_hashes(namespace) == {"stable": stable, "canary": stable},
        60,
    )

    namespace.apply(*subset_objects("nginx:2", services=True))
    canary = rollout.wait_paused(timeout=60).seen["currentPodHash"]
    assert canary != stable
    assert subset_hashes(namespace) == {"stable": stable, "canary": canary}
    assert http_routes(namespace) == [("primary", {"stable": 80, "canary": 20})]
    rollout.wait_sizes({"nginx:1": 2, "nginx:2": 1}, timeout=60)
    # one canary pod beside two stable ones: by pods it would get a third; the VirtualService says 20%
    metrics_url = sandbox.threaded.metrics_url
    assert metrics_url is not None
    assert canary_share(metrics_url, namespace.name, canary) == pytest.approx(0.2, abs=0.05)

    rollout.promote().wait_healthy(timeout=60)
    rollout.wait_for(
        "both subsets on the new stable pods",
        lambda: subset_hashes(namespace) == {"stable": canary, "canary": canary},
        60,
    )
    rollout.wait_for(
        "all traffic to the stable subset",
        lambda: http_routes(namespace) == [("primary", {"stable": 100, "canary": 0})],
        60,
    )


def test_subset_level_without_services_returns_the_weight_after_promotion(
    cluster: Cluster, controller: ControllerProcess | None, istio_crds: None
) -> None:
    namespace = given(cluster, "istiosub")
    rollout = namespace.rollout_named("web")
    namespace.apply(*subset_objects("nginx:1", services=False))
    rollout.wait_healthy(timeout=60)
    namespace.apply(*subset_objects("nginx:2", services=False))
    rollout.wait_paused(timeout=60)
    assert http_routes(namespace) == [("primary", {"stable": 80, "canary": 20})]
    rollout.promote().wait_healthy(timeout=60)
    rollout.wait_for(
        "all traffic to the stable subset",
        lambda: http_routes(namespace) == [("primary", {"stable": 100, "canary": 0})],
        8,
    )


def test_the_istio_example_deploys(cluster: Cluster, controller: ControllerProcess | None, istio_crds: None) -> None:
    namespace = given(cluster, "istioexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "istio.yaml"))
    rollout = namespace.rollout_named("istio-demo")
    status = rollout.wait_healthy(timeout=60).seen
    rollout.wait_for(
        "the example's DestinationRule subsets",
        lambda: (
            {
                s["name"]: s["labels"].get(HASH_LABEL)
                for s in (custom(namespace, "destinationrules", "istio-demo") or {})["spec"]["subsets"]
            }
            == {"stable": status["stableRS"], "canary": status["stableRS"]}
        ),
        60,
    )
