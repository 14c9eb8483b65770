"""Run the sandbox: in the foreground (`pyrollouts sandbox`) or in a background thread (tests)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from rollouts.sandbox.access import ADMIN_TOKEN, MIN_TOKEN_SECONDS, Access
from rollouts.sandbox.faults import Faults
from rollouts.sandbox.server import ApiServer
from rollouts.sandbox.store import Store
from rollouts.sandbox.tls import ServingTls, TlsSetupError, serving_tls
from rollouts.sandbox.traffic import MetricsServer, RequestMetrics, TrafficGenerator
from rollouts.sandbox.workloads import Workloads

log = logging.getLogger("pyrollouts.sandbox")


def kubeconfig(server_url: str, context: str = "pyrollouts-sandbox", ca_pem: bytes | None = None) -> dict[str, Any]:
    """A kubeconfig for the sandbox on loopback, no credentials needed; with `ca_pem` (HTTPS) clients trust
    that CA only, as the kubeconfig of a real cluster says."""
    cluster: dict[str, Any] = {"server": server_url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": ADMIN_TOKEN}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server_url: str, ca_pem: bytes | None = None) -> None:
    """Write atomically, so that a caller waiting for the file never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig(server_url, ca_pem=ca_pem), sort_keys=False))
    os.replace(tmp, path)


