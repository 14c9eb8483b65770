"""The sandbox's TokenRequest: the API server's 10-minute minimum (lowered for tests of credential
refresh), and tokens that stop authenticating when they expire."""

from __future__ import annotations

import pytest

from rollouts.sandbox.access import Access
from rollouts.sandbox.errors import ApiError
from rollouts.sandbox.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def access_with_account(min_token_seconds: int) -> tuple[Access, Clock]:
    clock = Clock()
    store = Store(clock=clock)
    access = Access(store, "rbac", min_token_seconds)
    accounts = store.registry.get("", "v1", "serviceaccounts")
    namespaces = store.registry.get("", "v1", "namespaces")
    assert accounts is not None and namespaces is not None
    store.create_internal(namespaces, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    store.create_internal(accounts, "ns", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})
    return access, clock


def test_a_real_servers_minimum_is_ten_minutes() -> None:
    access, _ = access_with_account(600)
    with pytest.raises(ApiError, match="may not specify a duration less than 10 minutes"):
        access.token_request("ns", "sa", {"spec": {"expirationSeconds": 599}})


def test_a_lowered_minimum_issues_tokens_that_expire_within_seconds() -> None:
    access, clock = access_with_account(1)
    with pytest.raises(ApiError, match="less than 1 second"):
        access.token_request("ns", "sa", {"spec": {"expirationSeconds": -1}})
    answer = access.token_request("ns", "sa", {"spec": {"expirationSeconds": 3}})
    assert answer["status"]["expirationTimestamp"] == "1970-01-01T00:16:43Z"
    header = f"Bearer {answer['status']['token']}"
    assert access.authenticate(header).name == "system:serviceaccount:ns:sa"
    clock.now += 3
    with pytest.raises(ApiError) as denied:
        access.authenticate(header)
    assert denied.value.code == 401
