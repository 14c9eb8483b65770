"""The plugin starts fast because its verbs import what they need when they run: building the parser
(`kubectl rollouts version --client`, completion) imports no API client, no delivery library and no
schema validator, and `get rollout` (like `list rollouts` and `status` without --watch) imports neither
the other verbs' modules nor, for a JSON kubeconfig, PyYAML. A new verb importing one of them at module
level would add 0.1-0.3 s to every command; the smaller ones add milliseconds to a command that should
take at most 3x `kubectl get` (BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cli_objects import replicaset, rollout
from tests.fixtures.loopback_http import loopback_server, send_whole

HEAVY = ("kubernetes", "apprise", "slack_sdk", "pymsteams", "jsonschema", "aiohttp", "httpx", "playwright")
# What `get rollout` (no --watch) has no use for: another verb's module, the watch machinery, the client
# libraries the plugin replaced, what writes `*-data` kubeconfig fields to files (there are none here).
NOT_FOR_GET_ROLLOUT = (
    "rollouts.cli.actions",
    "rollouts.cli.durations",
    "rollouts.cli.operations",
    "rollouts.cli.analysis",
    "rollouts.cli.analysisrun_info",
    "rollouts.cli.experiment_info",
    "rollouts.cli.watch",
    "rollouts.cli.lint",
    "rollouts.cli.dashboard",
    "kubernetes",
    "urllib3",
    "tempfile",
    "hashlib",
)

RO = rollout("web", "default")
RS = replicaset(RO, "abc123", 1, 2)


class FakeAPIServer(BaseHTTPRequestHandler):
    """Answers the reads of `get rollout web`, `list rollouts` and `status web`: the Rollout, one
    ReplicaSet, no pods, runs or experiments."""

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        body: dict[str, Any]
        if path.endswith("/rollouts/web"):
            body = RO
        elif path.endswith("/rollouts"):
            body = {"kind": "RolloutList", "items": [RO]}
        elif path.endswith("/replicasets"):
            body = {"kind": "ReplicaSetList", "items": [RS]}
        else:
            body = {"kind": "List", "items": []}
        send_whole(self, 200, "application/json", json.dumps(body).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with loopback_server(FakeAPIServer) as url:
        yield url


def kubeconfig(server: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
        "current-context": "ctx",
    }


def imported_by(argv: list[str], config: Path, watched: tuple[str, ...]) -> tuple[str, list[str]]:
    """`kubectl-rollouts ARGV` in a fresh interpreter: what it printed, and which of `watched` it imported."""
    probe = (
        "import sys; from rollouts.cli.main import main; "
        f"code = main({[*argv, '--kubeconfig', str(config)]!r}); "
        f"print('imported:', ','.join(m for m in {watched!r} if m in sys.modules)); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    output, _, imported = result.stdout.rpartition("imported: ")
    return output, [m for m in imported.strip().split(",") if m]


def test_building_the_plugin_parser_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from rollouts.cli import main; main.build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"


def test_get_rollout_imports_no_other_verb_and_no_yaml_for_a_json_kubeconfig(server: str, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig.json"
    config.write_text(json.dumps(kubeconfig(server), indent=2))
    output, imported = imported_by(["get", "rollout", "web"], config, (*NOT_FOR_GET_ROLLOUT, "yaml"))
    assert "Name:            web" in output and "web-abc123" in output
    assert imported == [], f"`get rollout` imported {imported}"


@pytest.mark.parametrize(("argv", "shown"), [(["list", "rollouts"], "web"), (["status", "web", "--watch=false"], "")])
def test_list_and_status_without_watch_import_no_other_verb(
    argv: list[str], shown: str, server: str, tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig.json"
    config.write_text(json.dumps(kubeconfig(server)))
    output, imported = imported_by(argv, config, (*NOT_FOR_GET_ROLLOUT, "yaml"))
    assert shown in output
    assert imported == [], f"`{' '.join(argv)}` imported {imported}"


def test_get_rollout_reads_a_yaml_kubeconfig_the_same(server: str, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(kubeconfig(server)))
    output, imported = imported_by(["get", "rollout", "web"], config, (*NOT_FOR_GET_ROLLOUT, "yaml"))
    assert "Name:            web" in output and "web-abc123" in output
    assert imported == ["yaml"]
