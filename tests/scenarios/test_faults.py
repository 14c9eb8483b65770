"""The controller against a sandbox that fails a tenth of its requests (`--faults 0.1`: 500, 503, 429 with
Retry-After, 409 on updates and patches) and cuts watch streams at random: a canary with analysis, a
blue/green, a routed canary, an abort and a retry each end exactly as without faults, and at no time is a
version promoted that should not be, or traffic sent to a ReplicaSet scaled to zero.

Only the controller's requests meet the faults (its client's and kopf's User-Agents): the test's own
kubectl and reads are exact. The draws are seeded: PYROLLOUTS_FAULTS_SEED replays a run (each run prints
its seed)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from rollouts.sandbox.faults import Faults, parse_rates
from tests.fixtures.bluegreen import ACTIVE, paused_before_promotion
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.health import serve_health
from tests.fixtures.manifests import HASH_LABEL, Step, rollout_manifest, service_manifest, web_template
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.fixtures.sandbox import CONTROLLER_AGENTS, SandboxHandle, faulty_sandbox_handle
from tests.fixtures.traffic import PREFIX, ingress_manifest, routed_manifests
from tests.fixtures.watchdog import watchdog

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

RATE = "0.1"
TIMEOUT = 60.0
SEED = int(os.environ.get("PYROLLOUTS_FAULTS_SEED") or random.randrange(1 << 30))
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
ROUTING = {"nginx": {"stableIngress": "web"}}
ROUTED_STEPS: list[Step] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's sandbox (in place of tests/conftest.py's): faults for the controller's requests."""
    print(f"fault injection: --faults {RATE} --faults-seed {SEED}")
    faults = Faults(parse_rates(RATE), SEED, CONTROLLER_AGENTS)
    with faulty_sandbox_handle(tmp_path_factory.mktemp("faulty"), faults) as handle:
        yield handle


# --------------------------------------------------------------------------- what must hold


def selected(namespace: Namespace, service: str) -> str:
    return namespace.selected(service)


