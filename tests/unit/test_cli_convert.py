"""`kubectl rollouts convert -f FILE`: Argo manifests rewritten for this controller, through the plugin's
entry point; the result lints clean, what changed and what has no equivalent go to stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts import schema
from rollouts.cli import lint
from rollouts.cli.main import main

ARGO_ROLLOUT: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {
        "name": "web",
        "labels": {"argo-rollouts.argoproj.io/controller-instance-id": "blue"},
        "annotations": {
            "notifications.argoproj.io/subscribe.on-rollout-completed.slack": "deploys",
            "rollout.argoproj.io/revision": "3",
        },
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"argo-rollouts.argoproj.io/note": "x"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        },
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"plugin": {"name": "argoproj-labs/step"}}]}},
    },
}
ARGO_TEMPLATE: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "rate"},
    "spec": {"metrics": [
        {"name": "ok", "successCondition": "result == 1", "provider": {"web": {"url": "http://example.com/ok"}}},
        {"name": "other", "provider": {"plugin": {"argoproj-labs/metric": {}}}},
    ]},
}
ARGO_CD_APP: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a"}}


def test_convert_rewrites_argo_manifests_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "argo.yaml"
    manifest.write_text(yaml.safe_dump_all([ARGO_ROLLOUT, ARGO_TEMPLATE, ARGO_CD_APP]))
    assert main(["convert", "-f", str(manifest)]) == 0
    captured = capsys.readouterr()
    rollout, template, app = yaml.safe_load_all(captured.out)
    assert rollout["apiVersion"] == template["apiVersion"] == "pyrollouts.io/v1alpha1"
    assert app == ARGO_CD_APP  # Argo CD's kinds share the group: left alone
    assert rollout["metadata"]["labels"] == {"pyrollouts.io/controller-instance-id": "blue"}
    assert rollout["metadata"]["annotations"] == {
        "notifications.pyrollouts.io/subscribe.on-rollout-completed.slack": "deploys",
        "rollouts.pyrollouts.io/revision": "3",
    }
    assert rollout["spec"]["template"]["metadata"]["annotations"] == {"rollouts.pyrollouts.io/note": "x"}
    assert rollout["spec"]["strategy"] == ARGO_ROLLOUT["spec"]["strategy"]  # reported, not removed

    where = f'{manifest}: document 1 (Rollout "web")'
    err = captured.err.splitlines()
    assert f"changed: {where}: apiVersion: argoproj.io/v1alpha1 -> pyrollouts.io/v1alpha1" in err
    assert (f"changed: {where}: metadata.labels: argo-rollouts.argoproj.io/controller-instance-id -> "
            "pyrollouts.io/controller-instance-id") in err
    plugin = f'no equivalent: {where}: spec.strategy.canary.steps[1].plugin.name: Invalid value: "argoproj-labs/step"'
    assert any(line.startswith(plugin) for line in err)
    metric = (f'no equivalent: {manifest}: document 2 (AnalysisTemplate "rate"): spec.metrics[1].provider.plugin.'
              'argoproj-labs/metric: plugin "argoproj-labs/metric" is not installed')
    assert any(line.startswith(metric) for line in err)
    assert err[-1] == f"{manifest}: 6 change(s), 2 without an equivalent"


def test_a_converted_argo_manifest_lints_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canary = {"canary": {"steps": [{"setWeight": 50}]}}
    supported = {**ARGO_ROLLOUT, "spec": {**ARGO_ROLLOUT["spec"], "strategy": canary}}
    manifest = tmp_path / "argo.yaml"
    manifest.write_text(yaml.safe_dump(supported))
    assert main(["convert", "-f", str(manifest)]) == 0
    converted = list(yaml.safe_load_all(capsys.readouterr().out))
    assert lint.lint_documents(converted, schema.load_crds()) == (1, [])
    assert main(["convert", "-f", str(tmp_path / "missing.yaml")]) == 1
    assert "Error: cannot read" in capsys.readouterr().err
