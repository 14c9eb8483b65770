"""Argument handling of `kubectl rollouts`: verbs, aliases, kubectl flags anywhere, usage errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollouts.cli.main import build_parser, main, parse_args, requested_verb
from rollouts.model.durations import parse_go_duration


def test_global_flags_before_or_after_the_verb() -> None:
    before = parse_args(["-n", "prod", "--context", "ctx", "--kubeconfig", "/k", "promote", "web"])
    after = parse_args(["promote", "web", "-n", "prod", "--context=ctx", "--kubeconfig", "/k"])
    for args in (before, after):
        assert (args.namespace, args.context, args.kubeconfig, args.name) == ("prod", "ctx", "/k", "web")
    nested = parse_args(["get", "rollout", "web", "--namespace", "prod", "-w"])
    assert nested.namespace == "prod" and nested.watch is True
    assert parse_args(["promote", "web"]).namespace is None


def test_aliases() -> None:
    assert parse_args(["get", "ro", "web"]).name == "web"
    assert parse_args(["list", "ro", "-A"]).all_namespaces is True
    assert parse_args(["retry", "rollouts", "a", "b"]).names == ["a", "b"]


def test_status_watches_by_default_and_accepts_watch_false() -> None:
    assert parse_args(["status", "web"]).watch is True
    assert parse_args(["status", "web", "--watch=false"]).watch is False
    assert parse_args(["status", "web", "--no-watch"]).watch is False
    args = parse_args(["status", "web", "-w", "--timeout", "2s"])
    assert args.watch is True and args.timeout.seconds == 2.0 and args.timeout.text == "2s"


def test_switches_accept_explicit_values() -> None:
    assert parse_args(["get", "ro", "web", "--no-color=true"]).no_color is True
    assert parse_args(["get", "ro", "web", "--no-color=false"]).no_color is False
    assert parse_args(["list", "rollouts", "--all-namespaces=true", "--watch=false"]).all_namespaces is True
    assert parse_args(["promote", "web", "--full=true"]).full is True


def test_durations_and_numbers() -> None:
    args = parse_args(["restart", "web", "--in", "1m30s"])
    assert args.delay.seconds == 90.0 and args.delay.text == "1m30s"
    assert parse_args(["undo", "web", "--to-revision=3"]).to_revision == 3
    assert parse_args(["set", "image", "web", "*=nginx:1.26"]).assignment == ("*", "nginx:1.26")


def test_dashboard_listens_on_loopback_port_3100_by_default() -> None:
    args = parse_args(["dashboard"])
    assert (args.address, args.port, args.all_namespaces) == ("127.0.0.1", 3100, False)
    args = parse_args(["dashboard", "-A", "--port", "0", "--address", "0.0.0.0", "-n", "prod"])
    assert (args.address, args.port, args.all_namespaces, args.namespace) == ("0.0.0.0", 0, True, "prod")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["get"],
        ["get", "rollout"],
        ["promote"],
        ["promote", "a", "b"],
        ["abort"],
        ["restart", "web", "--in", "soon"],
        ["status", "web", "--timeout", "10"],
        ["undo", "web", "--to-revision", "-1"],
        ["set", "image", "web", "nginx"],
        ["lint"],
        ["promote", "web", "--bogus"],
        ["dashboard", "--port", "70000"],
        ["dashboard", "--port", "web"],
    ],
)
def test_bad_usage_exits_2_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: kubectl rollouts" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "--client"]) == 0
    assert capsys.readouterr().out.startswith("kubectl-rollouts: v")


def test_missing_kubeconfig_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["get", "rollout", "web", "--kubeconfig", f"{tmp_path}/nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: no kubeconfig found (looked at ")
    assert "pass --kubeconfig PATH or set KUBECONFIG" in err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("30s", 30.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("250ms", 0.25), ("-2s", -2.0), ("1h1m1s", 3661.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "5 minutes", "1d", "s", ".s", "1m-1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "prod", "get", "ro", "web", "-w"],
        ["--context", "ctx", "--kubeconfig", "/k", "promote", "web", "--full"],
        ["--request-timeout", "5s", "create", "ar", "--from", "t", "-a", "a=1"],
        ["notifications", "template", "get", "-o", "yaml"],
        ["set", "image", "web", "*=nginx:2"],
    ],
)
def test_one_verbs_parser_parses_as_the_whole_parser_does(argv: list[str]) -> None:
    verb = requested_verb(argv)
    assert verb is not None and verb in argv
    assert build_parser(verb).parse_args(argv) == build_parser().parse_args(argv)


def test_without_a_known_verb_the_whole_parser_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert requested_verb(["-n", "prod"]) is None
    assert requested_verb(["--namespace", "get", "list"]) == "list"  # "get" is the flag's value
    with pytest.raises(SystemExit):
        parse_args(["bogus"])
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and "'promote'" in err  # every verb offered
