"""Credentials refreshed before they expire, as kubectl does: the controller, as deploy/base's
ServiceAccount, gets tokens from an exec plugin that asks the RBAC sandbox's TokenRequest API for
tokens living a few seconds, and runs a canary lasting several token lifetimes with no 401; a token
file rotated on disk is read again before the old token's expiry is ever met by a 401."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.controller.client import Client, kind_of
from rollouts.controller.kubeconfig import SERVICE_ACCOUNT_TOKEN, load_connection
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller
from tests.fixtures.dashboard import listed, post, running_dashboard
from tests.fixtures.manifests import READY_AFTER, rollout_manifest
from tests.fixtures.plugin import Plugin
from tests.fixtures.rbac import https_client, rbac_sandbox_handle
from tests.fixtures.rollout import given
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.tools import REPO, poll, require_tool

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TOKEN_SECONDS = 3  # the sandbox lets tests ask for this; a real API server's minimum is 10 minutes
DASHBOARD_TOKEN_SECONDS = 15
SA = ("pyrollouts", "pyrollouts")  # the ServiceAccount deploy/base creates and binds
REPLICASETS = kind_of("apps/v1", "replicasets", "ReplicaSet")  # deploy/base lets the controller list them

PLUGIN = '''#!{python}
"""An exec credential plugin: a TokenRequest for {seconds}-second tokens, each run counted in {count}."""
import json, ssl, urllib.request
with open({count!r}, "a") as log:
    log.write("run\\n")
request = urllib.request.Request(
    {url!r},
    data=json.dumps({{"spec": {{"expirationSeconds": {seconds}}}}}).encode(),
    headers={{"Authorization": "Bearer " + {admin!r}, "Content-Type": "application/json"}},
    method="POST",
)
answer = json.load(urllib.request.urlopen(request, context=ssl.create_default_context(cafile={ca!r})))
print(json.dumps({{
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {{"token": answer["status"]["token"], "expirationTimestamp": answer["status"]["expirationTimestamp"]}},
}}))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """An RBAC sandbox that issues short tokens, with deploy/base applied by its admin."""
    kubectl = require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL")
    with rbac_sandbox_handle(tmp_path_factory.mktemp("creds"), ready_after=0.1, min_token_seconds=1) as handle:
        Cluster(handle.kubeconfig, kubectl, handle.env()).kubectl("apply", "-k", str(REPO / "deploy" / "base"))
        yield handle


@pytest.fixture(scope="module")
def cluster(installed: SandboxHandle) -> Cluster:
    return Cluster(installed.kubeconfig, require_tool("kubectl", "PYROLLOUTS_REQUIRE_KUBECTL"), installed.env())


def kubeconfig_as(admin_kubeconfig: Path, path: Path, user: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """A copy of the sandbox's kubeconfig whose user is `user`, its CA in a file; and the admin's settings."""
    config: dict[str, Any] = yaml.safe_load(admin_kubeconfig.read_text())
    admin = config["users"][0]["user"]
    cluster = config["clusters"][0]["cluster"]
    config["users"][0]["user"] = user
    config["contexts"][0]["context"]["namespace"] = SA[0]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, {"token": admin["token"], "server": cluster["server"]}


def ca_file(handle: SandboxHandle, path: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load(handle.kubeconfig.read_text())
    path.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    return path


def issue_token(handle: SandboxHandle, seconds: int) -> str:
    with https_client(handle) as http:
        answer = http.post(
            f"/api/v1/namespaces/{SA[0]}/serviceaccounts/{SA[1]}/token",
            json={"spec": {"expirationSeconds": seconds}},
        )
        answer.raise_for_status()
        return str(answer.json()["status"]["token"])


def denial_count(handle: SandboxHandle) -> int:
    assert handle.threaded.sandbox is not None
    return handle.threaded.sandbox.api.denial_count


def exec_plugin_kubeconfig(installed: SandboxHandle, tmp_path: Path) -> tuple[Path, Path]:
    """A kubeconfig whose user runs PLUGIN (TOKEN_SECONDS tokens of deploy/base's ServiceAccount), and the
    file counting the plugin's runs (one line each)."""
    count = tmp_path / "plugin-runs"
    count.touch()
    plugin = tmp_path / "token-plugin"
    kubeconfig, admin = kubeconfig_as(
        installed.kubeconfig,
        tmp_path / "kubeconfig",
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}},
    )
    url = f"{admin['server']}/api/v1/namespaces/{SA[0]}/serviceaccounts/{SA[1]}/token"
    ca = str(ca_file(installed, tmp_path / "ca.crt"))
    plugin.write_text(
        PLUGIN.format(
            python=sys.executable, seconds=TOKEN_SECONDS, count=str(count), url=url, admin=admin["token"], ca=ca
        )
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    return kubeconfig, count


def test_exec_plugin_tokens_are_renewed_before_they_expire(
    installed: SandboxHandle, cluster: Cluster, tmp_path: Path
) -> None:
    kubeconfig, count = exec_plugin_kubeconfig(installed, tmp_path)
    before = denial_count(installed)
    env = {**os.environ, "POD_NAMESPACE": SA[0], "POD_NAME": "pyrollouts-creds"}
    pauses = 5 * TOKEN_SECONDS  # the canary outlives several tokens
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {"duration": f"{pauses // 2}s"}},
                                   {"setWeight": 75}, {"pause": {"duration": f"{pauses - pauses // 2}s"}}]  # fmt: skip
    with running_controller(kubeconfig, env, tmp_path) as controller:
        ns = given(cluster, "creds-exec")
        rollout = ns.rollout(rollout_manifest("web", 2, steps, annotations={READY_AFTER: "0.1s"}))
        rollout.apply().wait_healthy(timeout=30)
        started = time.monotonic()
        rollout.set_image("nginx:2").wait_healthy(timeout=60)
        assert time.monotonic() - started >= 4 * TOKEN_SECONDS
        assert rollout.sizes() == {"nginx:2": 2}
        logs = controller.logs()
    runs = len(count.read_text().splitlines())
    assert runs >= 4, f"the plugin ran {runs} times in a canary of {pauses} s with {TOKEN_SECONDS} s tokens"
    assert denial_count(installed) == before, logs
    assert "loading the credentials again" not in logs, logs  # the controller's client never met a 401


