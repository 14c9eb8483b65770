"""The one kubeconfig loader of the controller and the plugin, with kubectl's rules.

Where the configuration comes from, first match wins: the `--kubeconfig` file (it must exist); every
file of `KUBECONFIG` (missing or empty ones skipped); `~/.kube/config`; the in-cluster service account.
Several files merge as kubectl merges them: the first file to set a cluster, user or context (by name)
wins, `current-context` comes from the first file that sets one, and a relative path in a file
(certificate-authority, client-certificate, client-key, tokenFile, an exec command with a slash) is
resolved against that file's directory. `--context` overrides `current-context`; the namespace is the
context's (or the service account's).

A user with static credentials (a token or token file, client certificates, none) is read here
directly: the plugin starts in a fraction of the time importing the `kubernetes` client takes. A user
with an exec credential plugin, an auth-provider or basic auth is handed, already merged, to the
official client's KubeConfigLoader, and the in-cluster service account to its load_incluster_config.
It imports nothing else of the product but `freshness` (when credentials are due): the plugin uses it too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollouts.controller.freshness import FileStamp, file_stamp, refresh_at

if TYPE_CHECKING:
    import ssl

# Imported where they are used, not here: the plugin's `get rollout` reads a kubeconfig on every run, and
# PyYAML (a JSON kubeconfig needs none), ssl (an http:// server needs none) and what writes `*-data`
# fields to private files (tempfile, shutil, hashlib) would add several milliseconds to each (BENCHMARKS.md).

DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IN_CLUSTER = "in-cluster"

# The path fields kubectl resolves against the directory of the file that holds them.
CLUSTER_PATH_KEYS = ("certificate-authority",)
USER_PATH_KEYS = ("client-certificate", "client-key", "tokenFile")
SECTIONS = (("clusters", "cluster", CLUSTER_PATH_KEYS), ("users", "user", USER_PATH_KEYS), ("contexts", "context", ()))


class KubeconfigError(Exception):
    """No usable configuration; the message says what was tried and what to do."""


@dataclass(frozen=True)
class Connection:
    """The API server and the credentials to use, as plain settings (the controller's HTTP client and
    kopf's login take these); `expiry` is when an exec plugin's credential runs out, `token_file` where
    the token was read (stamped as it was before reading), `loaded_at` when (wall clock)."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    verify: bool = True
    namespace: str = "default"
    expiry: dt.datetime | None = None
    token_file: str | None = None
    token_file_stamp: FileStamp | None = None
    loaded_at: float = 0.0
    proxy: str | None = None  # the cluster's proxy-url
    tls_server_name: str | None = None  # the name to verify the server's certificate against

    @property
    def refresh_at(self) -> float | None:
        """When to load these credentials again (wall clock; see rollouts.controller.freshness)."""
        expires_at = self.expiry.timestamp() if self.expiry is not None else None
        return refresh_at(self.loaded_at, expires_at, self.token_file)


@dataclass(frozen=True)
class ClusterConfig:
    """What the loader found: the connection settings, the namespace of the context or service account
    (None when it names none), and where it came from (the files, or "in-cluster")."""

    settings: Connection
    namespace: str | None
    source: str

    def connection(self) -> Connection:
        return self.settings


def tls_context(conn: Connection) -> ssl.SSLContext:
    """The TLS settings of `conn`: its CA (else the system's) and its client certificate; no server
    verification when the kubeconfig says insecure-skip-tls-verify (the client certificate still goes)."""
    import ssl

    context = ssl.create_default_context(cafile=conn.ca_path) if conn.ca_path else ssl.create_default_context()
    if not conn.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if conn.cert_path:
        context.load_cert_chain(conn.cert_path, conn.key_path)
    return context


def kubeconfig_files(flag: str | None) -> list[Path]:
    """The files to merge, in priority order: the flag's, else KUBECONFIG's list, else ~/.kube/config."""
    if flag:
        return [Path(flag).expanduser()]
    listed = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path(DEFAULT_KUBECONFIG).expanduser()]


