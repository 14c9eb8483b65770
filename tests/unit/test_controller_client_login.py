"""The controller's API client loads its credentials again when the server rejects them (an exec plugin's
token expired), once for all the requests that failed, and gives up after one new attempt."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from rollouts.controller.client import ApiError, Client
from rollouts.controller.kubeconfig import Connection

UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized", "code": 401}


async def serve(valid_tokens: set[str], seen: list[str]) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen.append(token)
        if token not in valid_tokens:
            return web.json_response(UNAUTHORIZED, status=401)
        return web.json_response({"kind": "Namespace", "metadata": {"name": request.match_info["name"]}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def run(valid_tokens: set[str], fresh_token: str, requests: int) -> tuple[list[Any], list[str], int]:
    """`requests` concurrent GETs with token "old"; the login hands out `fresh_token`."""
    seen: list[str] = []
    logins = 0

    async def scenario() -> list[Any]:
        nonlocal logins
        runner, url = await serve(valid_tokens, seen)

        def login() -> Connection:
            nonlocal logins
            logins += 1
            return Connection(server=url, token=fresh_token)

        try:
            async with Client(Connection(server=url, token="old"), backoff=0.01, login=login) as client:
                gets = [client.request("GET", f"/api/v1/namespaces/ns{i}") for i in range(requests)]
                return list(await asyncio.gather(*gets, return_exceptions=True))
        finally:
            await runner.cleanup()

    results = asyncio.run(scenario())
    return results, seen, logins


def test_rejected_credentials_are_loaded_again_once() -> None:
    results, seen, logins = run({"new"}, "new", requests=5)
    assert [r["metadata"]["name"] for r in results] == [f"ns{i}" for i in range(5)]
    assert logins == 1
    assert seen.count("old") == 5 and seen.count("new") == 5


def test_still_rejected_after_logging_in_again_is_the_servers_answer() -> None:
    results, seen, logins = run(set(), "still-bad", requests=1)
    [error] = results
    assert isinstance(error, ApiError) and error.status == 401 and error.reason == "Unauthorized"
    assert (seen, logins) == (["old", "still-bad"], 1)
