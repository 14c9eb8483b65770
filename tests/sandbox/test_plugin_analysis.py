"""`kubectl rollouts create/get/terminate analysisrun` end to end against the sandbox: templates applied
with kubectl, runs created by the plugin, statuses written by the test through the `/status`
subresource (no analysis controller runs)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.fixtures.plugin import PAUSED, Plugin, apply, create_rollout, get, in_process, unique
from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl

AR = "analysisruns.pyrollouts.io"


@pytest.fixture(scope="module")
def plugin(kubectl: Kubectl) -> Iterator[Plugin]:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    yield Plugin.on_sandbox(kubectl)


def template(name: str, metric: str, args: list[dict[str, Any]] | None = None,
             refs: list[tuple[str, bool]] | None = None, cluster: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": [{
        "name": metric, "interval": "10s", "count": 3, "successCondition": "result[0] >= {{args.threshold}}",
        "provider": {"prometheus": {"address": "http://prometheus:9090",
                                    "query": 'sum(rate(http_requests_total{service="{{args.service}}"}[1m]))'}},
    }]}
    if args is not None:
        spec["args"] = args
    if refs:
        spec["templates"] = [{"templateName": n, "clusterScope": c} for n, c in refs]
    kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
    return {"apiVersion": "pyrollouts.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def run_names(kubectl: Kubectl) -> set[str]:
    items = json.loads(kubectl.run("get", AR, "-o", "json").stdout)["items"]
    return {item["metadata"]["name"] for item in items}


def test_create_from_nested_templates_with_args(kubectl: Kubectl, plugin: Plugin) -> None:
    root, inner, shared = unique("rate"), unique("latency"), unique("shared")
    apply(kubectl,
          template(root, "success-rate", args=[{"name": "service"}, {"name": "threshold", "value": "0.95"}],
                   refs=[(inner, False), (shared, True)]),
          template(inner, "latency", args=[{"name": "service"}]),
          template(shared, "errors", cluster=True,
                   args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]))
    out = plugin.ok("create", "analysisrun", "--from", root, "-a", "service=web-canary", "-a", "threshold=0.99")
    match = re.fullmatch(rf"analysisrun\.pyrollouts\.io/({root}-\w+) created\n", out)
    assert match, out
    run = get(kubectl, AR, match.group(1))
    metrics = {m["name"]: m for m in run["spec"]["metrics"]}
    assert sorted(metrics) == ["errors", "latency", "success-rate"]
    assert metrics["success-rate"]["successCondition"] == "result[0] >= {{args.threshold}}"  # resolved when measured
    assert sorted(run["spec"]["args"], key=lambda a: a["name"]) == [
        {"name": "service", "value": "web-canary"},
        {"name": "threshold", "value": "0.99"},
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]
    assert run["metadata"]["generateName"] == f"{root}-"
    assert "status" not in run or not run["status"]


def test_create_names_cluster_templates_and_instance_id(kubectl: Kubectl, plugin: Plugin,
                                                        sandbox: SandboxHandle) -> None:
    shared = unique("cshared")
    apply(kubectl, template(shared, "m", args=[{"name": "service", "value": "a"}, {"name": "threshold", "value": "1"}],
                            cluster=True))
    name = unique("named")
    assert in_process(sandbox, "create", "ar", "--from-cluster-template", shared, "--name", name,
                      "--instance-id", "blue") == (0, f"analysisrun.pyrollouts.io/{name} created\n", "")
    run = get(kubectl, AR, name)
    assert run["metadata"]["labels"] == {"rollouts.pyrollouts.io/controller-instance-id": "blue"}
    assert run["spec"]["args"][0] == {"name": "service", "value": "a"}
    code, out, err = in_process(sandbox, "create", "ar", "--global", "--from", shared, "--generate-name", "g-")
    assert (code, err) == (0, "") and re.fullmatch(r"analysisrun\.pyrollouts\.io/g-\w+ created\n", out)


def test_create_refuses_missing_and_unknown_arguments(kubectl: Kubectl, plugin: Plugin,
                                                      sandbox: SandboxHandle) -> None:
    name = unique("needs")
    apply(kubectl, template(name, "m", args=[{"name": "service"}, {"name": "threshold", "value": "0.9"}]))
    before = run_names(kubectl)
    result = plugin("create", "analysisrun", "--from", name)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f'Error: no value for argument "service" of AnalysisTemplate "{name}" (no default): '
                             "pass -a service=VALUE\n")
    assert in_process(sandbox, "create", "ar", "--from", name, "-a", "service=x", "-a", "sevrice=y") == (
        1, "", f'Error: unknown argument "sevrice": AnalysisTemplate "{name}" declares service, threshold\n')
    assert in_process(sandbox, "create", "ar", "--from", name, "-a", "service") == (
        1, "", 'Error: argument "service" must be in the form NAME=VALUE\n')
    assert in_process(sandbox, "create", "ar") == (
        1, "", "Error: one of --from, --from-cluster-template or --from-file must be specified (exactly one)\n")
    assert run_names(kubectl) == before  # nothing created


def test_create_from_file(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle, tmp_path: Any) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(template("from-file", "m", args=[{"name": "service", "value": "s"},
                                                                     {"name": "threshold", "value": "1"}])))
    code, out, err = in_process(sandbox, "create", "ar", "--from-file", str(path))
    assert (code, err) == (0, "") and out.startswith("analysisrun.pyrollouts.io/from-file-")


def test_terminate_sets_spec_terminate(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    tpl, name = unique("term"), unique("term-run")
    apply(kubectl, template(tpl, "m", args=[{"name": "service", "value": "s"}, {"name": "threshold", "value": "1"}]))
    in_process(sandbox, "create", "ar", "--from", tpl, "--name", name)
    kubectl.run("patch", AR, name, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"phase": "Running"}}))
    before = get(kubectl, AR, name)
    assert plugin.ok("terminate", "analysisrun", name) == f"analysisRun '{name}' terminated\n"
    after = get(kubectl, AR, name)
    assert after["spec"] == {**before["spec"], "terminate": True}
    assert after["status"] == before["status"]
    assert "Terminate:       requested" in plugin.ok("get", "ar", name)


def test_get_analysisrun_renders_the_status(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    tpl, name = unique("show"), unique("show-run")
    apply(kubectl, template(tpl, "success-rate", args=[{"name": "service", "value": "web"},
                                                       {"name": "threshold", "value": "0.9"}]))
    in_process(sandbox, "create", "ar", "--from", tpl, "--name", name)
    status = {
        "phase": "Failed", "message": 'Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)',
        "metricResults": [{"name": "success-rate", "phase": "Failed", "count": 3, "successful": 1, "failed": 2,
                           "measurements": [
                               {"phase": "Successful", "value": "[0.97]", "startedAt": "2024-05-01T12:00:00Z",
                                "finishedAt": "2024-05-01T12:00:00Z"},
                               {"phase": "Failed", "value": "[0.41]", "startedAt": "2024-05-01T12:00:10Z",
                                "finishedAt": "2024-05-01T12:00:10Z"},
                               {"phase": "Failed", "value": "[0.38]", "startedAt": "2024-05-01T12:00:20Z",
                                "finishedAt": "2024-05-01T12:00:20Z"}]}],
    }
    kubectl.run("patch", AR, name, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))
    out = plugin.ok("get", "analysisrun", name)
    lines = [re.sub(r"  \d+y\d+d$", "  AGE", line) for line in out.splitlines()]  # ages since 2024
    assert lines == [
        f"Name:            {name}",
        "Namespace:       default",
        "Status:          ✖ Failed",
        'Message:         Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)',
        "Args:            service=web",
        "                 threshold=0.9",
        "",
        "METRIC        STATUS    COUNT  INFO",
        "success-rate  ✖ Failed  3/3    ✔ 1,✖ 2",
        "",
        "Last measurements (up to 3 per metric):",
        "METRIC        STATUS        VALUE   AGE",
        "success-rate  ✔ Successful  [0.97]  AGE",
        "success-rate  ✖ Failed      [0.41]  AGE",
        "success-rate  ✖ Failed      [0.38]  AGE",
    ]


def test_get_analysisrun_watch_redraws(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    tpl, name = unique("watch"), unique("watch-run")
    apply(kubectl, template(tpl, "m", args=[{"name": "service", "value": "s"}, {"name": "threshold", "value": "1"}]))
    in_process(sandbox, "create", "ar", "--from", tpl, "--name", name)
    process = plugin.start("get", "ar", name, "--watch", "--timeout-seconds", "4")
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == f"Name:            {name}\n"
        kubectl.run("patch", AR, name, "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"phase": "Successful", "metricResults": [
                        {"name": "m", "phase": "Successful", "count": 3, "successful": 3}]}}))
        out = process.stdout.read()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        process.communicate()
    assert "Status:          ◷ Pending" in out.split("\n\nName:")[0]
    assert "Status:          ✔ Successful" in out.split("\n\nName:")[-1]
    assert "m       ✔ Successful  3/3    ✔ 3" in out


def test_get_rollout_lists_analysis_runs_under_their_revision(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("tree-ar")
    ro = create_rollout(kubectl, name, PAUSED)
    run_name = f"{name}-c2c2c2-2-1"
    apply(kubectl, {
        "apiVersion": "pyrollouts.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": run_name, "annotations": {"rollouts.pyrollouts.io/revision": "2"},
                     "ownerReferences": [{"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout", "name": name,
                                          "uid": ro["metadata"]["uid"], "controller": True}]},
        "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}]},
    })
    kubectl.run("patch", AR, run_name, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "phase": "Running", "metricResults": [{"name": "m", "phase": "Running", "count": 4, "successful": 3,
                                               "error": 1}]}}))
    tree = plugin.ok("get", "rollout", name).split("\n\n")[1]
    rows = [re.sub(r"\s+", " ", line).strip() for line in tree.splitlines()]
    assert rows[2] == "└──# revision:2"
    assert re.fullmatch(rf"└──α {run_name} AnalysisRun ◌ Running \d+s ✔ 3,⚠ 1", rows[3])  # noqa: RUF001
    assert len(rows) == 4


def test_not_found(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    missing_run = ('Error: analysisrun "ghost" not found in namespace "default"; '
                   "list them with: kubectl get analysisruns.pyrollouts.io -n default\n")
    result = plugin("get", "analysisrun", "ghost")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", missing_run)
    assert in_process(sandbox, "get", "ar", "ghost", "--watch") == (1, "", missing_run)
    assert in_process(sandbox, "terminate", "ar", "ghost") == (1, "", missing_run)
    assert in_process(sandbox, "create", "ar", "--from", "ghost") == (
        1, "", 'Error: analysistemplate "ghost" not found in namespace "default"; '
               "list them with: kubectl get analysistemplates.pyrollouts.io -n default\n")
    assert in_process(sandbox, "create", "ar", "--from-cluster-template", "ghost") == (
        1, "", 'Error: clusteranalysistemplate "ghost" not found; '
               "list them with: kubectl get clusteranalysistemplates.pyrollouts.io\n")
    parent = unique("parent")
    apply(kubectl, template(parent, "m", args=[], refs=[("ghost-inner", True)]))
    assert in_process(sandbox, "create", "ar", "--from", parent) == (
        1, "", 'Error: clusteranalysistemplate "ghost-inner" not found; '
               "list them with: kubectl get clusteranalysistemplates.pyrollouts.io\n")
    assert kubectl.run("get", AR, "ghost", check=False).returncode != 0


def test_get_experiment_watch_redraws(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("watch-exp")
    template = {
        "name": "canary",
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
    }
    apply(kubectl, {"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Experiment", "metadata": {"name": name},
                    "spec": {"templates": [template]}})
    process = plugin.start("get", "experiment", name, "--watch", "--timeout-seconds", "4")
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == f"Name:            {name}\n"
        kubectl.run("patch", "experiments.pyrollouts.io", name, "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"phase": "Successful", "message": "duration"}}))
        out = process.stdout.read()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        process.communicate()
    frames = out.split("\n\nName:")
    assert "Successful" not in frames[0] and "Status:" in frames[0]
    assert "✔ Successful" in frames[-1] and "Message:         duration" in frames[-1]
