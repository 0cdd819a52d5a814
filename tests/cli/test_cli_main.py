"""Commands that need no running node, and the exception → exit code mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import tpledger.cli.render as render
from tests.cli.helpers import assert_one_line_error
from tpledger.cli.cluster import ClusterInfo
from tpledger.cli.main import cli, run


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"], ["cluster", "init", "--help"], ["cluster", "up", "--help"],
        ["node", "run", "--help"], ["claim", "submit", "--help"], ["claim", "status", "--help"],
        ["proof", "get", "--help"], ["proof", "verify", "--help"], ["status", "--help"],
        ["lpp", "list", "--help"], ["audit", "--help"], ["demo", "--help"],
    ],
)
def test_help_has_example(argv: list[str]) -> None:
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 0
    assert "tpledger" in res.stdout and ("Example" in res.stdout or argv == ["--help"]
                                         or "Quick start" in res.stdout)


def test_key_file_with_open_mode_refused(cluster_info: ClusterInfo, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.key"
    key.write_bytes(cluster_info.client("optic-paris").key.read_bytes())
    key.chmod(0o644)
    rc = run(["claim", "status", "ab" * 32, "--node", "http://127.0.0.1:9", "--key", str(key)])
    _, err = capsys.readouterr()
    assert rc == 1
    assert_one_line_error(err)
    assert "chmod 600" in err


def test_unreachable_node(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["status", "--node", "http://127.0.0.1:9"])
    _, err = capsys.readouterr()
    assert rc == 6  # Exit.UNREACHABLE (was 1: issue 14 tells an unreachable node apart)
    assert_one_line_error(err)
    assert "unreachable" in err


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status"]) == 2
    assert run(["no-such-command"]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err


def test_unexpected_exception_exit_70(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    def boom(*_: object, **__: object) -> None:
        raise ZeroDivisionError("secret 185057800608436")

    monkeypatch.setattr(render, "lpp_rows", boom)
    monkeypatch.delenv("TPLEDGER_DEBUG", raising=False)
    rc = run(["lpp", "list"])
    _, err = capsys.readouterr()
    assert rc == 70
    assert_one_line_error(err)
    assert "ZeroDivisionError" in err and "185057800608436" not in err

    monkeypatch.setenv("TPLEDGER_DEBUG", "1")
    rc = run(["lpp", "list"])
    _, err = capsys.readouterr()
    assert rc == 70 and "Traceback" in err


def test_version() -> None:
    assert run(["--version"]) == 0


@pytest.mark.parametrize("argv", [
    ["claim", "inbox", "--help"], ["claim", "open", "--help"], ["claim", "decide", "--help"],
    ["claim", "pay", "--help"], ["claim", "cancel", "--help"], ["claim", "list", "--help"],
    ["claim", "forget", "--help"], ["checkpoint", "get", "--help"],
    ["checkpoint", "verify", "--help"], ["checkpoint", "consistency", "--help"],
    ["witness", "--help"], ["stats", "--help"],
])
def test_help_has_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "tpledger" in out
