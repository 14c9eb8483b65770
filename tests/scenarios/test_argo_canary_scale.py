"""Argo's `setCanaryScale` under a traffic router (SMI on the sandbox): a `{weight: N}` stays in force over
later `setWeight` steps (the canary keeps N% of the pods while the router sends it more) until
`matchTrafficWeight: true` or the end of the steps."""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.rollout import given
from tests.fixtures.traffic import routed_manifests, status_weights

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

ROUTING = {"smi": {"rootService": "web", "trafficSplitName": "web-split"}}
STEPS: list[Step] = [
    {"setCanaryScale": {"weight": 25}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 75},
    {"pause": {}},
    {"setCanaryScale": {"matchTrafficWeight": True}},
    {"pause": {}},
]


@pytest.fixture(scope="module")
def smi_crd(cluster: Cluster) -> None:
    install_crds(cluster, "smi.yaml", "trafficsplits", "TrafficSplit CRD")


def test_set_canary_scale_weight_is_kept_until_match_traffic_weight(
    cluster: Cluster, controller: ControllerProcess | None, smi_crd: None
) -> None:
    namespace = given(cluster, "canary-scale")

    def manifests(image: str) -> list[dict[str, object]]:
        return routed_manifests(ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1)

    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    namespace.apply(*manifests("nginx:2"))
    rollout.wait_paused(step=2, timeout=60)
    assert status_weights(rollout) == (50, 50, True)
    rollout.expect_sizes({"nginx:1": 4, "nginx:2": 1})  # 25% of the pods for 50% of the traffic

    rollout.promote().wait_status("step 4", lambda st: st.get("currentStepIndex") == 4, 60).wait_paused(step=4)
    assert status_weights(rollout) == (75, 25, True)
    rollout.expect_sizes({"nginx:1": 4, "nginx:2": 1})  # still the setCanaryScale of step 0

    rollout.promote().wait_status("step 6", lambda st: st.get("currentStepIndex") == 6, 60).wait_paused(step=6)
    rollout.wait_sizes({"nginx:1": 4, "nginx:2": 3})
    assert status_weights(rollout) == (75, 25, True)
    rollout.promote().wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
