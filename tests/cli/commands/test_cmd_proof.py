"""``tpledger proof verify``: a bad proof file or genesis is a one-line error (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import run
from tests.cli.helpers import assert_one_line_error


def test_proof_verify_bad_file(cluster_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.proof"
    bad.write_bytes(b"not a proof at all")
    rc = run(["proof", "verify", str(bad), "--genesis", str(cluster_dir / "genesis.json")])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert_one_line_error(err)
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
    assert_one_line_error(err)


def test_bad_genesis_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "genesis.json"
    g.write_text("{not json")
    p = tmp_path / "x.proof"
    p.write_bytes(b"x")
    rc = run(["proof", "verify", str(p), "--genesis", str(g)])
    _, err = capsys.readouterr()
    assert rc == 1
    assert_one_line_error(err)
    assert "genesis" in err