class Sandbox:
    """The API server emulator plus simulated workloads, on the current event loop.

    `traffic_rps` > 0 sends that many simulated requests per second to each Service with ready
    endpoints (`rollouts.sandbox.traffic`); `/metrics` with their counters and histograms is served on
    `metrics_port` (0: a free port) whenever traffic is on or a metrics port is given, at `metrics_url`.
    With `tls` the API is served over HTTPS with a certificate of a CA made at start (`ca_pem`).
    `authorization="rbac"` authenticates bearer tokens and enforces RBAC (`rollouts.sandbox.access`);
    the kubeconfig's token stays all-powerful. RBAC implies HTTPS, since kubectl sends credentials only
    over TLS. `faults` injects API errors and watch drops (`rollouts.sandbox.faults`); `tls_material`
    serves with the CA and certificate of an earlier sandbox (a restart keeps the kubeconfig valid).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        default_ready_after: float = 0.5,
        traffic_rps: float = 0.0,
        metrics_port: int | None = None,
        traffic_seed: int | None = 1,
        tls: bool = False,
        authorization: str = "open",
        min_token_seconds: int = MIN_TOKEN_SECONDS,
        faults: Faults | None = None,
        tls_material: ServingTls | None = None,
    ) -> None:
        self.host = host
        self.tls_enabled = tls or authorization == "rbac"
        self.tls: ServingTls | None = tls_material
        self.port = port
        self.store = Store()
        self.api = ApiServer(self.store, Access(self.store, authorization, min_token_seconds), faults)
        self.workloads = Workloads(self.store, default_ready_after=default_ready_after)
        self.traffic = TrafficGenerator(self.store, traffic_rps, seed=traffic_seed)
        self.traffic_metrics: RequestMetrics = self.traffic.metrics
        serve_metrics = metrics_port is not None or traffic_rps > 0
        self.metrics_server = MetricsServer(self.traffic_metrics, host, metrics_port or 0) if serve_metrics else None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_enabled else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The CA certificate clients must trust (PEM), under `tls` once started."""
        return self.tls.ca_pem if self.tls is not None else None

    @property
    def metrics_url(self) -> str | None:
        """`http://127.0.0.1:PORT/metrics` of the simulated traffic, or None when not served."""
        return self.metrics_server.url if self.metrics_server is not None else None

    async def start(self) -> None:
        self.workloads.start(asyncio.get_running_loop())
        if self.metrics_server is not None:
            await self.metrics_server.start()
        if self.metrics_server is not None:
            self.traffic.start()  # idle while traffic_rps is 0; set `traffic.rps` to start it
        self._runner = web.AppRunner(self.api.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        if self.tls_enabled and self.tls is None:
            self.tls = await asyncio.to_thread(serving_tls)
        ssl_context = self.tls.context if self.tls is not None else None
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.api.server_address = f"{self.host}:{self.port}"
        log.info("sandbox API server listening on %s", self.url)

    async def stop(self) -> None:
        await self.traffic.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        self.workloads.stop()
        self.store.close_all_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ThreadedSandbox:
    """A sandbox on its own event loop in a daemon thread: the pytest fixture and benchmark harness."""

    def __init__(
        self,
        kubeconfig_path: Path | None = None,
        default_ready_after: float = 0.5,
        traffic_rps: float = 0.0,
        metrics_port: int | None = None,
        traffic_seed: int | None = 1,
        tls: bool = False,
        authorization: str = "open",
        min_token_seconds: int = MIN_TOKEN_SECONDS,
        faults: Faults | None = None,
    ) -> None:
        self.kubeconfig_path = kubeconfig_path
        self.faults = faults
        self.tls = tls
        self.authorization = authorization
        self.min_token_seconds = min_token_seconds
        self.default_ready_after = default_ready_after
        self.traffic_rps = traffic_rps
        self.metrics_port = metrics_port
        self.traffic_seed = traffic_seed
        self.loop = asyncio.new_event_loop()
        self.sandbox: Sandbox | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="sandbox", daemon=True)

    @property
    def url(self) -> str:
        assert self.sandbox is not None
        return self.sandbox.url

    @property
    def metrics_url(self) -> str | None:
        assert self.sandbox is not None
        return self.sandbox.metrics_url

    def start(self) -> ThreadedSandbox:
        self._thread.start()
        self.sandbox = asyncio.run_coroutine_threadsafe(self._boot(), self.loop).result(timeout=30)
        if self.kubeconfig_path is not None:
            write_kubeconfig(self.kubeconfig_path, self.sandbox.url, self.sandbox.ca_pem)
        return self

    async def _boot(self, port: int = 0, tls_material: ServingTls | None = None) -> Sandbox:
        sandbox = Sandbox(
            port=port,
            default_ready_after=self.default_ready_after,
            traffic_rps=self.traffic_rps,
            metrics_port=self.metrics_port,
            traffic_seed=self.traffic_seed,
            tls=self.tls,
            authorization=self.authorization,
            min_token_seconds=self.min_token_seconds,
            faults=self.faults,
            tls_material=tls_material,
        )
        await sandbox.start()
        return sandbox

    def restart_empty(self) -> None:
        """Stop the sandbox and start an empty one on the same port with the same TLS material: the
        kubeconfig stays valid, every object (and resourceVersion) is gone."""
        old = self.sandbox
        assert old is not None
        asyncio.run_coroutine_threadsafe(old.stop(), self.loop).result(timeout=30)
        self.sandbox = None
        self.sandbox = asyncio.run_coroutine_threadsafe(self._boot(old.port, old.tls), self.loop).result(timeout=30)

    def set_traffic_rps(self, rps: float) -> None:
        """Change the simulated request rate per Service (0 pauses it). Needs the metrics server
        (`traffic_rps` > 0 or `metrics_port` given at construction)."""
        assert self.sandbox is not None and self.sandbox.metrics_server is not None, "traffic is not served"
        sandbox = self.sandbox
        self.call(setattr, sandbox.traffic, "rps", float(rps))

    def call(self, func: Any, *args: Any) -> Any:
        """Run a store function on the sandbox's loop (the store is not thread-safe)."""

        async def run() -> Any:
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def stop(self) -> None:
        if self.sandbox is not None:
            asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> ThreadedSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(
    kubeconfig_path: Path,
    port: int,
    default_ready_after: float,
    traffic_rps: float = 0.0,
    metrics_port: int | None = None,
    tls: bool = False,
    authorization: str = "open",
    faults: Faults | None = None,
) -> None:
    """`pyrollouts sandbox`: answer until SIGINT/SIGTERM; write the kubeconfig only once listening."""
    import signal

    sandbox = Sandbox(
        port=port,
        default_ready_after=default_ready_after,
        traffic_rps=traffic_rps,
        metrics_port=metrics_port,
        tls=tls,
        authorization=authorization,
        faults=faults,
    )
    try:
        await sandbox.start()
    except OSError as exc:
        await sandbox.stop()
        ports = f"port {port}" + (f", metrics port {metrics_port}" if metrics_port is not None else "")
        print(f"pyrollouts sandbox: cannot listen on 127.0.0.1 ({ports}): {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except TlsSetupError as exc:
        await sandbox.stop()
        print(f"pyrollouts sandbox: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if sandbox.metrics_url is not None:
        print(
            f"simulated traffic: {traffic_rps:g} requests/s per Service; metrics at {sandbox.metrics_url}", flush=True
        )
    write_kubeconfig(kubeconfig_path, sandbox.url, sandbox.ca_pem)
    print(f"sandbox API server at {sandbox.url}; kubeconfig written to {kubeconfig_path}", flush=True)
    if faults is not None:
        rates = ", ".join(f"{verb}={rate:g}" for verb, rate in faults.rates.items())
        print(f"fault injection: {rates} (seed {faults.seed})", flush=True)
    if authorization == "rbac":
        print("authorization: RBAC (the kubeconfig's user is a cluster admin; others need bindings)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("sandbox stopping", flush=True)
    await sandbox.stop()
