"""Shell completion, computed by argcomplete from the plugin's own argparse parser.

Three ways in, one engine:
- `kubectl-rollouts <TAB>` in bash, zsh or fish: the script `kubectl rollouts completion SHELL` prints
  (argcomplete's shell code) runs the plugin with `_ARGCOMPLETE` set, and `main` answers;
- `kubectl rollouts <TAB>`: kubectl (1.26+) runs `kubectl_complete-rollouts ARGS... WORD` and reads
  cobra's answer (one `completion<TAB>description` a line, then `:DIRECTIVE`);
- rollout, AnalysisRun and template names come from the cluster (a short list request); when the
  cluster cannot be reached there are simply no names to offer.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

SHELLS = ("bash", "zsh", "fish")
PROG = "kubectl-rollouts"
# cobra.ShellCompDirectiveNoFileComp: the answer is complete, the shell adds no file names of its own
# (argcomplete already offers files where an argument is a file).
NO_FILE_COMPLETION = 4
# Names are a convenience: a slow or dead cluster must not hang the shell.
NAME_REQUEST_TIMEOUT = 2.0


def shell_code(shell: str) -> str:
    """The script that makes `shell` complete `kubectl-rollouts` (source it, or put it in the shell's
    completion directory)."""
    from argcomplete.shell_integration import shellcode

    return str(shellcode([PROG], shell=shell))


def _names(plural: str) -> Callable[..., list[str]]:
    """An argcomplete completer listing the objects of one of our kinds in the parsed namespace."""

    def complete(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
        from rollouts.cli import client as c

        resource = {r.plural: r for r in (c.ROLLOUTS, c.ANALYSISRUNS, c.ANALYSISTEMPLATES)}[plural]
        try:
            api = c.Client.connect(
                kubeconfig=getattr(parsed_args, "kubeconfig", None),
                context=getattr(parsed_args, "context", None),
                namespace=getattr(parsed_args, "namespace", None),
                request_timeout=NAME_REQUEST_TIMEOUT,
            )
            try:
                items = api.list(resource).get("items") or []
            finally:
                api.close()
        except c.CLIError:
            return []
        names = (str((item.get("metadata") or {}).get("name", "")) for item in items)
        return sorted(name for name in names if name.startswith(prefix))

    return complete


# Positional arguments and options whose values are object names, by metavar: every verb that names
# its argument so (those added later too) completes names without wiring of its own.
_NAME_COMPLETERS = {
    "ROLLOUT_NAME": _names("rollouts"),
    "ANALYSISRUN_NAME": _names("analysisruns"),
    "TEMPLATE": _names("analysistemplates"),
}


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                yield from _parsers(child)


def attach_name_completers(parser: argparse.ArgumentParser) -> None:
    for each in _parsers(parser):
        for action in each._actions:
            completer = _NAME_COMPLETERS.get(str(action.metavar))
            if completer is not None:
                action.completer = completer  # type: ignore[attr-defined]


def autocomplete(build_parser: Callable[[], argparse.ArgumentParser]) -> None:
    """Answer a shell's completion request (then exit), when this run is one; the (whole) parser is built
    only then."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    parser = build_parser()
    attach_name_completers(parser)
    argcomplete.autocomplete(parser, always_complete_options=False)  # flags once "-" is typed, as cobra


def cobra_answer(parser: argparse.ArgumentParser, args: Sequence[str]) -> str:
    """kubectl's plugin completion protocol: `args` are the words after `kubectl rollouts`, the last
    one the word being completed (possibly empty)."""
    from argcomplete.finders import CompletionFinder

    words = list(args) or [""]
    line = " ".join([PROG, *(shlex.quote(w) for w in words[:-1]), words[-1]])
    request = {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "fish",  # unescaped words: kubectl and its shell script quote them
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_DFS": "\t",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    saved = {key: os.environ.get(key) for key in request}
    os.environ.update(request)
    out = io.StringIO()
    try:
        attach_name_completers(parser)
        CompletionFinder()(
            parser, always_complete_options=False, exit_method=lambda _code: None, output_stream=out,
            append_space=False,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    lines = [entry.rstrip("\t") for entry in out.getvalue().split("\n") if entry]
    return "\n".join([*lines, f":{NO_FILE_COMPLETION}"]) + "\n"


def kubectl_complete_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl_complete-rollouts`: the executable kubectl runs to complete `kubectl rollouts ...`."""
    from rollouts.cli.main import build_parser

    sys.stdout.write(cobra_answer(build_parser(), sys.argv[1:] if argv is None else argv))
    return 0
