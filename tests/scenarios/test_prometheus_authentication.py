"""Prometheus ``authentication.sigv4`` and ``authentication.oauth2`` end to end: AnalysisRuns on the sandbox,
measured by a controller whose AWS credentials come from its environment, against local servers that check
the SigV4 signature (botocore's signer) and the OAuth2 client credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.analysis_runs import closed_port, events, metric_result, run_manifest, template_manifest, wait_done
from tests.fixtures.aws_servers import ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, SECRET_KEY, AwsWorld, aws_env, aws_world
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers

pytestmark = runs_own_controllers


@pytest.fixture(scope="module")
def world() -> Iterator[AwsWorld]:
    with aws_world() as w:
        w.series["ratio"] = [0.99]
        w.series["low"] = [0.42]
        yield w


@pytest.fixture(scope="module")
def controller(cluster: Cluster, world: AwsWorld, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ControllerProcess]:
    """The controller with the test's AWS keys in its environment (the default credential chain)."""
    home = tmp_path_factory.mktemp("aws")
    env = {**cluster.env, **aws_env(world, str(home))}
    with running_controller(cluster.kubeconfig, env, tmp_path_factory.mktemp("controller")) as proc:
        yield proc


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess) -> str:
    namespace = cluster.new_namespace("promauth")
    cluster.kubectl("create", "secret", "generic", "oauth", "-n", namespace, f"--from-literal=secret={CLIENT_SECRET}",
                    "--from-literal=wrong=n0t-the-cl1ent-secret")
    return namespace


def prometheus_metric(address: str, query: str, authentication: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "ratio", "successCondition": "result[0] >= 0.95", "failureLimit": 0,
            "provider": {"prometheus": {"address": address, "query": query, "timeout": 3,
                                        "authentication": authentication}}, **extra}


def oauth2(world: AwsWorld) -> dict[str, Any]:
    return {"oauth2": {"tokenUrl": f"{world.url}/oauth2/token", "clientId": CLIENT_ID,
                       "clientSecret": "{{args.client-secret}}", "scopes": ["metrics:read"]}}


def secret_arg(key: str) -> list[dict[str, Any]]:
    return [{"name": "client-secret", "valueFrom": {"secretKeyRef": {"name": "oauth", "key": key}}}]


def test_sigv4_success_and_failure(cluster: Cluster, ns: str, world: AwsWorld) -> None:
    sigv4 = {"sigv4": {"region": "eu-west-1"}}
    cluster.apply(ns, run_manifest("amp-ok", [prometheus_metric(world.url, "ratio", sigv4)]),
                  run_manifest("amp-low", [prometheus_metric(world.url, "low", sigv4)]))
    ok, low = wait_done(cluster, ns, "amp-ok"), wait_done(cluster, ns, "amp-low")
    assert ok["status"]["phase"] == "Successful", ok["status"]
    assert metric_result(ok, "ratio")["measurements"][0]["value"] == "[0.99]"
    assert low["status"]["phase"] == "Failed", low["status"]
    assert any("/eu-west-1/aps/aws4_request" in s.headers.get("authorization", "") for s in world.to("/api/v1/"))


def test_sigv4_provider_down_counts_against_the_error_limit(cluster: Cluster, ns: str) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    cluster.apply(ns, run_manifest("amp-down", [prometheus_metric(address, "ratio", {"sigv4": {}}, interval="1s",
                                                                  count=3, consecutiveErrorLimit=1)]))
    run = wait_done(cluster, ns, "amp-down")
    assert run["status"]["phase"] == "Error"
    result = metric_result(run, "ratio")
    assert result["consecutiveError"] == 2
    assert "cannot reach Prometheus" in result["measurements"][-1]["message"]


def test_oauth2_success(cluster: Cluster, ns: str, world: AwsWorld) -> None:
    cluster.apply(ns, run_manifest("oauth-ok", [prometheus_metric(world.url, "ratio", oauth2(world))],
                                   args=secret_arg("secret")))
    run = wait_done(cluster, ns, "oauth-ok")
    assert run["status"]["phase"] == "Successful", run["status"]


def test_bad_credentials_are_errors_and_no_secret_leaks(cluster: Cluster, ns: str, world: AwsWorld,
                                                        controller: ControllerProcess) -> None:
    cluster.apply(ns, run_manifest("oauth-bad", [prometheus_metric(world.url, "ratio", oauth2(world),
                                                                   consecutiveErrorLimit=0)],
                                   args=secret_arg("wrong")))
    run = wait_done(cluster, ns, "oauth-bad")
    assert run["status"]["phase"] == "Error"
    message = metric_result(run, "ratio")["measurements"][0]["message"]
    assert "refused the client credentials: HTTP 401: invalid_client" in message, message

    def completed_event() -> list[dict[str, Any]] | None:
        seen = [e for e in events(cluster, ns) if e["involvedObject"]["name"] == "oauth-bad"]
        return seen if any(e["reason"] == "AnalysisRunError" for e in seen) else None

    seen = cluster.wait("the run's Error Event", completed_event, 20)
    leaked = json.dumps([run, seen, events(cluster, ns)]) + controller.logs()
    for secret in (CLIENT_SECRET, "n0t-the-cl1ent-secret", ACCESS_TOKEN, SECRET_KEY):
        assert secret not in leaked


def test_bad_authentication_in_a_template_is_reported_naming_the_field(cluster: Cluster, ns: str,
                                                                       world: AwsWorld) -> None:
    bad = prometheus_metric(world.url, "ratio", {"oauth2": {"tokenUrl": f"{world.url}/oauth2/token"}})
    cluster.apply(ns, template_manifest("bad-oauth", [bad]))

    def invalid_event() -> str | None:
        for event in events(cluster, ns):
            if event["involvedObject"]["name"] == "bad-oauth" and event["reason"] == "InvalidSpec":
                return str(event["message"])
        return None

    message = cluster.wait("an InvalidSpec Event on the template", invalid_event, 15)
    assert "spec.metrics[0].provider.prometheus.authentication.oauth2.clientId: required" in message
