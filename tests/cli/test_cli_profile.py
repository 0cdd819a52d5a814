"""Defaults from the profile file and the environment: flag > env > file > nothing; strict keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error
from tpledger.cli.main import run

FLAG, ENV, FILE = "http://127.0.0.1:9", "http://127.0.0.1:19", "http://127.0.0.1:29"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TPLEDGER_NODE", "TPLEDGER_KEY", "TPLEDGER_CA", "TPLEDGER_GENESIS",
                 "TPLEDGER_CONFIG", "TPLEDGER_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _node_tried(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The URL ``status`` tried (every port here is closed: the error names it)."""
    capsys.readouterr()
    assert run(["status", *argv]) == 6
    err = capsys.readouterr().err
    assert_one_line_error(err)
    return next(u for u in (FLAG, ENV, FILE) if u in err)


def _profile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "xdg" / "tpledger" / "config.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_precedence_flag_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status"]) == 2  # nothing anywhere: a usage error naming the three places
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "TPLEDGER_NODE" in err and "config.toml" in err
    _profile(tmp_path, f'node = "{FILE}"\n')
    assert _node_tried(capsys) == FILE
    monkeypatch.setenv("TPLEDGER_NODE", ENV)
    assert _node_tried(capsys) == ENV
    assert _node_tried(capsys, "--node", FLAG) == FLAG


def test_tpledger_config_and_named_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "other.toml"
    elsewhere.write_text(f'node = "{FILE}"\n\n[profiles.lyon]\nnode = "{ENV}"\n')
    monkeypatch.setenv("TPLEDGER_CONFIG", str(elsewhere))
    assert _node_tried(capsys) == FILE
    capsys.readouterr()
    assert run(["--profile", "lyon", "status"]) == 6
    assert ENV in capsys.readouterr().err
    monkeypatch.setenv("TPLEDGER_PROFILE", "lyon")
    assert _node_tried(capsys) == ENV
    assert run(["--profile", "paris", "status"]) == 2  # no such profile: the known ones named
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "profiles.paris" in err and "lyon" in err
    monkeypatch.setenv("TPLEDGER_CONFIG", str(tmp_path / "absent.toml"))
    assert run(["status"]) == 1  # an explicit TPLEDGER_CONFIG must exist
    assert "no such profile file" in capsys.readouterr().err


def test_key_paths_relative_to_the_profile_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = _profile(tmp_path, f'node = "{FLAG}"\nkey = "keys/me.key"\n')
    assert run(["claim", "list"]) == 2  # the key does not exist: named with its full path
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert str(p.parent / "keys" / "me.key") in err


@pytest.mark.parametrize(("text", "key", "line"), [
    ('node = "http://x"\nnod = "http://y"\n', "nod", 2),
    ('node = "http://x"\n\n[profiles.a]\nkey = "k"\nlistne = "z"\n', "listne", 5),
])
def test_unknown_key_refused_with_name_and_line(tmp_path: Path, text: str, key: str, line: int,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = _profile(tmp_path, text)
    assert run(["status"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert f"{p}:{line}: unknown key '{key}'" in err


def test_bad_toml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _profile(tmp_path, 'node = "unterminated\n')
    assert run(["status"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "not a valid TOML profile file" in err


def test_ca_from_env_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TPLEDGER_CA", str(tmp_path / "no-ca.crt"))
    assert run(["status", "--node", FLAG]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "--ca" in err and "no-ca.crt" in err