def expect_finished(rollout: RolloutHandle, image: str, replicas: int, services: tuple[str, ...]) -> None:
    """Healthy on `image`, all of it and nothing else; the Services on it; no ReplicaSet but the Rollout's."""
    status = rollout.wait_healthy(timeout=TIMEOUT).seen
    rollout.wait_sizes({image: replicas}, timeout=TIMEOUT)
    new = rollout.hash_of(image)
    assert status["stableRS"] == status["currentPodHash"] == new, status
    on_new = lambda: all(selected(rollout.namespace, s) == new for s in services)  # noqa: E731
    rollout.wait_for(f"Services {', '.join(services)} on {new}", on_new)
    uid = rollout.live()["metadata"]["uid"]
    for rs in rollout.namespace.replicasets():
        owners = [r["uid"] for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")]
        assert owners == [uid], f"ReplicaSet {rs['metadata']['name']} is not the Rollout's: {owners}"


def pod_hash_replicas(namespace: Namespace) -> dict[str, int]:
    return {rs["metadata"]["labels"].get(HASH_LABEL, ""): rs["spec"]["replicas"] for rs in namespace.replicasets()}


def canary_weight(namespace: Namespace) -> int:
    networking = client.NetworkingV1Api(namespace.cluster.api)
    try:
        found = networking.read_namespaced_ingress("web-web-canary", namespace.name)
    except client.ApiException as exc:
        if exc.status == 404:
            return 0
        raise
    annotations = (found.metadata.annotations if found.metadata else None) or {}
    return int(annotations.get(f"{PREFIX}/canary-weight", "0"))


def no_weight_on_a_scaled_down_replicaset(namespace: Namespace) -> None:
    weight = canary_weight(namespace)
    if weight > 0:
        target = selected(namespace, "web-canary")
        replicas = pod_hash_replicas(namespace).get(target, 0)
        assert replicas > 0, f"weight {weight} on {target}, scaled to {replicas}"


def stable_until_promoted(namespace: Namespace, service: str, blue: str, promoted: list[bool]) -> None:
    if not promoted:
        now = selected(namespace, service)
        assert now == blue, f"Service {service} moved to {now} before the promotion"


# --------------------------------------------------------------------------- the scenarios


def test_canary_with_analysis(cluster: Cluster, controller: ControllerProcess | None) -> None:
    with serve_health() as (url, _handler):
        namespace = given(cluster, "faults-analysis")
        steps: list[Step] = [
            {"setWeight": 50},
            {"analysis": {"templates": [{"templateName": "health"}], "args": [LATEST]}},
        ]
        template = web_template("health", "canary-hash", f"{url}/health/{{{{args.canary-hash}}}}")
        manifest = rollout_manifest(
            "web", replicas=4, steps=steps, canaryService="web-canary", stableService="web-stable"
        )
        services = (service_manifest("web-canary", "web"), service_manifest("web-stable", "web"))
        rollout = namespace.rollout(manifest, template, *services).apply().wait_healthy(timeout=TIMEOUT)
        blue = rollout.hash_of("nginx:1")
        # The watchdog judges moves away from blue, so it starts once both Services are on blue (a CI run
        # under faults once found the stable Service without a hash just after Healthy: cause not found)
        on_blue = lambda: all(selected(namespace, s) == blue for s in ("web-stable", "web-canary"))  # noqa: E731
        rollout.wait_for(f"Services web-stable, web-canary on {blue}", on_blue, timeout=TIMEOUT)

        def promoted_only_after_a_successful_run() -> None:
            stable = selected(namespace, "web-stable")
            if stable != blue:
                phases = {r["metadata"]["labels"].get(HASH_LABEL): r["status"].get("phase") for r in runs(namespace)}
                assert phases.get(stable) == "Successful", f"stable Service on {stable} with analysis {phases}"

        with watchdog(promoted_only_after_a_successful_run):
            rollout.set_image("nginx:2")
            expect_finished(rollout, "nginx:2", 4, ("web-stable", "web-canary"))
        [run] = runs(namespace)
        assert run["status"]["phase"] == "Successful"


def runs(namespace: Namespace) -> list[dict[str, Any]]:
    return [r for r in namespace.analysis_runs().values() if r.get("status")]


def test_bluegreen(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "faults-bg")
    promoted: list[bool] = []
    rollout, blue = paused_before_promotion(namespace, TIMEOUT, scaleDownDelaySeconds=1)
    with watchdog(lambda: stable_until_promoted(namespace, ACTIVE, blue, promoted)):
        rollout.expect_throughout(1.0, lambda: rollout.status.get("pauseConditions"))
        promoted.append(True)
        rollout.promote()
        expect_finished(rollout, "nginx:2", 2, (ACTIVE,))


def routed(namespace: Namespace, image: str) -> list[dict[str, Any]]:
    return [
        ingress_manifest("web", "web-stable"),
        *routed_manifests(ROUTING, ROUTED_STEPS, image=image, scaleDownDelaySeconds=1, abortScaleDownDelaySeconds=1),
    ]


def wait_weight(rollout: RolloutHandle, weight: int) -> None:
    rollout.wait_for(f"canary weight {weight}", lambda: canary_weight(rollout.namespace) == weight, TIMEOUT)


def test_routed_canary(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "faults-routed")
    rollout = namespace.rollout_of(routed(namespace, "nginx:1")).apply().wait_healthy(timeout=TIMEOUT)
    blue = rollout.hash_of("nginx:1")
    promoted: list[bool] = []

    def invariants() -> None:
        no_weight_on_a_scaled_down_replicaset(namespace)
        stable_until_promoted(namespace, "web-stable", blue, promoted)

    with watchdog(invariants):
        namespace.apply(*routed(namespace, "nginx:2"))
        rollout.wait_paused(step=1, timeout=TIMEOUT).wait_sizes({"nginx:1": 5, "nginx:2": 1}, timeout=TIMEOUT)
        wait_weight(rollout, 20)
        rollout.promote().wait_status("step 3", lambda st: st.get("currentStepIndex") == 3, TIMEOUT)
        rollout.wait_paused(step=3, timeout=TIMEOUT).wait_sizes({"nginx:1": 5, "nginx:2": 3}, TIMEOUT)
        wait_weight(rollout, 60)
        promoted.append(True)
        rollout.promote()
        expect_finished(rollout, "nginx:2", 5, ("web-stable", "web-canary"))
        wait_weight(rollout, 0)


def test_abort_then_retry(cluster: Cluster, controller: ControllerProcess | None) -> None:
    namespace = given(cluster, "faults-abort")
    rollout = namespace.rollout_of(routed(namespace, "nginx:1")).apply().wait_healthy(timeout=TIMEOUT)
    blue = rollout.hash_of("nginx:1")
    promoted: list[bool] = []

    def invariants() -> None:
        no_weight_on_a_scaled_down_replicaset(namespace)
        stable_until_promoted(namespace, "web-stable", blue, promoted)

    with watchdog(invariants):
        namespace.apply(*routed(namespace, "nginx:2"))
        rollout.wait_paused(step=1, timeout=TIMEOUT)
        wait_weight(rollout, 20)
        status = rollout.abort().wait_degraded(timeout=TIMEOUT).seen
        assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2"), status
        wait_weight(rollout, 0)
        rollout.wait_sizes({"nginx:1": 5}, timeout=TIMEOUT)
        assert rollout.status["stableRS"] == blue

        rollout.retry().wait_paused(step=1, timeout=TIMEOUT).wait_sizes({"nginx:1": 5, "nginx:2": 1}, TIMEOUT)
        wait_weight(rollout, 20)
        promoted.append(True)
        rollout.promote_full()
        expect_finished(rollout, "nginx:2", 5, ("web-stable", "web-canary"))
        wait_weight(rollout, 0)


def test_the_faults_were_injected(sandbox: SandboxHandle) -> None:
    """The scenarios above met faults of every status and cut watches (else they proved little). A 409
    comes only on a patch or update, a quarter of their faults: a run may see none, so it is not required."""
    assert sandbox.threaded.sandbox is not None and sandbox.threaded.sandbox.api.faults is not None
    injected = sandbox.threaded.sandbox.api.faults.injected
    print(f"injected: {dict(sorted(injected.items()))}")
    codes = {kind.split()[-1] for kind in injected}
    assert {"500", "503", "429", "dropped"} <= codes and sum(injected.values()) >= 20, injected
