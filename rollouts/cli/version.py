"""`kubectl rollouts version`: the plugin's build (version, commit, Python, platform) and the version of
the controller acting in the namespace, read from the annotation on the Events it records."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rollouts import __version__
from rollouts.model.reporting import CONTROLLER_VERSION_ANNOTATION

CONTROLLER_COMPONENT = "rollouts-controller"
# A checkout's .git (an editable install); a wheel has none and says "unknown".
_GIT_DIR = Path(__file__).resolve().parents[2] / ".git"


def git_commit(git_dir: Path = _GIT_DIR) -> str:
    """HEAD's commit read from the files (no `git` process: `version` must start fast)."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[len("ref: "):]
        loose = git_dir / ref
        if loose.exists():
            return loose.read_text().strip()
        for line in (git_dir / "packed-refs").read_text().splitlines():
            commit, _, name = line.partition(" ")
            if name == ref:
                return commit
    except OSError:
        pass
    return "unknown"


def machine() -> str:
    """GOOS/GOARCH as Argo prints its platform: linux/amd64."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{sys.platform}/{arch}"


def plugin_lines() -> list[str]:
    return [
        f"kubectl-rollouts: v{__version__}",
        f"  GitCommit: {git_commit()}",
        f"  Python: {platform.python_implementation()} {platform.python_version()}",
        f"  Platform: {machine()}",
    ]


def _stamp(event: Mapping[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or "")


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def controller_line(events: Sequence[Mapping[str, Any]], namespace: str) -> str:
    """What the newest Event of a pyrollouts controller in the namespace says about its version."""
    versioned = [e for e in events if CONTROLLER_VERSION_ANNOTATION in _annotations(e)]
    if not versioned:
        return (
            f'controller: not seen (no Event from a pyrollouts controller in namespace "{namespace}"; '
            "is it running? it records one at its first action on a rollout)"
        )
    newest = max(versioned, key=_stamp)
    version = _annotations(newest)[CONTROLLER_VERSION_ANNOTATION]
    instance = newest.get("reportingInstance") or CONTROLLER_COMPONENT
    return f"controller: v{version} ({instance}, last Event at {_stamp(newest)} in namespace {namespace})"
