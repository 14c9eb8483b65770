"""`kubectl rollouts create/get/terminate analysisrun`: the run built from templates (Argo's merge, nested
templates, args), the golden `get analysisrun` text, and the verbs' argument handling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from rollouts.cli import analysis, analysisrun_info, render
from rollouts.cli.analysis import AnalysisSpecError, MissingArgumentsError, parse_argument, run_from_template
from rollouts.cli.main import parse_args
from tests.fixtures.cli_objects import NOW, stamp


def template(name: str, metrics: list[str] | None = None, args: list[dict[str, Any]] | None = None,
             refs: list[tuple[str, bool]] | None = None, cluster: bool = False, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate",
        "metadata": {"name": name, "resourceVersion": "7", "uid": f"uid-{name}"},
        "spec": {
            "metrics": [{"name": m, "provider": {"web": {"url": f"http://x/{m}"}}}
                        for m in (metrics if metrics is not None else [name])],
            **spec,
        },
    }
    if args is not None:
        body["spec"]["args"] = args
    if refs:
        body["spec"]["templates"] = [{"templateName": n, "clusterScope": c} for n, c in refs]
    return body


class Store:
    """Templates by (name, cluster scope), counting lookups; a missing one raises as the client does."""

    def __init__(self, *templates: dict[str, Any]) -> None:
        self.templates = {(t["metadata"]["name"], t["kind"] == "ClusterAnalysisTemplate"): t for t in templates}
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, name: str, cluster_scope: bool) -> Mapping[str, Any]:
        self.calls.append((name, cluster_scope))
        if (name, cluster_scope) not in self.templates:
            raise LookupError(f"{name} not found")
        return self.templates[(name, cluster_scope)]


# --------------------------------------------------------------------------- building the run


def test_single_template_with_args_and_defaults() -> None:
    t = template("success-rate", args=[{"name": "service"}, {"name": "threshold", "value": "0.95"}],
                 dryRun=[{"metricName": "success-rate"}],
                 measurementRetention=[{"metricName": "success-rate", "limit": 20}])
    run = run_from_template(t, Store(), [("service", "web-canary")], namespace="prod")
    assert run == {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"generateName": "success-rate-", "namespace": "prod"},
        "spec": {
            "metrics": t["spec"]["metrics"],
            "args": [{"name": "service", "value": "web-canary"}, {"name": "threshold", "value": "0.95"}],
            "dryRun": [{"metricName": "success-rate"}],
            "measurementRetention": [{"metricName": "success-rate", "limit": 20}],
        },
    }
    # the template is not modified, and the run shares nothing with it
    run["spec"]["metrics"][0]["name"] = "changed"
    assert t["spec"]["metrics"][0]["name"] == "success-rate"
    assert t["spec"]["args"][0] == {"name": "service"}


def test_names_and_labels() -> None:
    t = template("t")
    assert run_from_template(t, Store(), name="r", namespace="ns", labels={"a": "b"})["metadata"] == {
        "name": "r", "namespace": "ns", "labels": {"a": "b"}}
    assert run_from_template(t, Store(), generate_name="g-", namespace="ns")["metadata"] == {
        "generateName": "g-", "namespace": "ns"}
    assert analysis.run_name("tpl") == ("", "tpl-")
    assert analysis.run_name("tpl", name="x") == ("x", "")
    assert analysis.run_name("tpl", generate_name="g-") == ("", "g-")
    with pytest.raises(AnalysisSpecError, match="--name"):
        analysis.run_name("")


def test_command_line_value_overrides_default_and_value_from() -> None:
    t = template("t", args=[{"name": "threshold", "value": "0.95"},
                            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}])
    run = run_from_template(t, Store(), [("threshold", "0.99"), ("token", "x")], name="r")
    assert run["spec"]["args"] == [{"name": "threshold", "value": "0.99"}, {"name": "token", "value": "x"}]


def test_missing_arguments_are_named_with_the_flag_that_supplies_them() -> None:
    t = template("t", args=[{"name": "service"}, {"name": "port"}, {"name": "threshold", "value": "1"}])
    with pytest.raises(MissingArgumentsError) as caught:
        run_from_template(t, Store(), [("port", "80")], name="r")
    assert caught.value.names == ["service"]
    assert str(caught.value) == 'no value for argument "service" of AnalysisTemplate "t" (no default): ' \
                                "pass -a service=VALUE"
    with pytest.raises(MissingArgumentsError, match=r'arguments "service", "port" .*-a service=VALUE -a port=VALUE'):
        run_from_template(t, Store(), [], name="r")


def test_unknown_argument_is_refused() -> None:
    t = template("t", args=[{"name": "service", "value": "a"}])
    with pytest.raises(AnalysisSpecError, match='unknown argument "servce": AnalysisTemplate "t" declares service'):
        run_from_template(t, Store(), [("servce", "b")], name="r")
    with pytest.raises(AnalysisSpecError, match=r'unknown argument "x": .* declares no arguments'):
        run_from_template(template("u"), Store(), [("x", "1")], name="r")


def test_nested_templates_and_their_args() -> None:
    root = template("root", args=[{"name": "service"}], refs=[("latency", False), ("shared", True)])
    latency = template("latency", args=[{"name": "service"}, {"name": "p", "value": "99"}],
                       refs=[("common", False)])
    shared = template("shared", cluster=True, args=[{"name": "token", "value": "t"}], refs=[("common", False)],
                      dryRun=[{"metricName": "shared"}])
    common = template("common")
    store = Store(latency, shared, common)
    run = run_from_template(root, store, [("service", "web")])
    assert sorted(m["name"] for m in run["spec"]["metrics"]) == ["common", "latency", "root", "shared"]
    assert sorted(run["spec"]["args"], key=lambda a: a["name"]) == [
        {"name": "p", "value": "99"}, {"name": "service", "value": "web"}, {"name": "token", "value": "t"}]
    assert run["spec"]["dryRun"] == [{"metricName": "shared"}]
    assert run["metadata"]["generateName"] == "root-"
    assert sorted(set(store.calls)) == sorted(store.calls)  # each template fetched once
    # a nested template's argument without a default must be given too
    with pytest.raises(MissingArgumentsError, match='"service"'):
        run_from_template(root, Store(latency, shared, common), [])


def test_cluster_template_root() -> None:
    shared = template("shared", cluster=True, refs=[("inner", True)])
    run = run_from_template(shared, Store(template("inner", cluster=True)), name="r")
    assert sorted(m["name"] for m in run["spec"]["metrics"]) == ["inner", "shared"]


def test_template_errors_name_the_template() -> None:
    a = template("a", refs=[("b", False)])
    b = template("b", refs=[("a", False)])
    with pytest.raises(AnalysisSpecError, match=r'AnalysisTemplate "a": .*cycle'):
        run_from_template(a, Store(b), name="r")
    one = template("one", metrics=["m"], refs=[("two", False)])
    with pytest.raises(AnalysisSpecError, match=r'AnalysisTemplate "one": .*"m"'):
        run_from_template(one, Store(template("two", metrics=["m"])), name="r")
    with pytest.raises(LookupError, match="gone not found"):  # the lookup's own error (the client's not-found)
        run_from_template(template("root", refs=[("gone", True)]), Store(), name="r")


def test_parse_argument() -> None:
    assert parse_argument("q=sum(x{a=\"b\"})") == ("q", "sum(x{a=\"b\"})")
    assert parse_argument("empty=") == ("empty", "")
    for bad in ("novalue", "=v"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            parse_argument(bad)


# --------------------------------------------------------------------------- get analysisrun


def measurement(phase: str, seconds_ago: float, value: str = "", **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"phase": phase, "startedAt": stamp(seconds_ago + 1), "finishedAt": stamp(seconds_ago)}
    if value:
        m["value"] = value
    m.update(extra)
    return m


def failed_run() -> dict[str, Any]:
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "demo-6f8f9c-3-1", "namespace": "prod", "creationTimestamp": stamp(300)},
        "spec": {
            "args": [
                {"name": "service", "value": "demo-canary"},
                {"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
                {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
            "metrics": [
                {"name": "success-rate", "count": 4, "interval": "30s", "provider": {"prometheus": {}}},
                {"name": "latency-p99", "provider": {"prometheus": {}}},
                {"name": "smoke", "provider": {"job": {}}},
                {"name": "later", "provider": {"web": {}}},
            ],
            "dryRun": [{"metricName": "smoke"}],
        },
        "status": {
            "phase": "Failed",
            "message": 'Metric "latency-p99" assessed Failed due to failed (2) > failureLimit (1)',
            "metricResults": [
                {"name": "success-rate", "phase": "Successful", "count": 4, "successful": 4, "measurements": [
                    measurement("Successful", 150, "[0.991]"),
                    measurement("Successful", 120, "[0.993]"),
                    measurement("Successful", 90, "[0.995]"),
                    measurement("Successful", 60, "[0.998]"),
                ]},
                {"name": "latency-p99", "phase": "Failed", "count": 3, "successful": 1, "failed": 2, "measurements": [
                    measurement("Successful", 120, "[0.21]"),
                    measurement("Failed", 90, "[0.74]"),
                    measurement("Failed", 60, "[0.82]"),
                ]},
                {"name": "smoke", "phase": "Error", "count": 1, "error": 1, "dryRun": True,
                 "message": "job failed", "measurements": [
                     measurement("Error", 30, message='pods "smoke" is forbidden',
                                 metadata={"job-name": "demo-6f8f9c-3-1-smoke-1"}),
                 ]},
            ],
        },
    }


FAILED_RUN = """\
Name:            demo-6f8f9c-3-1
Namespace:       prod
Status:          ✖ Failed
Message:         Metric "latency-p99" assessed Failed due to failed (2) > failureLimit (1)
Args:            service=demo-canary
                 token=<secret api/token>
                 ns=<field metadata.namespace>

