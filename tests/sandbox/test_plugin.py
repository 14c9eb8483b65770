"""`kubectl rollouts …` end to end: kubectl finds the `kubectl-rollouts` executable on PATH and runs it
against the sandbox. No controller runs: each test writes the Rollout's status itself through the
`/status` subresource, creates the ReplicaSets a controller would create (the sandbox turns them into
Pods), and checks exactly what the plugin printed and changed."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.plugin import (
    PAUSED,
    Plugin,
    apply,
    create_rollout,
    get,
    in_process,
    set_status,
    unique,
)
from tests.fixtures.sandbox import Kubectl, SandboxHandle
from tests.fixtures.tools import REPO, deadline_after

pytestmark = pytest.mark.kubectl

@pytest.fixture(scope="module")
def plugin(kubectl: Kubectl) -> Iterator[Plugin]:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    yield Plugin.on_sandbox(kubectl)


def replicaset(ro: dict[str, Any], pod_hash: str, revision: int, replicas: int, image: str) -> dict[str, Any]:
    name = ro["metadata"]["name"]
    labels = {"app": name, "rollouts-pod-template-hash": pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{pod_hash}",
            "labels": labels,
            "annotations": {"rollouts.pyrollouts.io/revision": str(revision)},
            "ownerReferences": [{"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout", "name": name,
                                 "uid": ro["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def wait_ready(kubectl: Kubectl, rs_name: str, replicas: int, timeout: float = 10) -> None:
    deadline = deadline_after(timeout)
    while time.monotonic() < deadline:
        status = get(kubectl, "replicaset", rs_name).get("status") or {}
        if status.get("availableReplicas", 0) == replicas and status.get("replicas", 0) == replicas:
            return
        time.sleep(0.1)
    raise AssertionError(f"ReplicaSet {rs_name} never had {replicas} available pods")


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Top-level fields of spec/status whose value changed ({"spec.paused": (old, new), …})."""
    found = {}
    for part in ("spec", "status"):
        old, new = before.get(part) or {}, after.get(part) or {}
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                found[f"{part}.{key}"] = (old.get(key), new.get(key))
    return found


# --------------------------------------------------------------------------- get, list


