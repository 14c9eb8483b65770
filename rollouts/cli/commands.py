"""The verbs: each reads what it needs through `Client`, computes with the pure modules
(`info`, `render`, `actions`, `lint`) and writes what `kubectl argo rollouts` writes."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rollouts.cli import info as i
from rollouts.cli import render
from rollouts.cli.client import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    DEPLOYMENTS,
    EVENTS,
    EXPERIMENTS,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    APIError,
    Client,
    CLIError,
    Resource,
)
from rollouts.model.labelselector import format_label_selector
from rollouts.model.phase import rollout_phase

if TYPE_CHECKING:
    from rollouts.cli.durations import Duration
    from rollouts.cli.watch import ObjectView, RolloutView

# The modules of the other verbs (actions, operations, analysis, experiment_info, analysisrun_info) and
# of `--watch` (watch) are imported by the functions that use them: one run of the plugin is one verb,
# and `get rollout` should not pay for creating the others' classes (BENCHMARKS.md, Plugin start-up).

# Redraw a watched view at most this often, and at least every second (ages move).
MIN_REDRAW_SECONDS = 0.2
TICK_SECONDS = 1.0
SET_IMAGE_ATTEMPTS = 5


@dataclass
class Context:
    """Streams and the (lazily connected) API client of one invocation."""

    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = Client.connect(
                kubeconfig=getattr(self.args, "kubeconfig", None),
                context=getattr(self.args, "context", None),
                namespace=getattr(self.args, "namespace", None),
                request_timeout=getattr(self.args, "request_timeout", None),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def color(self) -> bool:
        if getattr(self.args, "no_color", False) or os.environ.get("TERM") == "dumb":
            return False
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _action(call: Any, *args: Any, **kwargs: Any) -> Any:
    from rollouts.cli import actions

    try:
        return call(*args, **kwargs)
    except actions.ActionError as exc:
        raise CLIError(str(exc)) from exc


def _children(
    client: Client, ro: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ReplicaSets and Pods matching the rollout's selector, and the namespace's AnalysisRuns and Experiments
    (shown together: an experiment step's Experiment sits beside the runs of its revision). The four lists go
    out at once (a connection each), so `get rollout` waits one round trip for them, not four."""
    selector = format_label_selector(i.spec_of(ro).get("selector"))

    def items(resource: Resource, label_selector: str = "") -> list[dict[str, Any]]:
        return client.list(resource, label_selector=label_selector).get("items") or []

    def optional(resource: Resource) -> list[dict[str, Any]]:
        try:
            return items(resource)
        except CLIError as exc:
            if "has no resource type" not in exc.message:
                raise
            return []  # the kind's CRD is not installed: there is nothing of it to show

    replicasets, pods, runs, experiments = client.all_at_once(
        lambda: items(REPLICASETS, selector),
        lambda: items(PODS, selector),
        lambda: optional(ANALYSISRUNS),
        lambda: optional(EXPERIMENTS),
    )
    return replicasets, pods, runs + [{**e, "kind": "Experiment"} for e in experiments]


# --------------------------------------------------------------------------- version, lint


def cmd_version(ctx: Context) -> int:
    from rollouts.cli import version

    print("\n".join(version.plugin_lines()), file=ctx.out, flush=True)
    if ctx.args.client:
        return 0
    client = ctx.client()
    selector = f"reportingComponent={version.CONTROLLER_COMPONENT}"
    events = client.list(EVENTS, field_selector=selector).get("items") or []
    print(version.controller_line(events, client.namespace), file=ctx.out)
    return 0


def cmd_completion(ctx: Context) -> int:
    from rollouts.cli import completion

    ctx.out.write(completion.shell_code(ctx.args.shell))
    return 0


def cmd_lint(ctx: Context) -> int:
    # Imported here: the schema machinery (jsonschema) is only needed by lint, and every other verb
    # should start fast.
    import yaml

    from rollouts import schema
    from rollouts.cli import lint

    filename: str = ctx.args.filename
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(f"cannot read {filename}: {exc}") from exc
    checked, findings = lint.lint_documents(documents, schema.load_crds())
    for finding in findings:
        print(f"{filename}: {finding}", file=ctx.out)
    if findings:
        print(f"{len(findings)} problem(s) in {checked} object(s)", file=ctx.out)
        return 1
    print(f"{filename}: {checked} object(s) valid", file=ctx.out)
    return 0


