"""When credentials are due (rollouts.controller.freshness), and what the kubeconfig loader records for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from rollouts.controller.freshness import (
    EXPIRY_MARGIN_MAX,
    TOKEN_FILE_PERIOD,
    FileStamp,
    file_stamp,
    refresh_at,
    refresh_due,
)
from rollouts.controller.kubeconfig import Connection, load_connection


def test_a_static_token_is_never_due() -> None:
    assert refresh_at(100.0, None, None) is None
    assert not refresh_due(1e12, None, None, None)


def test_an_expiring_credential_is_due_when_a_fifth_of_its_life_is_left() -> None:
    assert refresh_at(100.0, 110.0, None) == 108.0
    assert not refresh_due(107.9, 108.0, None, None)
    assert refresh_due(108.0, 108.0, None, None)


def test_a_long_lived_credential_is_due_a_minute_before_it_expires() -> None:
    assert refresh_at(0.0, 3600.0, None) == 3600.0 - EXPIRY_MARGIN_MAX


def test_an_already_expired_credential_is_due_at_once() -> None:
    assert refresh_at(100.0, 90.0, None) == 90.0


def test_a_token_file_is_due_each_minute_and_when_it_changes() -> None:
    assert refresh_at(100.0, None, "/token") == 100.0 + TOKEN_FILE_PERIOD
    assert refresh_at(100.0, 110.0, "/token") == 108.0
    old, new = FileStamp(1, 10, 5), FileStamp(2, 10, 5)
    assert not refresh_due(101.0, 160.0, old, old)
    assert refresh_due(101.0, 160.0, old, new)
    assert not refresh_due(101.0, 160.0, old, None)  # a file briefly missing mid-swap: keep the token


def test_file_stamp_changes_when_the_file_is_replaced(tmp_path: Path) -> None:
    token = tmp_path / "token"
    assert file_stamp(str(token)) is None and file_stamp(None) is None
    token.write_text("a")
    first = file_stamp(str(token))
    (tmp_path / "next").write_text("b")
    (tmp_path / "next").replace(token)
    assert first is not None and file_stamp(str(token)) not in (None, first)


def kubeconfig(path: Path, user: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    return path


def test_the_loader_records_a_relative_token_file_and_its_stamp(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc")
    conn = load_connection(str(kubeconfig(tmp_path / "config", {"tokenFile": "token"})))
    assert conn.token == "abc"
    assert conn.token_file == str(tmp_path / "token")
    assert conn.token_file_stamp == file_stamp(str(tmp_path / "token"))
    assert conn.refresh_at == conn.loaded_at + TOKEN_FILE_PERIOD


def test_a_static_token_in_the_kubeconfig_has_no_refresh_time(tmp_path: Path) -> None:
    conn = load_connection(str(kubeconfig(tmp_path / "config", {"token": "abc"})))
    assert conn.token_file is None and conn.refresh_at is None


def test_an_exec_credential_is_due_before_its_expiry() -> None:
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    conn = Connection("http://x", token="t", expiry=expiry, loaded_at=expiry.timestamp() - 10)
    assert conn.refresh_at == expiry.timestamp() - 2
