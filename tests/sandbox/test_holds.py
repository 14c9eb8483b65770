"""/sandbox/holds: one write of one client held before it is applied; released, it is served, unless its
client went away meanwhile: then it is dropped, as if never sent (the multi-move crash test kills the
controller there)."""

from __future__ import annotations

import json
import socket
import threading
from urllib.parse import urlparse

import httpx

from tests.fixtures.holds import Holds
from tests.fixtures.manifests import configmap
from tests.fixtures.sandbox import SandboxHandle

CM = "/api/v1/namespaces/default/configmaps"
AGENT = "holds-test/1.0"


def data(sandbox: SandboxHandle, name: str) -> dict[str, str]:
    answer = httpx.get(f"{sandbox.url}{CM}/{name}", timeout=10)
    answer.raise_for_status()
    return dict(answer.json().get("data") or {})


def raw_patch(sandbox: SandboxHandle, name: str, body: dict[str, object]) -> socket.socket:
    """Send a merge patch on a socket of its own, not waiting for the answer."""
    url = urlparse(sandbox.url)
    payload = json.dumps(body).encode()
    conn = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)
    head = (
        f"PATCH {CM}/{name} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: {AGENT}\r\n"
        f"Content-Type: application/merge-patch+json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    conn.sendall(head.encode() + payload)
    return conn


def test_a_released_write_whose_client_waits_is_applied(sandbox: SandboxHandle) -> None:
    httpx.post(f"{sandbox.url}{CM}", json=configmap("held-served", a="1"), timeout=10).raise_for_status()
    holds = Holds(sandbox)
    holds.hold("patch", "configmaps", "default", "held-served", agent=AGENT)
    answers: list[int] = []

    def patch() -> None:
        answer = httpx.patch(
            f"{sandbox.url}{CM}/held-served", content=json.dumps({"data": {"a": "2"}}), timeout=30,
            headers={"User-Agent": AGENT, "Content-Type": "application/merge-patch+json"},
        )
        answers.append(answer.status_code)

    writer = threading.Thread(target=patch)
    writer.start()
    holds.wait_held()
    assert data(sandbox, "held-served") == {"a": "1"}  # held: not applied yet
    holds.release()
    writer.join(timeout=30)
    assert answers == [200]
    assert data(sandbox, "held-served") == {"a": "2"}


def test_a_released_write_whose_client_went_away_is_dropped(sandbox: SandboxHandle) -> None:
    httpx.post(f"{sandbox.url}{CM}", json=configmap("held-dropped", a="1"), timeout=10).raise_for_status()
    holds = Holds(sandbox)
    holds.hold("patch", "configmaps", "default", "held-dropped", agent=AGENT)
    conn = raw_patch(sandbox, "held-dropped", {"data": {"a": "2"}})
    holds.wait_held()
    conn.close()  # the client is gone (a killed controller)
    holds.wait_client_gone()
    holds.release()
    # the same client's next write is not held, and lands after the dropped one would have
    httpx.patch(
        f"{sandbox.url}{CM}/held-dropped", content=json.dumps({"data": {"b": "3"}}), timeout=10,
        headers={"User-Agent": AGENT, "Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    assert data(sandbox, "held-dropped") == {"a": "1", "b": "3"}


def test_other_clients_are_not_held(sandbox: SandboxHandle) -> None:
    httpx.post(f"{sandbox.url}{CM}", json=configmap("not-held", a="1"), timeout=10).raise_for_status()
    holds = Holds(sandbox)
    holds.hold("patch", "configmaps", "default", "not-held", agent=AGENT)
    httpx.patch(
        f"{sandbox.url}{CM}/not-held", content=json.dumps({"data": {"a": "2"}}), timeout=10,
        headers={"User-Agent": "someone-else", "Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    assert data(sandbox, "not-held") == {"a": "2"}
    assert not holds.held()
    holds.release()


def test_a_hold_without_a_name_is_refused_naming_the_fields(sandbox: SandboxHandle) -> None:
    answer = httpx.post(f"{sandbox.url}/sandbox/holds", json={"verb": "patch"}, timeout=10)
    assert answer.status_code == 400
    assert "verb, resource and name" in answer.json()["message"]
