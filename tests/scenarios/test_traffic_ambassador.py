"""Ambassador / Emissary traffic routing on the sandbox, through manifests and `kubectl rollouts` only:
the controller's canary Mapping (a weighted copy of the stable one) follows the steps, goes on abort
(weight 0 first, then deleted) before the canary scales down, comes back on retry, and goes after
promote --full; the stable Mapping is never changed; the sandbox's simulated requests follow the weight.
The CRD comes from examples/crds/ambassador.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.cluster import Cluster, install_crds
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.router_walk import RouterWalk
from tests.fixtures.sandbox import SandboxHandle, traffic_sandbox  # noqa: F401  (this module's `sandbox` fixture)
from tests.fixtures.traffic import routed_manifests, simulated_shares, simulated_traffic

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
ROUTING = {"ambassador": {"mappings": ["web"]}}
STABLE: dict[str, Any] = {
    "apiVersion": "getambassador.io/v2",
    "kind": "Mapping",
    "metadata": {"name": "web"},
    "spec": {"prefix": "/web/", "rewrite": "/", "service": "web-stable:80"},
}


@pytest.fixture(scope="module")
def mapping_crd(cluster: Cluster) -> None:
    install_crds(cluster, "ambassador.yaml", "mappings", "Mapping CRD")


def mapping(namespace: Namespace, name: str) -> dict[str, Any] | None:
    return namespace.custom_object("getambassador.io", "v2", "mappings", name)


def canary_weight(namespace: Namespace) -> int | None:
    """The canary Mapping's weight (None while there is none)."""
    obj = mapping(namespace, "web-canary")
    return None if obj is None else int(obj["spec"]["weight"])


def manifests(image: str) -> list[dict[str, Any]]:
    objects = routed_manifests(
        ROUTING, STEPS, image=image, replicas=4, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1
    )
    return [STABLE, *objects]


def test_canary_mapping_follows_the_steps_abort_retry_and_promote(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle, mapping_crd: None
) -> None:
    plugin = Plugin.on_cluster(cluster)
    namespace = given(cluster, "ambassador")
    ns = namespace.name
    rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy(timeout=60)
    assert mapping(namespace, "web-canary") is None  # nothing to route to a canary yet
    # 0: no canary Mapping (after an abort it goes at weight 0, then is deleted)
    walk = RouterWalk(rollout, "ambassador", lambda w: canary_weight(namespace) == (w or None), "nginx:1", "nginx:2",
                      4, plugin)

    plugin.ok("set", "image", "web", "web=nginx:2", "-n", ns)
    rollout.wait_paused(timeout=60)
    copy = mapping(namespace, "web-canary")
    assert copy is not None
    assert copy["spec"] == {"prefix": "/web/", "rewrite": "/", "service": "web-canary:80", "weight": 25}
    assert copy["metadata"]["ownerReferences"][0]["name"] == "web"
    walk.expect_first_step(25)
    if simulated_traffic():  # a quarter of the requests for /web/ reach the canary (a split by pods: 1/5)
        assert sandbox.threaded.metrics_url is not None
        new = rollout.status["currentPodHash"]
        shares = simulated_shares(sandbox.threaded.metrics_url, ns, "web-stable")
        assert shares.get(new, 0.0) == pytest.approx(0.25, abs=0.05)

    walk.abort(25, "from 1 to 0")
    walk.retry(25)
    walk.promote(3)
    walk.wait_weight(50)
    walk.promote_full([0, 25, 0, 25, 50, 100, 0])
    stable = mapping(namespace, "web")
    assert stable is not None and stable["spec"] == STABLE["spec"]


def test_a_weighted_stable_mapping_is_named(
    cluster: Cluster, controller: ControllerProcess | None, mapping_crd: None
) -> None:
    namespace = given(cluster, "ambassadorbad")
    objects = manifests("nginx:1")
    objects[0] = {**STABLE, "spec": {**STABLE["spec"], "weight": 100}}
    rollout = namespace.rollout_of(objects).apply()
    message = rollout.wait_event("TrafficRoutingError", timeout=60)
    assert message.startswith(f'Mapping {namespace.name}/web: spec.weight: Mapping "web" sets a weight: remove it')
