"""The `pyrollouts controller` process: what it was asked for (`Options`), its logging, and its start:
log in, refuse an untrusted API server, run the :class:`~rollouts.controller.operator.Controller` until a
signal."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from rollouts.controller.client import DEFAULT_BURST, DEFAULT_QPS
from rollouts.controller.kubeconfig import load_connection
from rollouts.controller.leader import Timing
from rollouts.controller.listen import Listen
from rollouts.controller.operator import Controller, Election
from rollouts.controller.preflight import check_api_server_trusted
from rollouts.controller.ratelimit import TokenBucket

log = logging.getLogger("pyrollouts.operator")


def configure_logging(verbose: bool) -> None:
    logging.getLogger("kopf").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Options:
    """What `pyrollouts controller` was asked for (see rollouts.main)."""

    kubeconfig: str | None = None
    namespaces: Sequence[str] = ()
    metrics: Listen | None = None
    health: Listen | None = None
    leader_elect: bool = False
    election_namespace: str | None = None
    timing: Timing = field(default_factory=Timing)
    instance_id: str | None = None
    notifications_namespace: str | None = None
    verbose: bool = False
    qps: float = DEFAULT_QPS
    burst: int = DEFAULT_BURST


async def run_controller(options: Options) -> None:
    configure_logging(options.verbose)
    namespaces = list(options.namespaces)
    login = functools.partial(load_connection, options.kubeconfig)
    conn = await asyncio.to_thread(login)
    # Refuse an API server the kubeconfig's CA did not sign before anything starts (one line, no retries).
    await asyncio.to_thread(check_api_server_trusted, conn)
    election = (
        Election(options.election_namespace or conn.namespace, timing=options.timing)
        if options.leader_elect
        else None
    )
    controller = Controller(
        conn,
        namespaces,
        login,
        election,
        options.instance_id,
        options.notifications_namespace,
        TokenBucket(options.qps, options.burst),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "pyrollouts controller: API server %s%s, %s",
        conn.server,
        f" (token read from {conn.token_file})" if conn.token_file else "",
        f"namespaces {', '.join(namespaces)}" if namespaces else "all namespaces",
    )
    await controller.run(stop, options.metrics, options.health, signals=True)
