"""`kubectl rollouts` (the `kubectl-rollouts` executable kubectl finds on PATH): argument wiring.

Verbs and flags follow `kubectl argo rollouts`. Global flags (`-n/--namespace`, `--kubeconfig`,
`--context`, `--request-timeout`) are accepted before or after the verb. Exit status: 0 on success,
1 on an error (printed as `Error: ...` on stderr), 2 on bad usage (with the usage text), 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO, TypeAlias

from rollouts.cli import commands, completion
from rollouts.cli.client import CLIError
from rollouts.model.durations import parse_go_duration

if TYPE_CHECKING:
    from rollouts.cli.durations import Duration

Handler = Callable[[commands.Context], int]

# Boolean flags that, as with cobra, may be written --flag=false / --flag=true. The first kind has a
# --no-flag form; the second is a plain switch (=false simply leaves it off).
_NEGATABLE_FLAGS = {"--watch", "--full", "--skip-current-step", "--skip-all-steps", "--timestamps"}
_SWITCH_FLAGS = {"--no-color", "--all-namespaces", "--global"}
_BOOL_VALUE = re.compile(r"^(--[a-z-]+)=(true|false|t|f|1|0|True|False|TRUE|FALSE)$")


def _normalise_bools(argv: Sequence[str]) -> list[str]:
    result = []
    for arg in argv:
        match = _BOOL_VALUE.match(arg)
        flag = match.group(1) if match else ""
        if match and flag in _NEGATABLE_FLAGS | _SWITCH_FLAGS:
            truthy = match.group(2).lower() in ("true", "t", "1")
            if truthy:
                result.append(flag)
            elif flag in _NEGATABLE_FLAGS:
                result.append("--no-" + flag[2:])
        else:
            result.append(arg)
    return result


def _duration(text: str) -> Duration:
    from rollouts.cli.durations import Duration  # only when a duration flag is given

    try:
        seconds = parse_go_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (use e.g. 30s, 5m, 1h)") from exc
    if seconds < 0:
        raise argparse.ArgumentTypeError(f'duration "{text}" must not be negative')
    return Duration(seconds, text)


def _request_timeout(text: str) -> float:
    """kubectl's --request-timeout: a bare number of seconds or a duration; 0 means no timeout."""
    if re.fullmatch(r"[0-9]+", text):
        return float(text)
    return _duration(text).seconds


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number') from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return value


