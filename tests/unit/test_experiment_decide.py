"""The Experiment's decisions (rollouts/experiment/decide.py) over hand-made observations, pass by pass."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rollouts.experiment.decide import SCALE_DOWN_DEADLINE, Observed, decide
from rollouts.experiment.manifests import TEMPLATE_NAME
from rollouts.model.timestamps import format_time

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TEMPLATE = {"metadata": {"name": "t"}, "spec": {"args": [{"name": "hash"}], "metrics": [
    {"name": "m", "provider": {"web": {"url": "http://x/{{args.hash}}"}}}]}}  # fmt: skip


def experiment(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    labels = {"app": "a"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    return {
        "metadata": {"name": "e", "namespace": "ns", "uid": "u1"},
        "spec": {
            "templates": [{"name": "one", "replicas": 2, "selector": {"matchLabels": labels}, "template": template}],
            **spec,
        },
        "status": status or {},
    }


def replicaset(replicas: int, available: int, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "e-one", "annotations": {TEMPLATE_NAME: "one", **annotations}},
        "spec": {"replicas": replicas},
        "status": {"replicas": available, "availableReplicas": available, "readyReplicas": available},
    }


def observe(
    exp: Mapping[str, Any], rs: Mapping[str, Any] | None, at: float = 0, runs: Mapping[str, Any] | None = None
) -> Observed:
    return Observed(
        experiment=exp,
        replicasets={"one": rs} if rs is not None else {},
        services={},
        runs=runs or {},
        lookup=lambda name, cluster: TEMPLATE if name == "t" and not cluster else None,
        now=T0 + dt.timedelta(seconds=at),
    )


def test_a_new_experiment_creates_its_replicaset_and_waits() -> None:
    plan = decide(observe(experiment(), None))
    [rs] = plan.create
    assert (rs["kind"], rs["metadata"]["name"], rs["spec"]["replicas"]) == ("ReplicaSet", "e-one", 2)
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert plan.status is not None and plan.status["phase"] == "Pending"
    assert plan.status["templateStatuses"][0]["status"] == "Progressing"
    assert plan.requeue_after is None  # the ReplicaSet's creation (a watch event) brings the next pass
    plan = decide(observe(experiment(plan.status), replicaset(2, 0), at=100))
    assert plan.create == [] and plan.requeue_after == 500  # woken at the progress deadline


def test_a_template_past_its_progress_deadline_fails_the_experiment() -> None:
    started = {"name": "one", "status": "Progressing", "lastTransitionTime": format_time(T0)}
    exp = experiment({"phase": "Pending", "templateStatuses": [started]}, progressDeadlineSeconds=10)
    plan = decide(observe(exp, replicaset(2, 1), at=11))
    assert plan.status is not None and plan.status["phase"] == "Failed"
    assert (
        "e-one of template one has 1 of 2 pods available after progressDeadlineSeconds (10s)" in plan.status["message"]
    )
    assert plan.events == [("Warning", "ExperimentFailed", plan.status["message"])]


def test_available_starts_the_analyses_with_the_template_hash_and_the_duration_ends_it() -> None:
    analyses = [
        {"name": "a", "templateName": "t", "args": [{"name": "hash", "value": "{{templates.one.podTemplateHash}}"}]}
    ]
    plan = decide(observe(experiment(duration="30s", analyses=analyses), replicaset(2, 2)))
    assert plan.status is not None and plan.status["phase"] == "Running"
    assert plan.status["availableAt"] == format_time(T0)
    [run] = plan.create
    pod_hash = plan.status["templateStatuses"][0]["podTemplateHash"]
    assert run["metadata"]["name"] == "e-a" and run["spec"]["args"] == [{"name": "hash", "value": pod_hash}]
    assert plan.requeue_after == 30

    running = {"metadata": {"name": "e-a"}, "spec": {}, "status": {"phase": "Running"}}
    plan = decide(
        observe(experiment(plan.status, duration="30s", analyses=analyses), replicaset(2, 2), 30, runs={"e-a": running})
    )
    assert plan.status is not None and plan.status["phase"] == "Successful"
    assert plan.terminate_runs == ["e-a"]
    assert plan.patch_replicasets == [
        ("e-one", {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: format_time(T0 + dt.timedelta(seconds=60))}}})
    ]


def test_an_ended_experiment_scales_down_at_its_deadline_and_a_cleared_status_runs_it_again() -> None:
    ended = experiment({"phase": "Successful", "templateStatuses": [{"name": "one", "status": "Successful"}]})
    due = format_time(T0 + dt.timedelta(seconds=5))
    assert decide(observe(ended, replicaset(2, 2, **{SCALE_DOWN_DEADLINE: due}), at=1)).requeue_after == 4
    plan = decide(observe(ended, replicaset(2, 2, **{SCALE_DOWN_DEADLINE: due}), at=5))
    assert plan.patch_replicasets == [
        ("e-one", {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}}, "spec": {"replicas": 0}})
    ]

    plan = decide(observe(experiment(), replicaset(0, 0)))
    assert plan.patch_replicasets == [
        ("e-one", {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: None}}, "spec": {"replicas": 2}})
    ]


def test_a_retried_experiment_gets_a_new_run_name_and_a_missing_template_is_an_error() -> None:
    analyses = [{"name": "a", "templateName": "t", "args": [{"name": "hash", "value": "x"}]}]
    done = {"metadata": {"name": "e-a"}, "spec": {}, "status": {"phase": "Failed"}}
    plan = decide(observe(experiment(analyses=analyses), replicaset(2, 2), runs={"e-a": done}))
    assert [m["metadata"]["name"] for m in plan.create] == ["e-a.1"]

    missing = [{"name": "b", "templateName": "nope"}]
    plan = decide(observe(experiment(analyses=missing), replicaset(2, 2)))
    assert plan.status is not None and plan.status["phase"] == "Error"
    assert plan.status["message"] == 'analysis b (template nope): AnalysisTemplate "nope" not found'


def test_an_invalid_spec_is_an_error_naming_the_field() -> None:
    exp = experiment(duration="soon")
    exp["spec"]["templates"][0]["selector"] = {"matchLabels": {"app": "b"}}
    plan = decide(observe(exp, None))
    assert plan.create == [] and plan.status is not None and plan.status["phase"] == "Error"
    assert plan.status["message"].startswith("InvalidSpec: spec.templates[0].selector: Invalid value: 'app=b'")
    assert 'spec.duration: Invalid value: "soon"' in plan.status["message"]
