"""Block execution over the LMDB store: dry runs that return a :class:`CheckedBlock`, the
builder of the next block, and the writes of an applied block (used by :mod:`ledger.store`).

A :class:`CheckedBlock` is the token of a completed dry run (etcd-io/raft's Ready/Advance
idea): the block, the head it was checked on, its decoded txs and the dry run's writes
(overlay state and overlay Merkle nodes, whose roots and state digest the header was checked
against). ``Store.apply_block(checked, cert)`` writes exactly these, and refuses the token
if the head moved since. Every validity rule is :mod:`ledger.validity`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from tpledger.ledger.blocks import Block, Header, tx_entry_overhead
from tpledger.ledger.encoding import pack
from tpledger.ledger.errors import EncodingError, RuleError, StoreError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.merkle import leaf_hash, root_from_leaf_hashes
from tpledger.ledger.merkle_tree import OverlayNodeStore, PersistentTree
from tpledger.ledger.registry import Registry, u32_of
from tpledger.ledger.rowcheck import seal_rows
from tpledger.ledger.rules import OverlayState, RulesContext, apply_tx, state_digest
from tpledger.ledger.store_layout import (
    META_HEIGHT,
    Dbs,
    LmdbNodeStore,
    LmdbState,
    LmdbVersionedNodeStore,
    TxLocation,
    place_key,
    put_row,
    u64,
)
from tpledger.ledger.tx import SignedTx
from tpledger.ledger.validity import Head, check_link, check_shape, execute, registry_after
from tpledger.ledger.votes import CommitCertificate

_HEADER_SLACK_BYTES = Header.MAX_BYTES + 16  # block envelope + largest header


@dataclass(frozen=True, eq=False)
class CheckedBlock:
    """A block checked valid on ``head`` by a dry run, with that dry run's writes."""

    block: Block
    head: Head
    stxs: tuple[SignedTx, ...]
    state: OverlayState  # the rules' writes (claims, tx ids, evidence, governance rows)
    nodes: OverlayNodeStore  # the Merkle nodes the block appends
    state_digest: bytes
    registry: Registry  # the registry in force during the block (the header commits to it)
    registry_after: Registry  # the registry in force for the next block
    regnodes: OverlayNodeStore  # the registry tree nodes the block changes

    @property
    def header(self) -> Header:
        return self.block.header

    @property
    def retired_keys(self) -> frozenset[bytes]:
        """Signing keys usable in this block and not after it (revoked, suspended, rotated
        out): empty, at no cost, for a block without governance changes."""
        return self.registry_after.retired_since(self.registry)

    def tx_ids(self) -> list[bytes]:
        return [stx.tx_id() for stx in self.stxs]


def regtree_nodes(txn: lmdb.Transaction, dbs: Dbs, write_height: int | None = None
                  ) -> LmdbVersionedNodeStore:
    """The stored registry tree, latest versions (writes kept under ``write_height``)."""
    return LmdbVersionedNodeStore(txn, dbs.regtree, write_height=write_height)


def dry_run(txn: lmdb.Transaction, dbs: Dbs, head: Head, genesis: Genesis, ctx: RulesContext,
            block: Block, now_ms: int | None, check_signatures: bool,
            decoded: Sequence[SignedTx | None] | None, *, registry: Registry) -> CheckedBlock:
    """Check ``block`` on ``head`` (read transaction ``txn``; ``registry``: the one in force
    after ``head``) on overlays; writes nothing."""
    check_link(block.header, head, genesis, now_ms)
    stxs, leaves = check_shape(block, genesis.params, decoded)
    state = OverlayState(LmdbState(txn, dbs, registry=registry))
    nodes = OverlayNodeStore(LmdbNodeStore(txn, dbs))
    regnodes = OverlayNodeStore(regtree_nodes(txn, dbs))
    done = execute(block.header, head, ctx, state, nodes, stxs, leaves, check_signatures,
                   regnodes)
    return CheckedBlock(block, head, tuple(stxs), state, nodes, done.state_digest, registry,
                        done.registry_after, regnodes)


