"""SMI traffic routing on the sandbox: the controller's TrafficSplit follows the plan exactly, step by
step; promote, abort (weight back first), retry, promote --full; a TrafficSplit someone else owns is
reported and left alone. The TrafficSplit CRD comes from examples/crds/smi.yaml."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.tools import REPO
from tests.fixtures.traffic import (
    assert_weight_back_before_scale_down,
    assert_weight_moves,
    routed_manifests,
    status_weights,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
ROUTING = {"smi": {"rootService": "web", "trafficSplitName": "web-split"}}


def test_without_the_traffic_split_crd_the_write_is_reported(
    cluster: Cluster, controller: ControllerProcess | None
) -> None:
    # runs before the smi_crd fixture installs the CRD in this module's cluster
    if cluster.kubectl("get", "trafficsplits", "-A", check=False).returncode == 0:
        pytest.skip("this cluster serves TrafficSplit already")
    namespace = given(cluster, "smicrd")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert message.startswith(f"TrafficSplit {namespace.name}/web-split: create refused by the API server (404)")
    # the first version still comes up (its Services carry the traffic); no weight is recorded as routed
    rollout.wait_healthy(timeout=60)
    routers = rollout.status["canary"]["trafficRouters"]
    assert routers == [{"name": "smi", "setWeight": 0, "actualWeight": 0}]


@pytest.fixture(scope="module")
def smi_crd(cluster: Cluster) -> None:
    install_crds(cluster, "smi.yaml", "trafficsplits", "TrafficSplit CRD")


def split(namespace: Namespace, name: str = "web-split") -> dict[str, Any] | None:
    result = namespace.kubectl("get", "trafficsplits", name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def backends(namespace: Namespace, name: str = "web-split") -> dict[str, int] | None:
    obj = split(namespace, name)
    if obj is None:
        return None
    return {b["service"]: int(b["weight"]) for b in obj["spec"]["backends"]}


def wait_split(namespace: Namespace, canary: int) -> None:
    want = {"web-canary": canary, "web-stable": 100 - canary}
    namespace.cluster.wait(f"TrafficSplit {want}", lambda: backends(namespace) == want, 60)


def manifests(image: str) -> list[dict[str, Any]]:
    return routed_manifests(
        ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
    )


def test_split_follows_the_steps_abort_retry_and_promote(
    cluster: Cluster, controller: ControllerProcess | None, smi_crd: None
) -> None:
    namespace = given(cluster, "smi")
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    wait_split(namespace, 0)
    obj = split(namespace)
    assert obj is not None
    assert obj["spec"]["service"] == "web"
    assert obj["metadata"]["ownerReferences"][0]["name"] == "web"

    namespace.apply(*manifests("nginx:2"))
    rollout.wait_paused(timeout=60)
    assert backends(namespace) == {"web-canary": 25, "web-stable": 75}
    rollout.wait_sizes({"nginx:1": 4, "nginx:2": 1})
    assert status_weights(rollout) == (25, 75, True)

    rollout.abort()
    wait_split(namespace, 0)
    rollout.wait_sizes({"nginx:1": 4}, timeout=60)
    assert_weight_back_before_scale_down(rollout, 25, "from 1 to 0")

    rollout.retry().wait_paused(timeout=60)
    wait_split(namespace, 25)
    rollout.promote().wait_status("step 3", lambda st: st.get("currentStepIndex") == 3, 60)
    wait_split(namespace, 50)
    rollout.wait_sizes({"nginx:1": 4, "nginx:2": 2})
    rollout.promote_full().wait_healthy(timeout=60).wait_sizes({"nginx:2": 4}, timeout=60)
    wait_split(namespace, 0)
    # exactly the plan, in order (Events trail the writes: wait for all of them, then compare)
    assert_weight_moves(rollout, [0, 25, 0, 25, 50, 100, 0])


def test_a_traffic_split_owned_by_someone_else_is_left_alone(
    cluster: Cluster, controller: ControllerProcess | None, smi_crd: None
) -> None:
    namespace = given(cluster, "smibad")
    theirs = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "web-split"},
        "spec": {"service": "web", "backends": [{"service": "other", "weight": 100}]},
    }
    rollout = namespace.rollout_of([theirs, *manifests("nginx:1")]).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert 'TrafficSplit "web-split" already exists and is not owned by Rollout "web"' in message
    assert "trafficRouting.smi.trafficSplitName" in message
    assert backends(namespace) == {"other": 100}


def test_the_smi_example_deploys(cluster: Cluster, controller: ControllerProcess | None, smi_crd: None) -> None:
    namespace = given(cluster, "smiexample")
    namespace.kubectl("apply", "-f", str(REPO / "examples" / "smi.yaml"))
    rollout = namespace.rollout_named("smi-demo").wait_healthy(timeout=60)
    rollout.wait_for(
        "the example's TrafficSplit",
        lambda: backends(namespace, "smi-demo") == {"smi-demo-canary": 0, "smi-demo-stable": 100},
        60,
    )
