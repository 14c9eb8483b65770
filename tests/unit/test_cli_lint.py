"""`kubectl rollouts lint`: schema and semantic checks, offline."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts import schema
from rollouts.cli import lint
from rollouts.cli.main import main

REPO = Path(__file__).resolve().parent.parent.parent

BASE: dict[str, Any] = {
    "apiVersion": "pyrollouts.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
        },
        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}},
    },
}


def variant(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return doc


def problems(doc: dict[str, Any]) -> list[str]:
    return [str(p) for p in lint.semantic_problems(doc)]


def test_a_sound_rollout_has_no_problems() -> None:
    assert problems(BASE) == []


DURATION = "Duration needs to be greater than 0 (seconds, or a duration such as 30s, 5m, 1h)"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (variant(spec__strategy={}),
         "spec.strategy: Required value: Rollout has missing field "
         "'.spec.strategy.canary or .spec.strategy.blueGreen'"),
        (variant(spec__strategy={"canary": {}, "blueGreen": {"activeService": "a"}}),
         'spec.strategy: Invalid value: "blueGreen: true canary: true": Multiple Strategies can not be listed'),
        (variant(spec__strategy={"canary": {"steps": [{"setWeight": 120}]}}),
         "spec.strategy.canary.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100"),
        (variant(spec__strategy={"canary": {"steps": [{"setWeight": 20, "pause": {}}]}}),
         'spec.strategy.canary.steps[0]: Invalid value: "setWeight pause": Step must have exactly one of the '
         "following set: experiment, setWeight, setCanaryScale, plugin or pause (found setWeight, pause)"),
        (variant(spec__strategy={"canary": {"steps": [{}]}}),
         "spec.strategy.canary.steps[0]: Invalid value: {}: Step must have one of the following set: "
         "experiment, setWeight, setCanaryScale, plugin or pause"),
        (variant(spec__strategy={"canary": {"canaryService": "svc", "stableService": "svc"}}),
         'spec.strategy.canary.stableService: Invalid value: "svc": This rollout uses the same service for the '
         "stable and canary services, but two different services are required."),
        (variant(spec__strategy={"canary": {"maxSurge": 0, "maxUnavailable": "0%"}}),
         "spec.strategy.canary.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero"),
        (variant(spec__selector={"matchLabels": {"app": "other"}}),
         'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`'),
        (variant(spec__selector=None),
         "spec.selector: Required value: Rollout has missing field '.spec.selector'"),
        (variant(spec__strategy={"canary": {"steps": [{"pause": {"duration": "10x"}}]}}),
         f'spec.strategy.canary.steps[0].pause.duration: Invalid value: "10x": {DURATION}'),
        (variant(spec__strategy={"canary": {"steps": [{"pause": {"duration": -5}}]}}),
         f"spec.strategy.canary.steps[0].pause.duration: Invalid value: -5: {DURATION}"),
        (variant(spec__minReadySeconds=700),
         "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"),
        (variant(spec__workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
         'spec.template: Invalid value: "": template must be empty for workload reference rollout; '
         "remove spec.template or spec.workloadRef"),
        # lint's extra rules (not in rollouts.model.spec yet)
        (variant(spec__strategy={"canary": {"trafficRouting": {"nginx": {"stableIngress": "web"}}}}),
         'spec.strategy.canary.stableService: Invalid value: "": '
         "Canary service and Stable service must to be set to use Traffic Routing"),
        (variant(spec__strategy={"canary": {"steps": [{"setCanaryScale": {"weight": 5}}]}}),
         "spec.strategy.canary.trafficRouting: Required value: SetCanaryScale requires TrafficRouting to be set"),
        (variant(spec__strategy={"canary": {"canaryService": "c", "stableService": "s", "trafficRouting": {
            "smi": {}, "maxTrafficWeight": 1000}}}),
         "spec.strategy.canary.trafficRouting.maxTrafficWeight: Invalid value: 1000: "
         "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins"),
    ],
)
def test_semantic_problem(doc: dict[str, Any], expected: str) -> None:
    assert expected in problems(doc)


def test_workload_ref_template_is_taken_from_the_same_file() -> None:
    ro = variant(spec__template=None, spec__workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
    assert problems(ro) == []  # the Deployment is elsewhere: its template cannot be checked offline
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {"metadata": {"labels": {"app": "other"}},
                                        "spec": {"containers": [{"name": "web", "image": "x"}]}}}}
    assert [str(p) for p in lint.semantic_problems(ro, [ro, deployment])] == [
        'spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`'
    ]


def test_workload_ref_without_a_selector_takes_the_deployments() -> None:
    ro = variant(spec__template=None, spec__selector=None,
                 spec__workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
    assert problems(ro) == []  # Argo: the selector is the Deployment's
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "x"}]}}
    deployment: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}
    assert lint.semantic_problems(ro, [ro, deployment]) == []
    deployment["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert [str(p) for p in lint.semantic_problems(ro, [ro, deployment])] == [
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`'
    ]
    without = variant(spec__selector=None)
    assert "spec.selector: Required value: Rollout has missing field '.spec.selector'" in problems(without)


def test_ping_pong_needs_istio_two_services_and_no_canary_or_stable_service() -> None:
    istio = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
    ping_pong = {"pingService": "web-ping", "pongService": "web-pong"}
    sound = variant(spec__strategy={"canary": {"pingPong": ping_pong, "trafficRouting": istio}})
    assert problems(sound) == []
    without_istio = variant(spec__strategy={"canary": {"pingPong": ping_pong}})
    assert [p.split(": Invalid value:")[0] for p in problems(without_istio)] == ["spec.strategy.canary.pingPong"]
    assert "ping-pong needs trafficRouting.istio" in problems(without_istio)[0]
    same = variant(spec__strategy={"canary": {"pingPong": {"pingService": "a", "pongService": "a"},
                                              "trafficRouting": istio, "canaryService": "c"}})
    assert [p.split(": Invalid value:")[0] for p in problems(same)] == [
        "spec.strategy.canary.pingPong.pongService", "spec.strategy.canary.canaryService"
    ]
    subsets = {"istio": {"virtualService": {"name": "web"},
                         "destinationRule": {"name": "web", "canarySubsetName": "c", "stableSubsetName": "s"}}}
    subset_level = variant(spec__strategy={"canary": {"pingPong": ping_pong, "trafficRouting": subsets}})
    field = "spec.strategy.canary.trafficRouting.istio.destinationRule"
    assert any(p.startswith(field) for p in problems(subset_level))


@pytest.mark.parametrize("duration", [30, "30", "30s", "1m30s", "1.5h", "250ms", "0"])
def test_valid_pause_durations(duration: Any) -> None:
    assert problems(variant(spec__strategy={"canary": {"steps": [{"pause": {"duration": duration}}]}})) == []


def test_maxsurge_default_is_not_zero() -> None:
    assert problems(variant(spec__strategy={"canary": {"maxUnavailable": 0}})) == []


def test_analysis_template_durations() -> None:
    template = {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {"metrics": [
            {"name": "ok", "interval": "1m", "initialDelay": "30s", "provider": {"web": {"url": "http://x"}}},
            {"name": "bad", "interval": "5 minutes", "provider": {"web": {"url": "http://x"}}},
        ]},
    }
    assert [str(p) for p in lint.analysis_problems(template)] == [
        'spec.metrics[1].interval: Invalid value: "5 minutes": not a duration: use a Go duration such as 30s, 5m or 1h'
    ]


def test_lint_documents_schema_unknown_fields_and_semantics_once_per_field() -> None:
    bad = variant(spec__strategy={"canary": {"steps": [{"setWeight": 150}]}}, spec__bogus=1)
    checked, findings = lint.lint_documents([bad, {"apiVersion": "v1", "kind": "Service"}], schema.load_crds())
    assert checked == 1
    texts = [str(f) for f in findings]
    assert 'Rollout "web": unknown field "spec.bogus"' in texts
    # the schema already rejects setWeight 150; the semantic check does not repeat it
    assert sum("steps[0].setWeight" in t for t in texts) == 1


def test_every_example_lints_clean() -> None:
    crds = schema.load_crds()
    for path in sorted((REPO / "examples").glob("*.yaml")):
        checked, findings = lint.lint_documents(lint.load_documents(path), crds)
        assert checked >= 1 and findings == [], (path, findings)


def test_schema_errors_first_and_semantic_checks_that_cannot_run_say_so() -> None:
    broken = variant(spec__replicas="three")
    checked, findings = lint.lint_documents([broken], schema.load_crds())
    texts = [str(f) for f in findings]
    assert checked == 1 and texts[0].startswith('Rollout "web": spec.replicas: Invalid value: "string"')
    assert texts[1] == 'Rollout "web": semantic checks skipped until the schema errors are fixed'


def test_lint_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump_all([variant(spec__strategy={"canary": {"steps": [{}]}})]))
    assert main(["lint", "-f", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert f'{manifest}: Rollout "web": spec.strategy.canary.steps[0]: Invalid value' in out
    assert out.endswith("1 problem(s) in 1 object(s)\n")
    assert main(["lint", "-f", str(tmp_path / "missing.yaml")]) == 1
    assert "Error: cannot read" in capsys.readouterr().err


def test_lint_says_what_the_controller_refuses_although_the_api_server_accepts_it(tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]
                                                                                  ) -> None:
    experiment = variant(spec__strategy={"canary": {"steps": [{"experiment": {"templates": []}}]}})
    huge = variant(spec__replicas=2**40)
    template = {"apiVersion": "pyrollouts.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
                "spec": {"metrics": [{"name": "m", "count": -1, "provider": {"prometheus": {
                    "address": "not a url", "query": "up"}}}]}}
    manifest = tmp_path / "accepted.yaml"
    manifest.write_text(yaml.safe_dump_all([experiment, huge, template]))
    assert main(["lint", "-f", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert "spec.strategy.canary.steps[0].experiment.templates: Required value" in out
    # said by the schema check or by ours, whichever sees it first (a sandbox with int32 formats has both)
    assert "spec.replicas: Invalid value: 1099511627776" in out
    assert "spec.metrics[0].count: Invalid value: -1: must be between 0 and 2147483647" in out
    assert 'spec.metrics[0].provider.prometheus.address: Invalid value: "not a url": not a URL' in out
