"""Commands that need no running node, and the exception → exit code mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli.main as cli_main
from cli.cluster import ClusterInfo
from cli.main import cli, run
from ledger.lpp import LppTable


def test_lpp_list_json() -> None:
    res = CliRunner().invoke(cli, ["lpp", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == len(LppTable.default())
    for r in rows:
        assert {"code", "label", "max_price", "class", "category"} <= set(r)
        assert len(r["code"]) == 7
        assert r["max_price"] is None or isinstance(r["max_price"], str)
    by_code = {r["code"]: r for r in rows}
    assert by_code["2261874"]["max_price"] == "12.04"


def test_lpp_list_table() -> None:
    res = CliRunner().invoke(cli, ["lpp", "list"])
    assert res.exit_code == 0 and "2261874" in res.stdout


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


def _assert_one_line_error(err: str) -> None:
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_proof_verify_bad_file(cluster_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.proof"
    bad.write_bytes(b"not a proof at all")
    rc = run(["proof", "verify", str(bad), "--genesis", str(cluster_dir / "genesis.json")])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    _assert_one_line_error(err)
    assert "proof invalid (decode)" in err


def test_proof_verify_bad_file_json(cluster_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.proof"
    bad.write_bytes(b"TPLPRF1\n\x93\x01")
    rc = run(["proof", "verify", str(bad), "--genesis", str(cluster_dir / "genesis.json"),
              "--json"])
    out, _ = capsys.readouterr()
    assert rc == 1
    body = json.loads(out)
    assert body["ok"] is False and body["failure"] == "decode"


def test_proof_verify_missing_file(cluster_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["proof", "verify", str(tmp_path / "nope"), "--genesis",
              str(cluster_dir / "genesis.json")])
    _, err = capsys.readouterr()
    assert rc == 1
    _assert_one_line_error(err)


def test_bad_genesis_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "genesis.json"
    g.write_text("{not json")
    p = tmp_path / "x.proof"
    p.write_bytes(b"x")
    rc = run(["proof", "verify", str(p), "--genesis", str(g)])
    _, err = capsys.readouterr()
    assert rc == 1
    _assert_one_line_error(err)
    assert "genesis" in err


def test_key_file_with_open_mode_refused(cluster_info: ClusterInfo, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.key"
    key.write_bytes(cluster_info.client("optic-paris").key.read_bytes())
    key.chmod(0o644)
    rc = run(["claim", "status", "ab" * 32, "--node", "http://127.0.0.1:9", "--key", str(key)])
    _, err = capsys.readouterr()
    assert rc == 1
    _assert_one_line_error(err)
    assert "chmod 600" in err


def test_unreachable_node(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["status", "--node", "http://127.0.0.1:9"])
    _, err = capsys.readouterr()
    assert rc == 1
    _assert_one_line_error(err)
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

    monkeypatch.setattr(cli_main, "_stdout", boom)
    monkeypatch.delenv("TPLEDGER_DEBUG", raising=False)
    rc = run(["lpp", "list"])
    _, err = capsys.readouterr()
    assert rc == 70
    _assert_one_line_error(err)
    assert "ZeroDivisionError" in err and "185057800608436" not in err

    monkeypatch.setenv("TPLEDGER_DEBUG", "1")
    rc = run(["lpp", "list"])
    _, err = capsys.readouterr()
    assert rc == 70 and "Traceback" in err


def test_version() -> None:
    assert run(["--version"]) == 0
