"""The pure parts of `version` (commit, controller line) and `create -f` (which collection, what error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollouts.cli import create, version
from rollouts.cli.client import ANALYSISTEMPLATES, CLUSTERANALYSISTEMPLATES, ROLLOUTS
from rollouts.model.reporting import CONTROLLER_VERSION_ANNOTATION

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_git_commit_from_a_loose_ref_a_packed_ref_or_a_detached_head(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    assert version.git_commit(git) == COMMIT
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{COMMIT} refs/heads/main\n")
    assert version.git_commit(git) == COMMIT
    (git / "HEAD").write_text(COMMIT[::-1] + "\n")
    assert version.git_commit(git) == COMMIT[::-1]
    assert version.git_commit(tmp_path / "none") == "unknown"


def event(stamp: str, release: str | None, instance: str = "rollouts-controller-a") -> dict[str, object]:
    annotations = {CONTROLLER_VERSION_ANNOTATION: release} if release else {}
    return {"metadata": {"annotations": annotations}, "lastTimestamp": stamp, "reportingInstance": instance}


def test_controller_line_takes_the_newest_versioned_event() -> None:
    events = [
        event("2026-12-01T10:00:00Z", "0.0.9", "rollouts-controller-old"),
        event("2026-12-02T10:00:00Z", "0.1.0", "rollouts-controller-new"),
        event("2026-12-03T10:00:00Z", None),  # from a controller too old to say
    ]
    assert version.controller_line(events, "prod") == (
        "controller: v0.1.0 (rollouts-controller-new, last Event at 2026-12-02T10:00:00Z in namespace prod)"
    )
    assert version.controller_line([], "prod").startswith('controller: not seen (no Event from a pyrollouts')


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Rollout", ROLLOUTS),
        ("AnalysisTemplate", ANALYSISTEMPLATES),
        ("ClusterAnalysisTemplate", CLUSTERANALYSISTEMPLATES),
    ],
)
def test_create_picks_the_collection_of_each_kind(kind: str, resource: object) -> None:
    doc = {"apiVersion": "pyrollouts.io/v1alpha1", "kind": kind, "metadata": {"name": "web"}}
    assert create.resource_of(doc, "f.yaml", 0) is resource


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
         'f.yaml: document 2 (Deployment "d"): kind \'Deployment\' is not one of Rollout, AnalysisRun, '
         "AnalysisTemplate, ClusterAnalysisTemplate; create other objects with kubectl create -f"),
        ({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}},
         'f.yaml: document 2 (Rollout "web"): apiVersion is argoproj.io/v1alpha1; change it to pyrollouts.io/v1alpha1'),
        ({"apiVersion": "pyrollouts.io/v1alpha1", "kind": "Rollout", "metadata": {}},
         'f.yaml: document 2 (Rollout ""): metadata.name (or metadata.generateName) is missing'),
        ({}, "f.yaml: document 2 (no kind \"\"): kind '' is not one of Rollout, AnalysisRun, AnalysisTemplate, "
             "ClusterAnalysisTemplate; create other objects with kubectl create -f"),
    ],
)
def test_create_refuses_what_it_cannot_create_naming_the_document(doc: dict[str, object], error: str) -> None:
    with pytest.raises(create.CreateError) as raised:
        create.resource_of(doc, "f.yaml", 1)
    assert str(raised.value) == error
