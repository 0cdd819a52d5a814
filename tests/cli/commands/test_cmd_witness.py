"""``tpledger witness``: the command around the witness logic and its polling."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import cp
from tests.ledger.helpers import World
from tpledger.cli.checkpoint_source import NodeSource
from tpledger.cli.main import run
from tpledger.ledger.proofs import Checkpoint


def test_witness_command_exits_3_on_a_fork(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The command around the logic: two 'nodes' serving conflicting certified headers."""
    a = cp(world, 7, 12, signers=(0, 1, 2))
    b = cp(world, 7, 12, signers=(0, 1, 3), salt=b"evil")
    served = {"http://127.0.0.1:1": a, "http://127.0.0.1:2": b}

    def latest(self: NodeSource) -> Checkpoint:
        return served[self.name]

    monkeypatch.setattr(NodeSource, "latest", latest)
    genesis = tmp_path / "genesis.json"
    world.genesis.save(genesis)
    rc = run(["witness", "--node", "http://127.0.0.1:1", "--node", "http://127.0.0.1:2",
              "--genesis", str(genesis), "--state", str(tmp_path / "s.json"), "--once"])
    out, err = capsys.readouterr()
    assert rc == 3, err
    assert "FORK at height 7" in out and "0 (val-0), 1 (val-1)" in out
