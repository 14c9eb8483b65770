"""The one kubeconfig loader of the controller and the plugin, with kubectl's rules.

Where the configuration comes from, first match wins: the `--kubeconfig` file (it must exist); every
file of `KUBECONFIG` (missing or empty ones skipped); `~/.kube/config`; the in-cluster service account.
Several files merge as kubectl merges them: the first file to set a cluster, user or context (by name)
wins, `current-context` comes from the first file that sets one, and a relative path in a file
(certificate-authority, client-certificate, client-key, tokenFile, an exec command with a slash) is
resolved against that file's directory. `--context` overrides `current-context`; the namespace is the
context's (or the service account's).

Everything else -- exec credential plugins, tokens, client certificates, CA data and files -- is the
official `kubernetes` client's machinery (KubeConfigMerger, KubeConfigLoader, load_incluster_config);
this module only fixes the rules where that client departs from kubectl. It imports nothing else of
the product but `freshness` (when credentials are due): the plugin uses it too.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollouts.controller.freshness import FileStamp, file_stamp, refresh_at

DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IN_CLUSTER = "in-cluster"

# The path fields kubectl resolves against the directory of the file that holds them.
CLUSTER_PATH_KEYS = ("certificate-authority",)
USER_PATH_KEYS = ("client-certificate", "client-key", "tokenFile")


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

    @property
    def refresh_at(self) -> float | None:
        """When to load these credentials again (wall clock; see rollouts.controller.freshness)."""
        expires_at = self.expiry.timestamp() if self.expiry is not None else None
        return refresh_at(self.loaded_at, expires_at, self.token_file)


@dataclass(frozen=True)
class ClusterConfig:
    """What the loader found: the official client's Configuration (the plugin's ApiClient takes it),
    the namespace of the context or service account, and where it came from (files or "in-cluster")."""

    configuration: Any  # kubernetes.client.Configuration
    namespace: str | None
    source: str
    expiry: dt.datetime | None = None
    token_file: str | None = None
    token_file_stamp: FileStamp | None = None
    loaded_at: float = 0.0

    def connection(self) -> Connection:
        cfg = self.configuration
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
            namespace=self.namespace or "default",
            expiry=self.expiry,
            token_file=self.token_file if token else None,
            token_file_stamp=self.token_file_stamp if token else None,
            loaded_at=self.loaded_at,
        )


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
    usable = _usable_files(files)
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


def merge_files(paths: Sequence[Path]) -> Any:
    """The files merged with kubectl's rules, as the kubernetes client's config tree (a ConfigNode).

    KubeConfigMerger already merges the named lists first-wins and remembers each entry's file; it lets
    the *last* current-context win and resolves a user's certificate paths against the cluster's file,
    so both are set right here."""
    from kubernetes.config.kube_config import KubeConfigMerger

    merger = KubeConfigMerger(os.pathsep.join(str(p) for p in paths))  # type: ignore[no-untyped-call]
    merged = merger.config
    if merged is None:
        raise KubeconfigError(f"no configuration in {_joined(paths)}")
    first_set = (merger.config_files[p].get("current-context") for p in merger.paths)
    current = next((name for name in first_set if name), None)
    if current:
        merged.value["current-context"] = current
    else:
        merged.value.pop("current-context", None)
    for node in merged.value["clusters"]:
        node.value = _resolved(node.value, "cluster", CLUSTER_PATH_KEYS, node.path)
    for node in merged.value["users"]:
        node.value = _resolved(node.value, "user", USER_PATH_KEYS, node.path)
    return merged


def _usable_files(paths: Sequence[Path]) -> list[Path]:
    """The files that exist and say something: kubectl skips missing and empty ones."""
    usable = []
    for path in paths:
        if not path.is_file():
            continue
        try:
            content = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise KubeconfigError(f"cannot read kubeconfig {path}: {exc}") from exc
        if content is not None:
            usable.append(path)
    return usable


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


def _load_files(paths: Sequence[Path], context: str | None) -> ClusterConfig:
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    joined = _joined(paths)
    loaded_at = time.time()
    try:
        merged = merge_files(paths)
        _check_context(merged, context, joined)
        token_file = _token_file(merged, context)
        stamp = file_stamp(token_file)  # before reading: a change after it is seen at the next check
        loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
            config_dict=merged, active_context=context, config_base_path=None
        )
        configuration = client.Configuration()
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeconfigError(f"cannot use kubeconfig {joined}: {exc}") from exc
    namespace = (loader.current_context.get("context") or {}).get("namespace")
    expiry = getattr(loader, "expiry", None)  # set by an exec plugin that returned expirationTimestamp
    return ClusterConfig(configuration, namespace or None, joined, expiry, token_file, stamp, loaded_at)


def _token_file(merged: Any, context: str | None) -> str | None:
    """The current user's `tokenFile` when it is what authenticates (no exec plugin or auth provider)."""
    name = context or merged.value.get("current-context")
    ctx = next(n.value for n in merged.value["contexts"] if n.value.get("name") == name)
    user_name = (ctx.get("context") or {}).get("user")
    user = next((n.value.get("user") or {} for n in merged.value["users"] if n.value.get("name") == user_name), {})
    if user.get("exec") or user.get("auth-provider") or not user.get("tokenFile"):
        return None
    return str(user["tokenFile"])


def _check_context(merged: Any, context: str | None, joined: str) -> None:
    """kubectl's words for a missing context, instead of the client's 'Expected key ... in <first file>'."""
    name = context or merged.value.get("current-context")
    if not name:
        raise KubeconfigError(f"no current-context in kubeconfig {joined}: pass --context NAME or set one")
    if not any(node.value.get("name") == name for node in merged.value["contexts"]):
        raise KubeconfigError(f'context "{name}" does not exist in kubeconfig {joined}')


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
    return ClusterConfig(configuration, namespace, IN_CLUSTER, None, SERVICE_ACCOUNT_TOKEN, stamp, loaded_at)


def _joined(paths: Sequence[Path]) -> str:
    return os.pathsep.join(str(p) for p in paths)
