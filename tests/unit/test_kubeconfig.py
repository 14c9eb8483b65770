"""The kubeconfig loader (rollouts.controller.kubeconfig) follows kubectl's rules: which files, how they
merge, relative paths, --context, and the in-cluster fallback. Files only; no server is contacted."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.controller.kubeconfig import IN_CLUSTER, KubeconfigError, load, load_connection


def write(path: Path, **config: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **config}))
    return path


def cluster(name: str, server: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **extra}}


def user(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "user": fields}


def context(name: str, cluster: str, user: str, namespace: str | None = None) -> dict[str, Any]:
    body = {"cluster": cluster, "user": user} | ({"namespace": namespace} if namespace else {})
    return {"name": name, "context": body}


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KUBECONFIG, an empty home, and not inside a cluster, unless a test says otherwise."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def use(monkeypatch: pytest.MonkeyPatch, *paths: Path | str) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, paths)))


def test_cluster_and_user_in_one_file_context_in_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.yaml", clusters=[cluster("c", "http://a.example:8080")], users=[user("u", token="t-a")])
    b = write(tmp_path / "b.yaml", contexts=[context("ctx", "c", "u", "team")], **{"current-context": "ctx"})
    use(monkeypatch, a, b)
    conn = load_connection()
    assert (conn.server, conn.token, conn.namespace) == ("http://a.example:8080", "t-a", "team")


def test_first_file_to_set_a_name_or_the_current_context_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(
        tmp_path / "first.yaml",
        clusters=[cluster("c", "http://first:1")],
        users=[user("u", token="first")],
        contexts=[context("one", "c", "u", "ns-first")],
    )
    second = write(
        tmp_path / "second.yaml",
        clusters=[cluster("c", "http://second:2"), cluster("d", "http://d:4")],
        users=[user("u", token="second")],
        contexts=[context("one", "d", "u", "ns-second"), context("two", "d", "u")],
        **{"current-context": "one"},
    )
    third = write(tmp_path / "third.yaml", **{"current-context": "two"})
    use(monkeypatch, first, second, third)
    found = load()
    # current-context: second.yaml is the first to set one (the kubernetes client alone takes the last);
    # context "one" and cluster "c" come from first.yaml, which named them first.
    assert found.namespace == "ns-first"
    assert found.connection().server == "http://first:1"
    assert found.connection().token == "first"
    assert found.source == os.pathsep.join(map(str, (first, second, third)))


def test_relative_paths_resolve_against_the_file_that_holds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters_dir, users_dir = tmp_path / "clusters", tmp_path / "users"
    for path in (clusters_dir / "pki" / "ca.crt", users_dir / "me.crt", users_dir / "me.key"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("PEM")
    (users_dir / "secrets").mkdir()
    (users_dir / "secrets" / "token").write_text("from-file")
    a = write(
        clusters_dir / "a.yaml",
        clusters=[cluster("c", "https://c.example", **{"certificate-authority": "pki/ca.crt"})],
    )
    b = write(
        users_dir / "b.yaml",
        users=[user("u", **{"client-certificate": "me.crt", "client-key": "me.key", "tokenFile": "secrets/token"})],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not where either file is
    use(monkeypatch, a, b)
    conn = load_connection()
    assert conn.ca_path == str(clusters_dir / "pki" / "ca.crt")
    assert (conn.cert_path, conn.key_path) == (str(users_dir / "me.crt"), str(users_dir / "me.key"))
    assert conn.token == "from-file"
    assert conn.namespace == "default"


def test_context_flag_overrides_current_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(
        tmp_path / "a.yaml",
        clusters=[cluster("c1", "http://one:1"), cluster("c2", "http://two:2")],
        users=[user("u", token="t")],
        contexts=[context("first", "c1", "u", "ns1"), context("second", "c2", "u", "ns2")],
        **{"current-context": "first"},
    )
    use(monkeypatch, a)
    found = load(context="second")
    assert (found.connection().server, found.namespace) == ("http://two:2", "ns2")
    with pytest.raises(KubeconfigError, match='context "third" does not exist'):
        load(context="third")


def test_missing_and_empty_files_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(
        tmp_path / "a.yaml",
        clusters=[cluster("c", "http://c:1")],
        users=[user("u", token="t")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    use(monkeypatch, tmp_path / "missing.yaml", empty, a)
    found = load()
    assert found.connection().server == "http://c:1"
    assert found.source == str(a)


def test_the_flag_comes_before_kubeconfig_and_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = write(
        tmp_path / "env.yaml",
        clusters=[cluster("c", "http://env:1")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    flag = write(
        tmp_path / "flag.yaml",
        clusters=[cluster("c", "http://flag:1")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    use(monkeypatch, env)
    assert load_connection(str(flag)).server == "http://flag:1"
    with pytest.raises(KubeconfigError, match=r"no kubeconfig found \(looked at .*nope\.yaml\)"):
        load(str(tmp_path / "nope.yaml"))


def test_json_yaml_flow_and_block_kubeconfigs_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON is read without PyYAML; a YAML flow mapping (starts with `{` too, is not JSON) still goes to
    the YAML parser; a file that is neither names itself."""
    config = {
        "clusters": [cluster("c", "http://c.example:8080")],
        "users": [user("u", token="t")],
        "contexts": [context("ctx", "c", "u", "team")],
        "current-context": "ctx",
    }
    flow = yaml.safe_dump(config, default_flow_style=True)
    assert flow.startswith("{") and not flow.startswith('{"')
    texts = {"a.json": json.dumps(config, indent=2), "b.yaml": flow, "c.yaml": yaml.safe_dump(config)}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        use(monkeypatch, tmp_path / name)
        found = load()
        assert (found.settings.server, found.settings.token, found.namespace) == ("http://c.example:8080", "t", "team")
    (tmp_path / "bad.yaml").write_text("clusters: [\n  - name: c\n  users")
    use(monkeypatch, tmp_path / "bad.yaml")
    with pytest.raises(KubeconfigError, match=r"(?s)cannot read kubeconfig .*bad.yaml: .*line 2"):
        load()