def test_a_token_file_rotated_on_disk_is_read_again(installed: SandboxHandle, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issue_token(installed, TOKEN_SECONDS))
    kubeconfig, _ = kubeconfig_as(installed.kubeconfig, tmp_path / "kubeconfig", {"tokenFile": str(token_file)})
    login = functools.partial(load_connection, str(kubeconfig))
    expiring = token_file.read_text()

    async def list_replicasets(client: Client) -> str:
        return str((await client.list(REPLICASETS)).get("kind"))

    async def scenario() -> None:
        async with Client(login(), retries=0, login=login) as client:
            assert await list_replicasets(client) == "ReplicaSetList"
            # The kubelet writes a new token (atomically, as it swaps a projected volume) before the old expires.
            fresh = tmp_path / "token.new"
            fresh.write_text(issue_token(installed, 600))
            fresh.replace(token_file)
            with https_client(installed, expiring) as http:  # the old token is dead (that 401 is ours)
                await asyncio.to_thread(
                    poll, "the old token's expiry", lambda: http.get("/api").status_code == 401, 2 * TOKEN_SECONDS + 2
                )
            before = denial_count(installed)
            assert await list_replicasets(client) == "ReplicaSetList"
            assert client.conn.token == token_file.read_text()
            assert denial_count(installed) == before

    asyncio.run(scenario())


# The controller in a pod: the kubelet mounts the projected token, the CA and the namespace here and
# rewrites the token before it expires. A private mount namespace gives the controller (and nothing else
# on the machine) a /run/secrets of the test's making.
MOUNT_SERVICE_ACCOUNT = (
    "mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
    'mount --bind "$0" /run/secrets/kubernetes.io/serviceaccount && exec "$@"'
)


def mount_namespaces_work() -> bool:
    try:
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    except FileNotFoundError:
        return False
    return probe.returncode == 0


def write_atomically(path: Path, text: str) -> None:
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text)
    fresh.replace(path)


