"""Files read by the CLI and the node are size-bounded: an oversize file is refused with one
line, before it is parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.bounded_files import MAX_CHECKPOINT_FILE_BYTES, read_bounded, read_checkpoint
from cli.errors import CliError
from cli.main import run
from node.config import MAX_CONFIG_BYTES, NodeConfig
from node.errors import ConfigError


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
