"""Full re-verification of a data directory, from height 1 to the head.

For every height: the stored header, certificate and transactions decode; the hash chain links
(height, ``prev_hash``, increasing ``time_ms``); the certificate is a valid quorum over
``header.hash()``; ``txs_root`` matches; every tx signature verifies and the rules replay
(into a fresh in-memory state and Merkle tree) yields the header's ``tree_size``, ``tree_root``
and ``state_digest``; the header's ``registry_root``/``registry_size`` are those of the
replayed registry in force (every governance tx is replayed through the rules, so against
the policy in force at its block); the tx index (``txloc``) and the stored Merkle nodes agree
with the replay. At the end, the stored claim states, evidence records and governance rows
must equal the replayed ones, and the store's registry its replayed root.

Memory grows with the log (the replayed tree and state live in memory): fine for audits of up
to tens of millions of transactions. Auditing a store that a node in this same process has
open: pass that ``Store`` object, not its path (LMDB forbids opening one environment twice in
a process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tpledger.ledger.blocks import Block, Header
from tpledger.ledger.errors import LedgerError, RuleError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.merkle_tree import MemoryNodeStore
from tpledger.ledger.registry import EXECUTED, ProposalState
from tpledger.ledger.rules import MemoryState, RulesContext, tx_kind
from tpledger.ledger.store import Store, TxLocation
from tpledger.ledger.tx import SignedTx
from tpledger.ledger.validity import (
    BlockInvalid,
    Head,
    check_certificate,
    check_link,
    check_shape,
    execute,
)
from tpledger.ledger.votes import CommitCertificate

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class AuditReport:
    """``ok`` iff every height verified; otherwise the first bad height and why."""

    ok: bool
    heights_checked: int
    first_bad_height: int | None
    reason: str
    tx_count: int = 0
    governance_txs: int = 0  # admin-signed txs: participant changes, proposals, ballots, tariffs
    proposals_executed: int = 0


class _RecordingNodeStore(MemoryNodeStore):
    """A memory node store that remembers which nodes the last append wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[tuple[int, int], bytes] = {}

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        super().put_node(level, index, digest)
        self.written[(level, index)] = digest

    def put_nodes(self, level: int, start: int, digests: Sequence[bytes]) -> None:
        super().put_nodes(level, start, digests)
        self.written.update(((level, start + i), d) for i, d in enumerate(digests))


class _Bad(Exception):
    def __init__(self, height: int, reason: str) -> None:
        super().__init__(reason)
        self.height, self.reason = height, reason


def audit(
    store: str | Path | Store,
    genesis: Genesis,
    lpp: LppTable,
    progress: ProgressFn | None = None,
) -> AuditReport:
    """Re-verify the whole store (a path is opened read-only). Never raises for bad data."""
    if isinstance(store, Store):
        return _audit(store, genesis, lpp, progress)
    try:
        opened = Store.open(store, genesis, lpp, readonly=True)
    except LedgerError as exc:
        return AuditReport(False, 0, None, f"cannot open the store: {exc}")
    try:
        return _audit(opened, genesis, lpp, progress)
    finally:
        opened.close()


def _audit(
    store: Store, genesis: Genesis, lpp: LppTable, progress: ProgressFn | None
) -> AuditReport:
    if store.genesis_hash != genesis.hash():
        return AuditReport(False, 0, None, "the store was opened with another genesis")
    try:
        head = store.height
    except LedgerError as exc:
        return AuditReport(False, 0, None, f"cannot read the head: {exc}")
    ctx = RulesContext(genesis.chain_id, genesis, lpp)
    state = MemoryState.of_genesis(genesis)  # with the genesis registry's tree in memory
    nodes = _RecordingNodeStore()
    prev = Head.of_genesis(genesis)
    checked = tx_count = gov_count = 0
    try:
        for h in range(1, head + 1):
            header, cert, stxs, raws = _load(store, h)
            nodes.written.clear()
            _replay(header, cert, stxs, raws, prev, genesis, ctx, state, nodes)
            _check_index(store, h, stxs, prev.tree_size, header, nodes.written)
            prev = Head.of_header(header)
            checked = h
            tx_count += len(raws)
            gov_count += sum(1 for stx in stxs if tx_kind(stx.parse()).signer_kind == "admin")
            if progress is not None:
                progress(h, head)
        _check_claims(store, state, head)
        _check_gov(store, state, head)
    except _Bad as bad:
        return AuditReport(False, checked, bad.height, bad.reason, tx_count, gov_count)
    except LedgerError as exc:  # e.g. a corrupt node the store itself refuses to read
        return AuditReport(False, checked, checked + 1, f"store error: {exc}", tx_count,
                           gov_count)
    return AuditReport(True, checked, None, "all heights verified", tx_count, gov_count,
                       _executed(state))


