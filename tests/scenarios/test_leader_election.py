"""High availability: three `pyrollouts controller --leader-elect` on one Lease, with client-go's default
timing (lease 15 s, renew deadline 10 s, retry 2 s). One holds the Lease and alone reconciles; kill -9 it
mid-canary and another takes over and finishes the canary, with no step done (or announced) twice;
SIGTERM it and the Lease is released and taken within a retry period."""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import FREE_PORTS, ControllerProcess, runs_own_controllers
from tests.fixtures.manifests import Step, rollout_manifest, service_manifest
from tests.fixtures.rollout import Namespace, RolloutHandle, given
from tests.fixtures.tools import load_factor

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, runs_own_controllers]

LEASE = "pyrollouts-controller-lock"
LEASE_SECONDS, RETRY_SECONDS = 15.0, 2.0
# The stalled-holder test waits a whole lease out, so it takes a shorter one than client-go's default (the
# kill -9 test keeps the default); a holder still gets 6 s, as many 1 s retries, to renew on a busy machine.
SHORT_LEASE_SECONDS, SHORT_RETRY_SECONDS = 8.0, 1.0
SHORT_LEASE_FLAGS = (
    "--leader-election-lease-duration", "8s", "--leader-election-renew-deadline", "6s",
    "--leader-election-retry-period", "1s",
)  # fmt: skip
# One pause only: then every Event of a canary is written once, and a repeated one is a step done twice.
STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 75}]


def lease_spec(cluster: Cluster, ns: str, name: str = LEASE) -> dict[str, Any] | None:
    try:
        lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    spec: dict[str, Any] = cluster.plain(lease)["spec"]
    return spec


def holder(cluster: Cluster, ns: str, name: str = LEASE) -> str:
    return str((lease_spec(cluster, ns, name) or {}).get("holderIdentity") or "")


def identity(proc: ControllerProcess) -> str | None:
    found = re.search(r"leader election: (\S+) on Lease", proc.current_log())
    return found.group(1) if found else None


def metrics(proc: ControllerProcess) -> str:
    port = proc.port("/metrics")
    assert port is not None, "the controller did not say where it serves /metrics"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def writes(proc: ControllerProcess) -> int:
    """API writes (POST, PUT, PATCH, DELETE) of the controller's reconciles; the Lease's are not counted."""
    found = re.findall(
        r'controller_clientset_k8s_request_total\{[^}]*verb="(Create|Update|Patch|Delete)"\} ([\d.e+]+)', metrics(proc)
    )
    return sum(int(float(n)) for _, n in found)


def idle(proc: ControllerProcess) -> bool:
    """No reconcile queued or running in either work queue (so no request of one in flight)."""
    text = metrics(proc)
    return all(
        f'workqueue_{gauge}{{name="{queue}"}} 0.0' in text
        for gauge in ("depth", "unfinished_work_seconds")
        for queue in ("Rollouts", "AnalysisRuns")
    )


@contextmanager
def candidates(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, ns: str, count: int = 3, *extra: str
) -> Iterator[dict[str, ControllerProcess]]:
    """`count` controllers electing in `ns`, by identity, once each has joined the election."""
    procs = [
        ControllerProcess(
            cluster.kubeconfig,
            cluster.env,
            tmp_path_factory.mktemp("candidate"),
            extra=["--leader-elect", "--leader-election-namespace", ns, *extra],
            listen=FREE_PORTS,
        ).start()
        for _ in range(count)
    ]
    try:
        ids = [cluster.wait("the candidate to join the election", lambda p=p: identity(p)) for p in procs]  # type: ignore[misc]
        yield dict(zip(ids, procs, strict=True))
    finally:
        for proc in procs:
            proc.stop()


def wait_holder(
    cluster: Cluster, ns: str, known: dict[str, ControllerProcess], not_: str = "", timeout: float = 10
) -> str:
    return cluster.wait(
        "a candidate to hold the Lease",
        lambda: (h := holder(cluster, ns)) in known and h != not_ and h,
        timeout=timeout,
        interval=0.02,
    )


def manifests(image: str) -> list[dict[str, Any]]:
    return [
        service_manifest("web-canary", "web"),
        service_manifest("web-stable", "web"),
        rollout_manifest(
            "web", replicas=4, steps=STEPS, image=image, canaryService="web-canary", stableService="web-stable"
        ),
    ]


def no_step_twice(rollout: RolloutHandle) -> None:
    """Every Event of the canary was written once: two writers would record a step's Events twice."""
    counts = Counter(rollout.events())
    twice = {event: n for event, n in counts.items() if n > 1}
    assert not twice, twice


