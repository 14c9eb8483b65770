"""`kubectl rollouts notifications template get [NAME]` and `... template notify NAME ROLLOUT`: the
notification templates of the ConfigMap (and Argo's built-in ones), rendered with a live Rollout and
printed, or sent to ``--recipient SERVICE:TARGET`` (default ``console:stdout``, which prints)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from rollouts.cli.client import ROLLOUTS, Client, CLIError, Resource
from rollouts.notifications.config import CONFIGMAP, SECRET, Config, ConfigError, parse_config

CONFIGMAPS = Resource("configmap", "v1", "configmaps")
SECRETS = Resource("secret", "v1", "secrets")
CONSOLE = "console"


def _read_file(path: str, what: str) -> Mapping[str, Any]:
    try:
        obj = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(f"cannot read the {what} from {path}: {exc}") from exc
    if not isinstance(obj, Mapping):
        raise CLIError(f"{path}: expected a {what} manifest (a YAML mapping)")
    return obj


def _optional(client: Client, resource: Resource, name: str, namespace: str) -> Mapping[str, Any] | None:
    try:
        return client.get(resource, name, namespace)
    except CLIError as exc:
        if "not found" in exc.message.lower():
            return None
        raise


def load_config(args: argparse.Namespace, client: Client | None) -> Config:
    """The ConfigMap and Secret from files (``--config-map``, ``--secret``) or the cluster."""
    namespace = args.config_namespace or (client.namespace if client is not None else "")
    if args.config_map:
        configmap: Mapping[str, Any] | None = _read_file(args.config_map, "ConfigMap")
    else:
        assert client is not None
        configmap = _optional(client, CONFIGMAPS, CONFIGMAP, namespace)
    if args.secret:
        secret: Mapping[str, Any] | None = _read_file(args.secret, "Secret")
    elif client is not None and not args.config_map:
        secret = _optional(client, SECRETS, SECRET, namespace)
    else:
        secret = None
    try:
        return parse_config((configmap or {}).get("data"), secret)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc


def _preview(template: Mapping[str, Any]) -> str:
    text = str(template.get("message") or (template.get("email") or {}).get("subject") or "")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 80 else line[:77] + "..."


def print_templates(config: Config, name: str | None, output: str, out: TextIO) -> None:
    if name is not None and name not in config.templates:
        known = ", ".join(sorted(config.templates))
        raise CLIError(f'template "{name}" not found in ConfigMap {CONFIGMAP} or the built-ins (known: {known})')
    names = [name] if name is not None else sorted(config.templates)
    if output == "yaml":
        out.write(yaml.safe_dump({n: dict(config.templates[n]) for n in names}, sort_keys=False))
        return
    width = max(len("NAME"), *(len(n) for n in names))
    out.write(f"{'NAME':<{width}}  PREVIEW\n")
    for n in names:
        out.write(f"{n:<{width}}  {_preview(config.templates[n])}\n")


def notify(config: Config, template: str, rollout: Mapping[str, Any], recipients: list[str], out: TextIO) -> None:
    # The delivery libraries (Apprise, slack_sdk, pymsteams) take ~0.2 s to import, and the template
    # language its share: only this verb needs them (every other verb imports this module for its parser).
    from rollouts.notifications.decide import render_template
    from rollouts.notifications.delivery import DeliveryError, send
    from rollouts.notifications.subscriptions import Destination

    if template not in config.templates:
        raise CLIError(f'template "{template}" not found in ConfigMap {CONFIGMAP} or the built-ins')
    try:
        content = render_template(config, template, rollout)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    for recipient in recipients:
        service, _, target = recipient.partition(":")
        if service == CONSOLE:
            out.write(yaml.safe_dump(content, sort_keys=False))
            continue
        try:
            send(config, content, Destination(service, target))
        except DeliveryError as exc:
            raise CLIError(config.redact(str(exc))) from exc
        out.write(f"sent {template} to {recipient}\n")


def cmd_template_get(ctx: Any) -> int:
    client = None if ctx.args.config_map else ctx.client()
    print_templates(load_config(ctx.args, client), ctx.args.name, ctx.args.output, ctx.out)
    return 0


def cmd_template_notify(ctx: Any) -> int:
    client = ctx.client()
    config = load_config(ctx.args, client)
    rollout = client.get(ROLLOUTS, ctx.args.rollout)
    notify(config, ctx.args.template, rollout, ctx.args.recipient or [f"{CONSOLE}:stdout"], ctx.out)
    return 0


def add_commands(builder: Any, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `notifications template get|notify` verbs (``builder`` is main's verb builder)."""
    notifications = builder.verb(sub, "notifications", None, "show notification templates, send a test notification")
    notifications_sub = notifications.add_subparsers(dest="resource", required=True, metavar="COMMAND")
    template = builder.verb(notifications_sub, "template", None, "notification templates")
    template_sub = template.add_subparsers(dest="action", required=True, metavar="COMMAND")
    get = builder.verb(template_sub, "get", cmd_template_get, "list the templates (or one) with a preview")
    get.add_argument("name", nargs="?", metavar="NAME")
    get.add_argument("-o", "--output", choices=("wide", "yaml"), default="wide", help="table (default) or YAML")
    notify_ = builder.verb(
        template_sub, "notify", cmd_template_notify,
        "render a template with a rollout and print it, or send it to --recipient SERVICE:TARGET",
        description=(
            "Render a notification template with a live Rollout; print it (console:stdout, the default) or\n"
            "send it through a service of the ConfigMap.\n\n"
            "  kubectl rollouts notifications template notify rollout-completed web\n"
            "  kubectl rollouts notifications template notify rollout-completed web --recipient slack:deploys"
        ),
    )
    notify_.add_argument("template", metavar="NAME")
    notify_.add_argument("rollout", metavar="ROLLOUT")
    notify_.add_argument("--recipient", action="append", default=[], metavar="SERVICE:TARGET",
                         help="where to send (repeatable; default console:stdout)")
    for parser in (get, notify_):
        parser.add_argument("--config-namespace", default="", metavar="NS",
                            help=f"namespace of {CONFIGMAP} and {SECRET} (default: the current namespace)")
        parser.add_argument("--config-map", default="", metavar="FILE", help="read the ConfigMap from a file")
        parser.add_argument("--secret", default="", metavar="FILE", help="read the Secret from a file")
