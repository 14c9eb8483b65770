"""Golden text for `kubectl rollouts get rollout` / `list rollouts` / `status`, as Argo lays them out."""

from __future__ import annotations

import pytest

from rollouts.cli import info, render
from rollouts.model.durations import human_duration
from tests.fixtures.cli_objects import NOW, analysisrun, paused_canary, pod, replicaset, rollout

PAUSED_CANARY = """\
Name:            demo
Namespace:       prod
Status:          ॥ Paused
Message:         CanaryPauseStep
Strategy:        Canary
  Step:          1/4
  SetWeight:     20
  ActualWeight:  20
Images:          nginx:1.25 (stable)
                 nginx:1.26 (canary)
Replicas:
  Desired:       5
  Current:       5
  Updated:       1
  Ready:         5
  Available:     5

NAME                          KIND         STATUS        AGE   INFO
⟳ demo                        Rollout      ॥ Paused      120m
├──# revision:3
│  ├──⧉ demo-6f8f9c           ReplicaSet   ✔ Healthy     90s   canary
│  │  └──□ demo-6f8f9c-abcde  Pod          ✔ Running     80s   ready:1/1
│  └──α demo-6f8f9c-3-1       AnalysisRun  ✔ Successful  70s   ✔ 3
├──# revision:2
│  └──⧉ demo-5d7b8a           ReplicaSet   ✔ Healthy     60m   stable
│     ├──□ demo-5d7b8a-aaaaa  Pod          ✔ Running     58m   ready:1/1
│     ├──□ demo-5d7b8a-bbbbb  Pod          ✔ Running     58m   ready:1/1
│     ├──□ demo-5d7b8a-ccccc  Pod          ✔ Running     58m   ready:1/1
│     └──□ demo-5d7b8a-ddddd  Pod          ✔ Running     58m   ready:1/1
└──# revision:1
   └──⧉ demo-4c6a7b           ReplicaSet   • ScaledDown  120m
"""  # noqa: RUF001

DEGRADED_CANARY = """\
Name:            demo
Namespace:       prod
Status:          ✖ Degraded
Message:         ProgressDeadlineExceeded: ReplicaSet "demo-65fb5f" has timed out progressing.
Strategy:        Canary
  Step:          0/4
  SetWeight:     20
  ActualWeight:  0
Images:          nginx:1.25 (stable)
                 nginx:does-not-exist (canary)
Replicas:
  Desired:       5
  Current:       6
  Updated:       1
  Ready:         5
  Available:     5

NAME                          KIND        STATUS              AGE   INFO
⟳ demo                        Rollout     ✖ Degraded          120m
├──# revision:31
│  └──⧉ demo-65fb5f           ReplicaSet  ◌ Progressing       7d    canary
│     └──□ demo-65fb5f-9wf5r  Pod         ⚠ ImagePullBackOff  7d    ready:0/1
└──# revision:30
   └──⧉ demo-877894           ReplicaSet  ✔ Healthy           7d    stable
      ├──□ demo-877894-6jfpt  Pod         ✔ Running           7d    ready:1/1,restarts:2
      └──□ demo-877894-7jmqw  Pod         ✔ Running           7d    ready:1/1
"""

BLUE_GREEN = """\
Name:            bg
Namespace:       prod
Status:          ॥ Paused
Message:         BlueGreenPause
Strategy:        BlueGreen
Images:          img:blue (stable, active)
                 img:green (preview)
Replicas:
  Desired:       5
  Current:       6
  Updated:       3
  Ready:         6
  Available:     3

NAME               KIND        STATUS     AGE   INFO
⟳ bg               Rollout     ॥ Paused   120m
├──# revision:11
│  └──⧉ bg-74b948  ReplicaSet  ✔ Healthy  10m   preview
└──# revision:10
   └──⧉ bg-6cbccd  ReplicaSet  ✔ Healthy  10m   stable,active
"""

WEEK = 7 * 86400


def degraded_canary() -> tuple[dict, list[dict], list[dict]]:  # type: ignore[type-arg]
    ro = rollout(
        image="nginx:does-not-exist",
        status={
            "phase": "Degraded",
            "message": 'ProgressDeadlineExceeded: ReplicaSet "demo-65fb5f" has timed out progressing.',
            "currentPodHash": "65fb5f",
            "stableRS": "877894",
            "currentStepIndex": 0,
            "replicas": 6,
            "updatedReplicas": 1,
            "readyReplicas": 5,
            "availableReplicas": 5,
            "observedGeneration": "2",
        },
    )
    canary = replicaset(ro, "65fb5f", 31, 1, available=0, image="nginx:does-not-exist", age=WEEK)
    stable = replicaset(ro, "877894", 30, 5, image="nginx:1.25", age=WEEK)
    pods = [
        pod(canary, "9wf5r", ready=False, waiting="ImagePullBackOff", age=WEEK),
        pod(stable, "6jfpt", age=WEEK, restarts=2),
        pod(stable, "7jmqw", age=WEEK),
    ]
    return ro, [canary, stable], pods


def blue_green() -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    ro = rollout(
        name="bg",
        spec={"strategy": {"blueGreen": {"activeService": "bg-active", "previewService": "bg-preview"}}},
        status={
            "phase": "Paused",
            "message": "BlueGreenPause",
            "currentPodHash": "74b948",
            "stableRS": "6cbccd",
            "blueGreen": {"activeSelector": "6cbccd", "previewSelector": "74b948"},
            "replicas": 6,
            "updatedReplicas": 3,
            "readyReplicas": 6,
            "availableReplicas": 3,
        },
    )
    return ro, [replicaset(ro, "74b948", 11, 3, image="img:green"), replicaset(ro, "6cbccd", 10, 3, image="img:blue")]


