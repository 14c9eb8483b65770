"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

The decision is pure (:func:`decide`, :func:`released`); :class:`LeaderElector` is the thin loop
that reads and writes the Lease through :class:`~rollouts.controller.client.Client`.

As client-go's ``leaderelection`` package does:

- a Lease is taken when it has no holder, or when its record has not changed for ``lease_duration``
  *as measured on our own clock* since we first saw that record (clock skew between controllers does
  not matter; the ``renewTime`` written by another controller is never compared with our clock);
- every write is an update guarded by the Lease's ``resourceVersion``, so of two candidates only one
  wins (the other gets 409 Conflict and stays a follower);
- the holder renews every ``retry_period``; leadership lasts until ``renew_deadline`` after the start
  of the last successful renewal. The deadline is shorter than the lease, so a holder that cannot
  renew stops writing before any other controller may take over;
- on a clean stop the holder releases the Lease (empty ``holderIdentity``, ``leaseDurationSeconds: 1``,
  as ``ReleaseOnCancel``), and a follower takes it at its next try.

Followers try every ``retry_period`` without client-go's jitter, so a released Lease is taken within
one retry period.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rollouts.controller.client import LEASES, ApiError, Client

log = logging.getLogger("pyrollouts.leader")

LEASE_NAME = "pyrollouts-controller-lock"


@dataclass(frozen=True)
class Timing:
    """client-go's defaults as kube-controller-manager and Argo Rollouts use them."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0")


@dataclass(frozen=True)
class Record:
    """The Lease's spec as client-go's ``LeaderElectionRecord``."""

    holder: str
    lease_duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Observation:
    """The last record we saw and when (our monotonic clock) we first saw it so."""

    record: Record
    seen_at: float


def lease_name(instance_id: str | None) -> str:
    """One Lease per controller instance id (sharding), as Argo suffixes its lock."""
    return f"{LEASE_NAME}-{instance_id}" if instance_id else LEASE_NAME


def default_identity() -> str:
    """Unique per process (client-go's hostname + UUID): several controllers may share a host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(when: dt.datetime) -> str:
    """A ``metav1.MicroTime`` as the API server writes it."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def observe(previous: Observation | None, record: Record, now: float) -> Observation:
    """A changed record restarts the lease clock; an unchanged one keeps when we first saw it."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def held_by_other(identity: str, seen: Observation, now: float) -> bool:
    """Another controller holds the Lease and it has not expired on our clock."""
    record = seen.record
    if not record.holder or record.holder == identity:
        return False
    return seen.seen_at + record.lease_duration_seconds > now


def decide(identity: str, seen: Observation, now: float, wall: dt.datetime, timing: Timing) -> Record | None:
    """The record to write to take or keep the Lease, or None while another controller holds it."""
    if held_by_other(identity, seen, now):
        return None
    old = seen.record
    stamp = micro_time(wall)
    if old.holder == identity:  # renewing: our acquireTime and the transition count stay
        return replace(old, renew_time=stamp, lease_duration_seconds=int(timing.lease_duration))
    return Record(identity, int(timing.lease_duration), stamp, stamp, old.transitions + 1)


def first_record(identity: str, wall: dt.datetime, timing: Timing) -> Record:
    """The record of a Lease we create (client-go starts the transition count at 0)."""
    stamp = micro_time(wall)
    return Record(identity, int(timing.lease_duration), stamp, stamp, 0)


def released(record: Record, wall: dt.datetime) -> Record:
    """client-go's release: no holder, a 1 s lease, the transition count kept."""
    stamp = micro_time(wall)
    return Record("", 1, stamp, stamp, record.transitions)


class LeaderElector:
    """Takes and keeps the Lease; ``leading()`` is true only until the renew deadline.

    ``on_started`` runs when we become the leader; ``on_stopped`` when we stop being it (a failed
    renewal past the deadline, or a release). Both are plain callbacks on the event loop."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._seen: Observation | None = None
        self._lease: dict[str, Any] | None = None
        self._leading_until: float | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def leading(self) -> bool:
        return self._leading_until is not None and self._clock() < self._leading_until

    async def run(self, stop: asyncio.Event) -> None:
        """Try every retry period until `stop` is set, then release the Lease if we hold it."""
        log.info("leader election: %s on Lease %s/%s", self.identity, self.namespace, self.name)
        while not stop.is_set():
            started = self._clock()
            try:
                won = await asyncio.wait_for(self._try(), timeout=self.timing.renew_deadline)
            except (ApiError, TimeoutError) as exc:
                log.warning("leader election: Lease %s/%s: %s", self.namespace, self.name, exc or "timed out")
                won = False
            except Exception:  # keep electing: a lapse only stops our writes, a dead loop would stop them for good
                log.exception("leader election: Lease %s/%s: unexpected error", self.namespace, self.name)
                won = False
            if won:
                self._renewed(started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.timing.retry_period)

    async def _try(self) -> bool:
        """One tryAcquireOrRenew: read the Lease, write our record if we may; True when we hold it."""
        now, wall = self._clock(), dt.datetime.now(dt.UTC)
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except ApiError as exc:
            if not exc.not_found:
                raise
            record = first_record(self.identity, wall, self.timing)
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name}}
            try:
                created = await self.client.create(LEASES, self.namespace, {**body, "spec": record.spec()})
            except ApiError as race:
                if race.already_exists:
                    return False  # another candidate created it first; read it at the next try
                raise
            self._store(created, now)
            return True
        self._store(lease, now)
        assert self._seen is not None
        wanted = decide(self.identity, self._seen, now, wall, self.timing)
        if wanted is None:
            return False
        try:
            updated = await self.client.replace(LEASES, self.namespace, self.name, {**lease, "spec": wanted.spec()})
        except ApiError as exc:
            if exc.conflict:
                return False  # someone wrote it since our read
            raise
        self._store(updated, now)
        return True

    def _store(self, lease: Mapping[str, Any], now: float) -> None:
        self._seen = observe(self._seen, Record.of(lease), now)
        self._lease = dict(lease)

    def _renewed(self, started: float) -> None:
        """Leadership runs to the renew deadline counted from the start of this (successful) try."""
        was_leading = self.leading()
        self._leading_until = started + self.timing.renew_deadline
        if self._deadline is not None:
            self._deadline.cancel()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(max(0.0, self._leading_until - self._clock()), self._expired)
        if not was_leading:
            record = self._seen.record if self._seen else None
            log.info(
                "leader election: %s now holds Lease %s/%s (transitions: %s)",
                self.identity,
                self.namespace,
                self.name,
                record.transitions if record else "?",
            )
            self._on_started()

    def _expired(self) -> None:
        self._deadline = None
        if self._leading_until is not None and not self.leading():
            log.warning(
                "leader election: %s could not renew Lease %s/%s within %.0fs; stopped writing",
                self.identity,
                self.namespace,
                self.name,
                self.timing.renew_deadline,
            )
            self._lose()

    def _lose(self) -> None:
        self._leading_until = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._on_stopped()

    async def release(self) -> None:
        """Give the Lease up (client-go's ReleaseOnCancel); the caller has stopped writing already."""
        if not self.leading() or self._seen is None or self._lease is None:
            return
        self._lose()
        record = released(self._seen.record, dt.datetime.now(dt.UTC))
        try:
            await self.client.replace(LEASES, self.namespace, self.name, {**self._lease, "spec": record.spec()})
        except ApiError as exc:
            log.warning("leader election: could not release Lease %s/%s: %s", self.namespace, self.name, exc)
            return
        log.info("leader election: %s released Lease %s/%s", self.identity, self.namespace, self.name)