def replay_into(txn: lmdb.Transaction, dbs: Dbs, head: Head, genesis: Genesis,
                ctx: RulesContext, block: Block, check_signatures: bool, *,
                registry: Registry) -> tuple[list[SignedTx], Registry]:
    """Check ``block`` on ``head`` writing the rules' and the tree's writes straight into the
    write transaction ``txn`` (aborted by the caller on any error). Returns the decoded txs
    and the registry after the block."""
    check_link(block.header, head, genesis)
    stxs, leaves = check_shape(block, genesis.params)
    height = block.header.height
    places = [place_key(height, pos) for pos in range(len(stxs))]
    new_places = dict(zip([stx.tx_id() for stx in stxs], places, strict=True))
    regnodes = regtree_nodes(txn, dbs, write_height=height)
    done = execute(block.header, head, ctx, LmdbState(txn, dbs, new_places, registry),
                   LmdbNodeStore(txn, dbs), stxs, leaves, check_signatures, regnodes)
    write_leaf_history(regnodes, done.gov_writes)
    return stxs, done.registry_after


def write_leaf_history(regnodes: LmdbVersionedNodeStore,
                       gov_writes: Sequence[tuple[bytes, bytes]]) -> None:
    """Keep the bytes of every registry leaf a block wrote under its height (the record of a
    proof of any later block's registry, after further changes)."""
    leaves = [(u32_of(key[1:], "slot key"), value) for key, value in gov_writes
              if key[:1] == b"s"]
    if leaves:
        regnodes.put_leaves(leaves)


def require_head(checked: CheckedBlock, head: Head) -> None:
    """Refuse a token checked on another head than ``head`` (the store's head now)."""
    if head != checked.head:
        raise StoreError(f"block {checked.header.height} was checked on another head (now at "
                         f"height {head.height}): check it again")


def commit_checked(txn: lmdb.Transaction, dbs: Dbs, checked: CheckedBlock) -> None:
    """Write a dry run's buffered state, Merkle nodes and registry tree nodes into ``txn``."""
    height = checked.header.height
    places = [place_key(height, pos) for pos in range(len(checked.stxs))]
    new_places = dict(zip(checked.tx_ids(), places, strict=True))
    checked.state.commit_to(LmdbState(txn, dbs, new_places, checked.registry))
    checked.nodes.apply_to(LmdbNodeStore(txn, dbs))
    gov_writes = checked.state.gov_writes()
    if gov_writes:
        regnodes = regtree_nodes(txn, dbs, write_height=height)
        checked.regnodes.apply_to(regnodes)
        write_leaf_history(regnodes, gov_writes)


def write_block_rows(txn: lmdb.Transaction, dbs: Dbs, block: Block, cert: CommitCertificate,
                     stxs: Sequence[SignedTx], first_leaf: int) -> None:
    """The header, certificate, tx rows, tx locations and new head of an executed block."""
    h = block.header
    height = h.height
    key = u64(height)
    put_row(txn, key, h.encode(), dbs.headers)
    put_row(txn, key, cert.encode(), dbs.certs)
    if len(stxs) != len(block.txs):
        raise RuntimeError("the dry run or replay decoded every tx of the block")
    # Batched puts (one C loop per table) rather than one Python call per row.
    places = [place_key(height, pos) for pos in range(len(block.txs))]
    rows = seal_rows(zip(places, block.txs, strict=True))
    _, added = txn.cursor(db=dbs.blocks).putmulti(rows, append=True)
    if added != len(places):
        raise StoreError(f"corrupt store: transactions stored past the head at {height}")
    # TxLocation rows packed straight from their three checked ints (the header's height
    # and tree size were checked; a test pins these bytes to TxLocation.encode()).
    tag, version = TxLocation.TAG, TxLocation.VERSION
    locs = seal_rows((stx.tx_id(), pack([tag, version, height, pos, first_leaf + pos]))
                     for pos, stx in enumerate(stxs))
    _, added = txn.cursor(db=dbs.txloc).putmulti(locs, overwrite=False)
    if added != len(locs):
        raise StoreError(f"block {height}: a tx is already in the log")
    put_row(txn, META_HEIGHT, key, dbs.meta)