def load(kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """Load the configuration kubectl would use (see the module docstring); KubeconfigError if none.
    Reads files and may run an exec plugin: call it from a thread in async code."""
    files = kubeconfig_files(kubeconfig)
    contents = [(path, _read(path)) for path in files]
    usable = [(path, content) for path, content in contents if content is not None]
    if usable:
        return _load_files(usable, context)
    if not kubeconfig and context is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        return _load_in_cluster()
    raise KubeconfigError(
        f"no kubeconfig found (looked at {', '.join(map(str, files))}): pass --kubeconfig PATH or set KUBECONFIG"
    )


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """The controller's view of :func:`load`."""
    return load(kubeconfig, context).connection()


def merge_files(files: Sequence[tuple[Path, Mapping[str, Any]]]) -> dict[str, Any]:
    """The files' contents merged with kubectl's rules: the first file to name a cluster, user or context
    wins, the first `current-context` set wins, and relative paths are resolved against the file that
    holds them."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {section: set() for section in merged}
    for path, content in files:
        if not merged.get("current-context") and content.get("current-context"):
            merged["current-context"] = content["current-context"]
        for section, key, path_keys in SECTIONS:
            entries = content.get(section) or []
            if not isinstance(entries, list):
                raise KubeconfigError(f"kubeconfig {path}: `{section}` must be a list")
            for entry in entries:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in seen[section]:
                    continue
                seen[section].add(name)
                merged[section].append(_resolved(entry, key, path_keys, str(path)))
    return merged


def _read(path: Path) -> dict[str, Any] | None:
    """A kubeconfig file's content; None when it is missing or empty (kubectl skips those)."""
    if not path.is_file():
        return None
    try:
        content = _parsed(path.read_text())
    except (OSError, ValueError) as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if content is None:
        return None
    if not isinstance(content, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping: it must be a `kind: Config` document")
    return content


def _parsed(text: str) -> Any:
    """A kubeconfig's text as data. JSON (valid YAML too) is read without importing PyYAML; YAML goes
    through libyaml's C parser when PyYAML has it (a tenth of the pure-Python parser's time, which
    grows with the file: kubeconfigs carry base64 certificates for every cluster). ValueError (which
    yaml.YAMLError is not) when it is neither."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # a YAML flow mapping that is not JSON
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


def _resolved(entry: Mapping[str, Any], section: str, keys: Sequence[str], origin: str) -> dict[str, Any]:
    """`entry` (a named cluster or user) with its relative paths made absolute against `origin`'s directory."""
    body = dict(entry.get(section) or {})
    base = Path(os.path.abspath(origin)).parent  # kubectl's filepath.Abs: symlinks are not followed
    for key in keys:
        if isinstance(body.get(key), str) and body[key]:
            body[key] = str(base / body[key])
    exec_ = body.get("exec")
    # Like kubectl, an exec command is a file path only when it has a slash; else it is looked up on PATH.
    if isinstance(exec_, dict) and os.sep in str(exec_.get("command") or ""):
        body["exec"] = {**exec_, "command": str(base / exec_["command"])}
    return {**entry, section: body}


def _named(merged: Mapping[str, Any], section: str, key: str, name: object) -> dict[str, Any] | None:
    """The body of the entry called `name` in a merged section (a context's `context`, ...), if any."""
    for entry in merged[section]:
        if entry.get("name") == name:
            body = entry.get(key)
            return body if isinstance(body, dict) else {}
    return None


def _load_files(files: Sequence[tuple[Path, Mapping[str, Any]]], context: str | None) -> ClusterConfig:
    joined = _joined([path for path, _ in files])
    loaded_at = time.time()
    merged = merge_files(files)
    name = _check_context(merged, context, joined)
    ctx = _named(merged, "contexts", "context", name) or {}
    namespace = ctx.get("namespace") or None
    user = _named(merged, "users", "user", ctx.get("user")) or {}
    if _needs_client_library(user):
        settings = _client_library_connection(merged, context, joined, namespace, loaded_at)
        return ClusterConfig(settings, namespace, joined)
    cluster = _named(merged, "clusters", "cluster", ctx.get("cluster"))
    if cluster is None:
        raise KubeconfigError(
            f'cluster "{ctx.get("cluster")}" of context "{name}" does not exist in kubeconfig {joined}: '
            "add it under `clusters` or fix the context"
        )
    settings = _static_connection(cluster, user, namespace, loaded_at, f'context "{name}" in kubeconfig {joined}')
    return ClusterConfig(settings, namespace, joined)


def _needs_client_library(user: Mapping[str, Any]) -> bool:
    """Whether the user's credential is one only the `kubernetes` client produces. Its order: an
    auth-provider, then a token (or token file), then an exec plugin, then basic auth."""
    if isinstance(user.get("auth-provider"), dict) and user["auth-provider"].get("name"):
        return True
    if "token" in user or user.get("tokenFile"):
        return False
    return bool(user.get("exec")) or ("username" in user and "password" in user)


def _static_connection(
    cluster: Mapping[str, Any], user: Mapping[str, Any], namespace: str | None, loaded_at: float, where: str
) -> Connection:
    """Settings from a cluster and a user with static credentials, as the official client reads them
    (`*-data` before the file; certificates only for https; the token before the token file)."""
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError(f"the cluster of {where} has no `server`: set clusters[].cluster.server")
    https = server.startswith("https")
    token_file = None if "token" in user else (str(user.get("tokenFile") or "") or None)
    stamp = file_stamp(token_file)  # before reading: a change after it is seen at the next check
    token = user.get("token") or None if token_file is None else _read_token(token_file, where)
    return Connection(
        server=server,
        token=str(token) if token else None,
        ca_path=_file_or_data(cluster, "certificate-authority", where) if https else None,
        cert_path=_file_or_data(user, "client-certificate", where) if https else None,
        key_path=_file_or_data(user, "client-key", where) if https else None,
        verify=not cluster.get("insecure-skip-tls-verify", False),
        namespace=namespace or "default",
        token_file=token_file if token else None,
        token_file_stamp=stamp if token else None,
        loaded_at=loaded_at,
        proxy=cluster.get("proxy-url") or None,
        tls_server_name=cluster.get("tls-server-name") or None,
    )


def _read_token(path: str, where: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise KubeconfigError(f"cannot read the tokenFile {path} of {where}: {exc.strerror}") from exc


def _file_or_data(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    """The path of `key`'s file; `key-data` (base64, preferred when present) is written to a private file."""
    data_key = f"{key}-data"
    if data_key in entry:
        if not entry[data_key]:
            return None
        import base64
        import binascii

        try:
            content = base64.b64decode(str(entry[data_key]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeconfigError(f"`{data_key}` of {where} is not base64: {exc}") from exc
        return _private_file(content)
    path = entry.get(key)
    if not path:
        return None
    if not os.path.isfile(path):
        raise KubeconfigError(f"the {key} file {path} of {where} does not exist")
    return str(path)


_PRIVATE_DIR: list[str] = []


def _private_file(content: bytes) -> str:
    """A file holding `content`, readable by this user only, removed when the process exits (TLS
    libraries take certificates and keys by path)."""
    import atexit
    import hashlib
    import shutil
    import tempfile

    if not _PRIVATE_DIR:
        _PRIVATE_DIR.append(tempfile.mkdtemp(prefix="pyrollouts-kubeconfig-"))
        atexit.register(shutil.rmtree, _PRIVATE_DIR[0], True)
    path = os.path.join(_PRIVATE_DIR[0], hashlib.sha256(content).hexdigest())
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    return path


def _client_library_connection(
    merged: dict[str, Any], context: str | None, joined: str, namespace: str | None, loaded_at: float
) -> Connection:
    """Settings for an exec plugin, auth-provider or basic-auth user, from the official client's loader
    (given the files already merged by our rules)."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    try:
        loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
            config_dict=merged, active_context=context, config_base_path=None
        )
        configuration = client.Configuration()
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeconfigError(f"cannot use kubeconfig {joined}: {exc}") from exc
    expiry = getattr(loader, "expiry", None)  # set by an exec plugin that returned expirationTimestamp
    return _from_configuration(configuration, namespace, expiry, None, None, loaded_at)


def _from_configuration(
    cfg: Any,
    namespace: str | None,
    expiry: dt.datetime | None,
    token_file: str | None,
    stamp: FileStamp | None,
    loaded_at: float,
) -> Connection:
    """A `kubernetes.client.Configuration` as our settings."""
    # "Bearer <t>" from a kubeconfig user, "bearer <t>" from the in-cluster loader (under
    # "authorization" in older clients); basic auth ("Basic ...") is not a token.
    keys = cfg.api_key or {}
    auth = str(keys.get("BearerToken") or keys.get("authorization") or "")
    token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else None
    return Connection(
        server=str(cfg.host).rstrip("/"),
        token=token,
        ca_path=cfg.ssl_ca_cert,
        cert_path=cfg.cert_file,
        key_path=cfg.key_file,
        verify=bool(cfg.verify_ssl),
        namespace=namespace or "default",
        expiry=expiry,
        token_file=token_file if token else None,
        token_file_stamp=stamp if token else None,
        loaded_at=loaded_at,
        proxy=getattr(cfg, "proxy", None) or None,
        tls_server_name=getattr(cfg, "tls_server_name", None) or None,
    )


def _check_context(merged: Mapping[str, Any], context: str | None, joined: str) -> str:
    """The context to use, in kubectl's words when it is missing."""
    name = context or merged.get("current-context")
    if not name:
        raise KubeconfigError(f"no current-context in kubeconfig {joined}: pass --context NAME or set one")
    if _named(merged, "contexts", "context", name) is None:
        raise KubeconfigError(f'context "{name}" does not exist in kubeconfig {joined}')
    return str(name)


def _load_in_cluster() -> ClusterConfig:
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import load_incluster_config

    configuration = client.Configuration()
    loaded_at = time.time()
    stamp = file_stamp(SERVICE_ACCOUNT_TOKEN)
    try:
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeconfigError(f"cannot use the in-cluster configuration: {exc}") from exc
    namespace = None
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    settings = _from_configuration(configuration, namespace, None, SERVICE_ACCOUNT_TOKEN, stamp, loaded_at)
    return ClusterConfig(settings, namespace, IN_CLUSTER)


def _joined(paths: Sequence[Path]) -> str:
    return os.pathsep.join(str(p) for p in paths)