def cmd_convert(ctx: Context) -> int:
    """The converted YAML on stdout (to redirect to a file), what changed and what has no equivalent on
    stderr."""
    import yaml

    from rollouts.cli import convert

    filename: str = ctx.args.filename
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(f"cannot read {filename}: {exc}") from exc
    result = convert.convert_documents(documents, filename)
    ctx.out.write(yaml.safe_dump_all(result.documents, sort_keys=False, explicit_start=len(documents) > 1))
    for line in result.changed:
        print(f"changed: {line}", file=ctx.err)
    for line in result.unsupported:
        print(f"no equivalent: {line}", file=ctx.err)
    print(f"{filename}: {len(result.changed)} change(s), {len(result.unsupported)} without an equivalent",
          file=ctx.err)
    return 0


# --------------------------------------------------------------------------- get, list, status


def warn_if_status_never_written(ctx: Context, ro: Mapping[str, Any]) -> None:
    """Without a status the phase shown is only a guess from the spec: say so, with the likely cause."""
    if i.status_of(ro):
        return
    print(
        f'Warning: rollout "{i.meta(ro).get("name", "")}": status never written: is the controller running? '
        "(start it with: pyrollouts controller, or install it: kubectl apply -k deploy/base)",
        file=ctx.err, flush=True,
    )


def cmd_get_rollout(ctx: Context) -> int:
    client = ctx.client()
    name: str = ctx.args.name
    ro = client.get(ROLLOUTS, name)
    warn_if_status_never_written(ctx, ro)
    color = ctx.color()
    if not ctx.args.watch:
        replicasets, pods, runs = _children(client, ro)
        ctx.out.write(render.render_rollout(i.rollout_info(ro, replicasets, pods, runs), now(), color))
        return 0
    return _watch_rollout(ctx, client, ro, color)


def _gone(view: RolloutView, name: str, namespace: str) -> CLIError:
    """Why a watched rollout is missing: the informer could not list it, or it was deleted."""
    if view.rollout.error is not None:
        return view.rollout.error
    return CLIError(f'rollout "{name}" was deleted from namespace "{namespace}"')


def _watch_timeout(args: argparse.Namespace) -> float | None:
    limits = [float(args.timeout_seconds)] if args.timeout_seconds else []
    if args.timeout is not None and args.timeout.seconds > 0:
        limits.append(args.timeout.seconds)
    return min(limits) if limits else None


def _watch_rollout(ctx: Context, client: Client, ro: Mapping[str, Any], color: bool) -> int:
    from rollouts.cli.watch import RolloutView

    view = RolloutView(client, ro)

    def draw() -> str:
        current, replicasets, pods, runs = view.current()
        if current is None:
            raise _gone(view, ctx.args.name, client.namespace)
        return render.render_rollout(i.rollout_info(current, replicasets, pods, runs), now(), color)

    return _redraw(ctx, view, draw, color)


def _watched(view: ObjectView, kind: str, name: str, namespace: str) -> dict[str, Any]:
    """The watched object now; CLIError when it cannot be listed or was deleted."""
    current = view.current()
    if current is None:
        errors = view.errors()
        if errors:
            raise errors[0]
        raise CLIError(f'{kind} "{name}" was deleted from namespace "{namespace}"')
    return current


def _redraw(ctx: Context, view: RolloutView | ObjectView, draw: Callable[[], str], color: bool) -> int:
    """`get ... --watch`: draw the view again on every change (at most every MIN_REDRAW_SECONDS, at least
    every TICK_SECONDS for the ages), in place on a terminal, only when it changed otherwise."""
    from rollouts.cli.watch import report_errors

    timeout = _watch_timeout(ctx.args)
    deadline = time.monotonic() + timeout if timeout else None
    tty = color or bool(getattr(ctx.out, "isatty", lambda: False)())
    reported: set[str] = set()
    last_text = ""
    generation = -1
    try:
        view.start()
        while True:
            report_errors(view, reported, ctx.err)
            text = draw()
            if tty:
                ctx.out.write(render.CLEAR_SCREEN + text)
            elif text != last_text:
                ctx.out.write(("\n" if last_text else "") + text)
            ctx.out.flush()
            last_text, last_draw = text, time.monotonic()
            remaining = deadline - time.monotonic() if deadline is not None else None
            if remaining is not None and remaining <= 0:
                return 0
            generation = view.wait(generation, TICK_SECONDS if remaining is None else min(TICK_SECONDS, remaining))
            pause = MIN_REDRAW_SECONDS - (time.monotonic() - last_draw)
            if pause > 0:
                time.sleep(pause)
    except KeyboardInterrupt:
        return 0  # as Argo: Ctrl-C ends a watch normally
    finally:
        view.stop()


