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


def test_proof_verify_prints_the_signers_org_role_and_identifiers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shop added after the genesis: its claim's bundle verifies from the genesis file
    alone, and the verdict names the shop, its role and its RPPS/SIRET (issue 13)."""
    from tests.ledger import helpers as h
    from tests.ledger import registry_helpers as rh

    world = h.make_world("cli-proof")
    store = h.open_store(tmp_path / "db", world)
    add, key = rh.add_shop(world, "shop-new", n=7)
    h.add_block(world, store, [add])
    claim = rh.claim_by(world, key)
    h.add_block(world, store, [claim])
    (tmp_path / "claim.proof").write_bytes(store.proof(claim.tx_id()).to_bytes())
    store.close()
    world.genesis.save(tmp_path / "genesis.json")
    argv = ["proof", "verify", str(tmp_path / "claim.proof"), "--genesis",
            str(tmp_path / "genesis.json")]
    ids = h.ids_for("optician", 7)
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert f"signed by shop-new (optician; RPPS {ids.rpps}, SIRET {ids.siret})" in out
    assert run([*argv, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["signer_org"], body["signer_role"]) == ("shop-new", "optician")
    assert body["signer_ids"] == {"rpps": ids.rpps, "siret": ids.siret}
