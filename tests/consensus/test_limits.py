"""Issue 11: genesis, consensus and node size limits derive from ledger/limits.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpledger.consensus import ConsensusConfig
from tpledger.consensus.messages import (
    MAX_PAYLOAD_BYTES_LIMIT,
    PersistedState,
    ProofOfLock,
    SignedProposal,
)
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import DEFAULT_PARAMS, Params
from tpledger.ledger.limits import (
    BLOCK_ENVELOPE_BYTES,
    BLOCK_HEADER_RESERVE_BYTES,
    MAX_BLOCK_BYTES,
    MAX_HTTP_BODY_BYTES,
    MAX_PEER_FRAME_BYTES,
    MAX_TX_BYTES,
)
from tpledger.node.config import Limits, NodeConfig
from tpledger.node.errors import ConfigError
from tpledger.node.peers import MAX_FRAME_BYTES, PeerFrame


def _params(block: int, tx: int) -> Params:
    p = Params(DEFAULT_PARAMS.max_block_txs, block, tx, DEFAULT_PARAMS.max_clock_drift_ms)
    return Params.decode(p.encode())


def test_the_largest_genesis_block_runs_everywhere() -> None:
    p = _params(MAX_BLOCK_BYTES, MAX_TX_BYTES)
    cfg = ConsensusConfig(max_payload_bytes=p.max_block_bytes + BLOCK_ENVELOPE_BYTES)
    assert cfg.max_payload_bytes == MAX_PAYLOAD_BYTES_LIMIT
    assert SignedProposal.MAX_BYTES <= MAX_FRAME_BYTES == MAX_PEER_FRAME_BYTES
    assert ProofOfLock.MAX_BYTES <= MAX_FRAME_BYTES
    assert PeerFrame.MAX_BYTES >= SignedProposal.MAX_BYTES
    assert PersistedState.MAX_BYTES > MAX_PAYLOAD_BYTES_LIMIT
    assert Limits().max_body_bytes <= MAX_HTTP_BODY_BYTES <= MAX_FRAME_BYTES


@pytest.mark.parametrize("block, tx", [
    (MAX_BLOCK_BYTES + 1, 16 * 1024),  # was accepted up to 64 MiB: the node could not start
    (64 * 1024 * 1024, 16 * 1024),
    (8 * 1024, 8 * 1024 - BLOCK_HEADER_RESERVE_BYTES + 1),  # a largest tx never fits a block
    (4 * 1024 * 1024, MAX_TX_BYTES + 1),
])
def test_genesis_refuses_what_the_node_cannot_run(block: int, tx: int) -> None:
    with pytest.raises((LedgerError, ValueError)):
        _params(block, tx)


def test_consensus_refuses_payloads_beyond_the_wire_ceiling() -> None:
    with pytest.raises(ValueError):
        ConsensusConfig(max_payload_bytes=MAX_PAYLOAD_BYTES_LIMIT + 1)


def test_node_config_refuses_a_body_limit_beyond_the_peer_frame(tmp_path: Path) -> None:
    base = 'name = "v0"\ngenesis = "g.json"\nvalidator_key = "k"\n[limits]\n'
    ok = tmp_path / "ok.toml"
    ok.write_text(base + f"max_body_bytes = {MAX_HTTP_BODY_BYTES}\n")
    assert NodeConfig.load(ok).limits.max_body_bytes == MAX_HTTP_BODY_BYTES
    bad = tmp_path / "bad.toml"
    bad.write_text(base + f"max_body_bytes = {MAX_HTTP_BODY_BYTES + 1}\n")
    with pytest.raises(ConfigError, match="max_body_bytes"):
        NodeConfig.load(bad)
