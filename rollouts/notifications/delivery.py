"""Sending one rendered notification to one destination, through the service's library.

Slack: ``slack_sdk`` (``token``, ``apiURL``, ``username``, ``icon``; the recipient is the channel).
Teams: ``pymsteams`` connector cards (``recipientUrls``: recipient -> incoming webhook URL).
Email: Apprise's SMTP (``host``, ``port``, ``from``, ``username``, ``password``, ``tls``; the recipient is
the address). Apprise: any Apprise URL in ``urls``. Webhook: ``httpx`` to ``url`` + the template's
``webhook.<service>.path`` with its ``method`` and ``body`` (Argo's webhook service).
Every function is blocking (the controller runs them in a thread) and raises :class:`DeliveryError`
with a message that names the service and never a secret."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from rollouts.notifications.config import Config, Service
from rollouts.notifications.subscriptions import Destination

TIMEOUT_SECONDS = 10.0
_LOG_PREFIX = re.compile(r"^.*? - [A-Z]+ - ")
# Apprise logs through its own logger (its errors come back to us through LogCapture): keep its lines,
# which may carry a URL, out of the controller's log.
logging.getLogger("apprise").propagate = False


class DeliveryError(Exception):
    """A notification that did not go out; the message names the service and why, without secrets."""


def _json_field(content: Mapping[str, Any], service: str, name: str) -> Any:
    raw = (content.get(service) or {}).get(name)
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError as exc:
        raise DeliveryError(f"template field {service}.{name} is not valid JSON after rendering: {exc}") from exc


# Each sender's library (slack_sdk, pymsteams, apprise, httpx) is imported when a message goes out, not with
# the controller: together they are about a tenth of its start-up, which every restart pays.


def _slack(service: Service, content: Mapping[str, Any], recipient: str) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    opts = service.options
    base = str(opts.get("apiURL") or "https://slack.com/api/")
    client = WebClient(token=opts.get("token"), base_url=base if base.endswith("/") else base + "/", timeout=10)
    extra = {k: v for k, v in (("username", opts.get("username")), ("icon_emoji", opts.get("icon"))) if v}
    try:
        client.chat_postMessage(
            channel=recipient,
            text=str(content.get("message") or ""),
            attachments=_json_field(content, "slack", "attachments"),
            blocks=_json_field(content, "slack", "blocks"),
            **extra,
        )
    except SlackApiError as exc:
        raise DeliveryError(
            f"Slack refused the message: {exc.response.get('error', exc.response.status_code)}"
        ) from None


def _teams(service: Service, content: Mapping[str, Any], recipient: str) -> None:
    urls = service.options.get("recipientUrls") or {}
    if recipient not in urls:
        raise DeliveryError(f"no recipientUrls entry {recipient!r} in the service's configuration; add one")
    import pymsteams

    teams = content.get("teams") or {}
    card = pymsteams.connectorcard(str(urls[recipient]), http_timeout=TIMEOUT_SECONDS)
    card.text(str(teams.get("text") or content.get("message") or " "))
    if teams.get("title"):
        card.title(str(teams["title"]))
    if teams.get("themeColor"):
        card.color(str(teams["themeColor"]))
    facts = _json_field(content, "teams", "facts")
    if facts:
        section = pymsteams.cardsection()
        for fact in facts:
            section.addFact(str(fact.get("name")), str(fact.get("value")))
        card.addSection(section)
    try:
        card.send()
    except pymsteams.TeamsWebhookException as exc:
        raise DeliveryError(f"Teams refused the card: {str(exc)[:200]}") from None
    except Exception as exc:  # requests' connection errors: a type name, no URL
        raise DeliveryError(f"Teams could not be reached ({type(exc).__name__})") from None


def _email_url(opts: Mapping[str, Any], recipient: str) -> str:
    user = str(opts.get("username") or "")
    password = str(opts.get("password") or "")
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    port = int(opts.get("port") or 587)
    tls = str(opts.get("tls") or ("ssl" if port == 465 else "starttls"))
    params = {"to": recipient, "from": str(opts.get("from") or user), "smtp": str(opts.get("host") or "")}
    if tls == "none":
        return f"mailto://{auth}{opts.get('host')}:{port}?{urlencode(params)}"
    return f"mailtos://{auth}{opts.get('host')}:{port}?{urlencode({**params, 'mode': tls})}"


def _apprise(urls: list[str], title: str, body: str, what: str, config: Config) -> None:
    import apprise

    sender = apprise.Apprise()
    for url in urls:
        if not sender.add(url):
            raise DeliveryError(f"{what}: an URL Apprise does not understand: {config.redact(url)}")
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
        sent = sender.notify(body=body or " ", title=title)
        # each line "<time> - <LEVEL> - <message>": keep the message
        lines = [_LOG_PREFIX.sub("", line) for line in captured.getvalue().splitlines() if line.strip()]
    if not sent:
        raise DeliveryError(f"{what} failed: {config.redact(lines[-1] if lines else 'no reason given')}")


def _email(service: Service, content: Mapping[str, Any], recipient: str, config: Config) -> None:
    email = content.get("email") or {}
    body = str(email.get("body") or content.get("message") or "")
    _apprise([_email_url(service.options, recipient)], str(email.get("subject") or ""), body, "email", config)


def _generic(service: Service, content: Mapping[str, Any], recipient: str, config: Config) -> None:
    urls = [str(u) for u in service.options.get("urls") or []]
    if not urls:
        raise DeliveryError("the apprise service has no `urls`; list Apprise URLs in its configuration")
    title = str((content.get("email") or {}).get("subject") or "")
    _apprise(urls, title, str(content.get("message") or ""), "apprise", config)


def _webhook(service: Service, content: Mapping[str, Any], recipient: str) -> None:
    import httpx

    opts = service.options
    request = (content.get("webhook") or {}).get(service.name) or {}
    url, path = str(opts.get("url") or ""), str(request.get("path") or "")
    if path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    headers = {str(h.get("name")): str(h.get("value")) for h in opts.get("headers") or []}
    basic = opts.get("basicAuth") or {}
    auth = (str(basic.get("username")), str(basic.get("password"))) if basic else None
    body = request.get("body")
    if body is None:  # no webhook section for this service: post the message as JSON
        body = json.dumps({"message": content.get("message") or ""})
        headers.setdefault("Content-Type", "application/json")
    try:
        reply = httpx.request(
            str(request.get("method") or "GET") if request else "POST",
            url,
            content=str(body).encode(),
            headers=headers,
            auth=auth,
            verify=not opts.get("insecureSkipVerify"),
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"the webhook could not be reached ({type(exc).__name__})") from None
    if reply.status_code >= 300:
        raise DeliveryError(f"the webhook answered HTTP {reply.status_code}")


Sender = Callable[[Service, Mapping[str, Any], str, Config], None]

SENDERS: dict[str, Sender] = {
    "slack": lambda s, c, r, _: _slack(s, c, r),
    "teams": lambda s, c, r, _: _teams(s, c, r),
    "email": _email,
    "apprise": _generic,
    "webhook": lambda s, c, r, _: _webhook(s, c, r),
}


def send(config: Config, content: Mapping[str, Any], destination: Destination) -> None:
    """Deliver ``content`` (a rendered template) to ``destination``; raises :class:`DeliveryError`."""
    service = config.services.get(destination.service)
    if service is None:
        raise DeliveryError(
            f"no service {destination.service!r} in the ConfigMap; add a service.<type>.{destination.service} key"
        )
    try:
        SENDERS[service.type](service, content, destination.recipient, config)
    except DeliveryError as exc:
        raise DeliveryError(f"{service.type} service {service.name!r}: {config.redact(str(exc))}") from None
