"""`make demo` keeps working: the bad version is aborted by analysis, the good one promoted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tools import require_tool


@pytest.mark.slow
@pytest.mark.prometheus
def test_demo_aborts_the_bad_version_and_promotes_the_good_one(tmp_path: Path) -> None:
    require_tool("prometheus", "PYROLLOUTS_REQUIRE_PROMETHEUS")
    result = subprocess.run(
        [sys.executable, "-m", "rollouts.main", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("== summary") :]
    bad, good = (line for line in summary.splitlines() if "version" in line)
    assert "Degraded: RolloutAborted" in bad and 'Metric "error-rate" assessed Failed' in bad
    assert good.rstrip().endswith("-> Healthy")
    assert "✔ Successful" in result.stdout  # the good version's AnalysisRun, shown in the tree
    assert "demo finished; sandbox, Prometheus and controller stopped" in result.stdout
    ending = result.stdout[result.stdout.index("demo finished") :].splitlines()
    assert "== what to try next" in ending and "kubectl rollouts get rollout demo --watch" in result.stdout
