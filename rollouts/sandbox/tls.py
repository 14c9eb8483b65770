"""A throwaway CA and a serving certificate for 127.0.0.1, made with the `openssl` command.

The RBAC sandbox needs HTTPS: kubectl (client-go's clientcmd) sends a kubeconfig's credentials only
over TLS. The files live in a temporary directory for the sandbox's lifetime; the kubeconfig carries
the CA so clients verify the server.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_DAYS = "30"
_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class TlsError(RuntimeError):
    """The certificates could not be made (no `openssl` on PATH, or it failed)."""


@dataclass(frozen=True)
class ServingCertificates:
    directory: Path

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_path.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.directory / "server.crt", self.directory / "server.key")
        return context

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("the RBAC sandbox serves HTTPS and needs the `openssl` command to make its certificates")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_serving_certificates() -> ServingCertificates:
    """A fresh CA and a certificate it signs for 127.0.0.1 and localhost."""
    directory = Path(tempfile.mkdtemp(prefix="pyrollouts-sandbox-tls-"))
    try:
        _openssl(
            "req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", _DAYS,
            "-subj", "/CN=pyrollouts-sandbox-ca", cwd=directory,
        )  # fmt: skip
        _openssl(
            "req", *_EC_KEY, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=pyrollouts-sandbox",
            cwd=directory,
        )  # fmt: skip
        (directory / "san.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"
        )
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", _DAYS, "-extfile", "san.ext", cwd=directory,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ServingCertificates(directory)