def test_home_kubeconfig_when_kubeconfig_is_unset(tmp_path: Path) -> None:
    write(
        tmp_path / "home" / ".kube" / "config",
        clusters=[cluster("c", "http://home:1")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    assert load_connection().server == "http://home:1"


def test_no_current_context_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a.yaml", clusters=[cluster("c", "http://c:1")], users=[user("u", token="t")])
    use(monkeypatch, a)
    with pytest.raises(KubeconfigError, match=r"no current-context in kubeconfig .*a\.yaml: pass --context NAME"):
        load()


def test_nothing_found_names_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as caught:
        load()
    assert str(caught.value) == (
        f"no kubeconfig found (looked at {tmp_path / 'home' / '.kube' / 'config'}): "
        "pass --kubeconfig PATH or set KUBECONFIG"
    )


def test_exec_plugin_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's exec support, with the command given relative to the kubeconfig's directory."""
    plugin = tmp_path / "bin" / "credentials"
    plugin.parent.mkdir()
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "from-exec", "expirationTimestamp": "2030-01-02T03:04:05Z"},
    }
    plugin.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(credential))})\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    a = write(
        tmp_path / "a.yaml",
        clusters=[cluster("c", "http://c:1")],
        users=[user("u", exec={"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/credentials"})],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    monkeypatch.chdir(tmp_path / "bin")  # the command is found next to the file, not in the working directory
    use(monkeypatch, a)
    conn = load_connection()
    assert conn.token == "from-exec"
    assert conn.expiry is not None and conn.expiry.isoformat() == "2030-01-02T03:04:05+00:00"


def test_in_cluster_when_no_kubeconfig_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    from rollouts.controller import kubeconfig

    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("sa-token")
    (account / "ca.crt").write_text("PEM")
    (account / "namespace").write_text("rollouts-system\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_NAMESPACE", account / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    use(monkeypatch, tmp_path / "missing.yaml")
    found = load()
    conn = found.connection()
    assert found.source == IN_CLUSTER
    assert (conn.server, conn.token, conn.ca_path) == ("https://10.0.0.1:443", "sa-token", str(account / "ca.crt"))
    assert conn.namespace == "rollouts-system"
    # A context asked for by name is a kubeconfig's; the service account has none.
    with pytest.raises(KubeconfigError, match="no kubeconfig found"):
        load(context="other")


def test_data_fields_become_private_files_and_insecure_skips_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    a = write(
        tmp_path / "a.yaml",
        clusters=[
            cluster(
                "c",
                "https://c.example",
                **{
                    "certificate-authority-data": base64.b64encode(b"CA PEM").decode(),
                    "insecure-skip-tls-verify": True,
                },
            )
        ],
        users=[user("u", token="t")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    use(monkeypatch, a)
    conn = load_connection()
    assert conn.ca_path is not None and Path(conn.ca_path).read_bytes() == b"CA PEM"
    assert stat.S_IMODE(os.stat(conn.ca_path).st_mode) == 0o600
    assert conn.verify is False


def test_static_credentials_load_without_the_kubernetes_client(tmp_path: Path) -> None:
    """The plugin's start-up: a token user is read without importing the `kubernetes` package."""
    import subprocess

    a = write(
        tmp_path / "a.yaml",
        clusters=[cluster("c", "http://c:1")],
        users=[user("u", token="t")],
        contexts=[context("ctx", "c", "u")],
        **{"current-context": "ctx"},
    )
    code = (
        "import sys; from rollouts.controller.kubeconfig import load_connection; "
        f"assert load_connection({str(a)!r}).token == 't'; print('kubernetes' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