def _listed(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    chosen = [ro for ro in items if not name or i.meta(ro).get("name") == name]
    return sorted(chosen, key=lambda ro: (str(i.meta(ro).get("namespace", "")), str(i.meta(ro).get("name", ""))))


def cmd_list_rollouts(ctx: Context) -> int:
    client = ctx.client()
    args = ctx.args
    items = _listed(client.list(ROLLOUTS, all_namespaces=args.all_namespaces).get("items") or [], args.name)
    if not items and not args.watch:
        where = "" if args.all_namespaces else f' in namespace "{client.namespace}"'
        print(f"No resources found{where}.", file=ctx.err)
        return 0
    lines = render.render_list(items, args.all_namespaces, args.timestamps, now()).splitlines()
    print("\n".join(lines), file=ctx.out, flush=True)
    if not args.watch:
        return 0
    # --watch: print a rollout's line again whenever what it shows changes (as Argo does).
    from rollouts.cli.watch import RolloutListView

    shown = {render.list_key(ro): render.list_row(ro) for ro in items}
    view = RolloutListView(client, args.all_namespaces)
    generation = -1
    try:
        view.start()
        while True:
            generation = view.wait(generation, TICK_SECONDS)
            for ro in _listed(view.informer.objects(), args.name):
                key, row = render.list_key(ro), render.list_row(ro)
                if shown.get(key) != row:
                    shown[key] = row
                    print(render.render_list_line(ro, args.all_namespaces, args.timestamps, now()),
                          file=ctx.out, flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        view.stop()


def _degraded(name: str, message: str) -> CLIError:
    return CLIError(f'rollout "{name}" is in a degraded state with message: {message}')


def cmd_status(ctx: Context) -> int:
    client = ctx.client()
    name: str = ctx.args.name
    ro = client.get(ROLLOUTS, name)
    warn_if_status_never_written(ctx, ro)
    if not ctx.args.watch:
        phase, message = rollout_phase(ro)
        print(phase if phase in ("Healthy", "Degraded") else f"{phase} - {message}", file=ctx.out)
        if phase == "Degraded":
            raise _degraded(name, message)
        return 0
    from rollouts.cli.watch import RolloutView, report_errors

    timeout: Duration | None = ctx.args.timeout
    deadline = time.monotonic() + timeout.seconds if timeout is not None and timeout.seconds > 0 else None
    view = RolloutView(client, ro, children=False)
    reported: set[str] = set()
    previous = ""
    generation = -1
    phase, message = rollout_phase(ro)
    try:
        view.start()
        while True:
            report_errors(view, reported, ctx.err)
            current = view.current()[0]
            if current is None:
                raise _gone(view, name, client.namespace)
            phase, message = rollout_phase(current)
            line = render.status_line(phase, message)
            if line != previous:
                print(line, file=ctx.out, flush=True)
                previous = line
            if phase == "Healthy":
                return 0
            if phase == "Degraded":
                raise _degraded(name, message)
            remaining = deadline - time.monotonic() if deadline is not None else None
            if remaining is not None and remaining <= 0:
                raise CLIError(
                    f'rollout "{name}" status watch exceeded timeout ({timeout.text if timeout else ""}) while '
                    f"{render.status_line(phase, message)}; see why with: kubectl rollouts get rollout {name}"
                )
            generation = view.wait(generation, TICK_SECONDS if remaining is None else min(TICK_SECONDS, remaining))
    except KeyboardInterrupt as exc:
        where = render.status_line(phase, message)
        raise CLIError(f'rollout "{name}" status watch interrupted while {where}', 130) from exc
    finally:
        view.stop()


# --------------------------------------------------------------------------- actions


def cmd_promote(ctx: Context) -> int:
    from rollouts.cli import actions, operations

    args = ctx.args
    if args.skip_current_step:
        print("Flag --skip-current-step has been deprecated, use without the flag instead ex: promote ROLLOUT_NAME",
              file=ctx.err)
    if args.skip_all_steps:
        print("Flag --skip-all-steps has been deprecated, use --full instead", file=ctx.err)
    if args.skip_current_step and args.skip_all_steps:
        raise CLIError(actions.BOTH_SKIP_FLAGS)
    message = operations.promote(
        ctx.client(), args.name, full=args.full, skip_current_step=args.skip_current_step,
        skip_all_steps=args.skip_all_steps,
    )
    print(message, file=ctx.out)
    return 0


def _each(ctx: Context, verb: Callable[[Client, str], str]) -> int:
    client = ctx.client()
    for name in ctx.args.names:
        print(verb(client, name), file=ctx.out)
    return 0


def cmd_abort(ctx: Context) -> int:
    from rollouts.cli import operations

    return _each(ctx, operations.abort)


def cmd_retry_rollout(ctx: Context) -> int:
    from rollouts.cli import operations

    return _each(ctx, operations.retry)


def cmd_pause(ctx: Context) -> int:
    from rollouts.cli import operations

    return _each(ctx, operations.pause)


def cmd_restart(ctx: Context) -> int:
    from rollouts.cli import operations

    delay: Duration | None = ctx.args.delay
    seconds, text = (delay.seconds, delay.text) if delay is not None else (0.0, "0s")
    print(operations.restart(ctx.client(), ctx.args.name, now(), seconds, text), file=ctx.out)
    return 0


def cmd_undo(ctx: Context) -> int:
    from rollouts.cli import operations

    print(operations.undo(ctx.client(), ctx.args.name, ctx.args.to_revision), file=ctx.out)
    return 0


def cmd_set_image(ctx: Context) -> int:
    from rollouts.cli import actions

    client = ctx.client()
    name: str = ctx.args.name
    container, image = ctx.args.assignment
    for attempt in range(1, SET_IMAGE_ATTEMPTS + 1):
        ro = client.get(ROLLOUTS, name)
        ref = i.spec_of(ro).get("workloadRef")
        target, target_name, obj = ROLLOUTS, name, ro
        if isinstance(ref, Mapping):
            target, target_name = DEPLOYMENTS, str(ref.get("name", ""))
            obj = client.get(DEPLOYMENTS, target_name)
        patch = _action(actions.set_image_patch, obj, container, image)
        try:
            client.patch(target, target_name, patch)
        except APIError as exc:
            # 409/422: the object changed under us (a JSON-patch test failed); read it again.
            if exc.status in (409, 422) and attempt < SET_IMAGE_ATTEMPTS:
                continue
            raise
        print(f'{target.kind} "{target_name}" image updated', file=ctx.out)
        return 0
    raise AssertionError("unreachable: the last attempt returns or raises")


# --------------------------------------------------------------------------- dashboard


def cmd_dashboard(ctx: Context) -> int:
    # Imported here: aiohttp is only needed by the dashboard, and every other verb should start fast.
    from rollouts.cli.dashboard.credentials import RefreshingClient
    from rollouts.cli.dashboard.server import serve

    # The server outlives a credential: its client loads them again when due (an exec plugin's token).
    args = ctx.args
    client = RefreshingClient.connect(args.kubeconfig, args.context, args.namespace, args.request_timeout)
    try:
        return serve(client, args.address, args.port, args.all_namespaces, ctx.out)
    finally:
        client.close()


# --------------------------------------------------------------------------- analysis runs


def _analysis(call: Any, *args: Any, **kwargs: Any) -> Any:
    from rollouts.cli import analysis as a

    try:
        return call(*args, **kwargs)
    except a.AnalysisSpecError as exc:
        raise CLIError(str(exc)) from exc


def _template_from_file(filename: str, cluster_scope: bool) -> dict[str, Any]:
    from rollouts.cli import analysis as a

    documents = _read_documents(filename)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise CLIError(f"{filename}: expected exactly one AnalysisTemplate or ClusterAnalysisTemplate document")
    template: dict[str, Any] = documents[0]
    kind = template.get("kind")
    wanted = a.CLUSTER_ANALYSIS_TEMPLATE if cluster_scope else a.ANALYSIS_TEMPLATE
    if kind not in (a.ANALYSIS_TEMPLATE, a.CLUSTER_ANALYSIS_TEMPLATE):
        raise CLIError(f"{filename}: kind is {kind!r}, not {wanted}")
    if cluster_scope and kind != a.CLUSTER_ANALYSIS_TEMPLATE:
        raise CLIError(f"{filename}: --global expects a {a.CLUSTER_ANALYSIS_TEMPLATE}, the file has a {kind}")
    return template


def _read_documents(filename: str) -> list[Any]:
    import yaml

    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(f"cannot read {filename}: {exc}") from exc


def cmd_create(ctx: Context) -> int:
    """`create -f FILE`: every document checked first, then created in order (as kubectl create)."""
    from rollouts.cli import create

    filename: str = ctx.args.filename
    if not filename:
        raise CLIError("create needs -f FILE, or a resource: kubectl rollouts create analysisrun --from TEMPLATE")
    documents = _read_documents(filename)
    if not documents:
        raise CLIError(f"{filename}: no objects to create")
    try:
        planned = [
            (create.resource_of(doc if isinstance(doc, dict) else {}, filename, n), doc)
            for n, doc in enumerate(documents)
        ]
    except create.CreateError as exc:
        raise CLIError(str(exc)) from exc
    client = ctx.client()
    for resource, doc in planned:
        namespace = str((doc.get("metadata") or {}).get("namespace") or client.namespace)
        created = client.create(resource, doc, namespace=namespace)
        print(create.created_line(resource, created), file=ctx.out, flush=True)
    return 0


def cmd_create_analysisrun(ctx: Context) -> int:
    from rollouts.cli import analysis as a

    args = ctx.args
    sources = [x for x in (args.from_, args.from_cluster_template, args.from_file) if x]
    if len(sources) != 1:
        raise CLIError("one of --from, --from-cluster-template or --from-file must be specified (exactly one)")
    arguments = []
    for text in args.argument:
        try:
            arguments.append(a.parse_argument(text))
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
    cluster_scope = bool(args.global_ or args.from_cluster_template)
    root = _template_from_file(args.from_file, cluster_scope) if args.from_file else None
    client = ctx.client()

    def lookup(name: str, cluster: bool) -> dict[str, Any]:
        template = client.get(CLUSTERANALYSISTEMPLATES if cluster else ANALYSISTEMPLATES, name)
        template.setdefault("kind", a.CLUSTER_ANALYSIS_TEMPLATE if cluster else a.ANALYSIS_TEMPLATE)
        return template

    if root is None:
        root = lookup(args.from_cluster_template or args.from_, cluster_scope)
    run = _analysis(
        a.run_from_template, root, lookup, arguments, name=args.name, generate_name=args.generate_name,
        namespace=client.namespace, labels={a.INSTANCE_ID_LABEL: args.instance_id} if args.instance_id else None,
    )
    created = client.create(ANALYSISRUNS, run)
    print(f"analysisrun.pyrollouts.io/{i.meta(created).get('name', '')} created", file=ctx.out)
    return 0


def cmd_terminate_analysisrun(ctx: Context) -> int:
    from rollouts.cli import actions
    from rollouts.cli import analysis as a

    client = ctx.client()
    patch = actions.Patch(a.TERMINATE_PATCH)
    for name in ctx.args.names:
        client.patch(ANALYSISRUNS, name, patch)
        print(f"analysisRun '{name}' terminated", file=ctx.out)
    return 0


def cmd_get_analysisrun(ctx: Context) -> int:
    from rollouts.cli.analysisrun_info import analysisrun_detail
    from rollouts.cli.watch import ObjectView

    client = ctx.client()
    name: str = ctx.args.name
    run = client.get(ANALYSISRUNS, name)
    color = ctx.color()
    if not ctx.args.watch:
        ctx.out.write(render.render_analysisrun(analysisrun_detail(run), now(), color))
        return 0
    view = ObjectView(client, ANALYSISRUNS, name)

    def draw() -> str:
        return render.render_analysisrun(analysisrun_detail(_watched(view, "analysisrun", name, client.namespace)),
                                         now(), color)

    return _redraw(ctx, view, draw, color)


def cmd_get_experiment(ctx: Context) -> int:
    from rollouts.cli.experiment_info import render_experiment
    from rollouts.cli.watch import ObjectView

    client = ctx.client()
    name: str = ctx.args.name
    exp = client.get(EXPERIMENTS, name)
    if not ctx.args.watch:
        ctx.out.write(render_experiment(exp, now()))
        return 0
    view = ObjectView(client, EXPERIMENTS, name)

    def draw() -> str:
        return render_experiment(_watched(view, "experiment", name, client.namespace), now())

    return _redraw(ctx, view, draw, color=False)


def cmd_list_experiments(ctx: Context) -> int:
    from rollouts.cli.experiment_info import render_experiment_list

    client = ctx.client()
    items = client.list(EXPERIMENTS, all_namespaces=ctx.args.all_namespaces).get("items") or []
    if not items:
        where = "" if ctx.args.all_namespaces else f' in namespace "{client.namespace}"'
        print(f"No resources found{where}.", file=ctx.err)
        return 0
    ctx.out.write(render_experiment_list(items, ctx.args.all_namespaces, now()))
    return 0


def cmd_terminate_experiment(ctx: Context) -> int:
    from rollouts.cli.experiment_info import TERMINATE_PATCH

    client = ctx.client()
    for name in ctx.args.names:
        client.patch(EXPERIMENTS, name, TERMINATE_PATCH)
        print(f"experiment '{name}' terminated", file=ctx.out)
    return 0


def cmd_retry_experiment(ctx: Context) -> int:
    from rollouts.cli.experiment_info import RETRY_PATCH

    client = ctx.client()
    for name in ctx.args.names:
        client.patch(EXPERIMENTS, name, RETRY_PATCH)
        print(f"experiment '{name}' restarted", file=ctx.out)
    return 0
