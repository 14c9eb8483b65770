"""The plugin's API client for a server that runs for hours: it loads the credentials again before they
run out, by the controller's rules (`controller/freshness.py`: an exec plugin's credential near its
expiry, a token file changed or a minute old), and once more after a 401. Every other verb is a
short-lived command that loads one credential per run, as kubectl does."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from rollouts.cli.client import Client, CLIError
from rollouts.controller.freshness import file_stamp, refresh_at, refresh_due
from rollouts.controller.kubeconfig import ClusterConfig, KubeconfigError
from rollouts.controller.kubeconfig import load as load_kubeconfig

UNAUTHORIZED = 401


def _load(kubeconfig: str | None, context: str | None) -> ClusterConfig:
    try:
        return load_kubeconfig(kubeconfig, context)
    except KubeconfigError as exc:
        raise CLIError(str(exc)) from exc


def _api_client(found: ClusterConfig) -> Any:
    from kubernetes import client as k8s_client

    found.configuration.retries = 1
    return k8s_client.ApiClient(found.configuration)


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
        client = cls(_api_client(found), namespace or found.namespace or "default", str(found.configuration.host),
                     request_timeout)
        client._source, client._found, client._lock = (kubeconfig, context), found, threading.Lock()
        return client

    def _due(self) -> bool:
        found = self._found
        expires_at = found.expiry.timestamp() if found.expiry is not None else None
        deadline = refresh_at(found.loaded_at, expires_at, found.token_file)
        return refresh_due(time.time(), deadline, found.token_file_stamp, file_stamp(found.token_file))

    def _reload(self, force: bool) -> None:
        """Load the credentials again when due (or `force`d, after a 401); on failure keep the current ones."""
        with self._lock:
            if not force and not self._due():
                return
            try:
                found = _load(*self._source)
            except CLIError:
                return  # the request goes out with the current credentials; its answer says what is wrong
            # The old ApiClient is left to the requests still using it (informer threads); it closes when collected.
            self._found, self.api = found, _api_client(found)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        self._reload(force=False)
        response = super()._send(method, path, query, body, content_type, timeout)
        if response.status != UNAUTHORIZED:
            return response
        response.release_conn()
        self._reload(force=True)
        return super()._send(method, path, query, body, content_type, timeout)