def test_get_rollout_renders_the_tree_of_real_replicasets_and_pods(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("tree")
    ro = create_rollout(kubectl, name, PAUSED)
    apply(kubectl, replicaset(ro, "s1s1s1", 1, 2, "nginx:1.25"), replicaset(ro, "c2c2c2", 2, 1, "nginx:1.26"))
    wait_ready(kubectl, f"{name}-s1s1s1", 2)
    wait_ready(kubectl, f"{name}-c2c2c2", 1)
    out = plugin.ok("get", "rollout", name)
    header, tree = out.split("\n\n")
    assert header.splitlines() == [
        f"Name:            {name}",
        "Namespace:       default",
        "Status:          ॥ Paused",
        "Message:         CanaryPauseStep",
        "Strategy:        Canary",
        "  Step:          1/4",
        "  SetWeight:     20",
        "  ActualWeight:  33",
        "Images:          nginx:1.25 (stable)",
        "                 nginx:1.26 (canary)",
        "Replicas:",
        "  Desired:       3",
        "  Current:       3",
        "  Updated:       1",
        "  Ready:         3",
        "  Available:     3",
    ]
    rows = [re.sub(r"\s+", " ", line) for line in tree.splitlines()]
    assert rows[0] == "NAME KIND STATUS AGE INFO"
    assert re.fullmatch(rf"⟳ {name} Rollout ॥ Paused \d+s", rows[1])
    assert rows[2] == "├──# revision:2"
    assert re.fullmatch(rf"│ └──⧉ {name}-c2c2c2 ReplicaSet ✔ Healthy \d+s canary", rows[3])
    assert re.fullmatch(rf"│ └──□ {name}-c2c2c2-\w{{5}} Pod ✔ Running \d+s ready:1/1", rows[4])
    assert rows[5] == "└──# revision:1"
    assert re.fullmatch(rf"└──⧉ {name}-s1s1s1 ReplicaSet ✔ Healthy \d+s stable", rows[6].strip())
    assert re.fullmatch(rf"├──□ {name}-s1s1s1-\w{{5}} Pod ✔ Running \d+s ready:1/1", rows[7].strip())
    assert re.fullmatch(rf"└──□ {name}-s1s1s1-\w{{5}} Pod ✔ Running \d+s ready:1/1", rows[8].strip())
    assert len(rows) == 9


def test_list_rollouts_empty_namespace(sandbox: SandboxHandle, plugin: Plugin) -> None:
    namespace = unique("empty")
    assert in_process(sandbox, "list", "rollouts", "-n", namespace) == (
        0, "", f'No resources found in namespace "{namespace}".\n')


def test_list_rollouts_in_a_namespace_and_everywhere(kubectl: Kubectl, plugin: Plugin) -> None:
    namespace = unique("listing")
    kubectl.run("create", "namespace", namespace)
    create_rollout(kubectl, "alpha", PAUSED, namespace=namespace)
    create_rollout(kubectl, "beta", namespace=namespace, steps=[])
    out = plugin.ok("list", "rollouts", "-n", namespace)
    assert out.splitlines() == [
        "NAME        STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE",
        "alpha       Canary     Paused        1/4   20          3/3    3        1           3",
        "beta        Canary     Progressing   -     100         0/0    3        0           0",
    ]
    everywhere = plugin.ok("list", "ro", "-A")
    # the column is as wide as the longest namespace: other tests' namespaces share the sandbox
    assert re.match(r"NAMESPACE +NAME +STRATEGY ", everywhere.splitlines()[0]), everywhere
    assert any(line.startswith(namespace) and " alpha " in line for line in everywhere.splitlines())


@pytest.mark.slow
def test_list_rollouts_watch_prints_changed_lines(kubectl: Kubectl, plugin: Plugin) -> None:
    namespace = unique("listwatch")
    kubectl.run("create", "namespace", namespace)
    create_rollout(kubectl, "gamma", PAUSED, namespace=namespace)
    process = plugin.start("list", "rollouts", "-n", namespace, "--watch")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("NAME ")
        assert re.sub(r"\s+", " ", process.stdout.readline()) == "gamma Canary Paused 1/4 20 3/3 3 1 3 "
        set_status(kubectl, "gamma", {"currentStepIndex": 2, "phase": "Progressing", "message": "x",
                                      "pauseConditions": None, "controllerPause": None}, namespace=namespace)
        assert re.sub(r"\s+", " ", process.stdout.readline()) == "gamma Canary Progressing 2/4 60 3/3 3 1 3 "
    finally:
        process.kill()
        process.communicate()


# --------------------------------------------------------------------------- actions: exact patches


def test_promote_paused_rollout_clears_the_pause(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("promote")
    before = create_rollout(kubectl, name, PAUSED)
    assert plugin.ok("promote", name) == f"rollout '{name}' promoted\n"
    after = get(kubectl, "rollouts.pyrollouts.io", name)
    assert changes(before, after) == {"status.pauseConditions": (PAUSED["pauseConditions"], None)}


def test_promote_manually_paused_rollout_unpauses_spec_and_skips_the_step(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("unpause")
    create_rollout(kubectl, name, {**PAUSED, "pauseConditions": None, "controllerPause": None, "currentStepIndex": 2})
    kubectl.run("patch", "rollouts.pyrollouts.io", name, "--type=merge", "-p", '{"spec":{"paused":true}}')
    before = get(kubectl, "rollouts.pyrollouts.io", name)
    plugin.ok("promote", name)
    after = get(kubectl, "rollouts.pyrollouts.io", name)
    assert changes(before, after) == {"spec.paused": (True, False), "status.currentStepIndex": (2, 3)}


def test_promote_full(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    name = unique("full")
    before = create_rollout(kubectl, name, PAUSED)
    assert plugin.ok("promote", name, "--full") == f"rollout '{name}' fully promoted\n"
    assert changes(before, get(kubectl, "rollouts.pyrollouts.io", name)) == {"status.promoteFull": (None, True)}
    code, _out, err = in_process(sandbox, "promote", name, "--full", "--skip-current-step")
    assert code == 1 and "Error: Cannot use --full with skip-current-step" in err


def test_abort_retry_pause_restart(kubectl: Kubectl, plugin: Plugin) -> None:
    names = {verb: unique(verb) for verb in ("abort", "retry", "pause", "restart")}
    before = {verb: create_rollout(kubectl, name, PAUSED) for verb, name in names.items()}
    set_status(kubectl, names["retry"], {"abort": True})
    before["retry"] = get(kubectl, "rollouts.pyrollouts.io", names["retry"])
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    runs = {
        "abort": plugin.start("abort", names["abort"]),
        "retry": plugin.start("retry", "rollout", names["retry"]),
        "pause": plugin.start("pause", names["pause"]),
        "restart": plugin.start("restart", names["restart"], "--in", "30s"),
    }
    printed = {"abort": "aborted", "retry": "retried", "pause": "paused", "restart": "restarts in 30s"}
    for verb, process in runs.items():
        assert process.communicate(timeout=60) == (f"rollout '{names[verb]}' {printed[verb]}\n", ""), verb
    after = {verb: get(kubectl, "rollouts.pyrollouts.io", name) for verb, name in names.items()}
    assert changes(before["abort"], after["abort"]) == {"status.abort": (None, True)}
    assert changes(before["retry"], after["retry"]) == {"status.abort": (True, False)}
    assert changes(before["pause"], after["pause"]) == {"spec.paused": (None, True)}
    restart = changes(before["restart"], after["restart"])
    assert list(restart) == ["spec.restartAt"]
    restart_at = dt.datetime.fromisoformat(restart["spec.restartAt"][1].replace("Z", "+00:00"))
    assert started + dt.timedelta(seconds=29) <= restart_at <= started + dt.timedelta(seconds=40)


def test_undo_restores_the_previous_revision_template(kubectl: Kubectl, plugin: Plugin,
                                                     sandbox: SandboxHandle) -> None:
    name = unique("undo")
    ro = create_rollout(kubectl, name, PAUSED)
    apply(kubectl, replicaset(ro, "s1s1s1", 1, 0, "nginx:1.25"), replicaset(ro, "c2c2c2", 2, 0, "nginx:1.26"))
    assert plugin.ok("undo", name) == f"rollout '{name}' undo\n"
    after = get(kubectl, "rollouts.pyrollouts.io", name)
    assert after["spec"]["template"] == {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
    }
    assert changes(ro, after) == {"spec.template": (ro["spec"]["template"], after["spec"]["template"])}
    assert in_process(sandbox, "undo", name, "--to-revision", "1") == (
        0, "skipped rollback (current template already matches revision 1)\n", "")
    assert in_process(sandbox, "undo", name, "--to-revision", "9") == (
        1, "", f"Error: unable to find specified revision 9 in history of rollout '{name}' (revisions present: 1, 2)\n")
    assert in_process(sandbox, "undo", name, "--to-revision", "2") == (0, f"rollout '{name}' undo\n", "")
    assert get(kubectl, "rollouts.pyrollouts.io", name)["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "nginx:1.26"


def test_set_image(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    name = unique("image")
    ro = create_rollout(kubectl, name)
    assert plugin.ok("set", "image", name, "web=nginx:1.27") == f'rollout "{name}" image updated\n'
    after = get(kubectl, "rollouts.pyrollouts.io", name)
    assert after["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:1.27"}]
    assert list(changes(ro, after)) == ["spec.template"]
    assert in_process(sandbox, "set", "image", name, "*=nginx:1.28")[0] == 0
    assert get(kubectl, "rollouts.pyrollouts.io", name)["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "nginx:1.28"
    assert in_process(sandbox, "set", "image", name, "db=postgres:16") == (
        1, "", 'Error: unable to find container named "db" (containers: web)\n')
    usage = plugin("set", "image", name, "nginx:1.29")
    assert usage.returncode == 2 and "usage: kubectl rollouts set image" in usage.stderr


# --------------------------------------------------------------------------- refusals


NOT_FOUND = (
    'Error: rollout "ghost" not found in namespace "default"; '
    "list the rollouts there with: kubectl rollouts list rollouts -n default\n"
)


def test_refuses_a_rollout_that_does_not_exist(kubectl: Kubectl, plugin: Plugin) -> None:
    verbs = [("get", "rollout", "ghost"), ("promote", "ghost"), ("abort", "ghost"), ("set", "image", "ghost", "a=b")]
    # all at once: each is a separate process, and the sandbox serves them concurrently
    processes = [plugin.start(*args) for args in verbs]
    for args, process in zip(verbs, processes, strict=True):
        assert process.communicate(timeout=60) == ("", NOT_FOUND), args
        assert process.returncode == 1, args
    assert kubectl.run("get", "rollouts.pyrollouts.io", "ghost", check=False).returncode != 0  # nothing created


def test_every_verb_refuses_a_rollout_that_does_not_exist(kubectl: Kubectl, plugin: Plugin,
                                                          sandbox: SandboxHandle) -> None:
    verbs = [
        ("get", "rollout", "ghost"),
        ("get", "rollout", "ghost", "--watch"),
        ("status", "ghost"),
        ("promote", "ghost"),
        ("promote", "ghost", "--full"),
        ("abort", "ghost"),
        ("retry", "rollout", "ghost"),
        ("pause", "ghost"),
        ("restart", "ghost"),
        ("undo", "ghost"),
        ("set", "image", "ghost", "web=nginx:1"),
    ]
    for args in verbs:
        assert in_process(sandbox, *args) == (1, "", NOT_FOUND), args
    assert kubectl.run("get", "rollouts.pyrollouts.io", "ghost", check=False).returncode != 0  # nothing created


def test_namespace_flag_and_context_namespace(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle,
                                              tmp_path: Path) -> None:
    namespace = unique("elsewhere")
    kubectl.run("create", "namespace", namespace)
    create_rollout(kubectl, "there", PAUSED, namespace=namespace)
    # the kubeconfig context's namespace is the default namespace
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    in_default = plugin.start("pause", "there")
    with_flag = plugin.start("get", "rollout", "there", "-n", namespace)
    from_context = plugin.start("status", "there", "--watch=false", "--kubeconfig", str(kubeconfig))
    assert in_default.wait(timeout=60) == 1  # not in "default"
    assert with_flag.communicate(timeout=60)[0].startswith(f"Name:            there\nNamespace:       {namespace}\n")
    assert from_context.communicate(timeout=60) == ("Paused - CanaryPauseStep\n", "")


# --------------------------------------------------------------------------- status


def test_status_once(kubectl: Kubectl, plugin: Plugin, sandbox: SandboxHandle) -> None:
    name = unique("status")
    create_rollout(kubectl, name, PAUSED)
    assert plugin.ok("status", name, "--watch=false") == "Paused - CanaryPauseStep\n"
    set_status(kubectl, name, {"phase": "Degraded", "message": "RolloutAborted: aborted by user"})
    assert in_process(sandbox, "status", name, "--watch=false") == (
        1, "Degraded\n",
        f'Error: rollout "{name}" is in a degraded state with message: RolloutAborted: aborted by user\n',
    )


@pytest.mark.slow
def test_status_watch_exit_codes(kubectl: Kubectl, plugin: Plugin) -> None:
    paused, healthy, degraded = unique("paused"), unique("healthy"), unique("degraded")
    create_rollout(kubectl, paused, PAUSED)
    create_rollout(kubectl, healthy, {**PAUSED, "phase": "Healthy", "message": None, "pauseConditions": None,
                                      "controllerPause": None})
    create_rollout(kubectl, degraded, {**PAUSED, "phase": "Degraded", "pauseConditions": None,
                                       "controllerPause": None, "message": "ProgressDeadlineExceeded: too slow"})
    started = time.monotonic()
    runs = {
        paused: plugin.start("status", paused, "--watch", "--timeout", "2s"),
        healthy: plugin.start("status", healthy, "--timeout", "2s"),
        degraded: plugin.start("status", degraded, "-w", "-t", "2s"),
    }
    results = {name: (*process.communicate(timeout=60), process.returncode) for name, process in runs.items()}
    out, err, code = results[paused]
    assert time.monotonic() - started >= 2
    assert (code, out) == (1, "Paused - CanaryPauseStep\n")
    assert err.startswith(f'Error: rollout "{paused}" status watch exceeded timeout (2s) while Paused')
    assert results[healthy] == ("Healthy\n", "", 0)
    out, err, code = results[degraded]
    assert (code, out) == (1, "Degraded - ProgressDeadlineExceeded: too slow\n")
    assert err == (f'Error: rollout "{degraded}" is in a degraded state with message: '
                   "ProgressDeadlineExceeded: too slow\n")


@pytest.mark.slow
def test_status_watch_follows_changes_until_healthy(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("follow")
    create_rollout(kubectl, name, PAUSED)
    process = subprocess.Popen([kubectl.binary, "rollouts", "status", name, "--timeout", "20s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plugin.env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "Paused - CanaryPauseStep\n"
        set_status(kubectl, name, {"phase": "Progressing", "message": "more replicas need to be updated",
                                   "pauseConditions": None, "controllerPause": None})
        assert process.stdout.readline() == "Progressing - more replicas need to be updated\n"
        set_status(kubectl, name, {"phase": "Healthy", "message": None})
        assert process.stdout.readline() == "Healthy\n"
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.communicate()


@pytest.mark.slow
def test_get_rollout_watch_redraws_on_change(kubectl: Kubectl, plugin: Plugin) -> None:
    name = unique("getwatch")
    ro = create_rollout(kubectl, name, PAUSED)
    process = plugin.start("get", "rollout", name, "--watch", "--timeout-seconds", "5")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the first frame is on its way: the watch is running
        assert first == f"Name:            {name}\n"
        apply(kubectl, replicaset(ro, "c2c2c2", 2, 1, "nginx:1.26"))
        wait_ready(kubectl, f"{name}-c2c2c2", 1)
        set_status(kubectl, name, {"phase": "Healthy", "message": None, "pauseConditions": None,
                                   "controllerPause": None, "stableRS": "c2c2c2", "currentStepIndex": 4})
        out = process.stdout.read()  # (not communicate(): it would skip what readline buffered)
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        process.communicate()
    frames = (first + out).split("\n\nName:")  # non-terminal output: one frame per change, separated by a blank line
    assert "Status:          ॥ Paused" in frames[0]
    assert "Status:          ✔ Healthy" in frames[-1]
    assert f"⧉ {name}-c2c2c2" in frames[-1] and "stable" in frames[-1].splitlines()[-2]
