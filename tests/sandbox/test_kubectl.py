"""The sandbox through the real kubectl: exit codes, stdout and stderr as a user sees them."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.sandbox import Kubectl
from tests.fixtures.tools import REPO, deadline_after

pytestmark = pytest.mark.kubectl

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{int(time.time() * 1000) % 100000}"


def manifest(*docs: Mapping[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def rollout(name: str, replicas: int = 2, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
            **spec,
        },
    }


def deployment(name: str, replicas: int = 1, containers: list[dict[str, object]] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers or [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }


def get_json(kubectl: Kubectl, *args: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(kubectl.run("get", *args, "-o", "json").stdout)
    return result


def eventually(check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> None:
    deadline = deadline_after(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=established", "--timeout=10s", "crd/rollouts.pyrollouts.io",
                "crd/analysisruns.pyrollouts.io", "crd/analysistemplates.pyrollouts.io")


# ---------------------------------------------------------------------- discovery


def test_api_resources_lists_builtin_and_custom_kinds(kubectl: Kubectl, crds: None) -> None:
    out = kubectl.run("api-resources").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert lines["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    assert lines["rollouts"][1:] == ["ro", "pyrollouts.io/v1alpha1", "true", "Rollout"]
    assert lines["clusteranalysistemplates"][1:] == [
        "cat", "pyrollouts.io/v1alpha1", "false", "ClusterAnalysisTemplate"
    ]
    names = kubectl.run("api-resources", "--api-group=pyrollouts.io", "-o", "name").stdout.split()
    assert sorted(names) == [
        "analysisruns.pyrollouts.io",
        "analysistemplates.pyrollouts.io",
        "clusteranalysistemplates.pyrollouts.io",
        "experiments.pyrollouts.io",
        "rollouts.pyrollouts.io",
    ]
    assert kubectl.run("version", "-o", "json").returncode == 0


def test_explain_custom_resource_field(kubectl: Kubectl, crds: None) -> None:
    out = kubectl.run("explain", "rollouts.spec.replicas").stdout
    assert "KIND:       Rollout" in out
    assert "FIELD: replicas <integer>" in out


# ---------------------------------------------------------------------- create, get


def test_create_from_file_then_get_json_and_jsonpath(kubectl: Kubectl, tmp_path: Path) -> None:
    name = unique("cm")
    path = tmp_path / "cm.yaml"
    path.write_text(manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                              "data": {"color": "blue"}}))
    result = kubectl.run("create", "-f", str(path))
    assert result.stdout.strip() == f"configmap/{name} created"
    again = kubectl.run("create", "-f", str(path), check=False)
    assert again.returncode == 1
    assert f'configmaps "{name}" already exists' in again.stderr
    obj = get_json(kubectl, "configmap", name)
    assert obj["data"] == {"color": "blue"}
    meta = obj["metadata"]
    assert isinstance(meta, dict) and meta["namespace"] == "default" and meta["uid"] and meta["resourceVersion"]
    jp = kubectl.run("get", "configmap", name, "-o", "jsonpath={.data.color}/{.metadata.name}").stdout
    assert jp == f"blue/{name}"
    table = kubectl.run("get", "configmap", name).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert table[1].split()[:2] == [name, "1"]
    missing = kubectl.run("get", "configmap", "no-such-cm", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): configmaps "no-such-cm" not found' in missing.stderr


def test_create_dry_run_server_stores_nothing(kubectl: Kubectl) -> None:
    name = unique("dry")
    out = kubectl.run("create", "configmap", name, "--from-literal=a=b", "--dry-run=server", "-o", "yaml").stdout
    assert yaml.safe_load(out)["data"] == {"a": "b"}
    assert kubectl.run("get", "configmap", name, check=False).returncode == 1


def test_get_with_label_selectors(kubectl: Kubectl) -> None:
    tag = unique("sel")
    labels = {"a": {"env": "prod", "tier": "web"}, "b": {"env": "prod", "tier": "db"},
              "c": {"env": "dev", "tier": "web"}, "d": {"env": "test"}}
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{tag}-{k}", "labels": {**v, "set": tag}}}
        for k, v in labels.items()
    ]
    kubectl.run("apply", "-f", "-", input=manifest(*docs))

    def names(selector: str) -> list[str]:
        out = kubectl.run("get", "configmaps", "-l", f"set={tag},{selector}", "-o", "name").stdout.split()
        return sorted(n.rsplit("-", 1)[1] for n in out)

    assert names("env=prod") == ["a", "b"]
    assert names("env==prod,tier=web") == ["a"]
    assert names("env!=prod") == ["c", "d"]
    assert names("env in (dev,test)") == ["c", "d"]
    assert names("tier notin (web)") == ["b", "d"]
    assert names("tier") == ["a", "b", "c"]
    assert names("!tier") == ["d"]
    empty = kubectl.run("get", "configmaps", "-l", f"set={tag},env=nowhere")
    assert empty.stdout == ""
    assert "No resources found in default namespace." in empty.stderr
    bad = kubectl.run("get", "configmaps", "-l", "env in prod", check=False)
    assert bad.returncode == 1


def test_get_field_selector_and_all_namespaces(kubectl: Kubectl) -> None:
    name = unique("fs")
    kubectl.run("create", "namespace", name)
    kubectl.run("create", "configmap", "x", "-n", name)
    out = kubectl.run("get", "configmaps", "-A", "--field-selector", f"metadata.namespace={name}").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert [line.split()[:2] for line in lines[1:]] == [[name, "x"]]


# ---------------------------------------------------------------------- apply


def test_client_side_apply_merges_lists_by_key(kubectl: Kubectl, tmp_path: Path) -> None:
    name = unique("csa")
    path = tmp_path / "deploy.yaml"
    containers: list[dict[str, object]] = [
        {"name": "web", "image": "nginx:1.25", "env": [{"name": "ALPHA", "value": "1"}, {"name": "BETA", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}]},
        {"name": "sidecar", "image": "busybox:1"},
    ]
    path.write_text(manifest(deployment(name, containers=containers)))
    first = kubectl.run("apply", "-f", str(path))
    assert first.stdout.strip() == f"deployment.apps/{name} created"
    assert "warning" not in first.stderr.lower()
    # Someone else adds an env var to the live object: apply must keep it (lists merge by `name`).
    kubectl.run("set", "env", f"deployment/{name}", "-c", "web", "LIVE=yes")
    containers[0]["image"] = "nginx:1.26"
    containers[0]["env"] = [{"name": "ALPHA", "value": "10"}]  # BETA removed from the applied config
    path.write_text(manifest(deployment(name, containers=containers)))
    second = kubectl.run("apply", "-f", str(path))
    assert second.stdout.strip() == f"deployment.apps/{name} configured"
    assert "warning" not in second.stderr.lower(), second.stderr
    live = get_json(kubectl, "deployment", name)
    spec = live["spec"]["template"]["spec"]  # type: ignore[index]
    by_name = {c["name"]: c for c in spec["containers"]}
    assert set(by_name) == {"web", "sidecar"}
    assert by_name["web"]["image"] == "nginx:1.26"
    assert by_name["sidecar"]["image"] == "busybox:1"
    env = {e["name"]: e.get("value") for e in by_name["web"]["env"]}
    assert env == {"ALPHA": "10", "LIVE": "yes"}
    assert live["metadata"]["generation"] == 3  # type: ignore[index]
    # (Applying the same file again prints "configured", as against a real server: kubectl's own patch
    # then carries only `$setElementOrder` directives, because the live env list has an extra item.)


def test_server_side_apply_create_update_and_remove_field(kubectl: Kubectl) -> None:
    name = unique("ssa")
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"keep": "1", "drop": "1"}},
           "data": {"keep": "1", "drop": "1"}}
    created = kubectl.run("apply", "--server-side", "-f", "-", input=manifest(doc))
    assert created.stdout.strip() == f"configmap/{name} serverside-applied"
    doc["metadata"] = {"name": name, "labels": {"keep": "2"}}
    doc["data"] = {"keep": "2"}
    kubectl.run("apply", "--server-side", "-f", "-", input=manifest(doc))
    live = get_json(kubectl, "configmap", name, "--show-managed-fields")
    assert live["data"] == {"keep": "2"}
    assert live["metadata"]["labels"] == {"keep": "2"}  # type: ignore[index]
    managers = [m["manager"] for m in live["metadata"]["managedFields"]]  # type: ignore[index]
    assert "kubectl" in managers
    # Another manager's field survives our apply.
    kubectl.run("label", "configmap", name, "other=x")
    kubectl.run("apply", "--server-side", "-f", "-", input=manifest(doc))
    assert get_json(kubectl, "configmap", name)["metadata"]["labels"] == {"keep": "2", "other": "x"}  # type: ignore[index]


# ---------------------------------------------------------------------- watch


class Stream:
    """A background kubectl whose stdout lines arrive on a queue."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self.proc = subprocess.Popen([kubectl.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=kubectl.handle.env())
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        deadline = deadline_after(timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout}s; seen: {self.seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return err


@pytest.fixture
def stream(kubectl: Kubectl) -> Iterator[Callable[..., Stream]]:
    started: list[Stream] = []

    def start(*args: str) -> Stream:
        s = Stream(kubectl, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_get_watch_streams_rows(kubectl: Kubectl, stream: Callable[..., Stream]) -> None:
    tag = unique("w")
    kubectl.run("create", "configmap", f"{tag}-a", "--from-literal=k=v")
    kubectl.run("label", "configmap", f"{tag}-a", f"watch={tag}")
    watch = stream("get", "configmaps", "-l", f"watch={tag}", "-w", "--output-watch-events")
    header = watch.wait_for(lambda line: line.startswith("EVENT"))
    assert header.split() == ["EVENT", "NAME", "DATA", "AGE"]
    first = watch.wait_for(lambda line: f"{tag}-a" in line)
    assert first.split()[:3] == ["ADDED", f"{tag}-a", "1"]
    kubectl.run("patch", "configmap", f"{tag}-a", "--type=merge", "-p", '{"data":{"k2":"v2"}}')
    modified = watch.wait_for(lambda line: line.startswith("MODIFIED"))
    assert modified.split()[:3] == ["MODIFIED", f"{tag}-a", "2"]
    kubectl.run("create", "configmap", f"{tag}-b")
    kubectl.run("label", "configmap", f"{tag}-b", f"watch={tag}")  # enters the selector: ADDED
    added = watch.wait_for(lambda line: f"{tag}-b" in line)
    assert added.split()[:3] == ["ADDED", f"{tag}-b", "0"]
    kubectl.run("delete", "configmap", f"{tag}-a")
    deleted = watch.wait_for(lambda line: line.startswith("DELETED"))
    assert deleted.split()[:2] == ["DELETED", f"{tag}-a"]
    assert watch.stop() == ""


def test_get_watch_plain_rows_for_pods(kubectl: Kubectl, stream: Callable[..., Stream]) -> None:
    name = unique("wp")
    watch = stream("get", "pods", "-l", f"app={name}", "--watch")
    kubectl.run("apply", "-f", "-", input=manifest(deployment(name, replicas=1)))
    running = watch.wait_for(lambda line: "Running" in line)
    cells = running.split()
    assert cells[0].startswith(f"{name}-") and cells[1:4] == ["1/1", "Running", "0"]
    assert watch.seen[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert sum(1 for line in watch.seen if line.startswith("NAME")) == 1  # the header is printed once


# ---------------------------------------------------------------------- custom resources


def test_custom_resource_printer_columns(kubectl: Kubectl, crds: None) -> None:
    name = unique("ro")
    kubectl.run("apply", "-f", "-", input=manifest(rollout(name, replicas=3)))
    out = kubectl.run("get", "ro", name).stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "PHASE", "AGE"]
    # No status yet: those cells are empty, not "<none>" or "<nil>".
    assert out[1].split()[:2] == [name, "3"]
    assert "<" not in out[1]
    status = {"status": {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2, "phase": "Progressing"}}
    kubectl.run("patch", "ro", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    row = kubectl.run("get", "rollouts.pyrollouts.io", name, "--no-headers").stdout.split()
    assert row[:6] == [name, "3", "3", "1", "2", "Progressing"]
    listed = kubectl.run("get", "rollouts").stdout
    assert name in listed and "PHASE" in listed


def test_invalid_custom_resource_is_rejected_with_field_path(kubectl: Kubectl, crds: None) -> None:
    name = unique("bad")
    doc = rollout(name)
    doc["spec"]["replicas"] = "three"  # type: ignore[index]
    result = kubectl.run("create", "-f", "-", input=manifest(doc), check=False)
    assert result.returncode == 1
    assert f'The Rollout "{name}" is invalid' in result.stderr
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' in (
        result.stderr
    )
    assert kubectl.run("get", "ro", name, check=False).returncode == 1


def test_unknown_field_strict_rejected_warn_reported(kubectl: Kubectl, crds: None) -> None:
    name = unique("unk")
    doc = rollout(name)
    doc["spec"]["bogus"] = 1  # type: ignore[index]
    strict = kubectl.run("create", "-f", "-", input=manifest(doc), check=False)
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in strict.stderr
    applied = kubectl.run("apply", "-f", "-", input=manifest(doc), check=False)
    assert applied.returncode == 1
    assert 'unknown field "spec.bogus"' in applied.stderr
    warned = kubectl.run("apply", "--validate=warn", "-f", "-", input=manifest(doc))
    assert warned.stdout.strip() == f"rollout.pyrollouts.io/{name} created"
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    live = get_json(kubectl, "ro", name)
    assert "bogus" not in live["spec"]  # type: ignore[operator]
    doc["spec"]["replicas"] = 4  # type: ignore[index]
    doc["spec"]["other"] = True  # type: ignore[index]
    patched = kubectl.run("apply", "--validate=warn", "-f", "-", input=manifest(doc))
    assert patched.stdout.strip() == f"rollout.pyrollouts.io/{name} configured"
    assert 'Warning: unknown field "spec.other"' in patched.stderr
    ignored = kubectl.run("apply", "--validate=false", "-f", "-", input=manifest(doc))
    assert "Warning" not in ignored.stderr


# ---------------------------------------------------------------------- patch


def test_patch_merge_json_and_strategic(kubectl: Kubectl, crds: None) -> None:
    name = unique("pt")
    kubectl.run("apply", "-f", "-", input=manifest(deployment(name, containers=[
        {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "busybox:1"},
    ])))
    kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=15s")  # settled: no status writes race us
    merge = kubectl.run("patch", "deployment", name, "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    assert merge.stdout.strip() == f"deployment.apps/{name} patched"
    same = kubectl.run("patch", "deployment", name, "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    assert same.stdout.strip() == f"deployment.apps/{name} patched (no change)"
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1},
           {"op": "replace", "path": "/spec/replicas", "value": 2}]
    kubectl.run("patch", "deployment", name, "--type=json", "-p", json.dumps(ops))
    failed = kubectl.run("patch", "deployment", name, "--type=json",
                         "-p", '[{"op":"test","path":"/spec/replicas","value":9}]', check=False)
    assert failed.returncode == 1
    # 422 Invalid, worded as kube-apiserver words a failed `test` op.
    assert failed.stderr.strip() == "The request is invalid: : testing value /spec/replicas failed: test failed"
    # Strategic merge: the containers list merges by name, so `side` survives.
    kubectl.run("patch", "deployment", name, "-p",
                '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}')
    spec = get_json(kubectl, "deployment", name)["spec"]
    containers = {c["name"]: c for c in spec["template"]["spec"]["containers"]}  # type: ignore[index]
    assert spec["replicas"] == 2  # type: ignore[index]
    assert containers["web"]["image"] == "nginx:2" and containers["web"]["env"] == [{"name": "A", "value": "1"}]
    assert containers["side"]["image"] == "busybox:1"
    # `$patch: delete` directive removes one list item.
    kubectl.run("patch", "deployment", name, "--type=strategic", "-p",
                '{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}')
    spec = get_json(kubectl, "deployment", name)["spec"]
    assert [c["name"] for c in spec["template"]["spec"]["containers"]] == ["web"]  # type: ignore[index]
    # Strategic merge patch is for built-in kinds only.
    ro = unique("ro")
    kubectl.run("apply", "-f", "-", input=manifest(rollout(ro)))
    refused = kubectl.run("patch", "ro", ro, "--type=strategic", "-p", '{"spec":{"replicas":3}}', check=False)
    assert refused.returncode == 1
    assert "strategic" in refused.stderr and "not supported" in refused.stderr
    ok = kubectl.run("patch", "ro", ro, "--type=merge", "-p", '{"spec":{"replicas":3}}')
    assert ok.stdout.strip() == f"rollout.pyrollouts.io/{ro} patched"


def test_stale_replace_conflicts(kubectl: Kubectl, tmp_path: Path) -> None:
    name = unique("stale")
    kubectl.run("create", "configmap", name, "--from-literal=a=1")
    stale = tmp_path / "stale.yaml"
    stale.write_text(kubectl.run("get", "configmap", name, "-o", "yaml").stdout)
    kubectl.run("label", "configmap", name, "bump=1")
    result = kubectl.run("replace", "-f", str(stale), check=False)
    assert result.returncode == 1
    assert "Error from server (Conflict)" in result.stderr
    assert f'Operation cannot be fulfilled on configmaps "{name}": the object has been modified' in result.stderr
    forced = kubectl.run("replace", "--force", "-f", str(stale))
    assert f'configmap "{name}" deleted' in forced.stdout and f"configmap/{name} replaced" in forced.stdout


# ---------------------------------------------------------------------- scale, delete, wait


def test_scale_deployment_replicaset_and_rollout(kubectl: Kubectl, crds: None) -> None:
    name = unique("sc")
    kubectl.run("apply", "-f", "-", input=manifest(deployment(name, replicas=1)))
    assert kubectl.run("scale", "deployment", name, "--replicas=3").stdout.strip() == (
        f"deployment.apps/{name} scaled"
    )
    kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=15s")
    assert len(kubectl.run("get", "pods", "-l", f"app={name}", "-o", "name").stdout.split()) == 3
    precondition = kubectl.run("scale", "deployment", name, "--current-replicas=2", "--replicas=1", check=False)
    assert precondition.returncode == 1
    assert "Expected replicas to be 2, was 3" in precondition.stderr

    rs = unique("rs")
    kubectl.run("apply", "-f", "-", input=manifest({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": rs},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": rs}},
                 "template": {"metadata": {"labels": {"app": rs}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }))
    assert kubectl.run("scale", "rs", rs, "--replicas=2").stdout.strip() == f"replicaset.apps/{rs} scaled"
    eventually(lambda: len(kubectl.run("get", "pods", "-l", f"app={rs}", "-o", "name").stdout.split()) == 2)

    ro = unique("ro")
    kubectl.run("apply", "-f", "-", input=manifest(rollout(ro, replicas=2)))
    assert kubectl.run("scale", "rollout", ro, "--replicas=5").stdout.strip() == f"rollout.pyrollouts.io/{ro} scaled"
    assert kubectl.run("get", "ro", ro, "-o", "jsonpath={.spec.replicas}").stdout == "5"
    scale = json.loads(kubectl.run("get", "--raw",
                                   f"/apis/pyrollouts.io/v1alpha1/namespaces/default/rollouts/{ro}/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 5}


def test_delete_removes_object_and_garbage_collects_pods(kubectl: Kubectl) -> None:
    rs = unique("gc")
    kubectl.run("apply", "-f", "-", input=manifest({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": rs},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": rs}},
                 "template": {"metadata": {"labels": {"app": rs}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }))
    eventually(lambda: len(kubectl.run("get", "pods", "-l", f"app={rs}", "-o", "name").stdout.split()) == 2)
    result = kubectl.run("delete", "replicaset", rs, "--timeout=10s")
    assert result.stdout.strip() == f'replicaset.apps "{rs}" deleted'
    gone = kubectl.run("get", "replicaset", rs, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    eventually(lambda: kubectl.run("get", "pods", "-l", f"app={rs}", "-o", "name").stdout == "")
    again = kubectl.run("delete", "replicaset", rs, check=False)
    assert again.returncode == 1 and f'replicasets.apps "{rs}" not found' in again.stderr
    assert kubectl.run("delete", "replicaset", rs, "--ignore-not-found").returncode == 0


def test_delete_waits_for_finalizers(kubectl: Kubectl, stream: Callable[..., Stream]) -> None:
    name = unique("fin")
    kubectl.run("apply", "-f", "-", input=manifest({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "finalizers": ["example.com/hold"]},
    }))
    # With a finalizer, `kubectl delete` (which waits by default) must not return until it is removed.
    deleting = stream("delete", "configmap", name, "--timeout=20s")
    deleting.wait_for(lambda line: f'configmap "{name}" deleted' in line)
    eventually(lambda: "deletionTimestamp" in kubectl.run("get", "configmap", name, "-o", "yaml").stdout)
    assert deleting.proc.poll() is None
    kubectl.run("patch", "configmap", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert deleting.proc.wait(timeout=10) == 0
    assert kubectl.run("get", "configmap", name, check=False).returncode == 1


def test_wait_for_conditions(kubectl: Kubectl, crds: None) -> None:
    job = unique("job")
    kubectl.run("apply", "-f", "-", input=manifest({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}},
    }))
    done = kubectl.run("wait", "--for=condition=complete", f"job/{job}", "--timeout=15s")
    assert done.stdout.strip() == f"job.batch/{job} condition met"
    dep = unique("avail")
    kubectl.run("apply", "-f", "-", input=manifest(deployment(dep, replicas=2)))
    ready = kubectl.run("wait", "--for=condition=available", f"deployment/{dep}", "--timeout=15s")
    assert ready.stdout.strip() == f"deployment.apps/{dep} condition met"
    crd = kubectl.run("wait", "--for=condition=established", "crd/rollouts.pyrollouts.io", "--timeout=5s")
    assert crd.stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/rollouts.pyrollouts.io condition met"
    jsonpath = kubectl.run("wait", "--for=jsonpath={.status.readyReplicas}=2", f"deployment/{dep}",
                           "--timeout=15s")
    assert jsonpath.returncode == 0
    timeout = kubectl.run("wait", "--for=condition=failed", f"job/{job}", "--timeout=1s", check=False)
    assert timeout.returncode == 1 and "timed out waiting for the condition" in timeout.stderr


# ---------------------------------------------------------------------- typed commands (protobuf bodies)


def test_typed_create_commands(kubectl: Kubectl) -> None:
    ns = unique("typed")
    assert kubectl.run("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    kubectl.run("create", "configmap", "cfg", "-n", ns, "--from-literal=a=b", "--from-literal=c=d")
    kubectl.run("create", "secret", "generic", "sec", "-n", ns, "--from-literal=user=admin")
    kubectl.run("create", "serviceaccount", "robot", "-n", ns)
    kubectl.run("create", "deployment", "web", "-n", ns, "--image=nginx:1.25", "--replicas=2", "--port=8080")
    kubectl.run("create", "job", "once", "-n", ns, "--image=busybox", "--", "echo", "hi")
    kubectl.run("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080")
    kubectl.run("run", "solo", "-n", ns, "--image=nginx", "--labels=app=solo", "--restart=Never")
    assert get_json(kubectl, "configmap", "cfg", "-n", ns)["data"] == {"a": "b", "c": "d"}
    secret = get_json(kubectl, "secret", "sec", "-n", ns)
    assert secret["data"] == {"user": "YWRtaW4="} and secret["type"] == "Opaque"
    deploy = get_json(kubectl, "deployment", "web", "-n", ns)
    assert deploy["spec"]["replicas"] == 2  # type: ignore[index]
    container = deploy["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["image"] == "nginx:1.25" and container["ports"][0]["containerPort"] == 8080
    command = kubectl.run("get", "job", "once", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].command}")
    assert json.loads(command.stdout) == ["echo", "hi"]
    svc = get_json(kubectl, "service", "web", "-n", ns)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080  # type: ignore[index]
    assert svc["spec"]["selector"] == {"app": "web"}  # type: ignore[index]
    kubectl.run("rollout", "status", "deployment/web", "-n", ns, "--timeout=15s")
    kubectl.run("wait", "--for=condition=complete", "job/once", "-n", ns, "--timeout=15s")
    names = kubectl.run("get", "cm,secret,sa", "-n", ns, "-o", "name").stdout.split()
    assert {"configmap/cfg", "secret/sec", "serviceaccount/robot"} <= set(names)
    exists = kubectl.run("create", "namespace", ns, check=False)
    assert exists.returncode == 1 and f'namespaces "{ns}" already exists' in exists.stderr
    dry = kubectl.run("create", "configmap", "never", "-n", ns, "--dry-run=server")
    assert "(server dry run)" in dry.stdout
    assert kubectl.run("get", "configmap", "never", "-n", ns, check=False).returncode == 1


def test_typed_create_of_undecoded_kind_says_what_to_do(kubectl: Kubectl) -> None:
    result = kubectl.run("create", "ingress", unique("ing"), "--rule=example.com/=svc:80", check=False)
    assert result.returncode == 1
    assert "Ingress" in result.stderr
    assert "kubectl create -f" in result.stderr and "kubectl apply -f" in result.stderr


# ---------------------------------------------------------------------- tables


def test_get_all_and_wide_output(kubectl: Kubectl) -> None:
    ns = unique("all")
    kubectl.run("create", "namespace", ns)
    kubectl.run("apply", "-n", ns, "-f", "-", input=manifest(deployment("web", replicas=1), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
    kubectl.run("rollout", "status", "deployment/web", "-n", ns, "--timeout=15s")
    out = kubectl.run("get", "all", "-n", ns).stdout
    for header in ("pod/web-", "service/web", "deployment.apps/web", "replicaset.apps/web-"):
        assert header in out
    wide = kubectl.run("get", "deployment", "web", "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=web"]
    eventually(lambda: ":8080" in kubectl.run("get", "endpoints", "web", "-n", ns).stdout)
    pods = kubectl.run("get", "pods", "-n", ns, "-o", "wide").stdout.splitlines()
    assert pods[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    kubectl.run("delete", "namespace", ns, "--timeout=20s")
    assert kubectl.run("get", "namespace", ns, check=False).returncode == 1


def test_rollout_history_and_undo_of_a_deployment(kubectl: Kubectl) -> None:
    name = unique("undo")
    kubectl.run("create", "deployment", name, "--image=nginx:1", "--replicas=1")
    kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=15s")
    kubectl.run("set", "image", f"deployment/{name}", "nginx=nginx:2")
    kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=15s")
    history = kubectl.run("rollout", "history", f"deployment/{name}").stdout.split()
    assert history[-4:] == ["1", "<none>", "2", "<none>"]
    assert kubectl.run("rollout", "undo", f"deployment/{name}").stdout.strip() == f"deployment.apps/{name} rolled back"
    kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=15s")
    image = kubectl.run("get", "deployment", name, "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image.stdout == "nginx:1"
    # The first ReplicaSet is reused and becomes revision 3; no third ReplicaSet appears.
    history = kubectl.run("rollout", "history", f"deployment/{name}").stdout.split()
    assert history[-4:] == ["2", "<none>", "3", "<none>"]
    replicasets = kubectl.run("get", "rs", "-l", f"app={name}", "--no-headers").stdout.splitlines()
    assert sorted(line.split()[1] for line in replicasets) == ["0", "1"]
