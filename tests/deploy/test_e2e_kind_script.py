"""scripts/e2e-kind.sh (`make e2e-kind`) cannot run here (no kind), so it is held to shellcheck, with .ci/run and
tests/load.sh (`make test-loaded`)."""

from __future__ import annotations

import subprocess

from tests.fixtures.tools import REPO, require_tool

SCRIPTS = [*sorted((REPO / "scripts").glob("*.sh")), REPO / "tests" / "load.sh", REPO / ".ci" / "run"]


def test_the_scripts_are_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck", "PYROLLOUTS_REQUIRE_SHELLCHECK")
    assert REPO / "scripts" / "e2e-kind.sh" in SCRIPTS
    result = subprocess.run([shellcheck, "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_e2e_kind_runs_the_script() -> None:
    result = subprocess.run(["make", "-n", "e2e-kind"], capture_output=True, text=True, cwd=REPO, check=True)
    assert "scripts/e2e-kind.sh" in result.stdout
