"""``tpledger proof verify``: a bad proof file or genesis is a one-line error (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error
from tpledger.cli.main import run


def test_proof_verify_bad_file(cluster_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.proof"
    bad.write_bytes(b"not a proof at all")
    rc = run(["proof", "verify", str(bad), "--genesis", str(cluster_dir / "genesis.json")])
    out, err = capsys.readouterr()
    assert rc == 7 and out == ""  # Exit.INVALID_PROOF (was 1, issue 14)
    assert_one_line_error(err)
    assert "proof invalid (decode)" in err


def test_proof_verify_bad_file_json(cluster_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.proof"
    bad.write_bytes(b"TPLPRF1\n\x93\x01")
    rc = run(["proof", "verify", str(bad), "--genesis", str(cluster_dir / "genesis.json"),
              "--json"])
    out, _ = capsys.readouterr()
    assert rc == 7  # Exit.INVALID_PROOF (was 1, issue 14)
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


def test_proof_get_writes_atomically(cluster_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The bundle goes through the bounded-file helper: whole or not at all."""
    import tpledger.cli.commands.proof as proof_cmd

    monkeypatch.setattr(proof_cmd, "proof_bytes", lambda client, cid, size: b"bundle bytes")
    key = str(cluster_dir / "keys" / "optic-paris.key")
    out = tmp_path / "claim.proof"
    argv = ["proof", "get", "ab" * 32, "--node", "http://127.0.0.1:9", "--key", key]
    assert run([*argv, "-o", str(out)]) == 0
    assert out.read_bytes() == b"bundle bytes" and list(tmp_path.iterdir()) == [out]
    assert "proof written to" in capsys.readouterr().err
    assert run([*argv, "-o", str(tmp_path / "no-dir" / "claim.proof")]) == 1
    assert_one_line_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [out]
