"""The dashboard's HTTP server (aiohttp): the static page, JSON views of the watched objects, the
rollout verbs as POST requests, and server-sent events that tell the page when to fetch again.

The verbs run `rollouts.cli.operations` with the plugin's own credentials, so the server listens on
loopback by default, and a POST must carry the `X-Pyrollouts-Dashboard` header and, when the browser
sends an Origin, come from the page's own origin: another web site the user visits can neither send
such a request (a custom header needs a CORS preflight, which is never granted) nor read the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from rollouts.cli import info as i
from rollouts.cli import operations
from rollouts.cli.client import APIError, Client, CLIError
from rollouts.cli.dashboard import views
from rollouts.cli.dashboard.watches import Watches

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "charts.js": "text/javascript", "style.css": "text/css"}
ACTION_HEADER = "X-Pyrollouts-Dashboard"
# The page hears about changes at most this often (a rollout step touches many objects at once), and
# a comment line keeps idle event streams open through proxies.
CHANGE_INTERVAL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0

Verb = Callable[[Client, str, str], str]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


VERBS: dict[str, Verb] = {
    "promote": lambda c, ns, name: operations.promote(c, name, namespace=ns),
    "promote-full": lambda c, ns, name: operations.promote(c, name, full=True, namespace=ns),
    "abort": lambda c, ns, name: operations.abort(c, name, namespace=ns),
    "retry": lambda c, ns, name: operations.retry(c, name, namespace=ns),
    "restart": lambda c, ns, name: operations.restart(c, name, _now(), namespace=ns),
    "undo": lambda c, ns, name: operations.undo(c, name, namespace=ns),
}


class Changes:
    """A counter the informer threads bump; event streams wait on it in the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.generation = 0
        self._event = asyncio.Event()

    def notify_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seen: int, timeout: float) -> int:
        if self.generation == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        return self.generation


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


class Dashboard:
    """The web application over one set of watches."""

    def __init__(self, client: Client, watches: Watches, changes: Changes) -> None:
        self.client = client
        self.watches = watches
        self.changes = changes
        self.app = web.Application()
        self.app.add_routes([
            web.get("/", self.index),
            web.get("/static/{file}", self.static),
            web.get("/api/rollouts", self.rollouts),
            web.get("/api/rollouts/{namespace}/{name}", self.rollout),
            web.post("/api/rollouts/{namespace}/{name}/{verb}", self.act),
            web.get("/api/events", self.events),
        ])

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(text=(STATIC / name).read_text(), content_type=STATIC_FILES[name])

    async def rollouts(self, request: web.Request) -> web.Response:
        snap = self.watches.snapshot()
        listing = views.rollout_listing(snap.rollouts, snap.replicasets, snap.pods, snap.analysisruns)
        return _json({"namespaces": listing, "errors": self.watches.errors()})

    async def rollout(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        snap = self.watches.snapshot().in_namespace(namespace)
        ro = next((r for r in snap.rollouts if i.meta(r).get("name") == name), None)
        if ro is None:
            return _json({"error": f'rollout "{name}" not found in namespace "{namespace}"'}, 404)
        page = views.rollout_page(ro, snap.replicasets, snap.pods, snap.analysisruns)
        return _json({"rollout": page, "errors": self.watches.errors()})

    async def act(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if request.headers.get(ACTION_HEADER) != "1" or (origin and origin != f"{request.scheme}://{request.host}"):
            return _json({"error": f"refused: a rollout action must come from the dashboard page ({ACTION_HEADER})"},
                         403)
        namespace, name, verb = (request.match_info[k] for k in ("namespace", "name", "verb"))
        action = VERBS.get(verb)
        if action is None:
            return _json({"error": f'unknown action "{verb}" (one of: {", ".join(VERBS)})'}, 404)
        try:
            message = await asyncio.to_thread(action, self.client, namespace, name)
        except APIError as exc:
            return _json({"error": exc.message}, exc.status if 400 <= exc.status < 600 else 502)
        except CLIError as exc:
            return _json({"error": exc.message}, 400)
        return _json({"message": message})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        seen = -1
        try:
            while True:
                generation = await self.changes.wait(seen, KEEPALIVE_SECONDS)
                if generation == seen:
                    await response.write(b": keep-alive\n\n")
                    continue
                seen = generation
                await response.write(f"event: change\ndata: {generation}\n\n".encode())
                await asyncio.sleep(CHANGE_INTERVAL_SECONDS)
        except ConnectionResetError:
            pass  # the page was closed or reloaded
        return response


async def _serve(client: Client, address: str, port: int, all_namespaces: bool, out: TextIO) -> None:
    loop = asyncio.get_running_loop()
    changes = Changes(loop)
    watches = Watches(client, all_namespaces, changes.notify_threadsafe)
    dashboard = Dashboard(client, watches, changes)
    runner = web.AppRunner(dashboard.app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CLIError(f"cannot listen on {address}:{port}: {exc.strerror or exc}; choose another with --port") from exc
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    watches.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    host = f"[{address}]" if ":" in address else address
    where = "all namespaces" if all_namespaces else f'namespace "{client.namespace}"'
    print(f"Dashboard of {where} at http://{host}:{bound}/ (Ctrl-C to stop)", file=out, flush=True)
    try:
        await stop.wait()
    finally:
        watches.stop()
        await runner.cleanup()


def serve(client: Client, address: str, port: int, all_namespaces: bool, out: TextIO) -> int:
    """Serve until Ctrl-C or SIGTERM; 0 then."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(client, address, port, all_namespaces, out))
    return 0
