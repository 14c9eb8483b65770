"""`make demo` is quiet: the install's output goes to .venv/install.log and one line says what happens;
a failed install shows the log's end. Run on a copy of the Makefile with a stand-in Python whose "pip"
prints 60 lines, so no real install happens."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.tools import REPO

FAKE_PYTHON = """#!/bin/sh
# `python -m venv DIR` makes DIR/bin/python (this script); anything else prints like pip
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
i=0; while [ $i -lt 60 ]; do echo "Collecting dependency $i"; i=$((i+1)); done
[ -z "$FAIL" ]
"""


def make_demo(workdir: Path, fail: bool = False) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed (apt-get install make)")
    env = {"PATH": "/usr/bin:/bin", **({"FAIL": "1"} if fail else {})}
    return subprocess.run([make, "-s", "demo", "PYTHON=./python"], cwd=workdir, capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    demo = tmp_path / ".venv" / "bin" / "pyrollouts"
    demo.parent.mkdir(parents=True)
    demo.write_text('#!/bin/sh\necho "== the demo: $1"\n')
    demo.chmod(0o755)
    return tmp_path


def test_make_demo_prints_one_line_before_the_demo(project: Path) -> None:
    result = make_demo(project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "installing pyrollouts and its dependencies into .venv (log: .venv/install.log) ...",
        "== the demo: demo",
    ]
    assert (project / ".venv" / "install.log").read_text().count("Collecting dependency") == 120  # pip, then -e .
    assert make_demo(project).stdout.splitlines() == ["== the demo: demo"]  # installed: straight to the demo


def test_a_failed_install_shows_the_end_of_its_log(project: Path) -> None:
    result = make_demo(project, fail=True)
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["Collecting dependency 59", "install failed: see .venv/install.log"]
    assert "== the demo" not in result.stdout
