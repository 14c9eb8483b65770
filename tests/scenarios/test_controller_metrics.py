"""The controller's /metrics scraped by a real Prometheus (Debian's `prometheus`) after scenarios on the
sandbox: a promoted canary, a canary aborted by a failed AnalysisRun, and a deleted Rollout.

The queries are Argo Rollouts' own examples: the panels of the Grafana dashboard its "Controller
Metrics" page links (examples/dashboard.json, with its `job` label ours); the alerts are ours
(deploy/monitoring), loaded as Prometheus rule files and read back from ALERTS."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from rollouts.sandbox.prometheus import PrometheusServer
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import FREE_PORTS, ControllerProcess, runs_own_controllers
from tests.fixtures.health import serve_health
from tests.fixtures.manifests import Step, rollout_manifest, web_template
from tests.fixtures.rollout import Namespace, given
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.kubectl, pytest.mark.prometheus, pytest.mark.slow, runs_own_controllers]

JOB = "pyrollouts-metrics"  # the ServiceMonitor's job name, which the example alerts select
ANALYSIS_PHASES = ("Pending", "Error", "Failed", "Successful", "Running", "Inconclusive")
LATEST = {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


class Scraped:
    """A controller serving /metrics on a free port, and a Prometheus scraping it every second with the
    example alerts loaded."""

    def __init__(self, proc: ControllerProcess, prom: PrometheusServer, port: int) -> None:
        self.proc, self.prom, self.port = proc, prom, port


@pytest.fixture(scope="module")
def scraped(
    cluster: Cluster,
    controller: ControllerProcess | None,
    prometheus_binary: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scraped]:
    workdir = tmp_path_factory.mktemp("metrics")
    rule = yaml.safe_load((REPO / "deploy" / "monitoring" / "prometheusrule.yaml").read_text())
    rules_file = workdir / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    assert controller is not None  # runs_own_controllers: the sandbox's run
    controller.stop()  # one controller per Rollout: ours serves /metrics
    proc = ControllerProcess(cluster.kubeconfig, cluster.env, workdir, listen=FREE_PORTS).start()
    prom: PrometheusServer | None = None
    try:
        port = cluster.wait("the controller to serve /metrics", lambda: proc.port("/metrics"))
        prom = PrometheusServer(
            workdir / "prometheus",
            targets=[f"http://127.0.0.1:{port}/metrics"],
            binary=prometheus_binary,
            job=JOB,
            rule_files=[rules_file],
        ).start()
        # Scenarios start once the controller is scraped: increase() needs samples from before they ran.
        prom.wait_for(f'up{{job="{JOB}"}} == 1', timeout=60)
        yield Scraped(proc, prom, port)
    finally:
        if prom is not None:
            prom.stop()
        proc.stop()
        controller.start()


@pytest.fixture(scope="module")
def scenarios(cluster: Cluster, scraped: Scraped) -> Namespace:
    """A canary promoted by hand and one aborted by its failed AnalysisRun, both in one namespace."""
    namespace = given(cluster, "metrics")
    pause: list[Step] = [{"setWeight": 50}, {"pause": {}}]
    promoted = namespace.rollout(rollout_manifest("promoted", replicas=2, steps=pause)).apply().wait_healthy()
    promoted.set_image("nginx:2").wait_paused(step=1)
    promoted.promote().wait_healthy(timeout=30)
    with serve_health() as (url, handler):
        handler.healthy = False
        analysis: list[Step] = [
            {"setWeight": 25},
            {"analysis": {"templates": [{"templateName": "health"}], "args": [LATEST]}},
        ]
        template = web_template("health", "canary-hash", f"{url}/health/{{{{args.canary-hash}}}}")
        aborted = namespace.rollout(rollout_manifest("aborted", replicas=4, steps=analysis), template)
        aborted.apply().wait_healthy()
        aborted.set_image("nginx:2").wait_degraded(timeout=30)
    return namespace


def test_argo_dashboard_queries_see_the_rollouts(cluster: Cluster, scraped: Scraped, scenarios: Namespace) -> None:
    prom, ns = scraped.prom, scenarios.name
    mine = f'job="{JOB}",namespace="{ns}"'
    phases = prom.wait_for(
        f"rollout_info{{{mine}}}", lambda r: {x["metric"]["phase"] for x in r} == {"Completed", "Abort"}
    )
    assert {(x["metric"]["name"], x["metric"]["phase"], x["metric"]["strategy"]) for x in phases} == {
        ("promoted", "Completed", "canary"),
        ("aborted", "Abort", "canary"),
    }
    # The dashboard's panels ("Total Rollouts", "Rollouts" by strategy, "Stable", "Aborted", ...).
    assert prom.query_by(f"sum(rollout_info{{{mine}}}) by (strategy)", "strategy") == {"canary": 2.0}
    assert prom.query_by(f'sum(rollout_info{{phase="Completed",{mine}}} == 1)', "") == {"": 1.0}
    assert prom.query_by(f'sum(rollout_info{{{mine},phase="Abort"}} == 1)', "") == {"": 1.0}
    assert prom.query(f'sum(rollout_info{{{mine},phase="Paused"}})') == []  # no series: the panel shows 0
    # "Replicas (desired)", "(available)", "(unavailable)" of one Rollout.
    one = f'{mine},name="promoted"'
    prom.wait_for(f"rollout_info_replicas_available{{{one}}} == 2")
    assert prom.query_by(f"rollout_info_replicas_desired{{{one}}}", "name") == {"promoted": 2.0}
    assert prom.query_by(f"rollout_info_replicas_unavailable{{{one}}}", "name") == {"promoted": 0.0}
    assert prom.query_by(f"rollout_info_replicas_updated{{{one}}}", "name") == {"promoted": 2.0}
    # "Reconcile Activity", "Reconciliation Performance", "Uptime (controller)".
    # increase() needs two scraped samples of a series that differ, and the scenarios may have finished
    # reconciling before Prometheus first saw their series: touch the Rollout until an increase shows.
    prom.wait_for(f"rollout_reconcile_count{{{one}}}", timeout=60)
    increased = f'sum(increase(rollout_reconcile_count{{job="{JOB}"}}[10m])) > 0'

    def touched_and_increased() -> bool:
        touched = f"test/touched={time.monotonic_ns()}"
        cluster.kubectl("-n", ns, "annotate", "rollout", "promoted", touched, "--overwrite")
        return bool(prom.query(increased))

    cluster.wait("a scraped Rollout's reconcile in increase()", touched_and_increased, timeout=60, interval=1.0)
    buckets = prom.query_by("sum(increase(rollout_reconcile_bucket[10m])) by (le)", "le")
    assert len(buckets) == 6 and max(buckets.values()) > 0, buckets  # Argo's five bounds and +Inf
    assert float(prom.query(f'time() - max(process_start_time_seconds{{job="{JOB}"}})')[0]["value"][1]) > 0


def test_analysis_run_series(scraped: Scraped, scenarios: Namespace) -> None:
    prom, ns = scraped.prom, scenarios.name
    [run] = scenarios.analysis_runs()
    where = f'namespace="{ns}",name="{run}"'
    prom.wait_for(f'analysis_run_info{{{where},phase="Failed"}} == 1')
    assert prom.query_by(f"analysis_run_phase{{{where}}} == 1", "phase") == {"Failed": 1.0}
    assert prom.query_by(f"analysis_run_metric_type{{{where}}}", "type") == {"Web": 1.0}
    phases = prom.query_by(f'analysis_run_metric_phase{{{where},metric="up",dry_run="false"}}', "phase")
    assert phases == {p: float(p == "Failed") for p in ANALYSIS_PHASES}
    assert prom.query_by(f"analysis_run_reconcile_count{{{where}}} > 0", "name").keys() == {run}


def test_events_requests_and_queues_are_counted(scraped: Scraped, scenarios: Namespace) -> None:
    prom, ns = scraped.prom, scenarios.name
    events = prom.wait_for(f'rollout_events_total{{namespace="{ns}",name="aborted",reason="RolloutAborted"}}')
    assert events[0]["metric"]["type"] == "Warning"
    requests = "controller_clientset_k8s_request_total"
    patches = f'{requests}{{kind="rollouts",namespace="{ns}",name="promoted",verb="Patch"}}'
    assert prom.query_by(f"sum({patches}) by (status_code)", "status_code").get("200", 0) > 0
    created = f'{requests}{{kind="events",namespace="{ns}",verb="Create"}}'
    assert {r["metric"]["name"] for r in prom.query(created)} == {"N/A"}  # Argo counts Events without names
    assert prom.query_by('workqueue_adds_total{name=~"Rollouts|AnalysisRuns"} > 0', "name").keys() == {
        "Rollouts",
        "AnalysisRuns",
    }
    assert prom.query_by("workqueue_depth", "name").keys() >= {"Rollouts", "AnalysisRuns"}
    work = 'sum by (le) (rate(workqueue_work_duration_seconds_bucket{name="Rollouts"}[10m]))'
    assert prom.query(f"histogram_quantile(0.5, {work})")
    assert prom.query_by("pyrollouts_leader", "job") == {JOB: 1.0}


def test_the_example_alerts_fire_for_the_aborted_rollout_and_its_run(scraped: Scraped, scenarios: Namespace) -> None:
    prom, ns = scraped.prom, scenarios.name
    [run] = scenarios.analysis_runs()
    # `for:` holds them pending for minutes; pending is what the rules' expressions say right now.
    firing = prom.wait_for(
        f'ALERTS{{namespace="{ns}"}}',
        lambda r: (
            {(x["metric"]["alertname"], x["metric"]["name"]) for x in r}
            == {("PyrolloutsRolloutDegraded", "aborted"), ("PyrolloutsAnalysisRunFailed", run)}
        ),
    )
    assert {x["metric"]["alertstate"] for x in firing} == {"pending"}
    # The controller is up, without errors or backlog. Slow reconciles (p99 above 0.5 s) measure the
    # machine as much as the controller: on a loaded CI runner that alert may rightly be pending.
    assert {x["metric"]["alertname"] for x in prom.query("ALERTS")} - {"PyrolloutsSlowReconciles"} == {
        "PyrolloutsRolloutDegraded",
        "PyrolloutsAnalysisRunFailed",
    }
    rules = [rule for group in prom.rule_groups() for rule in group["rules"]]
    assert len(rules) == 6 and all(rule["health"] == "ok" for rule in rules), rules


def test_a_deleted_rollouts_series_are_removed(cluster: Cluster, scraped: Scraped, scenarios: Namespace) -> None:
    ns = scenarios.name
    before = scrape(scraped.port)
    assert f'rollout_reconcile_count{{name="promoted",namespace="{ns}"}}' in before
    assert re.search(rf'rollout_events_total\{{name="promoted",namespace="{ns}",', before)
    scenarios.rollout_named("promoted").delete()
    series = re.compile(rf'\{{[^}}]*name="promoted",namespace="{ns}"')
    cluster.wait("the deleted Rollout's series to leave /metrics", lambda: not series.search(scrape(scraped.port)))
    assert f'name="aborted",namespace="{ns}"' in scrape(scraped.port)  # the other Rollout's stay
    scraped.prom.wait_for(f'rollout_info{{namespace="{ns}",name="promoted"}}', lambda r: r == [])
