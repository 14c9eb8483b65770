"""What the benchmarks share: a `pyrollouts sandbox` subprocess, and a watch of one resource list."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

#: The benchmark's own requests carry this agent, so the sandbox's per-client counts leave them out.
USER_AGENT = "pyrollouts-benchmark"


def object_name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def namespaced_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class Watch(threading.Thread):
    """Lists then watches one resource list: the latest object by `key`, every event (monotonic time,
    type, object) unless `keep_events` is off, and `on_event(time, type, object)` under the lock."""

    def __init__(
        self,
        base: str,
        path: str,
        key: Callable[[dict[str, Any]], str] = object_name,
        keep_events: bool = True,
        on_event: Callable[[float, str, dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.url = f"{base}{path}"
        self.key = key
        self.keep_events = keep_events
        self.on_event = on_event
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.latest: dict[str, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.stopping = threading.Event()

    def close(self) -> None:
        """Say the server is going away: the connection errors that follow end the thread quietly."""
        self.stopping.set()

    def run(self) -> None:
        try:
            self._list_and_watch()
        except httpx.TransportError:
            if not self.stopping.is_set():
                raise

    def _list_and_watch(self) -> None:
        # The server ends a watch whose reader falls behind (as kube-apiserver does): list and watch again.
        with httpx.Client(timeout=None, headers={"User-Agent": USER_AGENT}) as client:
            while True:
                listing = client.get(self.url).json()
                for item in listing["items"]:
                    self._record({"type": "LISTED", "object": item})
                rv = listing["metadata"]["resourceVersion"]
                with client.stream("GET", self.url, params={"watch": "1", "resourceVersion": rv}) as resp:
                    for line in resp.iter_lines():
                        if line:
                            self._record(json.loads(line))

    def _record(self, event: dict[str, Any]) -> None:
        obj = event["object"]
        if event["type"] == "ERROR":  # e.g. 410 Gone: the stream ends and the loop lists again
            return
        now = time.monotonic()
        with self.cond:
            if self.keep_events:
                self.events.append((now, event["type"], obj))
            if obj.get("metadata", {}).get("name"):
                self.latest[self.key(obj)] = obj
            if self.on_event is not None:
                self.on_event(now, event["type"], obj)
            self.cond.notify_all()

    def wait(self, check: Callable[[Watch], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = check(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waiting on {self.url}")
                self.cond.wait(min(left, 1.0))


@contextmanager
def sandbox_kubeconfig(ready_after: float = 0.2) -> Iterator[tuple[Path, str]]:
    """Yield the kubeconfig and URL of a sandbox running in its own process (so load and server do not
    share a GIL)."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rollouts.main",
                "sandbox",
                "--kubeconfig",
                str(kubeconfig),
                "--ready-after",
                str(ready_after),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        try:
            deadline = time.monotonic() + 30
            while not kubeconfig.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start")
                time.sleep(0.05)
            config = yaml.safe_load(kubeconfig.read_text())
            yield kubeconfig, str(config["clusters"][0]["cluster"]["server"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def sandbox_process(ready_after: float = 0.2) -> Iterator[str]:
    """Yield the URL of a sandbox running in its own process."""
    with sandbox_kubeconfig(ready_after) as (_, server):
        yield server