def test_one_holder_and_a_takeover_after_kill_9_mid_canary(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace: Namespace = given(cluster, "ha")
    ns = namespace.name
    with candidates(cluster, tmp_path_factory, ns) as procs:
        first = wait_holder(cluster, ns, procs)
        rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy()
        namespace.apply(*manifests("nginx:2"))
        rollout.wait_paused(step=1)
        followers = [proc for who, proc in procs.items() if who != first]
        assert writes(procs[first]) > 0
        assert [writes(proc) for proc in followers] == [0, 0], "a follower wrote"
        assert "pyrollouts_leader 1" in metrics(procs[first])
        assert ["pyrollouts_leader 0" in metrics(proc) for proc in followers] == [True, True]
        assert [holder(cluster, ns)] == [first]

        procs[first].kill()
        killed = time.monotonic()
        second = wait_holder(cluster, ns, procs, not_=first, timeout=LEASE_SECONDS + 2 * RETRY_SECONDS + 3)
        took = time.monotonic() - killed
        # Not before the lease ran out on the follower's clock, and within it plus two retry periods:
        # one for the follower to see the last renewal, one for its next try.
        # (The upper bound is for an idle machine, stretched by the load as every deadline is.)
        assert LEASE_SECONDS - RETRY_SECONDS <= took <= (LEASE_SECONDS + 2 * RETRY_SECONDS + 1) * load_factor(), took
        spec = lease_spec(cluster, ns)
        assert spec is not None and spec["leaseTransitions"] == 1 and spec["leaseDurationSeconds"] == 15

        rollout.promote()
        rollout.wait_healthy(timeout=30)
        assert rollout.sizes() == {"nginx:2": 4}
        assert [r for r, _ in rollout.events()].count("NewReplicaSetCreated") == 2
        assert len(rollout.replicasets()) == 2
        no_step_twice(rollout)
        third = next(proc for who, proc in procs.items() if who not in (first, second))
        assert writes(third) == 0 and writes(procs[second]) > 0


def test_sigterm_releases_the_lease_and_another_takes_it_within_a_retry_period(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = given(cluster, "handover")
    ns = namespace.name
    with candidates(cluster, tmp_path_factory, ns) as procs:
        first = wait_holder(cluster, ns, procs)
        rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy()
        process = procs[first].proc
        assert process is not None
        process.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        second = wait_holder(cluster, ns, procs, not_=first, timeout=RETRY_SECONDS + 3)
        took = time.monotonic() - asked
        assert took <= (RETRY_SECONDS + 1) * load_factor(), took
        assert process.wait(timeout=10) == 0
        assert "released Lease" in procs[first].current_log()
        spec = lease_spec(cluster, ns)
        assert spec is not None and spec["leaseTransitions"] == 1
        # The new holder starts from warm caches: the next canary runs under it.
        namespace.apply(*manifests("nginx:2"))
        rollout.wait_paused(step=1)
        assert writes(procs[second]) > 0
        no_step_twice(rollout)


def test_a_holder_that_cannot_renew_stops_writing_before_another_takes_over(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGSTOP the holder (a partition, a stalled node): another takes the Lease after it runs out; the old
    holder, woken again, writes nothing, though its watches hand it every change it missed."""
    namespace = given(cluster, "stalled")
    ns = namespace.name
    with candidates(cluster, tmp_path_factory, ns, 2, *SHORT_LEASE_FLAGS) as procs:
        first = wait_holder(cluster, ns, procs)
        rollout = namespace.rollout_of(manifests("nginx:1")).apply().wait_healthy()
        namespace.apply(*manifests("nginx:2"))
        rollout.wait_paused(step=1)
        stalled = procs[first]
        # Writes are counted as they are answered: none may be in flight when the count is taken.
        cluster.wait("the holder to finish its reconciles", lambda: idle(stalled))
        before = writes(stalled)
        assert stalled.proc is not None
        stalled.proc.send_signal(signal.SIGSTOP)
        try:
            wait_holder(cluster, ns, procs, not_=first, timeout=SHORT_LEASE_SECONDS + 2 * SHORT_RETRY_SECONDS + 3)
            rollout.promote()
            rollout.wait_healthy(timeout=30)
        finally:
            stalled.proc.send_signal(signal.SIGCONT)
        cluster.wait("the old holder to notice", lambda: "stopped writing" in stalled.current_log())
        no_step_twice(rollout)
        # The next canary runs under the new holder; the old one, following now, still writes nothing.
        namespace.apply(*manifests("nginx:3"))
        rollout.wait_paused(step=1)
        assert writes(stalled) == before
