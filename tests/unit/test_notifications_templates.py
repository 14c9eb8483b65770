"""Notification templates (Go's text/template subset), the ConfigMap's keys, subscriptions and which
notifications an Event calls for."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rollouts.notifications.catalog import BUILTIN_TRIGGERS, trigger_of
from rollouts.notifications.config import ConfigError, parse_config
from rollouts.notifications.decide import notifications_for
from rollouts.notifications.gotemplate import TemplateError, render
from rollouts.notifications.subscriptions import Destination, destinations

ROLLOUT: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop", "annotations": {}},
    "spec": {
        "replicas": 4.0,  # JSON numbers print as Go prints a float64 that is whole
        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "fb:2"}]}},
    },
    "status": {"currentStepIndex": 1, "currentPodHash": "abc", "phase": "Paused"},
}
DATA = {"rollout": ROLLOUT}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Rollout {{.rollout.metadata.name}} has {{ .rollout.spec.replicas }}", "Rollout web has 4"),
        ("{{.rollout.metadata.nope}}|{{.rollout.nope.deeper}}", "<no value>|<no value>"),
        ("{{if .rollout.spec.strategy.blueGreen}}BG{{else if .rollout.spec.strategy.canary}}C{{else}}?{{end}}", "C"),
        ("{{if not .rollout.spec.paused}}running{{end}}", "running"),
        ("{{if eq .rollout.status.phase \"Paused\" \"Degraded\"}}look{{end}}", "look"),
        ("{{range $i, $c := .rollout.spec.template.spec.containers}}{{if $i}},{{end}}{{$c.name}}={{$c.image}}{{end}}",
         "web=nginx:1,log=fb:2"),
        ("{{range .rollout.spec.template.spec.containers}}[{{.name}}]{{end}}", "[web][log]"),
        ("{{range .rollout.status.nothing}}x{{else}}none{{end}}", "none"),
        ("{{with .rollout.metadata}}{{.namespace}}/{{.name}}{{end}}", "shop/web"),
        ("step {{add .rollout.status.currentStepIndex 1}}/{{len .rollout.spec.strategy.canary.steps}}", "step 2/2"),
        ("{{ .rollout.metadata.name | upper | printf \"%s!\" }}", "WEB!"),
        ("{{ $n := .rollout.metadata.name }}{{ $n }}-{{ $.rollout.metadata.namespace }}", "web-shop"),
        ("a  {{- /* a comment */ -}}  b", "ab"),
        ("{{ index .rollout.spec.template.spec.containers 1 \"image\" }}", "fb:2"),
        ("{{ toJson .rollout.status.currentStepIndex }} {{ default \"none\" .rollout.status.message }}", "1 none"),
    ],
)
def test_go_template_subset(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{if .a}}x", "missing {{end}}"),
        ("{{end}}", "without if"),
        ("{{ nosuch .a }}", 'function "nosuch" not defined'),
        ("{{ .a | }}", "empty"),
        ("{{ $undefined }}", "undefined variable"),
    ],
)
def test_template_errors_say_what(source: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        render(source, DATA)


def test_templates_reach_only_mapping_keys() -> None:
    assert render("{{.rollout.metadata.__class__}}", DATA) == "<no value>"
    with pytest.raises(TemplateError):
        render("{{.rollout.metadata.name.upper}}", DATA)


def test_event_reasons_name_argo_triggers() -> None:
    for reason, trigger in BUILTIN_TRIGGERS.items():
        assert trigger_of(reason) == trigger
    assert trigger_of("AnalysisRunRunning") == "on-analysis-run-running"


def test_subscriptions_both_prefixes_several_recipients_and_default_triggers() -> None:
    found = destinations(
        {
            "notifications.pyrollouts.io/subscribe.on-rollout-completed.slack": "deploys; ops",
            "notifications.argoproj.io/subscribe.on-rollout-aborted.teams": "oncall",
            "notifications.argoproj.io/subscribe.hook": "",
            "unrelated/annotation": "x",
        },
        default_triggers=["on-rollout-aborted"],
    )
    assert found == {
        "on-rollout-completed": {Destination("slack", "deploys"), Destination("slack", "ops")},
        "on-rollout-aborted": {Destination("teams", "oncall"), Destination("hook", "")},
    }


def _secret(**values: str) -> dict[str, Any]:
    return {"data": {k.replace("_", "-"): base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def test_config_services_secrets_and_overrides() -> None:
    config = parse_config(
        {
            "service.slack": "token: $slack-token\nusername: rollouts",
            "service.webhook.github": "url: https://example.test\nheaders:\n- name: Authorization\n  value: token $gh",
            "template.rollout-completed": "message: done {{.rollout.metadata.name}}",
            "trigger.on-custom": "- when: rollout.status.phase == 'Paused'\n  send: [rollout-paused]",
            "defaultTriggers": "- on-rollout-completed",
        },
        _secret(slack_token="xoxb-1", gh="ghp-2"),
    )
    assert config.services["slack"].options == {"token": "xoxb-1", "username": "rollouts"}
    assert config.services["github"].type == "webhook"
    assert config.services["github"].options["headers"][0]["value"] == "token ghp-2"
    assert config.secrets == {"xoxb-1", "ghp-2"}
    assert config.redact("a xoxb-1 b ghp-2") == "a *** b ***"
    assert config.default_triggers == ["on-rollout-completed"]
    assert set(BUILTIN_TRIGGERS.values()) <= set(config.triggers)  # the built-ins stay


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"service.pigeon": "x: 1"}, "unknown service type 'pigeon'"),
        ({"template.x": "message: [unclosed"}, "'template.x' is not valid YAML"),
        ({"trigger.on-x": "- when: 'true'"}, "every entry needs `send"),
    ],
)
def test_config_errors_name_the_key_and_fix(data: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error) as info:
        parse_config(data)
    assert "pyrollouts-notification-configmap" in str(info.value)


def _subscribed(**annotations: str) -> dict[str, Any]:
    meta = {**ROLLOUT["metadata"], "annotations": annotations}
    return {**ROLLOUT, "metadata": meta}


def test_an_event_notifies_its_subscribers_with_the_rendered_template() -> None:
    config = parse_config({"service.slack": "token: t"})
    rollout = _subscribed(**{"notifications.pyrollouts.io/subscribe.on-rollout-step-completed.slack": "deploys"})
    [note] = notifications_for(config, rollout, "RolloutStepCompleted", "Step Completed. Step Index: 0")
    assert note.content["message"] == "Rollout web step number 1/2 has been completed."
    assert note.destination == Destination("slack", "deploys")
    assert notifications_for(config, rollout, "RolloutCompleted", "done") == []  # not subscribed
    again = notifications_for(config, rollout, "RolloutStepCompleted", "Step Completed. Step Index: 0")
    assert [n.key for n in again] == [note.key]  # the same occurrence, the same key
    later = {**rollout, "status": {**rollout["status"], "currentStepIndex": 2}}
    [next_step] = notifications_for(config, later, "RolloutStepCompleted", "Step Completed. Step Index: 1")
    assert next_step.key != note.key


def test_when_and_once_per_conditions() -> None:
    config = parse_config(
        {
            "trigger.on-rollout-paused": (
                "- when: rollout.status.phase == 'Degraded'\n  send: [rollout-paused]\n"
                "- when: rollout.status.phase == 'Paused'\n  oncePer: rollout.status.currentPodHash\n"
                "  send: [rollout-aborted]"
            ),
        }
    )
    rollout = _subscribed(**{"notifications.pyrollouts.io/subscribe.on-rollout-paused.slack": "x"})
    [note] = notifications_for(config, rollout, "RolloutPaused", "paused")
    assert note.template == "rollout-aborted"
    assert note.key == "on-rollout-paused:abc:rollout-aborted:slack:x"


def test_a_broken_template_is_a_config_error_naming_it() -> None:
    config = parse_config({"template.rollout-completed": "message: '{{if .rollout}}'"})
    rollout = _subscribed(**{"notifications.pyrollouts.io/subscribe.on-rollout-completed.slack": "x"})
    with pytest.raises(ConfigError, match=r"template\.rollout-completed message: .*missing"):
        notifications_for(config, rollout, "RolloutCompleted", "done")
