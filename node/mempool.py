"""The mempool: admitted, signed, rule-checked transactions waiting for a block.

Bounded by count and bytes; FIFO; no duplicates. When full, admission fails with
:class:`MempoolFull` and the API answers 503 with Retry-After (back-pressure, not loss).
After a block that revokes, suspends or rotates out keys, :meth:`Mempool.drop_signers` drops
the txs those keys signed: from the next block on they would be refused anyway.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import NamedTuple

from tpledger.ledger.tx import SignedTx
from tpledger.node.errors import NodeError


class MempoolFull(NodeError):
    """No room for more transactions right now."""


class PendingTx(NamedTuple):
    """An admitted tx (immutable; a named tuple because one is made per tx admitted)."""

    tx_id: bytes
    raw: bytes
    stx: SignedTx
    sealed: tuple[tuple[str, bytes], ...]  # (payer org, sealed opening) travelling beside the tx
    received_ms: int

    @property
    def size_bytes(self) -> int:
        """What this entry counts against the mempool's byte limit."""
        size = len(self.raw)
        for _, sealed in self.sealed:  # at most a few: a loop beats sum() over a generator
            size += len(sealed)
        return size


class Mempool:
    def __init__(self, max_txs: int, max_bytes: int = 512 * 1024 * 1024) -> None:
        if max_txs <= 0 or max_bytes <= 0:
            raise ValueError("mempool limits must be positive")
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._txs: OrderedDict[bytes, tuple[PendingTx, int]] = OrderedDict()  # tx, its size
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._txs

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def room(self) -> int:
        return self.max_txs - len(self._txs)

    def get(self, tx_id: bytes) -> PendingTx | None:
        entry = self._txs.get(tx_id)
        return None if entry is None else entry[0]

    def add(self, tx: PendingTx) -> bool:
        """Add ``tx``; False if already present. Raises :class:`MempoolFull`."""
        if tx.tx_id in self._txs:
            return False
        size = tx.size_bytes
        if len(self._txs) >= self.max_txs or self._bytes + size > self.max_bytes:
            raise MempoolFull("mempool is full; retry later")
        self._txs[tx.tx_id] = (tx, size)
        self._bytes += size
        return True

    def take(self, max_txs: int, max_bytes: int) -> list[PendingTx]:
        """Oldest transactions first, within the limits, without removing them."""
        out: list[PendingTx] = []
        total = 0
        for tx, _ in self._txs.values():
            if len(out) >= max_txs or total + len(tx.raw) > max_bytes:
                break
            out.append(tx)
            total += len(tx.raw)
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> list[PendingTx]:
        removed = []
        pop = self._txs.pop
        for tx_id in tx_ids:
            entry = pop(tx_id, None)
            if entry is not None:
                self._bytes -= entry[1]
                removed.append(entry[0])
        return removed

    def drop_signers(self, keys: Collection[bytes]) -> list[PendingTx]:
        """Remove and return every pending tx signed by one of ``keys`` (keys that the last
        block retired). One O(mempool) scan, run only after a block that retires keys."""
        if not keys or not self._txs:
            return []
        keyset = keys if isinstance(keys, (set, frozenset)) else frozenset(keys)
        return self.remove([tx_id for tx_id, (tx, _) in self._txs.items()
                            if tx.stx.signer in keyset])