def _load(store: Store, h: int) -> tuple[Header, CommitCertificate, list[SignedTx], list[bytes]]:
    raw = store.raw_height(h)
    if raw.header is None:
        raise _Bad(h, "header missing")
    if raw.certificate is None:
        raise _Bad(h, "certificate missing")
    try:
        header = Header.decode(raw.header)
    except LedgerError as exc:
        raise _Bad(h, f"header does not decode: {exc}") from None
    try:
        cert = CommitCertificate.decode(raw.certificate)
    except LedgerError as exc:
        raise _Bad(h, f"certificate does not decode: {exc}") from None
    stxs = []
    for i, t in enumerate(raw.txs):
        try:
            stxs.append(SignedTx.decode(t))
        except LedgerError as exc:
            raise _Bad(h, f"tx {i} does not decode: {exc}") from None
    return header, cert, stxs, raw.txs


def _replay(header: Header, cert: CommitCertificate, stxs: list[SignedTx], raws: list[bytes],
            prev: Head, genesis: Genesis, ctx: RulesContext, state: MemoryState,
            nodes: _RecordingNodeStore) -> None:
    """The block at ``prev.height + 1`` is valid on ``prev`` (``ledger.validity``), replayed
    into ``state`` (with its registry tree) and ``nodes``."""
    h = prev.height + 1
    try:
        check_link(header, prev, genesis)
        check_certificate(header, cert, genesis.chain_id, genesis.validator_keys)
        _, leaves = check_shape(Block(header, tuple(raws)), genesis.params, stxs)
        regnodes = None if state.tree is None else state.tree.nodes
        done = execute(header, prev, ctx, state, nodes, stxs, leaves, True, regnodes)
    except BlockInvalid as exc:
        raise _Bad(h, str(exc)) from None
    except RuleError as exc:
        raise _Bad(h, f"rules replay failed: {exc}") from None
    state.set_registry(done.registry_after)


def _check_index(store: Store, h: int, stxs: list[SignedTx], first_leaf: int,
                 header: Header, written: dict[tuple[int, int], bytes]) -> None:
    """The store's tx index and the Merkle nodes this block added agree with the replay."""
    for pos, stx in enumerate(stxs):
        loc = store.tx_location(stx.tx_id())
        if loc != TxLocation(h, pos, first_leaf + pos):
            raise _Bad(h, f"tx index (txloc) wrong for tx {pos}")
    keys = sorted(written)
    for (level, index), stored in zip(keys, store.tree_nodes(keys), strict=True):
        if stored != written[(level, index)]:
            raise _Bad(h, f"stored Merkle node ({level}, {index}) differs from the replay")
    if store.tree_root(header.tree_size) != header.tree_root:
        raise _Bad(h, "stored Merkle nodes do not give the header's tree_root")


def _check_claims(store: Store, state: MemoryState, head: int) -> None:
    for claim_id, st in state.claims.items():
        if store.claim(claim_id) != st:
            raise _Bad(head, f"stored state of claim {claim_id.hex()[:16]} differs from replay")
    for tx_id in state.tx_ids:
        if not store.has_tx(tx_id):
            raise _Bad(head, "replay-protection index misses an applied tx")
    if store.entries("claims") != len(state.claims):
        raise _Bad(head, "the store holds claim states the replay does not produce")
    if store.entries("txloc") != len(state.tx_ids):
        raise _Bad(head, "the store indexes transactions the replay does not produce")
    for slot, rec in state.evidence.items():
        if store.evidence(slot) != rec:
            raise _Bad(head, "a stored evidence record differs from the replay")
    if store.entries("evidence") != len(state.evidence):
        raise _Bad(head, "the store holds evidence records the replay does not produce")
    for ref_key, claim_id in state.references.items():
        if store.reference(ref_key) != claim_id:
            raise _Bad(head, "the client-reference index differs from the replay")
    if store.entries("references") != len(state.references):
        raise _Bad(head, "the store indexes client references the replay does not produce")


def _check_gov(store: Store, state: MemoryState, head: int) -> None:
    """The stored governance rows and registry are the replay's."""
    for key, value in state.gov.items():
        if store.gov_row(key) != value:
            raise _Bad(head, f"a stored governance row ({key[:1].decode()}) differs from the "
                             "replay")
    if store.entries("gov") != len(state.gov):
        raise _Bad(head, "the store holds governance rows the replay does not produce")
    reg, replayed = store.registry(), state.registry()
    if (reg.root, reg.size) != (replayed.root, replayed.size):
        raise _Bad(head, "the store's registry tree differs from the replayed registry")


def _executed(state: MemoryState) -> int:
    return sum(1 for key, value in state.gov.items()
               if key[:1] == b"q" and ProposalState.decode(value).status == EXECUTED)


__all__ = ["AuditReport", "ProgressFn", "audit"]
