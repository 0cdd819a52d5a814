"""Proofs built from the LMDB store: inclusion bundles, checkpoints, consistency paths and
proofs (used by :mod:`ledger.store`; each reads O(log n) tree nodes and O(log height) headers
in the caller's read transaction)."""

from __future__ import annotations

import lmdb

from tpledger.ledger.blocks import Header
from tpledger.ledger.errors import EncodingError, LedgerError, StoreError
from tpledger.ledger.merkle import leaf_hash, verify_inclusion
from tpledger.ledger.merkle_tree import PersistentTree
from tpledger.ledger.proofs import Checkpoint, ConsistencyProof, ProofBundle
from tpledger.ledger.registry import RegistryTree, decode_leaf, gov_key_ed, leaf_key, u32_of
from tpledger.ledger.rules import tx_kind
from tpledger.ledger.store_layout import (
    Dbs,
    LmdbNodeStore,
    LmdbVersionedNodeStore,
    decode_row,
    get_row,
    read_cert,
    read_header,
    read_height,
    read_location,
    read_tx_bytes,
)
from tpledger.ledger.tx import SignedTx


def height_for_size(txn: lmdb.Transaction, dbs: Dbs, tree_size: int) -> int:
    """Lowest height whose header has exactly ``tree_size`` leaves (binary search)."""
    lo, hi = 1, read_height(txn, dbs)
    if hi == 0:
        raise StoreError("no block yet")
    while lo < hi:
        mid = (lo + hi) // 2
        if read_header(txn, dbs, mid).tree_size < tree_size:
            lo = mid + 1
        else:
            hi = mid
    if read_header(txn, dbs, lo).tree_size != tree_size:
        raise StoreError(f"no block ends at tree size {tree_size}")
    return lo


def inclusion_bundle(txn: lmdb.Transaction, dbs: Dbs, tx_id: bytes, tree_size: int | None,
                     height: int | None) -> ProofBundle:
    """See ``Store.proof``."""
    loc = read_location(txn, dbs, tx_id)
    if loc is None:
        raise StoreError(f"unknown transaction {tx_id.hex()[:16]}")
    if height is None:
        height = loc.height if tree_size is None else height_for_size(txn, dbs, tree_size)
    header = read_header(txn, dbs, height)
    if tree_size is not None and header.tree_size != tree_size:
        raise StoreError(f"block {height} does not end at tree size {tree_size}")
    if loc.leaf_index >= header.tree_size:
        raise StoreError(f"transaction is not yet in the log at height {height}")
    cert = read_cert(txn, dbs, height)
    tx = read_tx_bytes(txn, dbs, loc)
    path = PersistentTree(LmdbNodeStore(txn, dbs)).inclusion_path(loc.leaf_index,
                                                                   header.tree_size)
    record, signer_path = signer_proof(txn, dbs, decode_row(SignedTx, tx, "transaction"),
                                       header)
    return ProofBundle.of(tx=tx, leaf_index=loc.leaf_index, path=path, header=header,
                          certificate=cert, signer_record=record, signer_path=signer_path)


def signer_proof(txn: lmdb.Transaction, dbs: Dbs, stx: SignedTx, header: Header
                 ) -> tuple[bytes, list[bytes]]:
    """The signer's registry leaf as in force during ``header``'s block (the registry after
    block ``height - 1``, read from the versioned tree) and its path to
    ``header.registry_root``; empty for a validator-signed tx. Checked against the header
    before it is served: a damaged row (of the history or of the key index) is a
    StoreError, never a wrong proof."""
    try:
        if tx_kind(stx.parse()).signer_kind == "validator":
            return b"", []
    except LedgerError as exc:  # EncodingError, RuleError: not a tx the log may hold
        raise StoreError(f"corrupt store: a stored transaction: {exc}") from None
    raw_slot = get_row(txn, gov_key_ed(stx.signer), dbs.gov, "gov")
    if raw_slot is None:
        raise StoreError("corrupt store: the registry's key index misses a signer")
    slot = u32_of(raw_slot, "key slot")
    nodes = LmdbVersionedNodeStore(txn, dbs.regtree, at_height=header.height - 1)
    record = nodes.get_leaf(slot)
    if (record is None or slot >= header.registry_size
            or nodes.get_size() != header.registry_size):
        raise StoreError(f"corrupt store: registry history at height {header.height - 1} "
                         "is missing")
    path = RegistryTree(nodes).path(slot, header.registry_size)
    if not (verify_inclusion(leaf_hash(record), slot, header.registry_size, path,
                             header.registry_root) and _names(record, stx.signer)):
        raise StoreError(f"corrupt store: registry history at height {header.height - 1} "
                         "does not give the header's registry root")
    return record, path


def _names(record: bytes, key: bytes) -> bool:
    try:
        return leaf_key(decode_leaf(record)) == key
    except EncodingError:
        return False


def checkpoint_at(txn: lmdb.Transaction, dbs: Dbs, height: int | None) -> Checkpoint:
    h = read_height(txn, dbs) if height is None else height
    return Checkpoint(read_header(txn, dbs, h), read_cert(txn, dbs, h))


def consistency_path(txn: lmdb.Transaction, dbs: Dbs, old_size: int, new_size: int | None
                     ) -> list[bytes]:
    return PersistentTree(LmdbNodeStore(txn, dbs)).consistency_path(old_size, new_size)


def consistency_proof(txn: lmdb.Transaction, dbs: Dbs, old_height: int,
                      new_height: int | None) -> ConsistencyProof:
    new_h = read_height(txn, dbs) if new_height is None else new_height
    if not 1 <= old_height <= new_h:
        raise StoreError("need 1 <= old_height <= new_height")
    old, new = checkpoint_at(txn, dbs, old_height), checkpoint_at(txn, dbs, new_h)
    path = consistency_path(txn, dbs, old.header.tree_size, new.header.tree_size)
    return ConsistencyProof(old, new, tuple(path))


__all__ = ["checkpoint_at", "consistency_path", "consistency_proof", "height_for_size",
           "inclusion_bundle", "signer_proof"]
