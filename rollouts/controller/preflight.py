"""Before the controller starts: is the API server the kubeconfig names the one it trusts?

A certificate the kubeconfig's CA did not sign is a configuration error, not an outage: kubectl stops at
once with "certificate signed by unknown authority", so the controller does too, in one line, instead
of retrying until kopf gives up with a traceback. An unreachable server is left to the retries (an API
server that is still starting is normal in a cluster).
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from rollouts.controller.kubeconfig import Connection, tls_context


class UntrustedApiServer(Exception):
    """The API server's TLS certificate does not verify against the kubeconfig's certificate authority."""


def check_api_server_trusted(conn: Connection, timeout: float = 10.0) -> None:
    """Raise UntrustedApiServer when the TLS handshake with `conn.server` fails certificate verification."""
    if not conn.server.startswith("https") or not conn.verify:
        return
    request = urllib.request.Request(f"{conn.server}/version", headers={"User-Agent": "pyrollouts-controller"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=tls_context(conn)):
            pass
    except urllib.error.HTTPError:
        return  # an HTTP answer (even 401/403) came over a verified connection
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise UntrustedApiServer(
                f"cannot verify the API server at {conn.server}: {exc.reason.verify_message or exc.reason}; "
                "its TLS certificate is not signed by the kubeconfig's certificate authority "
                "(certificate-authority / certificate-authority-data)"
            ) from exc
    except OSError:
        return  # unreachable for now: the controller's own retries deal with it
