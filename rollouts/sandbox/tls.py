"""`pyrollouts sandbox --tls`: a certificate authority of its own and a serving certificate for the loopback
address, made with the openssl command line tool (the project depends on no crypto library).

The keys live only in the server's `ssl.SSLContext`: the files openssl writes are deleted once loaded.
The kubeconfig carries the CA certificate (`certificate-authority-data`), so kubectl, the plugin and the
controller verify the server as they verify a real cluster's.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CA_SUBJECT = "/CN=pyrollouts-sandbox-ca"
SERVER_SUBJECT = "/CN=pyrollouts-sandbox"
VALID_DAYS = 30
#: What the serving certificate is for: the loopback address the sandbox binds, and its name.
SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
"""


class TlsSetupError(RuntimeError):
    """openssl is missing or failed: the message says which and why."""


@dataclass(frozen=True)
class ServingTls:
    """The CA certificate (PEM) clients trust, and the server's context holding its key and certificate."""

    ca_pem: bytes
    context: ssl.SSLContext


def new_certificate_authority(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA (P-256 key) in `directory`: (certificate, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", str(VALID_DAYS), "-subj", CA_SUBJECT,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def serving_tls() -> ServingTls:
    """A fresh CA and a certificate for 127.0.0.1 signed by it, loaded into a server context."""
    with tempfile.TemporaryDirectory(prefix="pyrollouts-sandbox-tls-") as tmp:
        directory = Path(tmp)
        ca_cert, ca_key = new_certificate_authority(directory)
        key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
        extensions = directory / "server.ext"
        extensions.write_text(SERVER_EXTENSIONS)
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", SERVER_SUBJECT,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-set_serial",
            str(secrets.randbits(63)), "-days", str(VALID_DAYS), "-out", str(cert),
            "-extfile", str(extensions),
        )  # fmt: skip
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return ServingTls(ca_pem=ca_cert.read_bytes(), context=context)


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise TlsSetupError("--tls needs the openssl command (apt-get install openssl)")
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise TlsSetupError(f"openssl {args[0]} failed: {result.stderr.strip()}")
