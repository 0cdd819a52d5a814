"""Block headers and blocks.

A :class:`Header` commits to everything a block changes: the Merkle log after the block
(``tree_size``, ``tree_root``), the block's own transactions (``txs_root``, the RFC 9162 root
of their encoded ``SignedTx`` entries, in order) and the claim state after the block
(``state_digest``) and the participant registry in force during the block
(``registry_root``, ``registry_size``: the RFC 9162 root and size of the positional registry
tree after block ``height - 1``, see :mod:`ledger.registry`). ``Header.hash()`` is the consensus
value id: it is what validators precommit and what a :class:`~ledger.votes.CommitCertificate`
signs.

Height 0 is the genesis itself: an empty log (``EMPTY_ROOT``), the state digest
:func:`genesis_state_digest`, time ``genesis.genesis_time_ms`` and "hash" ``genesis.hash()``,
which is therefore the ``prev_hash`` of height 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import tpledger.ledger.limits as limits
from tpledger.ledger.encoding import (
    HASH32,
    U32,
    U64,
    Int,
    ListOf,
    Nested,
    Record,
    Str,
    VarBytes,
    spec,
    tagged_hash,
)
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.merkle import root_of
from tpledger.ledger.tx import SignedTx
from tpledger.ledger.votes import MAX_VALIDATORS

CHAIN_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."
HEADER_HASH_DOMAIN = "tpledger/header"
GENESIS_STATE_DOMAIN = "tpledger/state-genesis"
MAX_BLOCK_TXS = 100_000  # Params.max_block_txs ceiling
MAX_BLOCK_BYTES = limits.MAX_BLOCK_BYTES + 64 * 1024  # Params.max_block_bytes ceiling + slack
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 root of the empty tree


@dataclass(frozen=True)
class Header(Record):
    """Block header; ``hash()`` is what consensus votes on and certificates sign."""

    TAG: ClassVar[int] = 0x50
    VERSION: ClassVar[int] = 2  # 2: registry_root and registry_size appended (issue 13)
    MAX_BYTES: ClassVar[int] = 1024
    chain_id: str = spec(Str(64, 1, CHAIN_ID_CHARS))
    height: int = spec(Int(1, 2**63 - 1))
    prev_hash: bytes = spec(HASH32)
    time_ms: int = spec(U64)
    proposer: int = spec(Int(0, MAX_VALIDATORS - 1))
    tree_size: int = spec(U64)
    tree_root: bytes = spec(HASH32)
    txs_root: bytes = spec(HASH32)
    state_digest: bytes = spec(HASH32)
    registry_root: bytes = spec(HASH32)  # the registry in force during this block
    registry_size: int = spec(U32)

    def hash(self) -> bytes:
        """tagged_hash("tpledger/header", encode()): the block's id."""
        return tagged_hash(HEADER_HASH_DOMAIN, self.encode())


@dataclass(frozen=True)
class Block(Record):
    """A header and the encoded ``SignedTx`` entries it commits to, in log order."""

    TAG: ClassVar[int] = 0x51
    MAX_BYTES: ClassVar[int] = MAX_BLOCK_BYTES
    header: Header = spec(Nested(Header))
    txs: tuple[bytes, ...] = spec(ListOf(VarBytes(SignedTx.MAX_BYTES, 1), MAX_BLOCK_TXS))

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return self.header.hash()


def genesis_state_digest(genesis: Genesis) -> bytes:
    """State digest at height 0 (before any block): a fixed tagged hash of the genesis hash."""
    return tagged_hash(GENESIS_STATE_DOMAIN, genesis.hash())


def txs_root(txs: Sequence[bytes]) -> bytes:
    """RFC 9162 root of a block's encoded transactions (``EMPTY_ROOT`` for an empty block)."""
    return root_of(list(txs))


def tx_entry_overhead(n_bytes: int) -> int:
    """msgpack bytes around one ``n_bytes`` tx entry in ``Block.txs`` (the bin header)."""
    return 2 if n_bytes < 2**8 else 3 if n_bytes < 2**16 else 5


def _array_overhead(n_items: int) -> int:
    return 1 if n_items < 16 else 3 if n_items < 2**16 else 5


def encoded_size(block: Block) -> int:
    """``len(block.encode())`` without encoding the (up to 64 MiB) block."""
    body = sum(len(t) + tx_entry_overhead(len(t)) for t in block.txs)
    # [TAG, VERSION, header, txs]: array header, two positive fixints, header, txs array
    return 3 + len(block.header.encode()) + _array_overhead(len(block.txs)) + body


__all__ = [
    "EMPTY_ROOT",
    "MAX_BLOCK_BYTES",
    "MAX_BLOCK_TXS",
    "Block",
    "Header",
    "encoded_size",
    "genesis_state_digest",
    "tx_entry_overhead",
    "txs_root",
]
