"""The plugin's API client for a server that runs for hours: it loads the credentials again before they
run out, by the controller's rules (`controller/freshness.py`: an exec plugin's credential near its
expiry, a token file changed or a minute old), and once more after a 401. Every other verb is a
short-lived command that loads one credential per run, as kubectl does."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Mapping
from typing import Any

from rollouts.cli.client import Client, CLIError
from rollouts.cli.transport import Transport
from rollouts.controller.freshness import file_stamp, refresh_due
from rollouts.controller.kubeconfig import ClusterConfig, KubeconfigError
from rollouts.controller.kubeconfig import load as load_kubeconfig

UNAUTHORIZED = 401


def _load(kubeconfig: str | None, context: str | None) -> ClusterConfig:
    try:
        return load_kubeconfig(kubeconfig, context)
    except KubeconfigError as exc:
        raise CLIError(str(exc)) from exc


def _transport(found: ClusterConfig) -> Transport:
    return Transport(found.connection())


class RefreshingClient(Client):
    """A `Client` whose credentials are loaded again when due (see the module docstring)."""

    _source: tuple[str | None, str | None]
    _found: ClusterConfig
    _lock: threading.Lock

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float | None = None,
    ) -> RefreshingClient:
        found = _load(kubeconfig, context)
        client = cls(_transport(found), namespace or found.namespace or "default", request_timeout)
        client._source, client._found, client._lock = (kubeconfig, context), found, threading.Lock()
        return client

    def _due(self) -> bool:
        conn = self._found.connection()
        return refresh_due(time.time(), conn.refresh_at, conn.token_file_stamp, file_stamp(conn.token_file))

    def _reload(self, force: bool) -> None:
        """Load the credentials again when due (or `force`d, after a 401); on failure keep the current ones."""
        with self._lock:
            if not force and not self._due():
                return
            try:
                found = _load(*self._source)
            except CLIError:
                return  # the request goes out with the current credentials; its answer says what is wrong
            # The old pool is left to the requests still using it (informer threads); it closes when collected.
            self._found, self.transport = found, _transport(found)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> http.client.HTTPResponse:
        self._reload(force=False)
        response = super()._send(method, path, query, body, content_type, timeout)
        if response.status != UNAUTHORIZED:
            return response
        response.read()  # the connection carries the next request
        self._reload(force=True)
        return super()._send(method, path, query, body, content_type, timeout)