METRIC        STATUS        COUNT  INFO         MESSAGE
success-rate  ✔ Successful  4/4    ✔ 4
latency-p99   ✖ Failed      3      ✔ 1,✖ 2
smoke         ⚠ Error       1      ⚠ 1 dry-run  job failed
later         ◷ Pending     0

Last measurements (up to 3 per metric):
METRIC        STATUS        VALUE                        AGE  MESSAGE
success-rate  ✔ Successful  [0.993]                      2m
success-rate  ✔ Successful  [0.995]                      90s
success-rate  ✔ Successful  [0.998]                      60s
latency-p99   ✔ Successful  [0.21]                       2m
latency-p99   ✖ Failed      [0.74]                       90s
latency-p99   ✖ Failed      [0.82]                       60s
smoke         ⚠ Error       job/demo-6f8f9c-3-1-smoke-1  30s  pods "smoke" is forbidden
"""


def test_get_analysisrun_golden_failed_run() -> None:
    assert render.render_analysisrun(analysisrun_info.analysisrun_detail(failed_run()), NOW) == FAILED_RUN


def test_get_analysisrun_new_run_and_termination() -> None:
    run = failed_run()
    del run["status"]
    run["spec"]["terminate"] = True
    run["spec"]["args"] = []
    run["spec"]["metrics"] = run["spec"]["metrics"][:1]
    assert render.render_analysisrun(analysisrun_info.analysisrun_detail(run), NOW) == """\