def test_paused_canary_mid_rollout() -> None:
    ro, replicasets, pods, runs = paused_canary()
    assert render.render_rollout(info.rollout_info(ro, replicasets, pods, runs), NOW) == PAUSED_CANARY


def test_degraded_canary() -> None:
    ro, replicasets, pods = degraded_canary()
    assert render.render_rollout(info.rollout_info(ro, replicasets, pods), NOW) == DEGRADED_CANARY


def test_blue_green_preview_and_active() -> None:
    ro, replicasets = blue_green()
    assert render.render_rollout(info.rollout_info(ro, replicasets), NOW) == BLUE_GREEN


def test_healthy_canary_after_last_step() -> None:
    ro = rollout(
        status={
            "phase": "Healthy",
            "currentPodHash": "aaa111",
            "stableRS": "aaa111",
            "currentStepIndex": 4,
            "replicas": 5,
            "updatedReplicas": 5,
            "readyReplicas": 5,
            "availableReplicas": 5,
        }
    )
    text = render.render_rollout(info.rollout_info(ro, [replicaset(ro, "aaa111", 2, 5)]), NOW)
    header = text.split("\n\n")[0].splitlines()
    assert header[2] == "Status:          ✔ Healthy"
    assert "Message:" not in text  # no message line when there is none
    assert header[4:8] == ["  Step:          4/4", "  SetWeight:     100", "  ActualWeight:  100",
                           "Images:          nginx:1.25 (stable)"]


def test_actual_weight_with_traffic_routing_uses_status_weights() -> None:
    ro, replicasets, pods, runs = paused_canary()
    ro["spec"]["strategy"]["canary"]["trafficRouting"] = {"nginx": {"stableIngress": "demo"}}
    ro["status"]["canary"] = {"weights": {"canary": {"weight": 15}, "stable": {"weight": 85}}}
    assert info.rollout_info(ro, replicasets, pods, runs).actual_weight == "15"
    del ro["status"]["canary"]
    assert info.rollout_info(ro, replicasets, pods, runs).actual_weight == "20"  # falls back to the set weight


def test_colors_only_when_asked_and_columns_stay_aligned() -> None:
    ro, replicasets, pods, runs = paused_canary()
    rollout_info = info.rollout_info(ro, replicasets, pods, runs)
    colored = render.render_rollout(rollout_info, NOW, color=True)
    assert "\x1b[32m✔\x1b[0m Healthy" in colored
    assert "demo-6f8f9c\x1b[0m" in colored
    assert render._ANSI.sub("", colored) == PAUSED_CANARY


def test_list_rollouts_columns() -> None:
    degraded, _, _ = degraded_canary()
    bg, _ = blue_green()
    assert render.render_list([degraded, bg]) == (
        "NAME        STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE\n"
        "demo        Canary     Degraded      0/4   20          5/6    5        1           5\n"
        "bg          BlueGreen  Paused        -     -           6/6    5        3           3\n"
    )
    assert render.render_list([degraded], all_namespaces=True).splitlines()[1].startswith("prod       demo  ")


def test_list_rollouts_with_timestamps_and_watch_lines() -> None:
    degraded, _, _ = degraded_canary()
    table = render.render_list([degraded], all_namespaces=True, timestamps=True, now=NOW).splitlines()
    assert table[0].startswith("TIMESTAMP             NAMESPACE  NAME        STRATEGY ")
    assert table[1].startswith("2024-05-01T12:00:00Z  prod       demo        Canary     Degraded ")
    assert render.render_list_line(degraded, all_namespaces=True, timestamps=True, now=NOW) == table[1]


def test_status_line() -> None:
    assert render.status_line("Healthy", "") == "Healthy"
    assert render.status_line("Paused", "CanaryPauseStep") == "Paused - CanaryPauseStep"


def test_analysis_run_counts_and_jobs() -> None:
    ro, _, _, _ = paused_canary()
    run = analysisrun(ro, "demo-run", 3, "Failed", successful=1, failed=2)
    run["status"]["metricResults"][0]["measurements"] = [
        {"phase": "Failed", "startedAt": "2024-05-01T11:59:00Z", "metadata": {"job-name": "demo-job-1"}}
    ]
    lines = render.render_tree(info.rollout_info(ro, [], [], [run]), NOW)
    assert lines[2:] == [
        "└──# revision:3",
        "   └──α demo-run       AnalysisRun  ✖ Failed  2m    ✔ 1,✖ 2",  # noqa: RUF001
        "      └──⊞ demo-job-1  Job          ✖ Failed  60s",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (600, "10m"),
     (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (5 * 3600 + 60, "5h1m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
     (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (400 * 86400, "400d"),
     (2 * 365 * 86400, "2y"), (2 * 365 * 86400 + 3 * 86400, "2y3d"), (9 * 365 * 86400, "9y")],
)
def test_human_duration_matches_kubernetes(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_tabulate_pads_like_go_tabwriter() -> None:
    assert render.tabulate([["a", "bb", "x"], ["ccc", "d", ""]]) == ["a    bb  x", "ccc  d"]
