"""Each notification service end to end against a local server speaking its API: Slack's Web API,
a Teams incoming webhook, a webhook, Apprise's JSON, and SMTP (aiosmtpd). Failures name the service and
never a secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from rollouts.notifications.config import Config, parse_config
from rollouts.notifications.decide import notifications_for
from rollouts.notifications.delivery import DeliveryError, send
from rollouts.notifications.subscriptions import Destination
from tests.fixtures.notify_servers import Mailbox, Recorder, http_server, smtp_server

SECRETS = {"slack-token": "xoxb-SECRET-1", "teams-path": "SECRET-2", "hook-token": "SECRET-3", "smtp-pass": "SECRET-4"}
PREFIX = "notifications.pyrollouts.io/subscribe.on-rollout-completed."
ROLLOUT: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "annotations": {
            PREFIX + "slack": "#deploys",
            PREFIX + "teams": "ops",
            PREFIX + "email": "dev@example.test",
            PREFIX + "github": "",
            PREFIX + "apprise": "",
        },
    },
    "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}},
    "status": {"currentPodHash": "abc", "phase": "Healthy"},
}
TEMPLATE = """\
message: Rollout {{.rollout.metadata.name}} has been completed.
email:
  subject: "[rollouts] {{.rollout.metadata.name}} completed"
slack:
  attachments: |
    [{"title": "{{.rollout.metadata.name}}", "fields": [
      {{range $i, $c := .rollout.spec.template.spec.containers}}{{if $i}},{{end}}
      {"title": "{{$c.name}}", "value": "{{$c.image}}"}{{end}}]}]
teams:
  title: Rollout completed
  facts: |
    [{"name": "Rollout", "value": "{{.rollout.metadata.name}}"},
     {"name": "Phase", "value": "{{.rollout.status.phase}}"}]
webhook:
  github:
    method: POST
    path: /repos/shop/statuses/{{.rollout.status.currentPodHash}}
    body: |
      {"state": "success", "description": "{{.rollout.metadata.name}} is {{.rollout.status.phase}}"}
"""


def _config(url: str, smtp_port: int) -> Config:
    data = {
        "service.slack": f"token: $slack-token\napiURL: {url}/slack/\nusername: rollouts",
        "service.teams": f"recipientUrls:\n  ops: {url}/teams/$teams-path",
        "service.email": (
            f"host: 127.0.0.1\nport: {smtp_port}\nfrom: rollouts@example.test\ntls: none\n"
            "username: rollouts\npassword: $smtp-pass"
        ),
        "service.webhook.github": (
            f"url: {url}/github\nheaders:\n- name: Authorization\n  value: token $hook-token\n"
            "- name: Content-Type\n  value: application/json"
        ),
        "service.apprise": f"urls: ['json://{url.removeprefix('http://')}/apprise']",
        "template.rollout-completed": TEMPLATE,
    }
    secret = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in SECRETS.items()}}
    return parse_config(data, secret)


@pytest.fixture
def servers() -> Iterator[tuple[Config, Recorder, Mailbox]]:
    with http_server() as (url, recorder), smtp_server(("rollouts", "SECRET-4")) as (port, mailbox):
        yield _config(url, port), recorder, mailbox


def _send_all(config: Config) -> None:
    for note in notifications_for(config, ROLLOUT, "RolloutCompleted", "Rollout completed"):
        send(config, note.content, note.destination)


def test_slack_posts_to_chat_post_message_with_the_token(servers: tuple[Config, Recorder, Mailbox]) -> None:
    config, recorder, _ = servers
    _send_all(config)
    [request] = recorder.to("/slack/")
    assert request.path == "/slack/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-SECRET-1"
    body = request.json()
    assert body["channel"] == "#deploys" and body["username"] == "rollouts"
    assert body["text"] == "Rollout web has been completed."
    assert body["attachments"] == [{"title": "web", "fields": [{"title": "web", "value": "nginx:2"}]}]


def test_teams_posts_a_connector_card_to_the_recipients_webhook(servers: tuple[Config, Recorder, Mailbox]) -> None:
    config, recorder, _ = servers
    _send_all(config)
    [request] = recorder.to("/teams/")
    assert request.path == "/teams/SECRET-2"
    card = request.json()
    assert card["title"] == "Rollout completed" and card["text"] == "Rollout web has been completed."
    assert card["sections"][0]["facts"] == [{"name": "Rollout", "value": "web"}, {"name": "Phase", "value": "Healthy"}]


def test_webhook_sends_the_templates_request(servers: tuple[Config, Recorder, Mailbox]) -> None:
    config, recorder, _ = servers
    _send_all(config)
    [request] = recorder.to("/github")
    assert (request.method, request.path) == ("POST", "/github/repos/shop/statuses/abc")
    assert request.headers["authorization"] == "token SECRET-3"
    assert request.json() == {"state": "success", "description": "web is Healthy"}


def test_email_goes_through_smtp(servers: tuple[Config, Recorder, Mailbox]) -> None:
    config, _, mailbox = servers
    _send_all(config)
    [(sender, to, message)] = mailbox.messages
    assert sender == "rollouts@example.test" and to == ["dev@example.test"]
    assert message["Subject"] == "[rollouts] web completed"
    parts = message.get_payload() if message.is_multipart() else [message]
    assert any("Rollout web has been completed." in str(p.get_payload(decode=True)) for p in parts)  # type: ignore[union-attr]


def test_apprise_reaches_what_apprise_reaches(servers: tuple[Config, Recorder, Mailbox]) -> None:
    config, recorder, _ = servers
    _send_all(config)
    [request] = recorder.to("/apprise")
    assert request.json()["message"] == "Rollout web has been completed."
    assert request.json()["title"] == "[rollouts] web completed"


@pytest.mark.parametrize("service", ["slack", "teams", "github", "apprise"])
def test_a_failing_service_raises_naming_it_without_secrets(
    servers: tuple[Config, Recorder, Mailbox], service: str
) -> None:
    config, recorder, _ = servers
    recorder.fail_paths.update({"/slack/", "/teams/", "/github", "/apprise"})
    [note] = [
        n
        for n in notifications_for(config, ROLLOUT, "RolloutCompleted", "done")
        if n.destination.service == service
    ]
    with pytest.raises(DeliveryError) as info:
        send(config, note.content, note.destination)
    assert repr(service) in str(info.value)
    assert not [s for s in SECRETS.values() if s in str(info.value)]


def test_an_unreachable_smtp_server_fails_without_the_password() -> None:
    config = _config("http://127.0.0.1:9", 9)  # nothing listens on the discard port
    with pytest.raises(DeliveryError, match="email service 'email'") as info:
        send(config, {"message": "m"}, Destination("email", "dev@example.test"))
    assert "SECRET-4" not in str(info.value)


def test_an_unknown_service_names_the_key_to_add() -> None:
    with pytest.raises(DeliveryError, match=r"add a service.<type>.pager key"):
        send(parse_config({}), {"message": "m"}, Destination("pager", "x"))
