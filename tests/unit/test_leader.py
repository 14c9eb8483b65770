"""Leader election's decisions (client-go's tryAcquireOrRenew) and the elector's renew deadline, against an
in-memory Lease store that answers as the API server does (404, 409 on a stale resourceVersion)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from rollouts.controller.client import LEASES, ApiError, Client, Kind, NotLeading
from rollouts.controller.kubeconfig import Connection
from rollouts.controller.leader import (
    LeaderElector,
    Observation,
    Record,
    Timing,
    decide,
    first_record,
    held_by_other,
    lease_name,
    micro_time,
    observe,
    released,
)

WALL = dt.datetime(2026, 12, 3, 14, 0, 0, 123456, tzinfo=dt.UTC)
TIMING = Timing()


def record(holder: str, transitions: int = 0, renewed: str = "2026-12-03T13:59:58.000000Z") -> Record:
    return Record(holder, 15, "2026-12-03T13:00:00.000000Z", renewed, transitions)


def test_defaults_are_client_gos() -> None:
    assert (TIMING.lease_duration, TIMING.renew_deadline, TIMING.retry_period) == (15.0, 10.0, 2.0)
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        Timing(10.0, 10.0, 2.0)


def test_lease_names_follow_argo() -> None:
    assert lease_name(None) == "pyrollouts-controller-lock"
    assert lease_name("blue") == "pyrollouts-controller-lock-blue"


def test_micro_time_is_rfc3339_with_microseconds() -> None:
    assert micro_time(WALL) == "2026-12-03T14:00:00.123456Z"


def test_a_held_lease_expires_on_our_clock_from_when_we_saw_it_change() -> None:
    seen = observe(None, record("other"), now=100.0)
    assert held_by_other("me", seen, now=114.9)
    # The same record read again does not restart the clock; its renewTime (another clock) is not used.
    seen = observe(seen, record("other"), now=110.0)
    assert seen.seen_at == 100.0
    assert not held_by_other("me", seen, now=115.1)
    # A renewal (a changed record) does.
    renewed = observe(seen, record("other", renewed="2026-12-03T14:00:10.000000Z"), now=112.0)
    assert renewed.seen_at == 112.0 and held_by_other("me", renewed, now=115.1)


def test_no_decision_while_another_holds_it() -> None:
    assert decide("me", Observation(record("other"), 100.0), 105.0, WALL, TIMING) is None


def test_taking_an_expired_or_released_lease_counts_a_transition() -> None:
    taken = decide("me", Observation(record("other", transitions=3), 100.0), 116.0, WALL, TIMING)
    assert taken == Record("me", 15, micro_time(WALL), micro_time(WALL), 4)
    free = released(record("other", transitions=3), WALL)
    assert free == Record("", 1, micro_time(WALL), micro_time(WALL), 3)
    assert free.spec()["holderIdentity"] == "" and free.spec()["leaseDurationSeconds"] == 1
    # A released Lease is free at once, however recently it changed.
    assert decide("me", Observation(free, 100.0), 100.0, WALL, TIMING) == Record(
        "me", 15, micro_time(WALL), micro_time(WALL), 4
    )


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    mine = record("me", transitions=2)
    renewed = decide("me", Observation(mine, 100.0), 101.0, WALL, TIMING)
    assert renewed == Record("me", 15, mine.acquire_time, micro_time(WALL), 2)


def test_a_new_lease_starts_at_zero_transitions() -> None:
    assert first_record("me", WALL, TIMING).spec() == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": micro_time(WALL),
        "renewTime": micro_time(WALL),
        "leaseTransitions": 0,
    }


class LeaseStore(Client):
    """Leases in memory with the API server's answers; `down` makes every request fail as unreachable."""

    def __init__(self) -> None:
        super().__init__(Connection("http://unused"))
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.down = False

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        raise AssertionError("the elector uses get, create and replace")

    def _check(self) -> None:
        if self.down:
            raise ApiError(503, "ConnectionError", "unreachable")

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        self._check()
        if (namespace, name) not in self.leases:
            raise ApiError(404, "NotFound", f'leases "{name}" not found')
        return copy.deepcopy(self.leases[(namespace, name)])

    async def create(self, kind: Kind, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        name = body["metadata"]["name"]
        if (namespace, name) in self.leases:
            raise ApiError(409, "AlreadyExists", "exists")
        return self._write(namespace, name, body)

    async def replace(self, kind: Kind, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        current = self.leases[(namespace, name)]
        if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._write(namespace, name, body)

    def _write(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(dict(body))
        stored["metadata"] = {**stored["metadata"], "namespace": namespace, "resourceVersion": str(self.version)}
        self.leases[(namespace, name)] = stored
        return copy.deepcopy(stored)

    def holder(self) -> str:
        return str(self.leases[("ns", "lock")]["spec"]["holderIdentity"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(store: LeaseStore, identity: str, clock: Clock, events: list[str]) -> LeaderElector:
    return LeaderElector(
        store,
        "ns",
        "lock",
        identity,
        on_started=lambda: events.append(f"{identity} started"),
        on_stopped=lambda: events.append(f"{identity} stopped"),
        clock=clock,
    )


def test_one_of_two_candidates_wins_and_the_other_takes_over_after_the_lease() -> None:
    async def scenario() -> None:
        store, clock, events = LeaseStore(), Clock(), list[str]()
        a, b = elector(store, "a", clock, events), elector(store, "b", clock, events)
        assert await a._try() and not await b._try()
        a._renewed(clock.now)
        assert a.leading() and not b.leading() and store.holder() == "a"
        clock.now += 2.0
        assert await a._try()  # a renews: b sees a changed record and restarts its lease clock
        assert not await b._try()
        clock.now += 14.9
        assert not await b._try()  # 14.9 s since b saw the renewal: not expired yet
        assert not a.leading()  # a's renew deadline (10 s) passed long before
        clock.now += 0.2
        assert await b._try() and store.holder() == "b"
        assert store.leases[("ns", "lock")]["spec"]["leaseTransitions"] == 1
        assert not await a._try()  # a is a follower now

    asyncio.run(scenario())


def test_a_holder_that_cannot_renew_stops_before_the_lease_runs_out() -> None:
    """Real time, short periods: the holder's writes are refused at its renew deadline, before the Lease
    (as the follower counts it) expires."""

    async def scenario() -> None:
        store, events = LeaseStore(), list[str]()
        timing = Timing(lease_duration=1.5, renew_deadline=0.6, retry_period=0.1)
        stop = asyncio.Event()
        holder = LeaderElector(
            store, "ns", "lock", "a", lambda: events.append("started"), lambda: events.append("stopped"), timing
        )
        writes = Client(Connection("http://127.0.0.1:9"), retries=0, may_write=holder.leading)
        task = asyncio.create_task(holder.run(stop))
        while not holder.leading():
            await asyncio.sleep(0.01)
        lost_contact = asyncio.get_running_loop().time()
        store.down = True
        while holder.leading():
            await asyncio.sleep(0.01)
        stopped_after = asyncio.get_running_loop().time() - lost_contact
        assert events == ["started", "stopped"]
        assert stopped_after < timing.renew_deadline + 0.05 < timing.lease_duration
        with pytest.raises(NotLeading):
            await writes.create(LEASES, "ns", {"metadata": {"name": "x"}})
        stop.set()
        await task
        await writes.close()

    asyncio.run(scenario())


def test_release_empties_the_holder_and_stops_leading() -> None:
    async def scenario() -> None:
        store, clock, events = LeaseStore(), Clock(), list[str]()
        a = elector(store, "a", clock, events)
        assert await a._try()
        a._renewed(clock.now)
        await a.release()
        spec = store.leases[("ns", "lock")]["spec"]
        assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == ("", 1, 0)
        assert not a.leading() and events == ["a started", "a stopped"]
        b = elector(store, "b", clock, events)
        assert await b._try() and store.holder() == "b"  # free at once

    asyncio.run(scenario())
