"""Notifications end to end on the sandbox: a controller reading the notification ConfigMap and Secret of
its namespace sends, for the Events of subscribed Rollouts, to Slack, Teams, email, a webhook and Apprise
(local servers speaking their APIs); once per event, also across a restart; a failing service becomes a
NotificationFailed Event and never holds the rollout up; no secret in the log or an Event. The plugin
lists the templates and renders or sends one."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rollouts.controller.client import Client
from rollouts.controller.kubeconfig import load_connection
from rollouts.controller.notifier import Notifier
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess, running_controller, runs_own_controllers
from tests.fixtures.manifests import READY_AFTER, Step, held_template, rollout_manifest
from tests.fixtures.notify_servers import Mailbox, Recorder, http_server, smtp_server
from tests.fixtures.plugin import Plugin
from tests.fixtures.rollout import given

pytestmark = [pytest.mark.kubectl, runs_own_controllers]

SECRETS = {"slack-token": "xoxb-NOTIFY-1", "teams-path": "NOTIFY-2", "hook-token": "NOTIFY-3"}
FAST = {READY_AFTER: "0.1s"}
SUBSCRIBE = "notifications.pyrollouts.io/subscribe."
STEPS: list[Step] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
CONFIGMAP, SECRET = "pyrollouts-notification-configmap", "pyrollouts-notification-secret"


@dataclass
class Services:
    url: str
    http: Recorder
    mail: Mailbox
    smtp_port: int


def config_objects(services: Services) -> list[dict[str, Any]]:
    data = {
        "service.slack": f"token: $slack-token\napiURL: {services.url}/slack/",
        "service.teams": f"recipientUrls:\n  ops: {services.url}/teams/$teams-path",
        "service.email": f"host: 127.0.0.1\nport: {services.smtp_port}\nfrom: rollouts@example.test\ntls: none",
        "service.webhook.deploys": (
            f"url: {services.url}/deploys\nheaders:\n- name: Authorization\n  value: Bearer $hook-token"
        ),
        "service.webhook.down": f"url: {services.url}/down",
        "service.apprise": f"urls: ['json://{services.url.removeprefix('http://')}/apprise']",
        "template.rollout-completed": (
            "message: Rollout {{.rollout.metadata.name}} completed with "
            "{{range .rollout.spec.template.spec.containers}}{{.image}}{{end}}\n"
            "webhook:\n  deploys:\n    method: POST\n    path: /{{.rollout.metadata.namespace}}\n"
            '    body: \'{"rollout": "{{.rollout.metadata.name}}", '
            '"revision": "{{index .rollout.metadata.annotations \"rollouts.pyrollouts.io/revision\"}}"}\'\n'
        ),
    }
    secret = {k: base64.b64encode(v.encode()).decode() for k, v in SECRETS.items()}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP}, "data": data},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "data": secret},
    ]


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with http_server() as (url, recorder), smtp_server() as (port, mailbox):
        recorder.fail_paths.add("/down")
        yield Services(url, recorder, mailbox, port)


@pytest.fixture(scope="module")
def config_namespace(cluster: Cluster, services: Services) -> str:
    namespace = cluster.new_namespace("notify-config")
    cluster.apply(namespace, *config_objects(services))
    return namespace


@pytest.fixture(scope="module")
def controller(
    cluster: Cluster, config_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    flags = ["--notifications-namespace", config_namespace]
    with running_controller(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("notify"), flags) as proc:
        yield proc


def subscribed(name: str, subscriptions: dict[str, str]) -> dict[str, Any]:
    manifest = rollout_manifest(name, replicas=2, steps=STEPS, metadata={"annotations": subscriptions})
    manifest["spec"]["template"]["metadata"].setdefault("annotations", {}).update(FAST)
    return manifest


def test_rollout_events_reach_every_service_once(
    cluster: Cluster, controller: ControllerProcess, services: Services
) -> None:
    completed = SUBSCRIBE + "on-rollout-completed."
    rollout = given(cluster, "notify").rollout(
        subscribed(
            "web",
            {
                completed + "slack": "deploys",
                completed + "teams": "ops",
                completed + "email": "dev@example.test",
                completed + "apprise": "",
                "notifications.argoproj.io/subscribe.on-rollout-completed.deploys": "",
                SUBSCRIBE + "on-rollout-step-completed.slack": "steps",
                SUBSCRIBE + "on-rollout-updated.slack": "updates",
            },
        )
    )
    rollout.apply().wait_healthy()
    rollout.set_image("nginx:2").wait_healthy()
    ns = rollout.ns

    def slack_to(channel: str) -> list[dict[str, Any]]:
        return [r.json() for r in services.http.to("/slack/") if r.json()["channel"] == channel]

    cluster.wait("two completions on Slack", lambda: len(slack_to("deploys")) == 2 or None)
    assert [m["text"] for m in slack_to("deploys")] == [
        "Rollout web completed with nginx:1",
        "Rollout web completed with nginx:2",
    ]
    cluster.wait("two steps completed on Slack", lambda: len(slack_to("steps")) == 2 or None)
    cluster.wait("revisions 1 and 2 on Slack", lambda: len(slack_to("updates")) == 2 or None)
    assert [m["text"] for m in slack_to("updates")] == ["Rollout web has been updated."] * 2
    cluster.wait("two Teams cards", lambda: len(services.http.to("/teams/NOTIFY-2")) == 2 or None)
    cluster.wait("two Apprise posts", lambda: len(services.http.to("/apprise")) == 2 or None)
    cluster.wait("two mails", lambda: len([m for m in services.mail.messages if m[1] == ["dev@example.test"]]) == 2)
    hooks = cluster.wait("two webhook calls", lambda: (h := services.http.to(f"/deploys/{ns}")) and len(h) == 2 and h)
    assert hooks[-1].headers["authorization"] == "Bearer NOTIFY-3"
    assert [h.json() for h in hooks] == [{"rollout": "web", "revision": "1"}, {"rollout": "web", "revision": "2"}]
    # what was sent is recorded on the Rollout, one key per trigger occurrence, template and destination
    notified = json.loads(rollout.live()["metadata"]["annotations"]["notified.notifications.pyrollouts.io"])
    assert len([k for k in notified if k.startswith("on-rollout-completed:")]) == 10
    assert "NotificationFailed" not in rollout.reasons()

    # A restarted controller sends nothing again; the next revision's notifications are the marker.
    controller.stop()
    controller.start()
    rollout.set_image("nginx:3").wait_healthy()
    cluster.wait("the third completion on Slack", lambda: len(slack_to("deploys")) == 3 or None)
    cluster.wait("the third Teams card", lambda: len(services.http.to("/teams/")) == 3 or None)
    cluster.wait("the third mail", lambda: len(services.mail.messages) == 3 or None)
    assert (len(slack_to("steps")), len(slack_to("updates")), len(services.http.to("/apprise"))) == (4, 3, 3)


def test_a_failing_service_becomes_an_event_and_never_holds_the_rollout(
    cluster: Cluster, controller: ControllerProcess, services: Services
) -> None:
    rollout = given(cluster, "notify-down").rollout(
        subscribed("api", {SUBSCRIBE + "on-rollout-completed.down": "", SUBSCRIBE + "on-rollout-updated.deploys": ""})
    )
    rollout.apply().wait_healthy()
    rollout.set_image("nginx:2").wait_healthy()  # while the notifications of the first revision are retried
    message = cluster.wait(
        "a NotificationFailed Event",
        lambda: next((m for r, m in rollout.events() if r == "NotificationFailed"), None),
        timeout=30,
    )
    assert "webhook service 'down'" in message and "HTTP 500" in message and "4 attempts" in message
    attempts = services.http.to("/down")
    assert len(attempts) >= 4


def test_no_secret_in_the_log_or_an_event(cluster: Cluster, controller: ControllerProcess) -> None:
    events = cluster.kubectl("get", "events", "-A", "-o", "json").stdout
    logs = controller.logs()
    for value in SECRETS.values():
        assert value not in logs
        assert value not in events
    assert "sent on-rollout-completed" in logs


def test_plugin_lists_renders_and_sends_a_template(
    cluster: Cluster, controller: ControllerProcess, services: Services, config_namespace: str
) -> None:
    rollout = given(cluster, "notify-plugin").rollout(subscribed("shop", {}))
    rollout.apply().wait_healthy()
    plugin = Plugin.on_cluster(cluster)
    listing = plugin.ok("notifications", "template", "get", "--config-namespace", config_namespace)
    assert re.search(r"^rollout-completed +Rollout \{\{\.rollout\.metadata\.name\}\} completed with", listing, re.M)
    assert "analysis-run-failed" in listing  # Argo's built-ins are there too
    rendered = plugin.ok(
        "-n", rollout.ns, "notifications", "template", "notify", "rollout-completed", "shop",
        "--config-namespace", config_namespace,
    )
    assert "message: Rollout shop completed with nginx:1" in rendered
    before = len([r for r in services.http.to("/slack/") if r.json()["channel"] == "cli"])
    sent = plugin.ok(
        "-n", rollout.ns, "notifications", "template", "notify", "rollout-completed", "shop",
        "--config-namespace", config_namespace, "--recipient", "slack:cli",
    )
    assert sent == "sent rollout-completed to slack:cli\n"
    cli = [r.json() for r in services.http.to("/slack/") if r.json()["channel"] == "cli"]
    assert len(cli) == before + 1 and cli[-1]["text"] == "Rollout shop completed with nginx:1"
    failed = plugin.run(
        "-n", rollout.ns, "notifications", "template", "notify", "rollout-completed", "shop",
        "--config-namespace", config_namespace, "--recipient", "down",
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: webhook service 'down': the webhook answered HTTP 500")


def test_with_two_controllers_only_the_leader_sends(
    cluster: Cluster,
    controller: ControllerProcess,
    services: Services,
    config_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    lease_ns = cluster.new_namespace("notify-lease")
    flags = ["--leader-elect", "--leader-election-namespace", lease_ns, "--notifications-namespace", config_namespace]
    with controller.stopped():
        pair = [
            ControllerProcess(cluster.kubeconfig, cluster.env, tmp_path_factory.mktemp("ha"), flags).start()
            for _ in range(2)
        ]
        try:
            rollout = given(cluster, "notify-ha").rollout(
                subscribed("ha", {SUBSCRIBE + "on-rollout-completed.slack": "ha"})
            )
            rollout.apply().wait_healthy(timeout=40)
            rollout.set_image("nginx:2").wait_healthy()

            def ha() -> list[Any]:
                return [r for r in services.http.to("/slack/") if r.json()["channel"] == "ha"]

            cluster.wait("two completions from the pair", lambda: len(ha()) == 2 or None)
            rollout.set_image("nginx:3").wait_healthy()
            cluster.wait("the third completion", lambda: len(ha()) == 3 or None)
            assert [r.json()["text"] for r in ha()] == [f"Rollout ha completed with nginx:{n}" for n in (1, 2, 3)]
            senders = [p for p in pair if "sent on-rollout-completed" in p.logs()]
            assert len(senders) == 1
        finally:
            for proc in pair:
                proc.stop()


def test_one_event_is_sent_once_however_often_it_is_reported_and_never_by_a_follower(
    cluster: Cluster, controller: ControllerProcess, services: Services, config_namespace: str
) -> None:
    subscriptions = {SUBSCRIBE + "on-rollout-completed.slack": "once"}
    rollout = given(cluster, "notify-once").rollout(subscribed("once", subscriptions))
    rollout.apply().wait_healthy()

    def once() -> list[Any]:
        return [r for r in services.http.to("/slack/") if r.json()["channel"] == "once"]

    cluster.wait("the controller's completion", lambda: len(once()) == 1 or None)
    live = rollout.live()

    async def report() -> None:
        """The same Event reported by a follower (its writes refused), then twice at once and once more by
        a leader (a restarted one: a new Notifier)."""
        conn = load_connection(str(cluster.kubeconfig))
        async with Client(conn, may_write=lambda: False) as follower, Client(conn) as leader:
            for client, times in ((follower, 1), (leader, 2), (leader, 1)):
                notifier = Notifier(client, config_namespace, backoff=())
                for _ in range(times):
                    notifier.on_event(live, "RolloutCompleted", "reported by hand")
                await notifier.idle()

    asyncio.run(report())
    assert [r.json()["text"] for r in once()] == ["Rollout once completed with nginx:1"] * 2


def test_analysis_and_abort_triggers(cluster: Cluster, controller: ControllerProcess, services: Services) -> None:
    """on-analysis-run-running, on-analysis-run-failed and on-rollout-aborted, from the Events the controller
    records on the Rollout (the test plays the analysis controller: the template's metric is held)."""
    namespace = given(cluster, "notify-analysis")
    steps: list[Step] = [
        {"setWeight": 25},
        {"analysis": {"templates": [{"templateName": "held"}], "args": [{"name": "canary-hash", "value": "x"}]}},
    ]
    triggers = ("on-analysis-run-running", "on-analysis-run-failed", "on-rollout-aborted")
    manifest = subscribed("checked", {f"{SUBSCRIBE}{t}.slack": "analysis" for t in triggers})
    manifest["spec"]["strategy"]["canary"]["steps"] = steps
    rollout = namespace.rollout(manifest, held_template("held", "success-rate", "canary-hash"))
    rollout.apply().wait_healthy()
    run = rollout.set_image("nginx:2").current_run("canary", "currentStepAnalysisRunStatus")

    def texts() -> list[str]:
        return [r.json()["text"] for r in services.http.to("/slack/") if r.json()["channel"] == "analysis"]

    cluster.wait("the running run on Slack", lambda: texts() == ["Rollout checked's analysis run is running."] or None)
    namespace.set_run_phase(run, "Failed", "assessed Failed")
    rollout.wait_degraded()
    cluster.wait("three notifications", lambda: len(texts()) == 3 or None)
    assert sorted(texts()[1:]) == ["Rollout checked has been aborted.", "Rollout checked's analysis run failed."]