def _assignment(text: str) -> tuple[str, str]:
    from rollouts.cli.actions import parse_image_assignment  # only for `set image`

    try:
        return parse_image_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _global_flags(suppress: bool) -> argparse.ArgumentParser:
    """The kubectl flags; on sub-commands they default to SUPPRESS so they never undo the top level."""
    parser = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("kubectl flags")
    group.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's namespace)")
    group.add_argument(
        "--kubeconfig", default=default, help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    group.add_argument("--context", default=default, help="the kubeconfig context to use")
    group.add_argument("--request-timeout", type=_request_timeout, default=default, metavar="DURATION",
                       help="how long to wait for one API request (e.g. 10s; 0: no limit)")
    return parser


class _Builder:
    def __init__(self) -> None:
        self.common = _global_flags(suppress=True)

    def verb(
        self, sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler | None,
        help_text: str, aliases: Sequence[str] = (), description: str | None = None,
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(
            name, aliases=list(aliases), help=help_text, description=description or help_text, parents=[self.common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if handler is not None:
            parser.set_defaults(handler=handler)
        return parser


_Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # the top level's sub-parsers


def _add_notifications(b: _Builder, sub: _Verbs) -> None:
    from rollouts.cli import notifications  # imports yaml and the notification config: only for its verb

    notifications.add_commands(b, sub)


def _add_version(b: _Builder, sub: _Verbs) -> None:
    version = b.verb(sub, "version", commands.cmd_version,
                     "print the plugin's version, commit, Python and platform, and the controller's version")
    version.add_argument("--client", action="store_true",
                         help="only the plugin's own version (no request to the cluster)")


def _add_completion(b: _Builder, sub: _Verbs) -> None:
    shells = b.verb(
        sub, "completion", commands.cmd_completion, "print the shell code that completes kubectl-rollouts",
        description=(
            "Print the completion script of a shell for kubectl-rollouts (bash, zsh or fish), e.g.\n\n"
            "  source <(kubectl rollouts completion bash)\n\n"
            "`kubectl rollouts <TAB>` is completed by kubectl itself through kubectl_complete-rollouts\n"
            "(kubectl 1.26+, installed beside kubectl-rollouts): that needs only kubectl's own completion."
        ),
    )
    shells.add_argument("shell", choices=completion.SHELLS, metavar="SHELL", help="bash, zsh or fish")


def _add_lint(b: _Builder, sub: _Verbs) -> None:
    lint = b.verb(
        sub, "lint", commands.cmd_lint, "check Rollout and analysis manifests (schema and semantics), offline"
    )
    lint.add_argument("-f", "--filename", required=True, help="a YAML file with one or more documents ('-': stdin)")


def _add_convert(b: _Builder, sub: _Verbs) -> None:
    convert = b.verb(
        sub, "convert", commands.cmd_convert,
        "rewrite Argo Rollouts manifests for pyrollouts (apiVersion, annotation and label keys), offline",
        description=(
            "Print FILE's documents converted for this controller: Argo's Rollouts kinds get apiVersion\n"
            "pyrollouts.io/v1alpha1; argo-rollouts.argoproj.io/, rollout.argoproj.io/ and\n"
            "notifications.argoproj.io/ annotation and label keys get ours. What changed, and what has no\n"
            "equivalent here (steps, traffic routers, metric providers), goes to stderr, e.g.\n\n"
            "  kubectl rollouts convert -f argo.yaml > pyrollouts.yaml"
        ),
    )
    convert.add_argument("-f", "--filename", required=True, help="a YAML file with one or more documents ('-': stdin)")


def _watch_flags(parser: argparse.ArgumentParser, color: bool = True) -> None:
    """`get ... --watch` and its limits (and --no-color where the view is colored)."""
    parser.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=False,
                        help="redraw on every change")
    if color:
        parser.add_argument("--no-color", action="store_true", help="do not colorize the output")
    parser.add_argument("--timeout-seconds", type=_non_negative_int, default=0, metavar="N",
                        help="with --watch: stop after N seconds (0: never)")
    parser.add_argument("--timeout", type=_duration, default=None, metavar="DURATION",
                        help="with --watch: stop after this long (e.g. 2m)")


def _add_get(b: _Builder, sub: _Verbs) -> None:
    get = b.verb(sub, "get", None, "show a rollout (its revisions, ReplicaSets, Pods, AnalysisRuns), an AnalysisRun "
                 "or an Experiment")
    get_sub = get.add_subparsers(dest="resource", required=True, metavar="RESOURCE")
    get_ro = b.verb(get_sub, "rollout", commands.cmd_get_rollout, "details and tree of a rollout",
                    aliases=("ro", "rollouts"))
    get_ro.add_argument("name", metavar="ROLLOUT_NAME")
    _watch_flags(get_ro)
    get_ar = b.verb(get_sub, "analysisrun", commands.cmd_get_analysisrun,
                    "an AnalysisRun: status, args, metrics with their counts and last measurements",
                    aliases=("ar", "analysisruns"))
    get_ar.add_argument("name", metavar="ANALYSISRUN_NAME")
    _watch_flags(get_ar)
    get_exp = b.verb(get_sub, "experiment", commands.cmd_get_experiment,
                     "an Experiment: phase, images, its ReplicaSets and AnalysisRuns", aliases=("exp", "experiments"))
    get_exp.add_argument("name", metavar="EXPERIMENT_NAME")
    _watch_flags(get_exp, color=False)


def _add_create(b: _Builder, sub: _Verbs) -> None:
    create = b.verb(
        sub, "create", commands.cmd_create,
        "create Rollouts, AnalysisTemplates and AnalysisRuns from a file (-f), or an AnalysisRun from a template",
    )
    create.add_argument("-f", "--filename", default="", metavar="FILE",
                        help="a YAML file of Rollouts, (Cluster)AnalysisTemplates and AnalysisRuns ('-': stdin)")
    create_sub = create.add_subparsers(dest="resource", required=False, metavar="RESOURCE")
    create_ar = b.verb(
        create_sub, "analysisrun", commands.cmd_create_analysisrun,
        "create an AnalysisRun from a template (its nested templates included), with -a NAME=VALUE arguments",
        aliases=("ar",),
        description=(
            "Create an AnalysisRun from an AnalysisTemplate or ClusterAnalysisTemplate, merged with the\n"
            "templates it references (spec.templates). Every argument without a default needs -a NAME=VALUE.\n\n"
            "  kubectl rollouts create analysisrun --from my-template -a service=web-canary\n"
            "  kubectl rollouts create analysisrun --from-cluster-template shared --name smoke-1\n"
            "  kubectl rollouts create analysisrun --global --from shared   # the same, as Argo spells it\n"
            "  kubectl rollouts create analysisrun --from-file template.yaml"
        ),
    )
    create_ar.add_argument("--from", dest="from_", default="", metavar="TEMPLATE",
                           help="the AnalysisTemplate in the namespace (a ClusterAnalysisTemplate with --global)")
    create_ar.add_argument("--from-cluster-template", default="", metavar="TEMPLATE",
                           help="the ClusterAnalysisTemplate (same as --global --from TEMPLATE)")
    create_ar.add_argument("--from-file", default="", metavar="FILE",
                           help="a template from a local YAML file ('-': stdin)")
    create_ar.add_argument("--global", dest="global_", action="store_true",
                           help="--from names a ClusterAnalysisTemplate")
    naming = create_ar.add_mutually_exclusive_group()
    naming.add_argument("--name", default="", help="the run's name (default: generated from TEMPLATE-)")
    naming.add_argument("--generate-name", default="", metavar="PREFIX",
                        help="the run's generateName (default: TEMPLATE-)")
    create_ar.add_argument("--instance-id", default="", metavar="ID",
                           help="the controller instance that should run it (label "
                                "rollouts.pyrollouts.io/controller-instance-id)")
    create_ar.add_argument("-a", "--argument", action="append", default=[], metavar="NAME=VALUE",
                           help="a value for one of the template's args (repeatable)")


def _add_terminate(b: _Builder, sub: _Verbs) -> None:
    terminate = b.verb(sub, "terminate", None, "terminate an AnalysisRun or an Experiment")
    terminate_sub = terminate.add_subparsers(dest="resource", required=True, metavar="RESOURCE")
    terminate_ar = b.verb(terminate_sub, "analysisrun", commands.cmd_terminate_analysisrun,
                          "stop an AnalysisRun early (spec.terminate=true)", aliases=("ar", "analysisruns"))
    terminate_ar.add_argument("names", nargs="+", metavar="ANALYSISRUN_NAME")
    terminate_exp = b.verb(terminate_sub, "experiment", commands.cmd_terminate_experiment,
                           "end an Experiment now (spec.terminate=true)", aliases=("exp", "experiments"))
    terminate_exp.add_argument("names", nargs="+", metavar="EXPERIMENT_NAME")


def _add_list(b: _Builder, sub: _Verbs) -> None:
    list_ = b.verb(sub, "list", None, "list rollouts or experiments")
    list_sub = list_.add_subparsers(dest="resource", required=True, metavar="RESOURCE")
    list_ro = b.verb(list_sub, "rollouts", commands.cmd_list_rollouts, "list rollouts", aliases=("ro", "rollout"))
    list_ro.add_argument("-A", "--all-namespaces", action="store_true", help="list the rollouts of all namespaces")
    list_ro.add_argument("--name", default="", help="only the rollout with this name")
    list_ro.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=False,
                         help="after the table, print a rollout's line again whenever it changes")
    list_ro.add_argument("--timestamps", action=argparse.BooleanOptionalAction, default=False,
                         help="start each line with the time it was printed")

    list_exp = b.verb(list_sub, "experiments", commands.cmd_list_experiments, "list experiments",
                      aliases=("exp", "experiment"))
    list_exp.add_argument("-A", "--all-namespaces", action="store_true",
                          help="list the experiments of all namespaces")


def _add_status(b: _Builder, sub: _Verbs) -> None:
    status = b.verb(sub, "status", commands.cmd_status,
                    "show a rollout's status; by default wait until it is Healthy (exit 0) or Degraded (exit 1)")
    status.add_argument("name", metavar="ROLLOUT_NAME")
    status.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True,
                        help="wait for the rollout to finish (default; --watch=false prints the status once)")
    status.add_argument("-t", "--timeout", type=_duration, default=None, metavar="DURATION",
                        help="give up (exit 1) after this long, e.g. 60s (0: wait forever)")


def _add_promote(b: _Builder, sub: _Verbs) -> None:
    promote = b.verb(
        sub, "promote", commands.cmd_promote,
        "unpause a paused rollout, or skip the current step; --full: skip all remaining steps and analysis",
    )
    promote.add_argument("name", metavar="ROLLOUT_NAME")
    promote.add_argument("--full", action=argparse.BooleanOptionalAction, default=False,
                         help="promote fully: skip analysis, pauses and steps")
    promote.add_argument("-c", "--skip-current-step", action=argparse.BooleanOptionalAction, default=False,
                         help=argparse.SUPPRESS)
    promote.add_argument("-a", "--skip-all-steps", action=argparse.BooleanOptionalAction, default=False,
                         help=argparse.SUPPRESS)


def _add_abort(b: _Builder, sub: _Verbs) -> None:
    abort = b.verb(sub, "abort", commands.cmd_abort,
                   "stop an update and go back to the stable ReplicaSet (spec.template keeps the new version)")
    abort.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")


def _add_retry(b: _Builder, sub: _Verbs) -> None:
    retry = b.verb(sub, "retry", None, "retry an aborted rollout or an ended experiment")
    retry_sub = retry.add_subparsers(dest="resource", required=True, metavar="RESOURCE")
    retry_ro = b.verb(retry_sub, "rollout", commands.cmd_retry_rollout, "retry an aborted rollout",
                      aliases=("ro", "rollouts"))
    retry_ro.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")
    retry_exp = b.verb(retry_sub, "experiment", commands.cmd_retry_experiment,
                       "run an ended experiment again (its status cleared)", aliases=("exp", "experiments"))
    retry_exp.add_argument("names", nargs="+", metavar="EXPERIMENT_NAME")


def _add_pause(b: _Builder, sub: _Verbs) -> None:
    pause = b.verb(sub, "pause", commands.cmd_pause, "pause a rollout (spec.paused=true)")
    pause.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")


def _add_restart(b: _Builder, sub: _Verbs) -> None:
    restart = b.verb(sub, "restart", commands.cmd_restart, "restart the pods of a rollout (spec.restartAt)")
    restart.add_argument("name", metavar="ROLLOUT_NAME")
    restart.add_argument("-i", "--in", dest="delay", type=_duration, default=None, metavar="DURATION",
                         help="restart after this long (e.g. 30s, 5m, 1h)")


def _add_undo(b: _Builder, sub: _Verbs) -> None:
    undo = b.verb(sub, "undo", commands.cmd_undo, "roll back to the previous revision, or to --to-revision N")
    undo.add_argument("name", metavar="ROLLOUT_NAME")
    undo.add_argument("--to-revision", type=_non_negative_int, default=0, metavar="N",
                      help="the revision to roll back to (default 0: the previous one)")


def _add_dashboard(b: _Builder, sub: _Verbs) -> None:
    dashboard = b.verb(
        sub, "dashboard", commands.cmd_dashboard,
        "serve a web UI of the rollouts (live, with promote/abort/retry/restart/undo buttons) on this machine",
    )
    dashboard.add_argument("-p", "--port", type=_port, default=3100, help="the port to listen on (0: any free one)")
    dashboard.add_argument("--address", default="127.0.0.1",
                           help="the address to listen on (the buttons act with your credentials: keep it local)")
    dashboard.add_argument("-A", "--all-namespaces", action="store_true",
                           help="show the rollouts of all namespaces (default: the -n / context namespace)")


def _add_set(b: _Builder, sub: _Verbs) -> None:
    set_ = b.verb(sub, "set", None, "update a rollout's fields")
    set_sub = set_.add_subparsers(dest="resource", required=True, metavar="FIELD")
    image = b.verb(set_sub, "image", commands.cmd_set_image,
                   "set the image of a container (init, regular or ephemeral), or of all with *=IMAGE")
    image.add_argument("name", metavar="ROLLOUT_NAME")
    image.add_argument("assignment", type=_assignment, metavar="CONTAINER=IMAGE")


_VERB_ADDERS: dict[str, Callable[[_Builder, _Verbs], None]] = {
    "version": _add_version,
    "completion": _add_completion,
    "lint": _add_lint,
    "convert": _add_convert,
    "get": _add_get,
    "create": _add_create,
    "terminate": _add_terminate,
    "list": _add_list,
    "status": _add_status,
    "promote": _add_promote,
    "abort": _add_abort,
    "retry": _add_retry,
    "pause": _add_pause,
    "restart": _add_restart,
    "undo": _add_undo,
    "dashboard": _add_dashboard,
    "set": _add_set,
    "notifications": _add_notifications,
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `verb` (a top-level command) only that command's sub-parser, which is what
    one run of the plugin needs (building all of them is a tenth of `get rollout`'s start-up)."""
    b = _Builder()
    parser = argparse.ArgumentParser(
        prog="kubectl rollouts", parents=[_global_flags(suppress=False)],
        description="Manage pyrollouts Rollouts: watch, promote, abort, retry, pause, restart, undo, set image, lint, "
        "convert; "
        "create, show and terminate AnalysisRuns; serve a web dashboard.",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    adders = [_VERB_ADDERS[verb]] if verb in _VERB_ADDERS else _VERB_ADDERS.values()
    for add in adders:
        add(b, sub)
    return parser


_GLOBAL_FLAGS_WITH_VALUES = {"-n", "--namespace", "--kubeconfig", "--context", "--request-timeout"}


def requested_verb(argv: Sequence[str]) -> str | None:
    """The top-level command `argv` names, skipping the kubectl flags before it (None: no command yet)."""
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_FLAGS_WITH_VALUES:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed arguments; exits 2 with the usage text on bad usage (as argparse does)."""
    words = _normalise_bools(argv)
    return build_parser(requested_verb(words)).parse_args(words)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    if argv is None:
        completion.autocomplete(build_parser)  # a shell asking for completions: answered, then exit
    words = _normalise_bools(sys.argv[1:] if argv is None else argv)
    args = build_parser(requested_verb(words)).parse_args(words)
    ctx = commands.Context(args, out or sys.stdout, err or sys.stderr)
    try:
        return int(args.handler(ctx))
    except CLIError as exc:
        ctx.out.flush()
        print(f"Error: {exc.message}", file=ctx.err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=ctx.err)
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