Name:            demo-6f8f9c-3-1
Namespace:       prod
Status:          ◷ Pending
Terminate:       requested

METRIC        STATUS     COUNT  INFO
success-rate  ◷ Pending  0/4
"""


def test_get_analysisrun_running_and_inconclusive_measurements_and_color() -> None:
    run = failed_run()
    run["status"] = {"phase": "Running", "metricResults": [
        {"name": "success-rate", "phase": "Running", "count": 2, "inconclusive": 1, "successful": 1,
         "measurements": [measurement("Inconclusive", 40, "[0.9]"),
                          {"phase": "Running", "startedAt": stamp(5)}]},
    ]}
    detail = analysisrun_info.analysisrun_detail(run, last=5)
    text = render.render_analysisrun(detail, NOW)
    assert "Status:          ◌ Running\n" in text
    assert "success-rate  ◌ Running  2/4    ✔ 1,? 1" in text
    assert "Last measurements (up to 5 per metric):" in text
    assert "success-rate  ? Inconclusive  [0.9]  40s" in text
    assert "success-rate  ◌ Running              5s" in text
    colored = render.render_analysisrun(detail, NOW, color=True)
    assert "\x1b[94m◌\x1b[0m Running" in colored
    assert render.visible_width(colored) == len(text)


def test_secret_arguments_are_never_shown_by_value() -> None:
    assert analysisrun_info.argument_text({"name": "t", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}) == \
        "t=<secret s/k>"
    assert analysisrun_info.argument_text({"name": "h", "valueFrom": {"podTemplateHashValue": "Latest"}}) == \
        "h=<podTemplateHash Latest>"
    assert analysisrun_info.argument_text({"name": "x"}) == "x=<unset>"


def test_tree_counts_match_the_metric_results() -> None:
    # `get rollout` shows the run's summed counts in INFO, as Argo: ✔, ✖, ?, ⚠ and no zeros
    assert render.counts_text(4, 2, 0, 1) == "✔ 4,✖ 2,⚠ 1"
    assert render.counts_text(0, 0, 0, 0) == ""


# --------------------------------------------------------------------------- arguments


def test_create_analysisrun_arguments() -> None:
    args = parse_args(["create", "analysisrun", "--from", "tpl", "-a", "a=1", "--argument", "b=2=3",
                       "--generate-name", "x-", "--instance-id", "blue", "-n", "prod"])
    assert (args.from_, args.argument, args.generate_name, args.instance_id, args.namespace) == (
        "tpl", ["a=1", "b=2=3"], "x-", "blue", "prod")
    args = parse_args(["create", "ar", "--from-cluster-template", "shared", "--name", "r"])
    assert (args.from_cluster_template, args.name, args.global_) == ("shared", "r", False)
    assert parse_args(["create", "ar", "--global=true", "--from", "shared"]).global_ is True


def test_create_analysisrun_name_and_generate_name_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["create", "ar", "--from", "t", "--name", "a", "--generate-name", "b-"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_terminate_and_get_analysisrun_arguments() -> None:
    assert parse_args(["terminate", "analysisrun", "a", "b"]).names == ["a", "b"]
    assert parse_args(["terminate", "ar", "a"]).names == ["a"]
    args = parse_args(["get", "ar", "run-1", "-w", "--timeout-seconds", "3"])
    assert (args.name, args.watch, args.timeout_seconds) == ("run-1", True, 3)
    assert parse_args(["get", "analysisruns", "run-1"]).watch is False
