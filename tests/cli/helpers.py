"""Helpers of the CLI tests: certified checkpoints of a toy log, a fake node serving them, and
the shape of a one-line error."""

from __future__ import annotations

from tests.ledger.helpers import CHAIN_ID, GENESIS_TIME_MS, World, certify
from tpledger.ledger.blocks import Header
from tpledger.ledger.encoding import tagged_hash
from tpledger.ledger.merkle import consistency_path, root_of
from tpledger.ledger.proofs import Checkpoint

ENTRIES = [f"entry-{i}".encode() for i in range(40)]


def header(height: int, size: int, salt: bytes = b"") -> Header:
    return Header(
        chain_id=CHAIN_ID, height=height,
        prev_hash=tagged_hash("test/prev", salt + bytes([height])),
        time_ms=GENESIS_TIME_MS + height * 1000, proposer=height % 4, tree_size=size,
        tree_root=root_of(ENTRIES[:size]) if not salt else tagged_hash("test/root", salt),
        txs_root=bytes(32), state_digest=bytes(32), registry_root=bytes(32), registry_size=0,
    )


def cp(w: World, height: int, size: int, signers: tuple[int, ...] = (0, 1, 2),
       salt: bytes = b"") -> Checkpoint:
    h = header(height, size, salt)
    return Checkpoint(h, certify(w, h, signers))


class FakeNode:
    """A node serving one history (a dict height -> checkpoint) and its entries."""

    def __init__(self, name: str, history: dict[int, Checkpoint],
                 entries: list[bytes] | None = None) -> None:
        self.name = name
        self.history = history
        self.entries = ENTRIES if entries is None else entries

    def checkpoint_at(self, height: int) -> Checkpoint:
        return self.history[height]

    def consistency_path(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_path(self.entries[:new_size], old_size)


def assert_one_line_error(err: str) -> None:
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
