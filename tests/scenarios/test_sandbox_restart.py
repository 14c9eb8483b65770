"""The controller against a sandbox stopped and started again empty (same port, same kubeconfig and TLS), ten
times: it keeps serving, the Rollouts of the new sandbox are reconciled as usual, and nothing is written
from its memory of the old one (no ReplicaSet, Event or status of an object the new sandbox never had),
even with a timed pause of the old Rollout falling due after the restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, runs_own_controllers
from tests.fixtures.manifests import Step, rollout_manifest
from tests.fixtures.rollout import Namespace
from tests.fixtures.sandbox import SandboxHandle, sandbox_handle
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

ROUNDS = 10
TIMEOUT = 30.0
NAMESPACE = "restarted"
# The old Rollout waits on this pause when the sandbox goes: its timer falls due after the restart.
STEPS: list[Step] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's own sandbox (in place of tests/conftest.py's), over HTTPS: the tests restart it, and the
    kubeconfig's CA must still be the one that signed the new sandbox's certificate."""
    with sandbox_handle(tmp_path_factory.mktemp("restarted"), tls=True) as handle:
        yield handle


def install_crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.wait(
        "the Rollout CRD to be served",
        lambda: cluster.kubectl("get", "rollouts", "-A", check=False).returncode == 0,
        timeout=TIMEOUT,
    )


def fresh_namespace(cluster: Cluster) -> Namespace:
    cluster.kubectl("create", "namespace", NAMESPACE)
    return Namespace(cluster, NAMESPACE)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_restart_empty_the_controller_serves_the_new_sandbox_only(
    cluster: Cluster, controller: ControllerProcess | None, sandbox: SandboxHandle, round_: int
) -> None:
    if round_ == 0:
        fresh_namespace(cluster)  # the module's cluster fixture installed the CRDs
    namespace = Namespace(cluster, NAMESPACE)
    old = namespace.rollout(rollout_manifest("web", replicas=2, steps=STEPS, image=f"nginx:{round_}-a"))
    old.apply().wait_healthy(timeout=TIMEOUT)
    old_uid = old.live()["metadata"]["uid"]
    old.set_image(f"nginx:{round_}-b").wait_status(
        "the timed pause", lambda st: st.get("currentStepIndex") == 1 and st.get("phase") == "Paused", TIMEOUT
    )

    sandbox.threaded.restart_empty()
    install_crds(cluster)
    fresh_namespace(cluster)
    assert cluster.kubectl("get", "rollouts", "-n", NAMESPACE, "-o", "name").stdout == ""

    # Same namespace, same name, another Rollout: served as any new Rollout is.
    new = namespace.rollout(rollout_manifest("web", replicas=3, image=f"nginx:{round_}-new"))
    new.apply().wait_healthy(timeout=TIMEOUT).wait_sizes({f"nginx:{round_}-new": 3}, timeout=TIMEOUT)
    assert controller is None or (controller.proc is not None and controller.proc.poll() is None)

    # The old Rollout's pause fell due meanwhile (2 s): nothing of it may appear, now or a little later.
    def nothing_of_the_old() -> None:
        images = {rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in namespace.replicasets()}
        assert images == {f"nginx:{round_}-new"}, images
        owners = {
            r["uid"] for rs in namespace.replicasets() for r in rs["metadata"].get("ownerReferences") or []
        }
        assert owners == {new.live()["metadata"]["uid"]} and old_uid not in owners, owners
        events = cluster.plain(cluster.core.list_namespaced_event(NAMESPACE).items)
        about_old = [e["message"] for e in events if e["involvedObject"].get("uid") == old_uid]
        assert about_old == [], about_old
        assert new.status["stableRS"] == new.hash_of(f"nginx:{round_}-new")

    new.expect_throughout(2.5, nothing_of_the_old)
    new.delete()
