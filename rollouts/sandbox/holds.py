"""Held requests: the sandbox stops one matching write before applying it, so a test can kill the client
at that exact point (between two writes of one controller pass) and see what a crash there leaves.

``POST /sandbox/holds`` with ``{"verb": "patch", "resource": "rollouts/status", "namespace": "ns",
"name": "web", "agent": "pyrollouts-controller"}`` holds the next matching request (once) of a client
whose User-Agent starts with ``agent`` (any client without it); ``GET /sandbox/holds`` lists the holds,
whether each has caught its request and whether that request's client has closed its connection
(``clientGone``); ``DELETE /sandbox/holds`` releases them. A released request whose client has gone is
dropped, never applied, as if it had never been sent; one whose client still waits is served.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rollouts.sandbox.errors import bad_request


@dataclass
class Hold:
    verb: str
    resource: str  # plural, or plural/subresource
    namespace: str
    name: str
    agent: str = ""  # User-Agent prefix
    caught: web.Request | None = None  # the request it holds
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, agent: str, verb: str, resource: str, namespace: str, name: str) -> bool:
        wanted = (self.verb, self.resource, self.namespace, self.name)
        return self.caught is None and agent.startswith(self.agent) and wanted == (verb, resource, namespace, name)

    def describe(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "resource": self.resource, "namespace": self.namespace, "name": self.name,
            "agent": self.agent, "held": self.caught is not None,
            "clientGone": self.caught is not None and client_gone(self.caught),
        }


class Holds:
    def __init__(self) -> None:
        self.holds: list[Hold] = []

    async def serve(self, request: web.Request) -> web.Response:
        """The ``/sandbox/holds`` endpoint."""
        if request.method == "POST":
            try:
                spec = json.loads(await request.text())
                hold = Hold(
                    str(spec["verb"]), str(spec["resource"]), str(spec.get("namespace", "")), str(spec["name"]),
                    str(spec.get("agent", "")),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(
                    f"/sandbox/holds: the body must be a JSON object with verb, resource and name ({exc})"
                ) from exc
            self.holds.append(hold)
            return web.json_response(hold.describe(), status=201)
        if request.method == "DELETE":
            for hold in self.holds:
                hold.released.set()
            self.holds = []
            return web.json_response({})
        return web.json_response([hold.describe() for hold in self.holds])

    async def admit(self, request: web.Request, verb: str, resource: str, namespace: str, name: str) -> bool:
        """Wait while a hold catches this request; False: its client went away meanwhile (drop it)."""
        agent = request.headers.get("User-Agent", "")
        hold = next((h for h in self.holds if h.matches(agent, verb, resource, namespace, name)), None)
        if hold is None:
            return True
        hold.caught = request
        await hold.released.wait()
        return not client_gone(request)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
