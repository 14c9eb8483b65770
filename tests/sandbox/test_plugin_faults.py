"""The plugin against a sandbox failing its requests (`--faults`, for the plugin's User-Agent only): reads
are sent again until they succeed; a refused write says what was not done and what to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollouts.sandbox.faults import Faults, parse_rates
from tests.fixtures.plugin import PAUSED, create_rollout, in_process, unique
from tests.fixtures.sandbox import Kubectl, SandboxHandle, faulty_sandbox_handle
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl

# Half the reads fail (seeded: the plugin's requests come in one order, so every run draws the same).
FAULTS = "get=0.5,list=0.5,patch=1"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's sandbox (in place of tests/conftest.py's): faults for the plugin's requests alone."""
    faults = Faults(parse_rates(FAULTS), seed=3, agents=("kubectl-rollouts/",))
    with faulty_sandbox_handle(tmp_path_factory.mktemp("plugin-faults"), faults) as handle:
        yield handle


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> Kubectl:
    kubectl.run("apply", "-f", str(REPO / "crds"))
    return kubectl


def injected(sandbox: SandboxHandle) -> int:
    assert sandbox.threaded.sandbox is not None and sandbox.threaded.sandbox.api.faults is not None
    return sum(sandbox.threaded.sandbox.api.faults.injected.values())


def test_reads_are_sent_again_until_they_succeed(sandbox: SandboxHandle, crds: Kubectl) -> None:
    name = unique("read")
    create_rollout(crds, name, PAUSED)
    before = injected(sandbox)
    for _ in range(3):
        code, out, err = in_process(sandbox, "get", "rollout", name)
        assert (code, err) == (0, ""), err
        assert f"Name:            {name}" in out
        code, out, err = in_process(sandbox, "list", "rollouts")
        assert code == 0 and name in out, err
    assert injected(sandbox) > before  # faults were met, and retried


def test_a_refused_write_says_what_was_not_done(sandbox: SandboxHandle, crds: Kubectl) -> None:
    name = unique("write")
    create_rollout(crds, name, PAUSED)
    code, _out, err = in_process(sandbox, "promote", name)
    assert code == 1
    assert f'Error: could not patch rollout "{name}" in namespace "default": the API server answered ' in err
    assert "run the command again" in err and "Traceback" not in err
