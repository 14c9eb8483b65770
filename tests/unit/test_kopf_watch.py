"""The wrapper that keeps kopf's watches alive when a kind stops being served: it replaces the function
kopf's watch loop calls, passes events through, and turns a 404 into the end of one stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching

from rollouts.controller import kopfwatch


def test_install_replaces_the_function_kopfs_watch_loop_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)  # put back after the test
    # kopf's loop looks the name up in its module at every call (a global of infinite_watch)
    assert "continuous_watch" in watching.infinite_watch.__code__.co_names
    kopfwatch.install()
    assert watching.continuous_watch is kopfwatch.continuous_watch_outliving_404


def test_events_pass_and_a_404_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    async def kopf_stream(**_: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "ADDED"}
        raise errors.APINotFoundError("the server could not find the requested resource", status=404, headers={})

    monkeypatch.setattr(kopfwatch, "_kopf_continuous_watch", kopf_stream)
    monkeypatch.setattr(kopfwatch, "NOT_SERVED_RETRY_SECONDS", 0.0)

    async def collect() -> list[Any]:
        return [event async for event in kopfwatch.continuous_watch_outliving_404(resource="rollouts")]

    assert asyncio.run(collect()) == [{"type": "ADDED"}]
