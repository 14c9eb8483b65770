"""`pyrollouts sandbox --faults`: injected 500/503/429/409 answers with the API server's Status bodies,
per verb, for chosen User-Agents, drawn from a seed; watch streams cut at random; and the 410 a watch gets
from a sandbox started again empty."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.faults import Faults, FaultSpecError, parse_rates
from tests.fixtures.kube import assert_status, http
from tests.fixtures.manifests import configmap
from tests.fixtures.tools import REPO

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


@contextmanager
def faulty(tmp_path: Path, rates: str, seed: int = 1, agents: tuple[str, ...] = ()) -> Iterator[httpx.Client]:
    faults = Faults(parse_rates(rates), seed, agents)
    with ThreadedSandbox(tmp_path / "kubeconfig", faults=faults) as sandbox, http(sandbox.url) as client:
        yield client


def test_rates_parse_for_every_verb_or_per_verb() -> None:
    assert parse_rates("0.1") == {"*": 0.1}
    assert parse_rates("get=0.1, patch=0.2") == {"get": 0.1, "patch": 0.2}
    assert parse_rates("0.05,watch=0.3") == {"*": 0.05, "watch": 0.3}
    refused = [("1.5", "outside 0..1"), ("gets=0.1", "unknown verb 'gets'"), ("x", "not a rate"), ("", "no rate")]
    for bad, says in refused:
        with pytest.raises(FaultSpecError, match=says):
            parse_rates(bad)


def test_the_command_refuses_a_bad_rate_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rollouts.main", "sandbox", "--kubeconfig", "/dev/null", "--faults", "patch=2"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "rate 2.0 in 'patch=2' is outside 0..1" in result.stderr


def test_every_faulted_answer_is_a_status_as_the_api_server_sends_it(tmp_path: Path) -> None:
    with faulty(tmp_path, "create=0,get=1,patch=1") as api:
        assert api.post(CM, json=configmap("cm", a="1")).status_code == 201
        reads = [api.get(f"{CM}/cm") for _ in range(30)]
        patches = [api.patch(f"{CM}/cm", json={"data": {"b": "2"}}, headers=MERGE) for _ in range(30)]
    assert {r.status_code for r in reads} == {500, 503, 429}  # a read never meets a conflict
    assert {r.status_code for r in patches} == {500, 503, 429, 409}
    for resp in reads + patches:
        reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests", 409: "Conflict"}
        body = assert_status(resp, resp.status_code, reason[resp.status_code])
        if resp.status_code == 429:
            assert resp.headers["Retry-After"] == "1" and body["details"]["retryAfterSeconds"] == 1
        if resp.status_code == 409:
            assert body["message"].startswith('Operation cannot be fulfilled on configmaps "cm": the object has been')


def test_the_same_seed_gives_the_same_faults(tmp_path: Path) -> None:
    def codes(seed: int) -> list[int]:
        with faulty(tmp_path, "0.5", seed=seed) as api:
            return [api.get(f"{CM}/none").status_code for _ in range(40)]

    first = codes(7)
    assert codes(7) == first and codes(8) != first
    assert set(first) == {404, 500, 503, 429}  # about half served (404: there is no such object)


def test_faults_go_only_to_the_user_agents_named(tmp_path: Path) -> None:
    with faulty(tmp_path, "1", agents=("pyrollouts-controller",)) as api:
        assert all(api.get(CM).status_code == 200 for _ in range(10))
        assert api.get(CM, headers={"User-Agent": "pyrollouts-controller"}).status_code in (500, 503, 429)


def test_a_watch_stream_is_cut_without_an_end(tmp_path: Path) -> None:
    # The connection closes in the middle of the stream (within 3 s; the watch asked for 30).
    params = {"watch": "true", "timeoutSeconds": "30"}
    with (
        faulty(tmp_path, "watch=1") as api,
        pytest.raises(httpx.RemoteProtocolError),
        api.stream("GET", CM, params=params, timeout=20) as resp,
    ):
        assert resp.status_code == 200
        for _ in resp.iter_lines():
            pass


def test_a_sandbox_started_again_empty_refuses_the_old_resource_versions(tmp_path: Path) -> None:
    with ThreadedSandbox(tmp_path / "kubeconfig") as sandbox:
        with http(sandbox.url) as api:
            for i in range(20):
                api.post(CM, json=configmap(f"cm{i}"))
            version = api.get(CM).json()["metadata"]["resourceVersion"]
        url = sandbox.url
        sandbox.restart_empty()
        assert sandbox.url == url
        with http(sandbox.url) as api:
            assert api.get(CM).json()["items"] == []
            resp = api.get(CM, params={"watch": "true", "resourceVersion": version})
            [line] = resp.text.splitlines()
            assert '"type":"ERROR"' in line.replace(" ", "") and "Too large resource version" in line
