"""The plugin's rough edges of issue 18, end to end through kubectl and the sandbox: shell completion
(kubectl's own, through kubectl_complete-rollouts, and the scripts for bash/zsh/fish), `create -f`,
`version`, `--watch` output when piped, the hint for a status no controller wrote, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rollouts.cli.client import PODS, REPLICASETS, Client, CLIError, Resource
from tests.fixtures.plugin import PAUSED, Plugin, create_rollout, get, plugin_rollout, unique
from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl


@pytest.fixture(scope="module")
def plugin(kubectl: Kubectl) -> Iterator[Plugin]:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    yield Plugin.on_sandbox(kubectl)


def kubectl_complete(plugin: Plugin, *words: str) -> tuple[list[str], str]:
    """`kubectl __complete rollouts WORDS...`: the completions (without descriptions) and the directive."""
    result = subprocess.run(
        [plugin.kubectl_bin, "__complete", "rollouts", *words], capture_output=True, text=True, env=plugin.env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return [line.split("\t")[0] for line in lines[:-1]], lines[-1]


# ---------------------------------------------------------------------- completion


def test_kubectl_completes_the_plugin_verbs_and_subcommands(plugin: Plugin) -> None:
    verbs, directive = kubectl_complete(plugin, "")
    assert {"get", "promote", "abort", "create", "completion", "version"} <= set(verbs)
    assert directive == ":4"  # no file names mixed in
    assert kubectl_complete(plugin, "pro")[0] == ["promote"]
    assert kubectl_complete(plugin, "get", "")[0][:3] == ["rollout", "ro", "rollouts"]
    flags = kubectl_complete(plugin, "promote", "--f")[0]
    assert flags == ["--full"]


def test_kubectl_completes_rollout_names_from_the_cluster(plugin: Plugin, kubectl: Kubectl) -> None:
    names = [unique("complete-me"), unique("complete-me")]
    for name in names:
        create_rollout(kubectl, name, PAUSED)
    for words in (["get", "rollout", "complete-me"], ["promote", "complete-me"], ["status", "complete-m"]):
        completions, _ = kubectl_complete(plugin, *words)
        assert sorted(completions) == sorted(names), (words, completions)
    assert kubectl_complete(plugin, "abort", "no-such-")[0] == []


def test_completion_scripts_for_each_shell(plugin: Plugin) -> None:
    for shell in ("bash", "zsh", "fish"):
        script = plugin.ok("completion", shell)
        assert "kubectl-rollouts" in script and "_ARGCOMPLETE" in script, shell
    assert plugin.run("completion", "tcsh").returncode == 2


def test_bash_completes_through_the_printed_script(plugin: Plugin, tmp_path: Path) -> None:
    """bash sources `completion bash` and its completion function asks the plugin, as on <TAB>."""
    script = tmp_path / "complete.sh"
    script.write_text(plugin.ok("completion", "bash"))
    probe = (
        f"source {script}\n"
        "COMP_LINE='kubectl-rollouts res'; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(kubectl-rollouts res); COMP_CWORD=1\n"
        "$(complete -p kubectl-rollouts | sed -E 's/.*-F ([^ ]+).*/\\1/') kubectl-rollouts res kubectl-rollouts\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=plugin.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [line.strip() for line in result.stdout.splitlines()] == ["restart"]


# ---------------------------------------------------------------------- create -f


def test_create_from_file_creates_each_object(plugin: Plugin, kubectl: Kubectl, tmp_path: Path) -> None:
    name = unique("created")
    template = {
        "apiVersion": "pyrollouts.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": f"{name}-check"},
        "spec": {"metrics": [{"name": "ok", "provider": {"job": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}}}]},
    }
    manifest = tmp_path / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all([plugin_rollout(name), template]))
    out = plugin.ok("create", "-f", str(manifest))
    assert out.splitlines() == [
        f"rollout.pyrollouts.io/{name} created", f"analysistemplate.pyrollouts.io/{name}-check created"
    ]
    assert get(kubectl, "rollouts.pyrollouts.io", name)["spec"]["replicas"] == 3
    again = plugin.run("create", "-f", str(manifest))
    assert again.returncode == 1 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1


def test_create_from_file_names_the_document_it_cannot_create(plugin: Plugin, tmp_path: Path) -> None:
    name = unique("argo")
    argo = {**plugin_rollout(name), "apiVersion": "argoproj.io/v1alpha1"}
    manifest = tmp_path / "argo.yaml"
    manifest.write_text(yaml.safe_dump_all([argo]))
    result = plugin.run("create", "-f", str(manifest))
    assert result.returncode == 1
    assert result.stderr == (
        f'Error: {manifest}: document 1 (Rollout "{name}"): apiVersion is argoproj.io/v1alpha1; '
        "change it to pyrollouts.io/v1alpha1\n"
    )
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
    result = plugin.run("create", "-f", str(manifest))
    assert result.returncode == 1 and "create other objects with kubectl create -f" in result.stderr


# ---------------------------------------------------------------------- version


def test_version_says_when_no_controller_was_seen(plugin: Plugin) -> None:
    lines = plugin.ok("version", "-n", unique("empty-ns")).splitlines()
    assert lines[0].startswith("kubectl-rollouts: v")
    assert [line.split(":")[0].strip() for line in lines[1:4]] == ["GitCommit", "Python", "Platform"]
    assert lines[4].startswith("controller: not seen (no Event from a pyrollouts controller in namespace")


def test_version_client_only_needs_no_cluster(plugin: Plugin, tmp_path: Path) -> None:
    out = plugin.ok("version", "--client", "--kubeconfig", str(tmp_path / "missing"))
    assert len(out.splitlines()) == 4


# ---------------------------------------------------------------------- output and errors


def test_list_watch_prints_through_a_pipe(plugin: Plugin, kubectl: Kubectl) -> None:
    create_rollout(kubectl, unique("piped"), PAUSED)
    process = plugin.start("list", "rollouts", "--watch")
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline() if process.stdout else ""))
    try:
        reader.start()
        reader.join(timeout=30)
        assert first_line and first_line[0].startswith("NAME"), first_line
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_status_never_written_is_pointed_out(plugin: Plugin, kubectl: Kubectl) -> None:
    bare, written = unique("no-status"), unique("status")
    create_rollout(kubectl, bare)
    create_rollout(kubectl, written, PAUSED)
    hint = f'Warning: rollout "{bare}": status never written: is the controller running?'
    for args in (["get", "rollout", bare], ["status", bare, "--watch=false"]):
        result = plugin.run(*args)
        assert result.returncode == 0 and result.stderr.startswith(hint), (args, result.stderr)
    assert "status never written" not in plugin.run("get", "rollout", written).stderr


def test_a_dead_api_server_is_one_clear_line(plugin: Plugin, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "dead"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead"}}],
    }))
    result = plugin.run("get", "rollout", "web", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    assert result.stderr == (
        "Error: cannot reach the API server at http://127.0.0.1:9 (connection refused); is it running? "
        "check --kubeconfig and --context\n"
    )


def test_lint_speaks_of_fields_not_python(plugin: Plugin, tmp_path: Path) -> None:
    manifest = tmp_path / "five.yaml"
    manifest.write_text(yaml.safe_dump(plugin_rollout("web", replicas="five")))
    result = plugin.run("lint", "-f", str(manifest))
    assert result.returncode == 1
    assert "spec.replicas" in result.stdout and "invalid literal" not in result.stdout + result.stderr


def test_the_plugins_lists_go_out_at_once_each_on_its_connection(sandbox: SandboxHandle) -> None:
    """`get rollout` lists ReplicaSets, Pods, AnalysisRuns and Experiments at the same time, each on a thread
    of its own: results in the order asked, a failing call's error raised in the caller."""
    client = Client.connect(str(sandbox.kubeconfig), namespace="default")
    try:
        seen: list[str] = []

        def listing(resource: Resource) -> int:
            seen.append(threading.current_thread().name)
            return len(client.list(resource).get("items") or [])

        counts = client.all_at_once(lambda: listing(REPLICASETS), lambda: listing(PODS), lambda: "third")
        assert isinstance(counts[0], int) and isinstance(counts[1], int) and counts[2] == "third"
        assert threading.current_thread().name not in seen and len(set(seen)) == 2
        with pytest.raises(CLIError) as missing:
            client.all_at_once(lambda: listing(PODS), lambda: client.get(REPLICASETS, "no-such-replicaset"))
        assert missing.value.message == 'replicaset "no-such-replicaset" not found in namespace "default"'
    finally:
        client.close()