@pytest.mark.skipif(not mount_namespaces_work(), reason="needs root and mount namespaces (unshare --mount)")
def test_in_cluster_the_projected_token_is_read_again_as_the_kubelet_rotates_it(
    installed: SandboxHandle, cluster: Cluster, tmp_path: Path
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    ca_file(installed, account / "ca.crt")
    (account / "namespace").write_text(SA[0])
    lifetime = 2 * TOKEN_SECONDS  # rotated every TOKEN_SECONDS / 3: a loaded machine still rotates in time
    write_atomically(account / "token", issue_token(installed, lifetime))
    server = yaml.safe_load(installed.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HOME")}
    env |= {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
            "POD_NAMESPACE": SA[0], "POD_NAME": "pyrollouts-in-cluster"}  # fmt: skip
    wrapper = ("unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_SERVICE_ACCOUNT, str(account))
    rotations = 0
    stop = threading.Event()

    def kubelet() -> None:
        nonlocal rotations
        while not stop.wait(TOKEN_SECONDS / 3):
            write_atomically(account / "token", issue_token(installed, lifetime))
            rotations += 1

    before = denial_count(installed)
    rotating = threading.Thread(target=kubelet, daemon=True)
    rotating.start()
    controller = ControllerProcess(None, env, tmp_path, wrapper=wrapper).start()
    try:
        steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": f"{3 * lifetime}s"}}]
        rollout = given(cluster, "creds-pod").rollout(
            rollout_manifest("web", 2, steps, annotations={READY_AFTER: "0.1s"})
        )
        rollout.apply().wait_healthy(timeout=30)
        started = time.monotonic()
        rollout.set_image("nginx:2").wait_healthy(timeout=60)
        assert time.monotonic() - started >= 2 * lifetime  # the pause outlived tokens (its start has whole seconds)
    finally:
        controller.stop()
        stop.set()
        rotating.join(timeout=10)
    logs = controller.logs()
    assert rotations >= 3 * lifetime // TOKEN_SECONDS, rotations
    assert denial_count(installed) == before, logs  # no request ever went out with an expired token
    assert "loading the credentials again" not in logs, logs
    assert f"token read from {SERVICE_ACCOUNT_TOKEN}" in logs, logs  # the mounted account, not a kubeconfig


def test_the_dashboard_renews_exec_plugin_tokens_too(
    installed: SandboxHandle, cluster: Cluster, tmp_path: Path
) -> None:
    """`kubectl rollouts dashboard` outlives its tokens: its verbs and watches keep working, with no 401."""
    kubeconfig, count = exec_plugin_kubeconfig(installed, tmp_path)
    ns = given(cluster, "creds-dash")
    ns.rollout(rollout_manifest("first", 1)).apply()
    before = denial_count(installed)
    with running_dashboard(Plugin.on_cluster(cluster), "--kubeconfig", str(kubeconfig), "-n", ns.name) as url:
        poll("the dashboard to list the rollout", lambda: listed(url) == [f"{ns.name}/first"], DASHBOARD_TOKEN_SECONDS)

        def restarted_past_three_tokens() -> bool:
            status, body = post(f"{url}api/rollouts/{ns.name}/first/restart")
            assert status == 200, body
            return len(count.read_text().splitlines()) >= 4

        poll("four tokens issued while the Restart button works", restarted_past_three_tokens, 8 * TOKEN_SECONDS,
             interval=0.5)
        ns.rollout(rollout_manifest("second", 1)).apply()
        poll("the watch to show the second rollout", lambda: len(listed(url)) == 2, 10)
    assert denial_count(installed) == before


def test_the_dashboard_reads_a_rotated_token_file_before_the_old_token_fails(
    installed: SandboxHandle, cluster: Cluster, tmp_path: Path
) -> None:
    """The official client reads a kubeconfig's tokenFile once; the dashboard reads it again once it changed."""
    token_file = tmp_path / "token"
    # The first token must outlive the dashboard's start and first list, which take seconds on a loaded
    # machine (with a TOKEN_SECONDS token it died first and the dashboard never listed).
    token_file.write_text(issue_token(installed, DASHBOARD_TOKEN_SECONDS))
    expiring = token_file.read_text()
    kubeconfig, _ = kubeconfig_as(installed.kubeconfig, tmp_path / "kubeconfig", {"tokenFile": str(token_file)})
    ns = given(cluster, "creds-dashfile")
    ns.rollout(rollout_manifest("first", 1)).apply()
    with running_dashboard(Plugin.on_cluster(cluster), "--kubeconfig", str(kubeconfig), "-n", ns.name) as url:
        poll("the dashboard to list the rollout", lambda: listed(url) == [f"{ns.name}/first"], DASHBOARD_TOKEN_SECONDS)
        fresh = tmp_path / "token.new"
        fresh.write_text(issue_token(installed, 600))
        fresh.replace(token_file)
        with https_client(installed, expiring) as http:  # the old token is dead (that 401 is ours)
            poll("the old token's expiry", lambda: http.get("/api").status_code == 401, DASHBOARD_TOKEN_SECONDS + 5)
        before = denial_count(installed)
        status, body = post(f"{url}api/rollouts/{ns.name}/first/restart")
        assert status == 200, body
        ns.rollout(rollout_manifest("second", 1)).apply()
        poll("the watch to show the second rollout", lambda: len(listed(url)) == 2, 10)
    assert denial_count(installed) == before
