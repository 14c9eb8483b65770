"""The sandbox serves what leader election needs: `coordination.k8s.io/v1` Leases, their MicroTime fields
as written, and 409 Conflict for an update carrying a stale resourceVersion (of two candidates writing
after the same read, one wins)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.kube import http
from tests.fixtures.sandbox import SandboxHandle

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with http(sandbox.url) as client:
        yield client


def spec(holder: str, transitions: int) -> dict[str, object]:
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-12-03T14:00:00.123456Z",
        "renewTime": "2026-12-03T14:00:02.654321Z",
        "leaseTransitions": transitions,
    }


def test_of_two_updates_after_the_same_read_one_wins(api: httpx.Client) -> None:
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"}}
    created = api.post(LEASES, json={**body, "spec": spec("a", 0)})
    assert created.status_code == 201, created.text
    assert api.post(LEASES, json={**body, "spec": spec("b", 0)}).json()["reason"] == "AlreadyExists"
    read = api.get(f"{LEASES}/lock").json()
    assert read["spec"] == spec("a", 0)
    first = api.put(f"{LEASES}/lock", json={**read, "spec": spec("b", 1)})
    assert first.status_code == 200, first.text
    second = api.put(f"{LEASES}/lock", json={**read, "spec": spec("c", 1)})
    assert second.status_code == 409 and second.json()["reason"] == "Conflict"
    assert api.get(f"{LEASES}/lock").json()["spec"]["holderIdentity"] == "b"
