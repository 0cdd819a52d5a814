"""Headers and blocks: canonical encoding, hashing, size accounting, bounds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tpledger.ledger.blocks import (
    EMPTY_ROOT,
    Block,
    Header,
    encoded_size,
    genesis_state_digest,
    tx_entry_overhead,
    txs_root,
)
from tpledger.ledger.encoding import tagged_hash
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.merkle import root_of

try:
    from tests.ledger import helpers as h
except ModuleNotFoundError:  # pytest run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ledger import helpers as h


def _header(**kw: object) -> Header:
    base: dict[str, object] = dict(
        chain_id="c", height=1, prev_hash=b"\x01" * 32, time_ms=5, proposer=0, tree_size=0,
        tree_root=EMPTY_ROOT, txs_root=EMPTY_ROOT, state_digest=b"\x02" * 32,
        registry_root=b"\x03" * 32, registry_size=7,
    )
    base.update(kw)
    return Header(**base)  # type: ignore[arg-type]


def test_header_roundtrip_and_hash() -> None:
    hd = _header()
    assert Header.decode(hd.encode()) == hd
    assert hd.hash() == tagged_hash("tpledger/header", hd.encode())
    assert _header(time_ms=6).hash() != hd.hash()


def test_header_rejects_height_zero_and_bad_hash_len() -> None:
    with pytest.raises(EncodingError):
        _header(height=0).encode()
    with pytest.raises(EncodingError):
        _header(prev_hash=b"\x00" * 31).encode()


def test_block_roundtrip_and_encoded_size() -> None:
    world = h.make_world("blocks")
    for n in (0, 1, 15, 16, 40):
        txs = tuple(h.make_claim(world).encode() for _ in range(n))
        b = Block(_header(txs_root=txs_root(txs)), txs)
        data = b.encode()
        assert Block.decode(data) == b
        assert encoded_size(b) == len(data)


def test_tx_entry_overhead_matches_msgpack() -> None:
    import msgpack

    for n in (1, 255, 256, 16000):
        b = Block(_header(), (b"x" * n,))
        assert encoded_size(b) == len(b.encode()), n
    for n in (1, 255, 256, 65535, 65536):
        assert tx_entry_overhead(n) == len(msgpack.packb(b"x" * n)) - n


def test_txs_root_is_rfc9162_root() -> None:
    txs = [b"a", b"b", b"c"]
    assert txs_root(txs) == root_of(txs)
    assert txs_root([]) == EMPTY_ROOT


def test_block_decode_is_bounded() -> None:
    with pytest.raises(EncodingError):
        Block.decode(b"\x00" * (Block.MAX_BYTES + 1))
    with pytest.raises(EncodingError):
        Block(_header(), (b"",)).encode()  # empty tx entry


def test_genesis_state_digest_is_fixed_per_genesis() -> None:
    a, b = h.make_world("a"), h.make_world("b")
    assert genesis_state_digest(a.genesis) == genesis_state_digest(a.genesis)
    assert genesis_state_digest(a.genesis) != genesis_state_digest(b.genesis)
