"""Nodes as checkpoint sources: the one consistency-path fetch, and the witness's polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ledger.helpers import World
from tpledger.cli.checkpoint_source import NodeSource, fetch_consistency_path
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError
from tpledger.cli.main import run


class _Client(NodeClient):
    """A NodeClient whose consistency answer is given (and whose calls are counted)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("http://127.0.0.1:9")
        self.body = body
        self.calls = 0

    def consistency(self, old_size: int, new_size: int) -> dict[str, Any]:
        self.calls += 1
        return self.body


def test_fetch_consistency_path() -> None:
    client = _Client({"path": ["00" * 32, "11" * 32]})
    assert fetch_consistency_path(client, 3, 3) == () and client.calls == 0
    assert fetch_consistency_path(client, 0, 9) == () and client.calls == 0
    assert fetch_consistency_path(client, 3, 9) == (bytes(32), b"\x11" * 32)
    assert NodeSource(client).consistency_path(3, 9) == [bytes(32), b"\x11" * 32]
    with pytest.raises(CliError, match="not hex"):
        fetch_consistency_path(_Client({"path": ["zz"]}), 3, 9)
    with pytest.raises(CliError, match="not hex"):
        fetch_consistency_path(_Client({"path": [7]}), 3, 9)


def test_witness_with_no_node_answering_exits_1(world: World, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    genesis = tmp_path / "genesis.json"
    world.genesis.save(genesis)
    state = tmp_path / "s.json"
    rc = run(["witness", "--node", "http://127.0.0.1:9", "--genesis", str(genesis),
              "--state", str(state), "--once"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "warning: http://127.0.0.1:9:" in err and "no node answered" in err
    assert state.exists()  # the state is saved after every poll
