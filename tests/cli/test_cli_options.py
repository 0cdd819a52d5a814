"""Shared options: the genesis found next to a key, and the two kinds of ``--genesis FILE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpledger.cli.errors import UsageError
from tpledger.cli.main import run
from tpledger.cli.options import load_genesis_for
from tpledger.ledger.genesis import Genesis


def test_genesis_is_found_next_to_the_keys_cluster(cluster_dir: Path, tmp_path: Path) -> None:
    key = cluster_dir / "keys" / "optic-paris.key"
    expected = Genesis.load(cluster_dir / "genesis.json").hash()
    assert load_genesis_for(key, None).hash() == expected
    assert load_genesis_for(key, cluster_dir / "genesis.json").hash() == expected
    alone = tmp_path / "keys" / "k.key"
    alone.parent.mkdir()
    alone.write_bytes(key.read_bytes())
    with pytest.raises(UsageError, match="give --genesis FILE"):
        load_genesis_for(alone, None)


def test_missing_genesis_is_usage_or_command_error(cluster_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``--genesis`` of an offline check: a missing file is the check's error (exit 1); of the
    witness and the store audit, whose files must exist, a usage error (exit 2)."""
    missing = str(tmp_path / "absent.json")
    ckp = tmp_path / "x.ckp"
    ckp.write_bytes(b"x")
    assert run(["checkpoint", "verify", str(ckp), "--genesis", missing]) == 1
    assert run(["witness", "--node", "http://127.0.0.1:9", "--genesis", missing,
                "--state", str(tmp_path / "s.json"), "--once"]) == 2
    assert run(["audit", "--config", str(cluster_dir / "nodes/v0/node.toml"),
                "--genesis", missing]) == 2
    assert "Traceback" not in capsys.readouterr().err
