"""Where the controller serves its HTTP endpoints (``/metrics``, ``/healthz``): the ``--X-addr`` flags
parsed into a :class:`Listen`, and a small aiohttp server answering each path with a function."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("pyrollouts.listen")


@dataclass(frozen=True)
class Listen:
    """A host:port to serve on, and the flag that asked for it (named when the port is taken)."""

    host: str
    port: int
    flag: str

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class ListenError(Exception):
    """The address cannot be served (in use, not ours): one line naming the flag."""


def parse_listen(text: str, flag: str) -> Listen | None:
    """``host:port``, ``:port`` (all IPv4 interfaces) or ``[v6]:port``; ``0`` turns the server off.
    Port 0 takes a free port (logged). Raises ValueError with what is wrong."""
    if text == "0":
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port (e.g. :8090 or 127.0.0.1:8090), or 0 for off")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8090")
    return Listen(host or "0.0.0.0", int(port), flag)


async def serve(
    listen: Listen, routes: dict[str, Callable[[], tuple[int, str]]], content_types: Mapping[str, str] | None = None
) -> web.AppRunner:
    """Serve each path with a function returning (status, text), as text/plain unless `content_types`
    names the path (Prometheus' exposition format names its version in the content type)."""

    def handler(make: Callable[[], tuple[int, str]], content_type: str) -> Callable[[web.Request], object]:
        async def handle(_request: web.Request) -> web.Response:
            status, text = make()
            return web.Response(status=status, body=text.encode(), headers={"Content-Type": content_type})

        return handle

    app = web.Application()
    for path, make in routes.items():
        content_type = (content_types or {}).get(path, "text/plain; charset=utf-8")
        app.router.add_get(path, handler(make, content_type))  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, listen.host, listen.port).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ListenError(f"{listen.flag}: cannot listen on {listen}: {reason}") from None
    bound = ", ".join(f"{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple))
    log.info("serving %s on %s", ", ".join(routes), bound or listen)
    return runner