@dataclass(frozen=True)
class BlockLimits:
    """What the builder may put in one block: txs, bytes, and each tx's bytes."""

    max_txs: int
    max_bytes: int
    max_tx_bytes: int


def build(txn: lmdb.Transaction, dbs: Dbs, head: Head, genesis: Genesis, ctx: RulesContext,
          candidates: Sequence[SignedTx], proposer: int, time_ms: int, limits: BlockLimits,
          check_signatures: bool, *, registry: Registry
          ) -> tuple[CheckedBlock, list[tuple[bytes, RuleError]]]:
    """The next block from ``candidates`` (in order), skipping invalid ones (see
    ``Store.build_block``); valid on ``head`` by construction, so it comes checked.
    ``registry``: the one in force after ``head`` (the header commits to it)."""
    height = head.height + 1
    time_ms = max(time_ms, head.time_ms + 1)
    overlay = OverlayState(LmdbState(txn, dbs, registry=registry))
    chosen, chosen_stxs, rejected = _choose(overlay, ctx, candidates, height, time_ms, limits,
                                            check_signatures)
    digest = state_digest(head.state_digest, overlay.changes())
    nodes = OverlayNodeStore(LmdbNodeStore(txn, dbs))
    tree = PersistentTree(nodes)
    leaves = [leaf_hash(raw) for raw in chosen]
    size = tree.append_leaf_hashes(leaves)
    regnodes = OverlayNodeStore(regtree_nodes(txn, dbs))
    after = registry_after(registry, overlay.gov_writes(), regnodes)
    header = Header(chain_id=genesis.chain_id, height=height, prev_hash=head.hash,
                    time_ms=time_ms, proposer=proposer, tree_size=size, tree_root=tree.root(),
                    txs_root=root_from_leaf_hashes(leaves), state_digest=digest,
                    registry_root=registry.root, registry_size=registry.size)
    block = Block(header, tuple(chosen))
    return CheckedBlock(block, head, tuple(chosen_stxs), overlay, nodes, digest, registry,
                        after, regnodes), rejected


def _choose(overlay: OverlayState, ctx: RulesContext, candidates: Sequence[SignedTx],
            height: int, time_ms: int, limits: BlockLimits, check_signatures: bool
            ) -> tuple[list[bytes], list[SignedTx], list[tuple[bytes, RuleError]]]:
    """The candidates that apply, in order, within the limits (applied to ``overlay``), and
    the rejected ones."""
    budget_bytes = limits.max_bytes - _HEADER_SLACK_BYTES - 5
    rejected: list[tuple[bytes, RuleError]] = []
    chosen: list[bytes] = []
    chosen_stxs: list[SignedTx] = []
    for stx in candidates:
        if len(chosen) >= limits.max_txs:
            break
        try:
            raw = stx.encode()
        except EncodingError as exc:
            rejected.append((b"", RuleError("bad_encoding", str(exc))))
            continue
        tx_id = stx.tx_id()
        if len(raw) > limits.max_tx_bytes:
            rejected.append((tx_id, RuleError("tx_too_large", "exceeds max_tx_bytes")))
            continue
        cost = len(raw) + tx_entry_overhead(len(raw))
        if cost > budget_bytes:
            continue
        try:
            apply_tx(overlay, ctx, stx, height, time_ms, check_signature=check_signatures)
        except RuleError as exc:
            rejected.append((tx_id, exc))
            continue
        chosen.append(raw)
        chosen_stxs.append(stx)
        budget_bytes -= cost
    return chosen, chosen_stxs, rejected


__all__ = ["BlockLimits", "CheckedBlock", "build", "commit_checked", "dry_run", "regtree_nodes",
           "replay_into", "require_head", "write_block_rows", "write_leaf_history"]
