"""The plugin's HTTP: the standard library's `http.client`, one kept-alive connection per thread, built
from the kubeconfig loader's settings (server, CA, client certificate, token, proxy, TLS server name),
sending plain JSON.

Not the `kubernetes` client's ApiClient, nor urllib3: importing either took longer than `kubectl get`
takes in all, and a short-lived command needs one connection, not a pool. The dashboard's threads each
get their own connection; a request made while this thread's last response is still being read (a
watch) goes out on a new connection, leaving the stream alone.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from rollouts import __version__
from rollouts.controller.kubeconfig import Connection, tls_context

USER_AGENT = f"kubectl-rollouts/{__version__}"
# A kept-alive connection the server has closed meanwhile fails on reuse in one of these ways; the
# request is then sent once more on a new connection (the server never saw it).
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Transport:
    """Requests to one API server with one set of credentials."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._local = threading.local()
        self._tls = tls_context(conn) if conn.server.startswith("https") else None
        parts = urlsplit(conn.server)
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    def send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> http.client.HTTPResponse:
        """The response to one request, not read yet: the caller reads it whole (`read()`) or streams it.
        OSError (ssl.SSLError, ConnectionRefusedError, socket.gaierror, TimeoutError) when it cannot go out."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.conn.token:
            headers["Authorization"] = f"Bearer {self.conn.token}"
        payload: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = _encoded(body)
        target = self._prefix + path + (f"?{urlencode(list(query.items()))}" if query else "")
        connection, reused = self._connection(timeout)
        try:
            return self._exchange(connection, method, target, payload, headers)
        except STALE_CONNECTION:
            if not reused:
                raise
        self.close()
        connection, _ = self._connection(timeout)
        return self._exchange(connection, method, target, payload, headers)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        payload: bytes | None,
        headers: Mapping[str, str],
    ) -> http.client.HTTPResponse:
        connection.request(method, target, body=payload, headers=dict(headers))
        response = connection.getresponse()
        self._local.response = response
        return response

    def _connection(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it carried requests before; a new one when there is
        none or its last response is still open."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        last: http.client.HTTPResponse | None = getattr(self._local, "response", None)
        if connection is not None and (last is None or last.isclosed()):
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, True
        connection = self._new_connection(timeout)
        self._local.connection, self._local.response = connection, None
        return connection, False

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        proxy = urlsplit(self.conn.proxy) if self.conn.proxy else None
        host, port = (proxy.hostname or "localhost", proxy.port) if proxy else (self._host, self._port)
        connection: http.client.HTTPConnection
        if self._tls is not None:
            connection = _HTTPSConnection(host, port, timeout=timeout, context=self._tls)
            connection.server_hostname = self.conn.tls_server_name
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        if proxy:
            connection.set_tunnel(self._host, self._port)
        return connection

    def close(self) -> None:
        """Close this thread's connection (and its open response, if any)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection, self._local.response = None, None


class _HTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the certificate against `server_hostname` (the kubeconfig's
    tls-server-name) rather than the host it dials."""

    server_hostname: str | None = None

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        server_hostname = self._tunnel_host or self.host  # type: ignore[attr-defined]
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(self.sock, server_hostname=self.server_hostname or server_hostname)


def _encoded(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


