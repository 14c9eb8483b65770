"""Every operation through `kubectl rollouts …` with the real controller running: kubectl finds the
`kubectl-rollouts` executable on PATH, the plugin writes what Argo's plugin writes, the controller acts
on it, and each test reads the result back (ReplicaSets, Pods, Rollout status) and through the plugin's
own output (`get rollout`, `status`, `list rollouts`, `version`). Manifests are applied with kubectl
(`create -f` is tested in tests/sandbox/test_plugin_rough_edges.py)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollouts import __version__
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import Step, rollout_manifest
from tests.fixtures.plugin import Plugin, header_and_tree, squeeze
from tests.fixtures.rollout import REVISION, Namespace, RolloutHandle, given

pytestmark = [pytest.mark.slow, pytest.mark.kubectl]

STEPS: list[Step] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 75}]
AGE = r"\d+[smhd]\S*"  # 5s, 1m10s, 2h, …


@pytest.fixture(scope="module")
def plugin(cluster: Cluster, controller: ControllerProcess | None) -> Iterator[Plugin]:
    """The plugin, found by kubectl on PATH, with the controller running."""
    runner = Plugin.on_cluster(cluster)
    result = runner.run("version")
    assert result.returncode == 0 and result.stdout.startswith("kubectl-rollouts: v"), result
    yield runner


def deploy(
    namespace: Namespace, plugin: Plugin, name: str, replicas: int, steps: list[Step], **canary: Any
) -> RolloutHandle:
    """Apply a Rollout and wait, with `kubectl rollouts status`, until it is Healthy."""
    rollout = namespace.rollout(rollout_manifest(name, replicas=replicas, steps=steps, **canary)).apply()
    assert plugin.ok("status", name, "-n", namespace.name, "--timeout", "20s").splitlines()[-1] == "Healthy"
    return rollout.wait_sizes({"nginx:1": replicas})


def get_rollout(rollout: RolloutHandle, plugin: Plugin, want: list[str], rows: int) -> tuple[list[str], list[str]]:
    """`get rollout` once its header is `want` and its tree has `rows` rows (status and pods settle)."""

    def check() -> tuple[list[str], list[str]] | None:
        header, tree = header_and_tree(plugin.ok("get", "rollout", rollout.name, "-n", rollout.ns))
        assert header == want and len(tree) == rows, "\n".join([*header, *tree])
        return header, tree

    return rollout.wait_for(f"`get rollout {rollout.name}` to show {want}", check)


def canary_header(
    name: str,
    ns: str,
    status: str,
    message: str | None,
    step: str,
    weight: int,
    actual: int,
    images: list[str],
    desired: int,
    updated: int,
) -> list[str]:
    lines = [
        f"Name:            {name}",
        f"Namespace:       {ns}",
        f"Status:          {status}",
        *([f"Message:         {message}"] if message else []),
        "Strategy:        Canary",
        f"  Step:          {step}",
        f"  SetWeight:     {weight}",
        f"  ActualWeight:  {actual}",
        f"Images:          {images[0]}",
        *[f"                 {image}" for image in images[1:]],
        "Replicas:",
        f"  Desired:       {desired}",
        f"  Current:       {desired}",
        f"  Updated:       {updated}",
        f"  Ready:         {desired}",
        f"  Available:     {desired}",
    ]
    return lines


def pods(namespace: Namespace) -> dict[str, str]:
    """Live pods: name -> the ReplicaSet that owns them."""
    return {p["metadata"]["name"]: p["metadata"]["ownerReferences"][0]["name"] for p in namespace.pods()}


# --------------------------------------------------------------------------- set image, get, promote, status


def test_set_image_get_promote_and_promote_full(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugsteps")
    ns, name = namespace.name, "steps"
    rollout = deploy(namespace, plugin, name, 4, STEPS)
    stable = rollout.status["stableRS"]

    assert plugin.ok("set", "image", name, "web=nginx:2", "-n", ns) == f'rollout "{name}" image updated\n'
    status = rollout.wait_paused("CanaryPauseStep").seen
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})
    assert status["currentStepIndex"] == 1
    canary = status["currentPodHash"]
    assert canary != stable
    _, tree = get_rollout(
        rollout,
        plugin,
        canary_header(
            name, ns, "॥ Paused", "CanaryPauseStep", "1/5", 25, 25, ["nginx:1 (stable)", "nginx:2 (canary)"], 4, 1
        ),
        rows=10,
    )
    assert tree[0] == "NAME KIND STATUS AGE INFO"
    assert re.fullmatch(rf"⟳ {name} Rollout ॥ Paused {AGE}", tree[1])
    assert tree[2] == "├──# revision:2"
    assert re.fullmatch(rf"│ └──⧉ {name}-{canary} ReplicaSet ✔ Healthy {AGE} canary", tree[3])
    assert re.fullmatch(rf"│ └──□ {name}-{canary}-\w{{5}} Pod ✔ Running {AGE} ready:1/1", tree[4])
    assert tree[5] == "└──# revision:1"
    assert re.fullmatch(rf"└──⧉ {name}-{stable} ReplicaSet ✔ Healthy {AGE} stable", tree[6])
    for row in tree[7:]:
        assert re.fullmatch(rf"[├└]──□ {name}-{stable}-\w{{5}} Pod ✔ Running {AGE} ready:1/1", row)
    result = plugin.run("status", name, "-n", ns, "--watch=false")
    assert (result.returncode, result.stdout) == (0, "Paused - CanaryPauseStep\n")
    listed = [squeeze(line) for line in plugin.ok("list", "rollouts", "-n", ns).splitlines()]
    assert listed[1:] == [f"{name} Canary Paused 1/5 25 4/4 4 1 4"]

    assert plugin.ok("promote", name, "-n", ns) == f"rollout '{name}' promoted\n"
    status = rollout.wait_for(
        "the next pause step",
        lambda: (st := rollout.status).get("currentStepIndex") == 3 and st.get("phase") == "Paused" and st,
    )
    rollout.wait_sizes({"nginx:1": 2, "nginx:2": 2})
    assert status["currentPodHash"] == canary and status["stableRS"] == stable
    get_rollout(
        rollout,
        plugin,
        canary_header(
            name, ns, "॥ Paused", "CanaryPauseStep", "3/5", 50, 50, ["nginx:1 (stable)", "nginx:2 (canary)"], 4, 2
        ),
        rows=10,
    )

    assert plugin.ok("promote", name, "--full", "-n", ns) == f"rollout '{name}' fully promoted\n"
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"
    rollout.wait_sizes({"nginx:2": 4})
    status = rollout.status
    assert status["stableRS"] == status["currentPodHash"] == canary
    assert status["currentStepIndex"] == len(STEPS)
    assert {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in rollout.replicasets()} == {
        f"{name}-{canary}": 4,
        f"{name}-{stable}": 0,
    }
    result = plugin.run("status", name, "-n", ns)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Healthy\n", "")
    header, _ = header_and_tree(plugin.ok("get", "rollout", name, "-n", ns))
    assert header[2:6] == [
        "Status:          ✔ Healthy",
        "Strategy:        Canary",
        "  Step:          5/5",
        "  SetWeight:     100",
    ]
    assert "Images:          nginx:2 (stable)" in header


# --------------------------------------------------------------------------- abort, status, retry


def test_version_names_the_controller_acting_in_the_namespace(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugversion")
    rollout = deploy(namespace, plugin, "versioned", 1, [])

    def controller_line() -> str:
        line = plugin.ok("version", "-n", namespace.name).splitlines()[-1]
        assert line.startswith(f"controller: v{__version__} (rollouts-controller-"), line
        return line

    assert f"in namespace {namespace.name}" in rollout.wait_for("version to see the controller", controller_line)


def test_abort_degrades_status_fails_and_retry_restarts(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugabort")
    ns, name = namespace.name, "aborted"
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    rollout = deploy(namespace, plugin, name, 2, steps)
    plugin.ok("set", "image", name, "web=nginx:2", "-n", ns)
    canary = rollout.wait_paused("CanaryPauseStep").seen["currentPodHash"]
    rollout.wait_sizes({"nginx:1": 1, "nginx:2": 1})

    assert plugin.ok("abort", name, "-n", ns) == f"rollout '{name}' aborted\n"
    rollout.wait_sizes({"nginx:1": 2})
    status = rollout.wait_degraded().seen
    assert status["abort"] is True
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2"), status["message"]
    assert status["currentPodHash"] == canary
    canary_rs = next(rs for rs in rollout.replicasets() if rs["metadata"]["name"] == f"{name}-{canary}")
    assert canary_rs["spec"]["replicas"] == 0

    started = time.monotonic()
    result = plugin.run("status", name, "-n", ns, "--timeout", "300s")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == f"Degraded - {status['message']}"
    assert result.stderr == f'Error: rollout "{name}" is in a degraded state with message: {status["message"]}\n'
    assert time.monotonic() - started < 150  # Degraded ends the watch at once, not at the timeout
    _, tree = get_rollout(
        rollout,
        plugin,
        canary_header(name, ns, "✖ Degraded", status["message"], "0/2", 0, 0, ["nginx:1 (stable)"], 2, 0),
        rows=8,
    )
    assert re.fullmatch(rf"⟳ {name} Rollout ✖ Degraded {AGE}", tree[1])
    assert tree[2] == "├──# revision:2"
    assert re.fullmatch(rf"│ └──⧉ {name}-{canary} ReplicaSet • ScaledDown {AGE} canary", tree[3])
    assert tree[4] == "└──# revision:1"

    assert plugin.ok("retry", "rollout", name, "-n", ns) == f"rollout '{name}' retried\n"
    status = rollout.wait_paused("CanaryPauseStep").seen
    rollout.wait_sizes({"nginx:1": 1, "nginx:2": 1})
    assert not status.get("abort") and status["currentStepIndex"] == 1
    assert status["currentPodHash"] == canary  # the same canary ReplicaSet, scaled up again
    assert len(rollout.replicasets()) == 2
    result = plugin.run("status", name, "-n", ns, "--watch=false")
    assert (result.returncode, result.stdout) == (0, "Paused - CanaryPauseStep\n")


# --------------------------------------------------------------------------- pause, promote (resume)


def test_pause_then_promote_resumes(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugpause")
    ns, name = namespace.name, "paused"
    rollout = deploy(namespace, plugin, name, 4, STEPS)
    assert plugin.ok("pause", name, "-n", ns) == f"rollout '{name}' paused\n"
    assert rollout.live()["spec"]["paused"] is True
    plugin.ok("set", "image", name, "web=nginx:2", "-n", ns)
    rollout.wait_paused("manually paused")
    result = plugin.run("status", name, "-n", ns, "--watch=false")
    assert (result.returncode, result.stdout) == (0, "Paused - manually paused\n")
    header, _ = header_and_tree(plugin.ok("get", "rollout", name, "-n", ns))
    assert header[2:4] == ["Status:          ॥ Paused", "Message:         manually paused"]
    # nothing moves while paused
    rollout.expect_throughout(0.5, lambda: rollout.expect_sizes({"nginx:1": 4}))

    assert plugin.ok("promote", name, "-n", ns) == f"rollout '{name}' promoted\n"
    assert rollout.live()["spec"].get("paused") is not True
    status = rollout.wait_paused("CanaryPauseStep").seen
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})
    assert status["currentStepIndex"] == 1
    rollout.wait_event("RolloutResumed")


# --------------------------------------------------------------------------- restart


def test_restart_recreates_pods_now_and_later(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugrestart")
    ns, name = namespace.name, "restarted"
    rollout = deploy(namespace, plugin, name, 2, [], maxUnavailable=1, maxSurge=0)
    [rs] = [r["metadata"]["name"] for r in rollout.replicasets()]
    before = pods(namespace)
    assert set(before.values()) == {rs} and len(before) == 2

    assert plugin.ok("restart", name, "-n", ns) == f"rollout '{name}' restarts in 0s\n"
    restart_at = rollout.live()["spec"]["restartAt"]
    rollout.wait_for("restartedAt", lambda: rollout.status.get("restartedAt") == restart_at)
    after = rollout.wait_for(
        "two new pods", lambda: (p := pods(namespace)) and len(p) == 2 and not set(p) & set(before) and p
    )
    assert set(after.values()) == {rs}  # the same ReplicaSet
    assert [r["metadata"]["name"] for r in rollout.replicasets()] == [rs]
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"

    asked = dt.datetime.now(dt.UTC)
    assert plugin.ok("restart", name, "--in", "2s", "-n", ns) == f"rollout '{name}' restarts in 2s\n"
    answered = dt.datetime.now(dt.UTC)
    restart_at = rollout.live()["spec"]["restartAt"]
    when = dt.datetime.fromisoformat(restart_at.replace("Z", "+00:00"))
    assert asked + dt.timedelta(seconds=2) <= when <= answered + dt.timedelta(seconds=3)  # rounded up
    first = after
    while dt.datetime.now(dt.UTC) < when - dt.timedelta(seconds=0.2):
        assert pods(namespace) == first, "a pod was replaced before restartAt"
        time.sleep(0.1)
    rollout.wait_for("the delayed restart", lambda: rollout.status.get("restartedAt") == restart_at)
    later = rollout.wait_for("two newer pods", lambda: (p := pods(namespace)) and len(p) == 2 and p)
    assert not set(later) & set(first) and set(later.values()) == {rs}
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"


# --------------------------------------------------------------------------- undo


def test_undo_and_undo_to_revision(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugundo")
    ns, name = namespace.name, "undone"
    rollout = deploy(namespace, plugin, name, 2, [])
    hashes = {"nginx:1": rollout.status["stableRS"]}
    for image in ("nginx:2", "nginx:3"):
        plugin.ok("set", "image", name, f"web={image}", "-n", ns)
        # status waits for the new generation to be observed: it never reports the old Healthy
        assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"
        rollout.wait_sizes({image: 2})
        hashes[image] = rollout.status["stableRS"]

    assert rollout.revisions() == {"nginx:1": "1", "nginx:2": "2", "nginx:3": "3"}

    assert plugin.ok("undo", name, "-n", ns) == f"rollout '{name}' undo\n"
    assert rollout.live()["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:2"}]
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"
    rollout.wait_sizes({"nginx:2": 2})
    assert rollout.status["stableRS"] == hashes["nginx:2"]  # revision 2's ReplicaSet came back
    assert rollout.revisions() == {"nginx:1": "1", "nginx:2": "4", "nginx:3": "3"}

    assert plugin.ok("undo", name, "--to-revision", "1", "-n", ns) == f"rollout '{name}' undo\n"
    assert rollout.live()["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:1"}]
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"
    rollout.wait_sizes({"nginx:1": 2})
    assert rollout.status["stableRS"] == hashes["nginx:1"]
    assert rollout.revisions() == {"nginx:1": "5", "nginx:2": "4", "nginx:3": "3"}
    assert rollout.live()["metadata"]["annotations"][REVISION] == "5"

    # revision 1 is gone from the history now (it became 5): refused, nothing changed
    generation = rollout.live()["metadata"]["generation"]
    result = plugin.run("undo", name, "--to-revision", "1", "-n", ns)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: unable to find specified revision 1 in history of rollout '{name}' (revisions present: 3, 4, 5)\n"
    )
    assert rollout.live()["metadata"]["generation"] == generation


# --------------------------------------------------------------------------- a new image mid-canary


def test_set_image_mid_canary_supersedes_it(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "plugsuper")
    ns, name = namespace.name, "superseded"
    rollout = deploy(namespace, plugin, name, 4, STEPS)
    stable = rollout.status["stableRS"]
    plugin.ok("set", "image", name, "web=nginx:2", "-n", ns)
    first = rollout.wait_paused("CanaryPauseStep").seen["currentPodHash"]
    rollout.wait_sizes({"nginx:1": 3, "nginx:2": 1})

    plugin.ok("set", "image", name, "web=nginx:3", "-n", ns)
    status = rollout.wait_paused("CanaryPauseStep").seen
    rollout.wait_sizes({"nginx:1": 3, "nginx:3": 1})
    second = status["currentPodHash"]
    assert second not in (first, stable) and status["stableRS"] == stable
    assert status["currentStepIndex"] == 1  # the steps start again for the new template
    sizes = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in rollout.replicasets()}
    assert sizes == {f"{name}-{stable}": 3, f"{name}-{first}": 0, f"{name}-{second}": 1}
    rollout.wait_for(
        "the superseded canary's pods gone",
        lambda: set(pods(namespace).values()) == {f"{name}-{stable}", f"{name}-{second}"},
    )
    _, tree = get_rollout(
        rollout,
        plugin,
        canary_header(
            name, ns, "॥ Paused", "CanaryPauseStep", "1/5", 25, 25, ["nginx:1 (stable)", "nginx:3 (canary)"], 4, 1
        ),
        rows=12,  # three revisions; the superseded one's ReplicaSet has no pods
    )
    assert tree[2] == "├──# revision:3"
    assert re.fullmatch(rf"│ └──⧉ {name}-{second} ReplicaSet ✔ Healthy {AGE} canary", tree[3])
    assert tree[5] == "├──# revision:2"
    assert re.fullmatch(rf"│ └──⧉ {name}-{first} ReplicaSet • ScaledDown {AGE}", tree[6])
    assert tree[7] == "└──# revision:1"
    assert re.fullmatch(rf"└──⧉ {name}-{stable} ReplicaSet ✔ Healthy {AGE} stable", tree[8])

    plugin.ok("promote", name, "--full", "-n", ns)
    assert plugin.ok("status", name, "-n", ns, "--timeout", "20s").splitlines()[-1] == "Healthy"
    rollout.wait_sizes({"nginx:3": 4})
    sizes = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in rollout.replicasets()}
    assert sizes == {f"{name}-{stable}": 0, f"{name}-{first}": 0, f"{name}-{second}": 4}


# --------------------------------------------------------------------------- list, missing rollouts


def test_list_rollouts_and_every_verb_refuses_a_missing_rollout(cluster: Cluster, plugin: Plugin) -> None:
    namespace = given(cluster, "pluglist")
    ns, name = namespace.name, "listed"
    rollout = deploy(namespace, plugin, name, 2, STEPS)
    lines = plugin.ok("list", "rollouts", "-n", ns).splitlines()
    assert [squeeze(line) for line in lines] == [
        "NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE",
        f"{name} Canary Healthy 5/5 100 2/2 2 2 2",
    ]
    everywhere = [squeeze(line) for line in plugin.ok("list", "rollouts", "-A").splitlines()]
    assert everywhere[0] == "NAMESPACE NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE"
    assert f"{ns} {name} Canary Healthy 5/5 100 2/2 2 2 2" in everywhere

    ghost = "ghost"
    verbs = [
        ("get", "rollout", ghost),
        ("status", ghost, "--timeout", "5s"),
        ("promote", ghost, "--full"),
        ("abort", ghost),
        ("retry", "rollout", ghost),
        ("pause", ghost),
        ("restart", ghost, "--in", "2s"),
        ("undo", ghost, "--to-revision", "1"),
        ("set", "image", ghost, "web=nginx:2"),
    ]
    message = (
        f'Error: rollout "{ghost}" not found in namespace "{ns}"; '
        f"list the rollouts there with: kubectl rollouts list rollouts -n {ns}\n"
    )
    processes = [plugin.start(*args, "-n", ns) for args in verbs]
    for args, process in zip(verbs, processes, strict=True):
        out, err = process.communicate(timeout=60)
        assert (process.returncode, out, err) == (1, "", message), args
    assert namespace.kubectl("get", "rollouts", ghost, check=False).returncode != 0
    assert [ro["metadata"]["name"] for ro in namespace.rollouts()] == [name]
    assert {rs["metadata"]["name"] for rs in rollout.replicasets()} == {
        rs["metadata"]["name"] for rs in namespace.replicasets()
    }
    assert set(pods(namespace).values()) == {f"{name}-{rollout.status['stableRS']}"}
