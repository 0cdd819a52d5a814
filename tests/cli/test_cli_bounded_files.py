"""Files read by the CLI and the node are size-bounded: an oversize file is refused with one
line, before it is parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import ENTRIES, cp
from tests.ledger.helpers import World
from tpledger.cli.bounded_files import (
    MAX_CHECKPOINT_FILE_BYTES,
    read_bounded,
    read_checkpoint,
    read_consistency_proof,
    read_prefix,
    write_atomically,
)
from tpledger.cli.errors import CliError
from tpledger.cli.main import run
from tpledger.ledger.merkle import consistency_path
from tpledger.ledger.proofs import ConsistencyProof
from tpledger.node.config import MAX_CONFIG_BYTES, NodeConfig
from tpledger.node.errors import ConfigError


def test_read_bounded(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 10)
    assert read_bounded(p, 10, "thing") == b"x" * 10
    with pytest.raises(CliError, match="larger than 9 bytes"):
        read_bounded(p, 9, "thing")
    with pytest.raises(CliError, match="cannot read thing"):
        read_bounded(tmp_path / "absent", 9, "thing")


def test_oversize_checkpoint_and_config_are_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.ckp"
    big.write_bytes(b"TPLCKP1\n" + b"\x00" * MAX_CHECKPOINT_FILE_BYTES)
    with pytest.raises(CliError, match="larger than"):
        read_checkpoint(big)
    (tmp_path / "g.json").write_text("{}")
    assert run(["checkpoint", "verify", str(big), "--genesis", str(tmp_path / "g.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:")
    cfg = tmp_path / "node.toml"
    cfg.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        NodeConfig.load(cfg)


def test_read_prefix_leaves_the_refusal_to_the_parser(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"y" * 20)
    assert read_prefix(p, 10, "thing") == b"y" * 11  # one byte more: the parser sees oversize
    dash = Path("-")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_bytes(b"a file named dash")
    assert read_prefix(dash, 100, "thing") == b"a file named dash"  # stdin only when allowed
    with pytest.raises(CliError, match="cannot read thing"):
        read_prefix(tmp_path / "absent", 10, "thing", allow_stdin=True)


def test_consistency_proof_file_must_match_the_checkpoints(world: World, tmp_path: Path) -> None:
    old, new, other = cp(world, 1, 5), cp(world, 2, 9), cp(world, 3, 12)
    f = tmp_path / "p.cns"
    write_atomically(f, ConsistencyProof(old, new, tuple(consistency_path(ENTRIES[:9], 5)))
                     .to_bytes())
    assert read_consistency_proof(f, old, new).new == new
    with pytest.raises(CliError, match="for other checkpoints"):
        read_consistency_proof(f, old, other)
    f.write_bytes(b"TPL garbage")
    with pytest.raises(CliError, match=str(f)):
        read_consistency_proof(f, old, new)


def test_write_atomically_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomically(tmp_path / "no-dir" / "f", b"data")
    assert list(tmp_path.iterdir()) == []
