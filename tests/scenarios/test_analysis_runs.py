"""AnalysisRuns measured by the controller subprocess: Web metrics against a local fake endpoint, Job
metrics on the sandbox's simulated Jobs, limits, dryRun, terminate, retention, ttl, secrets."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from analysis.providers.job import POLL_SECONDS
from analysis.runner import parse_time
from tests.fixtures.analysis_runs import closed_port, events, get_run, metric_result, run_manifest, wait_done
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.manifests import GROUP, VERSION

SECRET_VALUE = "s3cr3t-T0ken-8d1f"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/slow":
            time.sleep(3)
        if path == "/text":
            body, ctype = f"not json {query}".encode(), "text/plain"
        elif path == "/auth":
            ok = self.headers.get("Authorization") == f"Bearer {SECRET_VALUE}"
            body, ctype = json.dumps({"ok": ok}).encode(), "application/json"
        else:
            answers = {"/ok": {"data": {"ok": True}}, "/fail": {"data": {"ok": False}}, "/half": {"value": 0.5}}
            body, ctype = json.dumps(answers.get(path, {})).encode(), "application/json"
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def web_metric(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"web": {"url": url, "timeoutSeconds": 1, "jsonPath": "{$.data.ok}"}}, **extra}


def job_metric(name: str, fail: bool = False, ready_after: str = "0.3s") -> dict[str, Any]:
    annotations = {"sandbox.pyrollouts.io/ready-after": ready_after}
    if fail:
        annotations["sandbox.pyrollouts.io/fail"] = "true"
    return {"name": name, "provider": {"job": {"spec": {"backoffLimit": 0, "template": {
        "metadata": {"annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox", "args": ["true"]}]},
    }}}}}


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess | None) -> str:
    return cluster.new_namespace("ar")


def test_web_metric_succeeds(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("ok", [web_metric("up", f"{web}/ok", interval="1s", count=2,
                                                     successCondition="result == true")]))
    run = wait_done(cluster, ns, "ok")
    status = run["status"]
    assert status["phase"] == "Successful", status
    assert status["startedAt"] and status["completedAt"]
    assert status["runSummary"] == {"count": 1, "successful": 1, "failed": 0, "inconclusive": 0, "error": 0}
    up = metric_result(run, "up")
    assert up["count"] == 2 and up["successful"] == 2
    first, second = up["measurements"]
    assert first["value"] == "true" and first["phase"] == "Successful"
    gap = (_t(second["startedAt"]) - _t(first["finishedAt"]))
    assert 0.9 <= gap < 2.5, gap  # scheduled at its due time, one interval later
    expected = {"MetricSuccessful", "AnalysisRunSuccessful"}  # Events trail the status write

    def reasons() -> set[str] | None:
        seen = {e["reason"] for e in events(cluster, ns) if e["involvedObject"]["name"] == "ok"}
        return seen if expected <= seen else None

    cluster.wait("the run's Events", reasons, 20)


def _t(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_fails_after_failure_limit(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("fails", [web_metric("up", f"{web}/fail", interval="1s", count=5, failureLimit=1,
                                                        successCondition="result == true")]))
    run = wait_done(cluster, ns, "fails")
    assert run["status"]["phase"] == "Failed"
    assert run["status"]["message"] == 'Metric "up" assessed Failed due to failed (2) > failureLimit (1)'
    assert metric_result(run, "up")["count"] == 2


def test_inconclusive(cluster: Cluster, ns: str, web: str) -> None:
    metric = web_metric("ratio", f"{web}/half", successCondition="result > 0.9", failureCondition="result < 0.1")
    metric["provider"]["web"]["jsonPath"] = "$.value"
    cluster.apply(ns, run_manifest("unsure", [metric]))
    run = wait_done(cluster, ns, "unsure")
    assert run["status"]["phase"] == "Inconclusive"
    assert metric_result(run, "ratio")["measurements"][0]["value"] == "0.5"


def test_errors_count_against_the_limit_only(cluster: Cluster, ns: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    cluster.apply(ns, run_manifest("down", [web_metric("up", url, interval="1s", count=3, consecutiveErrorLimit=2,
                                                       successCondition="result == true")]))

    def one_error() -> dict[str, Any] | None:
        run = get_run(cluster, ns, "down")
        results = (run.get("status") or {}).get("metricResults") or []
        return run if results and results[0].get("error") == 1 else None

    early = cluster.wait("the first Error measurement", one_error, 10, interval=0.05)
    assert early["status"]["phase"] == "Running"  # an error never decides by itself
    run = wait_done(cluster, ns, "down")
    assert run["status"]["phase"] == "Error"
    up = metric_result(run, "up")
    assert up["error"] == 3 and up["consecutiveError"] == 3
    assert "consecutiveErrors (3) > consecutiveErrorLimit (2)" in run["status"]["message"]
    assert "ConnectError" in up["measurements"][-1]["message"]


def test_timeout_and_non_json_are_error_measurements(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("bad-web", [
        web_metric("slow", f"{web}/slow", consecutiveErrorLimit=0),
        web_metric("text", f"{web}/text", consecutiveErrorLimit=0),
    ], dryRun=[{"metricName": "slow"}]))
    run = wait_done(cluster, ns, "bad-web")
    assert "timed out after 1s" in metric_result(run, "slow")["measurements"][0]["message"]
    assert "is not JSON" in metric_result(run, "text")["measurements"][0]["message"]
    assert run["status"]["phase"] == "Error"


def test_job_metrics(cluster: Cluster, ns: str) -> None:
    cluster.apply(ns, run_manifest("job-ok", [job_metric("tests")]),
                  run_manifest("job-bad", [job_metric("tests", True)]))
    ok, bad = wait_done(cluster, ns, "job-ok"), wait_done(cluster, ns, "job-bad")
    assert ok["status"]["phase"] == "Successful"
    assert bad["status"]["phase"] == "Failed"
    job_name = metric_result(ok, "tests")["measurements"][0]["metadata"]["job-name"]
    job = cluster.plain(client.BatchV1Api(cluster.api).read_namespaced_job(job_name, ns))
    assert job["metadata"]["ownerReferences"][0]["kind"] == "AnalysisRun"
    assert "failed" in metric_result(bad, "tests")["measurements"][0]["message"]
    # The Job watch finishes the measurement, not the safety-net poll POLL_SECONDS after it started.
    for run in (ok, bad):
        measured = metric_result(run, "tests")["measurements"][0]
        started, finished = (parse_time(measured[k]) for k in ("startedAt", "finishedAt"))
        assert started is not None and finished is not None
        assert finished < started + dt.timedelta(seconds=POLL_SECONDS), measured


def test_dry_run_metric_has_no_effect(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("dry", [
        web_metric("real", f"{web}/ok", successCondition="result == true"),
        web_metric("trial", f"{web}/fail", successCondition="result == true"),
    ], dryRun=[{"metricName": "tri.*"}]))
    run = wait_done(cluster, ns, "dry")
    assert run["status"]["phase"] == "Successful"
    assert metric_result(run, "trial")["phase"] == "Failed" and metric_result(run, "trial")["dryRun"] is True
    assert run["status"]["dryRunSummary"]["failed"] == 1


def test_terminate_stops_measuring_and_deletes_jobs(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("forever", [
        web_metric("up", f"{web}/ok", interval="1s", successCondition="result == true"),
        job_metric("long", ready_after="120s"),
    ]))

    def measured_twice() -> dict[str, Any] | None:
        run = get_run(cluster, ns, "forever")
        results = {r["name"]: r for r in (run.get("status") or {}).get("metricResults") or []}
        return run if results.get("up", {}).get("count", 0) >= 2 and results.get("long", {}).get("measurements") \
            else None

    run = cluster.wait("two measurements", measured_twice, 15)
    job_name = metric_result(run, "long")["measurements"][0]["metadata"]["job-name"]
    cluster.patch(ns, "forever", {"spec": {"terminate": True}}, kind="analysisrun")
    run = wait_done(cluster, ns, "forever")
    assert run["status"]["phase"] == "Successful"
    assert run["status"]["message"] == "Run Terminated"
    assert metric_result(run, "long")["measurements"][-1]["message"] == "Metric Terminated"
    batch = client.BatchV1Api(cluster.api)

    def job_gone() -> bool:
        try:
            job = batch.read_namespaced_job(job_name, ns)
        except ApiException as exc:
            return bool(exc.status == 404)
        return job.metadata is not None and job.metadata.deletion_timestamp is not None

    cluster.wait("the Job to be deleted", job_gone, 10)


def test_measurement_retention_and_ttl(cluster: Cluster, ns: str, web: str) -> None:
    cluster.apply(ns, run_manifest("kept", [web_metric("up", f"{web}/ok", interval="1s", count=3)],
                                   measurementRetention=[{"metricName": "up", "limit": 2}],
                                   ttlStrategy={"secondsAfterSuccess": 2}))
    run = wait_done(cluster, ns, "kept")
    up = metric_result(run, "up")
    assert up["count"] == 3 and len(up["measurements"]) == 2

    def deleted() -> bool:
        try:
            get_run(cluster, ns, "kept")
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    cluster.wait("the ttlStrategy to delete the run", deleted, 10)


def test_missing_secret_is_an_error_measurement(cluster: Cluster, ns: str, web: str) -> None:
    metric = web_metric("up", f"{web}/auth", consecutiveErrorLimit=0)
    metric["provider"]["web"]["headers"] = [{"key": "Authorization", "value": "Bearer {{args.token}}"}]
    cluster.apply(ns, run_manifest("nosecret", [metric], args=[
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}}}]))
    run = wait_done(cluster, ns, "nosecret")
    assert run["status"]["phase"] == "Error"
    message = metric_result(run, "up")["measurements"][0]["message"]
    assert message == 'argument "token": secret "absent" not found in namespace "' + ns + '"'
    assert 'Metric "up" assessed Error' in run["status"]["message"] and '"absent"' in run["status"]["message"]


def test_secret_values_never_leak(cluster: Cluster, ns: str, web: str, controller: ControllerProcess | None) -> None:
    cluster.kubectl("create", "secret", "generic", "api", "-n", ns, f"--from-literal=token={SECRET_VALUE}")
    args = [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    good = web_metric("auth", f"{web}/auth", successCondition="result == true")
    good["provider"]["web"]["jsonPath"] = "$.ok"
    good["provider"]["web"]["headers"] = [{"key": "Authorization", "value": "Bearer {{args.token}}"}]
    echo = web_metric("echo", f"{web}/text?t={{{{args.token}}}}", consecutiveErrorLimit=0)  # the answer echoes it
    cluster.apply(ns, run_manifest("secret-ok", [good], args=args), run_manifest("secret-echo", [echo], args=args))
    ok, echoed = wait_done(cluster, ns, "secret-ok"), wait_done(cluster, ns, "secret-echo")
    assert ok["status"]["phase"] == "Successful"  # the header carried the real value
    assert echoed["status"]["phase"] == "Error"
    assert "*****" in metric_result(echoed, "echo")["measurements"][0]["message"]
    time.sleep(0.5)
    # With PYROLLOUTS_E2E=1 the controller's logs are the cluster's pods', out of this test's reach.
    everything = json.dumps([ok, echoed, events(cluster, ns)]) + (controller.logs() if controller else "")
    assert SECRET_VALUE not in everything
    assert ok["spec"]["args"] == args  # the spec still holds only the reference


def test_invalid_specs(cluster: Cluster, ns: str, web: str) -> None:
    template = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate", "metadata": {"name": "broken"},
                "spec": {"metrics": [web_metric("up", f"{web}/ok", successCondition="result ==")]}}
    cluster.apply(ns, template, run_manifest("broken", [web_metric("up", f"{web}/ok", interval="soon")]))
    run = wait_done(cluster, ns, "broken")
    assert run["status"]["phase"] == "Error"
    assert run["status"]["message"].startswith("InvalidSpec: spec.metrics[0].interval")

    def invalid_event() -> str | None:
        for event in events(cluster, ns):
            if event["involvedObject"]["name"] == "broken" and event["reason"] == "InvalidSpec":
                return str(event["message"])
        return None

    message = cluster.wait("an InvalidSpec Event on the template", invalid_event, 10)
    assert message.startswith("spec.metrics[0].successCondition:") and "column 10" in message
