"""The validator's ledger store, over LMDB.

Layout (one LMDB environment, named databases; integers big-endian so keys sort by value):

==========  ==================================  ==========================================
db          key                                 value
==========  ==================================  ==========================================
headers     height u64                          ``Header`` bytes
blocks      height u64 || position u32          the encoded ``SignedTx`` at that position
certs       height u64                          ``CommitCertificate`` bytes
txloc       tx_id (32)                          ``TxLocation`` (height, position, leaf_index);
                                                also the replay-protection index (``has_tx``)
tree        level u8 || index u64 / ``size``    complete-subtree hash (32) / tree size u64
claims      height u64 || position u32          claim_id (32) || ``ClaimState`` bytes, at the
            (the claim's own tx)                place of the claim in the log: a block's new
                                                claims are appended, not scattered by id
evidence    height u64 || round u32 || type u8  ``EvidenceRecord`` bytes: one recorded
            || validator u16 (``evidence_slot_key``) equivocation (created on first writable
                                                open: a store from before it has none)
meta        ``l/...`` (ours) / ``u/...`` (node) ``l/genesis``: genesis hash, ``l/height``: head
==========  ==================================  ==========================================

Every value above is stored *sealed* (format 3): ``value || crc32(key || value)`` (4 bytes,
big-endian; ``ledger.rowcheck``). Every read checks the seal (``_get``, cursor scans,
``scrub``) and raises :class:`StoreCorruption` (table and key, never the value) on a mismatch:
a damaged row is refused, never returned. ``block(h)`` also checks that the block's rows are
the header's count at positions 0..n-1. The environment is opened through
``rowcheck.open_env``, which refuses a ``data.mdb`` shorter than its pages (no SIGBUS), and
:meth:`Store.verify_head` checks the head header, certificate and Merkle tree (a node calls it
at start).

A block is applied in ONE write transaction: checks, rules replay, tree append, and all writes
commit together or not at all (LMDB with ``sync=True``: after a crash the store is at the
previous block or at the new one, never in between). Opening reads three meta keys; every read is
bounded (O(log n) tree nodes, O(log height) headers for ``proof(tree_size=...)``, one block's
transactions for ``block(h)``); only :mod:`ledger.audit` and ``scrub`` (in bounded chunks) scan.

Missing things asked by height (``header(h)``, ``block(h)``...) raise :class:`StoreError`;
look-ups by id (``tx_location``, ``tx``, ``claim``) return ``None`` when absent.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lmdb

from ledger.blocks import (
    Block,
    Header,
    encoded_size,
    genesis_state_digest,
    tx_entry_overhead,
)
from ledger.encoding import U32, U64, Int, Record, pack, spec
from ledger.errors import EncodingError, LedgerError, RuleError, StoreCorruption, StoreError
from ledger.genesis import Genesis
from ledger.lpp import LppTable
from ledger.merkle import leaf_hash as _leaf
from ledger.merkle import root_from_leaf_hashes
from ledger.merkle_tree import OverlayNodeStore, PersistentTree
from ledger.proofs import Checkpoint, ConsistencyProof, ProofBundle
from ledger.rowcheck import RESYNC_HINT, open_env, scrub_rows, seal, seal_rows, unseal
from ledger.rules import (
    CheckOnlyOverlay,
    OverlayState,
    RulesContext,
    StateView,
    apply_block_txs,
    apply_tx,
)
from ledger.rules import state_digest as compute_state_digest
from ledger.tx import ClaimState, EvidenceRecord, SignedTx
from ledger.votes import CommitCertificate

DEFAULT_MAP_SIZE_BYTES = 8 * 1024**3
MAX_META_KEY_BYTES = 256
MAX_PAGE = 10_000
MAX_META_VALUE_BYTES = 16 * 1024 * 1024
_DB_NAMES = ("headers", "blocks", "certs", "txloc", "tree", "claims", "meta", "evidence")
_META_GENESIS = b"l/genesis"
_META_HEIGHT = b"l/height"
_META_FORMAT = b"l/format"
STORE_FORMAT = 3  # 2: claim states keyed by log place; 3: every value sealed (crc32)
_META_USER = b"u/"
_TREE_SIZE_KEY = b"size"
_HEADER_SLACK_BYTES = Header.MAX_BYTES + 16  # block envelope + largest header


@dataclass(frozen=True)
class TxLocation(Record):
    """Where a transaction is: block height, position in the block, leaf index in the log."""

    TAG: ClassVar[int] = 0x90
    MAX_BYTES: ClassVar[int] = 64
    height: int = spec(Int(1, 2**63 - 1))
    position: int = spec(U32)
    leaf_index: int = spec(U64)


@dataclass(frozen=True)
class HeightRaw:
    """The undecoded records stored for one height (for :mod:`ledger.audit`)."""

    header: bytes | None
    certificate: bytes | None
    txs: list[bytes]


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


_PLACE = struct.Struct(">QI")  # height u64 || position u32


def place_key(height: int, position: int) -> bytes:
    """The key of a tx's place in the log (its block row, its claim's state row; the node
    keys sealed openings the same way)."""
    return _PLACE.pack(height, position)


def put_in_key_order(cur: lmdb.Cursor, rows: list[tuple[bytes, bytes]]) -> None:
    """Put ``(key, value)`` rows, sealed (``ledger.rowcheck``) and sorted here: those whose
    keys come after every stored key are appended without a tree search; the others (and any
    LMDB refuses to append) are put at their places, overwriting."""
    rows = seal_rows(rows)
    rows.sort()
    last = bytes(cur.key()) if cur.last() else b""
    cut = bisect.bisect_right(rows, last, key=lambda row: row[0])
    new = rows[cut:]
    if new:
        _, added = cur.putmulti(new, append=True)
        if added != len(new):
            cur.putmulti(new)
    if cut:
        cur.putmulti(rows[:cut])


def _read_location(txn: lmdb.Transaction, dbs: _Dbs, tx_id: bytes) -> TxLocation | None:
    raw = _get(txn, tx_id, dbs.txloc, "txloc")
    if raw is None:
        return None
    try:
        return TxLocation.decode(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt tx location {tx_id.hex()[:16]}: {exc}") from None


def _get(txn: lmdb.Transaction, key: bytes, db: Any, table: str) -> bytes | None:
    """The value at ``key`` (None if absent); StoreCorruption if its seal does not match."""
    v = txn.get(key, db=db)
    return None if v is None else unseal(table, key, v)


def _put(txn: lmdb.Transaction, key: bytes, value: bytes, db: Any) -> None:
    txn.put(key, seal(key, value), db=db)


_NODE_KEY = struct.Struct(">BQ")  # level u8 || index u64


def _node_key(level: int, index: int) -> bytes:
    return _NODE_KEY.pack(level, index)


class _Dbs:
    def __init__(self, env: lmdb.Environment, readonly: bool) -> None:
        create = not readonly
        handles = {n: env.open_db(n.encode(), create=create) for n in _DB_NAMES}
        self.headers = handles["headers"]
        self.blocks = handles["blocks"]
        self.certs = handles["certs"]
        self.txloc = handles["txloc"]
        self.tree = handles["tree"]
        self.claims = handles["claims"]
        self.meta = handles["meta"]
        self.evidence = handles["evidence"]


def _claim_row(key: bytes, raw: bytes) -> tuple[bytes, ClaimState]:
    """Decode a claims row: ``claim_id (32) || ClaimState bytes``."""
    try:
        return raw[:32], ClaimState.decode(raw[32:])
    except EncodingError as exc:
        raise StoreError(f"corrupt claim state at {key.hex()}: {exc}") from None


def _evidence_row(key: bytes, raw: bytes) -> EvidenceRecord:
    try:
        return EvidenceRecord.decode(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt evidence record at {key.hex()}: {exc}") from None


class LmdbState:
    """``StateView`` over an LMDB transaction (writes need a write transaction).

    Claim states live at their claim's place in the log; ``new_places`` gives the places of
    the txs of the block being applied (whose location rows may not be written yet).
    """

    def __init__(self, txn: lmdb.Transaction, dbs: _Dbs,
                 new_places: dict[bytes, bytes] | None = None) -> None:
        self.txn, self.dbs = txn, dbs
        self.new_places = new_places or {}

    def _place(self, claim_id: bytes) -> bytes | None:
        place = self.new_places.get(claim_id)
        if place is not None:
            return place
        loc = _read_location(self.txn, self.dbs, claim_id)
        return None if loc is None else place_key(loc.height, loc.position)

    def get_claim(self, claim_id: bytes) -> ClaimState | None:
        place = self._place(claim_id)
        raw = None if place is None else _get(self.txn, place, self.dbs.claims, "claims")
        if raw is None:
            return None
        assert place is not None
        stored_id, state = _claim_row(place, raw)
        if stored_id != claim_id:
            raise StoreError(f"corrupt claim state at {place.hex()}: another claim's row")
        return state

    def put_claim(self, claim_id: bytes, state: ClaimState) -> None:
        self.write_many([(claim_id, state)], ())

    def has_tx(self, tx_id: bytes) -> bool:
        """Applied before: every applied tx has a location row, written with its block."""
        return self.txn.get(tx_id, db=self.dbs.txloc) is not None

    def mark_tx(self, tx_id: bytes) -> None:
        """Nothing to write: the block's apply writes this tx's location row (``has_tx``) in
        the same write transaction, and refuses a tx that already has one."""

    def get_evidence(self, slot: bytes) -> EvidenceRecord | None:
        raw = _get(self.txn, slot, self.dbs.evidence, "evidence")
        return None if raw is None else _evidence_row(slot, raw)

    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None:
        put_in_key_order(self.txn.cursor(db=self.dbs.evidence), [(slot, record.encode())])

    def write_many(self, claims: Iterable[tuple[bytes, ClaimState]], tx_ids: Iterable[bytes]
                   ) -> None:
        """``put_claim`` for many rows (``mark_tx`` writes nothing): the block's new claims
        are appended in one C loop, updates of older claims go to their places."""
        del tx_ids
        rows = []
        for claim_id, state in claims:
            place = self._place(claim_id)
            if place is None:  # the rules only write states of claims in the log
                raise StoreError(f"claim {claim_id.hex()[:16]} has no place in the log")
            rows.append((place, claim_id + state.encode()))
        put_in_key_order(self.txn.cursor(db=self.dbs.claims), rows)


class LmdbNodeStore:
    """Merkle ``NodeStore`` (with the ``put_nodes`` batch path) over an LMDB transaction."""

    def __init__(self, txn: lmdb.Transaction, dbs: _Dbs) -> None:
        self.txn, self.db = txn, dbs.tree

    def get_node(self, level: int, index: int) -> bytes | None:
        raw = _get(self.txn, _node_key(level, index), self.db, "tree")
        if raw is not None and len(raw) != 32:
            raise StoreError(f"corrupt Merkle node ({level}, {index})")
        return raw

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        _put(self.txn, _node_key(level, index), digest, self.db)

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        """Batch read for root/proof computation (one Python loop, no per-key overhead)."""
        get, db = self.txn.get, self.db
        out: list[bytes | None] = []
        for level, index in keys:
            key = _NODE_KEY.pack(level, index)
            raw = get(key, db=db)
            if raw is not None:
                raw = unseal("tree", key, raw)
                if len(raw) != 32:
                    raise StoreError(f"corrupt Merkle node ({level}, {index})")
            out.append(raw)
        return out

    def put_node_items(self, items: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        """Batch write of ``((level, index), digest)`` items in one C loop."""
        key = _NODE_KEY.pack
        with self.txn.cursor(db=self.db) as cur:
            cur.putmulti(seal_rows([(key(level, index), d) for (level, index), d in items]))

    def put_nodes(self, level: int, start: int, digests: Sequence[bytes]) -> None:
        self.put_node_items([((level, start + i), d) for i, d in enumerate(digests)])

    def get_size(self) -> int:
        raw = _get(self.txn, _TREE_SIZE_KEY, self.db, "tree")
        return 0 if raw is None else int.from_bytes(raw, "big")

    def set_size(self, size: int) -> None:
        _put(self.txn, _TREE_SIZE_KEY, _u64(size), self.db)


@dataclass(frozen=True)
class _DryRun:
    """The buffered result of validating one block on one head (see ``check_block``)."""

    block_hash: bytes
    prev_hash: bytes
    stxs: list[SignedTx]
    state: OverlayState
    nodes: OverlayNodeStore


@dataclass(frozen=True)
class _Prev:
    """What a new block builds on: the head (or the genesis at height 0)."""

    height: int
    hash: bytes
    time_ms: int
    tree_size: int
    state_digest: bytes


class Store:
    """The LMDB ledger store of one chain (see the module docstring for the layout).

    Open with ``Store.open(path, genesis, lpp)``; one ``Store`` per path per process (an LMDB
    rule). Thread-safe for readers; writes are serialised by LMDB.
    """

    def __init__(
        self,
        path: str | Path,
        genesis: Genesis,
        lpp: LppTable,
        map_size: int = DEFAULT_MAP_SIZE_BYTES,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.genesis = genesis
        self.lpp = lpp
        self.readonly = readonly
        self.genesis_hash = genesis.hash()
        self.ctx = RulesContext(genesis.chain_id, genesis, lpp)
        self._validator_keys = genesis.validator_keys
        self._memo: _DryRun | None = None
        if lpp.digest() != genesis.lpp_table_digest:
            raise StoreError("the LPP table does not match the genesis lpp_table_digest")
        try:
            if not readonly:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store: {exc.strerror}") from None
        # open_env checks the file's size before open_db reads any page (never a SIGBUS)
        self._env = open_env(self.path, map_size=map_size, max_dbs=len(_DB_NAMES) + 2,
                             subdir=True, readonly=readonly, sync=True, metasync=True,
                             lock=True, readahead=False)
        try:
            self._dbs = _Dbs(self._env, readonly)
            self._init_meta()
        except lmdb.Error as exc:
            self._env.close()
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from None
        except StoreError:
            self._env.close()
            raise

    @classmethod
    def open(
        cls,
        path: str | Path,
        genesis: Genesis,
        lpp: LppTable,
        map_size: int = DEFAULT_MAP_SIZE_BYTES,
        readonly: bool = False,
    ) -> Store:
        """Open (or create) the store; raises StoreError if it belongs to another genesis."""
        return cls(path, genesis, lpp, map_size=map_size, readonly=readonly)

    def _init_meta(self) -> None:
        meta = self._dbs.meta
        with self._env.begin(write=False) as txn:
            stored, fmt = txn.get(_META_GENESIS, db=meta), txn.get(_META_FORMAT, db=meta)
        if stored is None and fmt is None:
            if self.readonly:
                raise StoreError(f"{self.path}: not an initialised tpledger store")
            with self._env.begin(write=True) as txn:
                _put(txn, _META_GENESIS, self.genesis_hash, meta)
                _put(txn, _META_HEIGHT, _u64(0), meta)
                _put(txn, _META_FORMAT, bytes([STORE_FORMAT]), meta)
            return
        if fmt is None or len(fmt) == 1:  # formats 1 and 2 stored unsealed values
            found = "1" if fmt is None else fmt.hex()
            raise StoreError(
                f"{self.path}: store format {found} was written by an older version "
                f"(this one reads format {STORE_FORMAT}); move it aside and let the node "
                "fetch the blocks again from its peers (docs/operations.md)"
            )
        if unseal("meta", _META_FORMAT, fmt) != bytes([STORE_FORMAT]):
            raise StoreError(f"{self.path}: unknown store format; {RESYNC_HINT}")
        if stored is None:
            raise StoreError(f"{self.path}: the store is damaged (no genesis); {RESYNC_HINT}")
        stored = unseal("meta", _META_GENESIS, stored)
        if stored != self.genesis_hash:
            raise StoreError(
                f"{self.path}: the store belongs to another genesis "
                f"({stored.hex()[:16]}…, expected {self.genesis_hash.hex()[:16]}…)"
            )

    def verify_head(self) -> None:
        """Start-up check of the head: its header and certificate decode, the certificate is
        a quorum of the genesis validators over the header's hash, and the stored Merkle
        tree has the header's size and root. StoreError (with how to resync) otherwise."""
        try:
            with self._read() as txn:
                height = self._height(txn)
                nodes = LmdbNodeStore(txn, self._dbs)
                size = nodes.get_size()
                if height == 0:
                    if size != 0:
                        raise StoreError("Merkle leaves stored but no block")
                    return
                header = self._header(txn, height)
                if header.height != height or header.chain_id != self.genesis.chain_id:
                    raise StoreError(f"the head header is not the one of height {height}")
                self._check_cert(header, self._cert(txn, height))
                if size != header.tree_size:
                    raise StoreError("Merkle tree size differs from the head header")
                if PersistentTree(nodes).root(size) != header.tree_root:
                    raise StoreError("Merkle tree root differs from the head header")
        except StoreError as exc:
            raise StoreError(f"{self.path}: the store is damaged at its head ({exc}); "
                             f"{RESYNC_HINT}") from None

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[lmdb.Transaction]:
        try:
            with self._env.begin(write=False, buffers=False) as txn:
                yield txn
        except (lmdb.CorruptedError, lmdb.PageNotFoundError):  # LMDB's own pages are damaged
            raise StoreCorruption("lmdb", b"") from None
        except lmdb.Error as exc:
            raise StoreError(f"LMDB read failed: {exc}") from None

    # -- head --------------------------------------------------------------------------------
    def _height(self, txn: lmdb.Transaction) -> int:
        raw = _get(txn, _META_HEIGHT, self._dbs.meta, "meta")
        if raw is None or len(raw) != 8:
            raise StoreError("corrupt store: head height missing")
        return int.from_bytes(raw, "big")

    def _header(self, txn: lmdb.Transaction, height: int) -> Header:
        raw = _get(txn, _u64(height), self._dbs.headers, "headers") if height >= 1 else None
        if raw is None:
            raise StoreError(f"no block at height {height}")
        try:
            return Header.decode(raw)
        except EncodingError as exc:
            raise StoreError(f"corrupt header at height {height}: {exc}") from None

    def _cert(self, txn: lmdb.Transaction, height: int) -> CommitCertificate:
        raw = _get(txn, _u64(height), self._dbs.certs, "certs") if height >= 1 else None
        if raw is None:
            raise StoreError(f"no certificate at height {height}")
        try:
            return CommitCertificate.decode(raw)
        except EncodingError as exc:
            raise StoreError(f"corrupt certificate at height {height}: {exc}") from None

    def _prev(self, txn: lmdb.Transaction) -> _Prev:
        h = self._height(txn)
        if h == 0:
            return _Prev(0, self.genesis_hash, self.genesis.genesis_time_ms, 0,
                         genesis_state_digest(self.genesis))
        hd = self._header(txn, h)
        return _Prev(h, hd.hash(), hd.time_ms, hd.tree_size, hd.state_digest)

    @property
    def height(self) -> int:
        """Height of the last applied block (0: only the genesis)."""
        with self._read() as txn:
            return self._height(txn)

    def _head(self) -> _Prev:
        with self._read() as txn:
            return self._prev(txn)

    @property
    def head_hash(self) -> bytes:
        """Hash of the last header (the genesis hash at height 0)."""
        return self._head().hash

    @property
    def head_time_ms(self) -> int:
        return self._head().time_ms

    @property
    def tree_size(self) -> int:
        return self._head().tree_size

    @property
    def state_digest(self) -> bytes:
        return self._head().state_digest

    # -- getters -----------------------------------------------------------------------------
    def header(self, height: int) -> Header:
        with self._read() as txn:
            return self._header(txn, height)

    def certificate(self, height: int) -> CommitCertificate:
        with self._read() as txn:
            return self._cert(txn, height)

    def _block_txs(self, txn: lmdb.Transaction, height: int) -> list[bytes]:
        prefix = _u64(height)
        out: list[bytes] = []
        with txn.cursor(db=self._dbs.blocks) as cur:
            if cur.set_range(prefix):
                for key, value in cur:
                    if key[:8] != prefix:
                        break
                    if key != place_key(height, len(out)):  # a position is missing
                        raise StoreCorruption("blocks", place_key(height, len(out)))
                    out.append(unseal("blocks", key, value))
        return out

    def block(self, height: int) -> Block:
        """The block at ``height``; StoreCorruption if its stored transactions are not the
        header's count at positions 0..n-1 (a row lost or moved by damage to its key)."""
        with self._read() as txn:
            header = self._header(txn, height)
            txs = self._block_txs(txn, height)
            before = self._header(txn, height - 1).tree_size if height > 1 else 0
        if len(txs) != header.tree_size - before:
            raise StoreCorruption("blocks", place_key(height, min(len(txs), header.tree_size -
                                                                   before)))
        return Block(header, tuple(txs))

    def raw_height(self, height: int) -> HeightRaw:
        """The stored bytes of one height, undecoded (for audits and debugging)."""
        with self._read() as txn:
            key = _u64(height)
            return HeightRaw(
                _get(txn, key, self._dbs.headers, "headers"),
                _get(txn, key, self._dbs.certs, "certs"),
                self._block_txs(txn, height),
            )

    def _tx_location(self, txn: lmdb.Transaction, tx_id: bytes) -> TxLocation | None:
        return _read_location(txn, self._dbs, tx_id)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        with self._read() as txn:
            return self._tx_location(txn, tx_id)

    def _tx_bytes(self, txn: lmdb.Transaction, loc: TxLocation) -> bytes:
        raw = _get(txn, place_key(loc.height, loc.position), self._dbs.blocks, "blocks")
        if raw is None:
            raise StoreError(f"corrupt store: tx at {loc.height}/{loc.position} missing")
        return raw

    def tx_bytes(self, tx_id: bytes) -> bytes | None:
        with self._read() as txn:
            loc = self._tx_location(txn, tx_id)
            return None if loc is None else self._tx_bytes(txn, loc)

    def tx(self, tx_id: bytes) -> SignedTx | None:
        raw = self.tx_bytes(tx_id)
        if raw is None:
            return None
        try:
            return SignedTx.decode(raw)
        except EncodingError as exc:
            raise StoreError(f"corrupt tx {tx_id.hex()[:16]}: {exc}") from None

    def claim(self, claim_id: bytes) -> ClaimState | None:
        with self._read() as txn:
            return LmdbState(txn, self._dbs).get_claim(claim_id)

    def claims_page(
        self, after: bytes | None = None, limit: int = 100
    ) -> list[tuple[bytes, ClaimState]]:
        """Up to ``limit`` (<= MAX_PAGE) claims in log order (oldest first), strictly after
        the claim ``after``. Raises StoreError if ``after`` is not a claim in the log."""
        limit = max(0, min(limit, MAX_PAGE))
        out: list[tuple[bytes, ClaimState]] = []
        with self._read() as txn, txn.cursor(db=self._dbs.claims) as cur:
            if after is None:
                found = cur.first()
            else:
                place = LmdbState(txn, self._dbs)._place(after)
                if place is None or txn.get(place, db=self._dbs.claims) is None:
                    raise StoreError("the paging cursor is not a claim in the log")
                found = cur.set_key(place) and cur.next()
            while found and len(out) < limit:
                key = bytes(cur.key())
                out.append(_claim_row(key, unseal("claims", key, cur.value())))
                found = cur.next()
        return out

    def has_tx(self, tx_id: bytes) -> bool:
        with self._read() as txn:
            return LmdbState(txn, self._dbs).has_tx(tx_id)

    def evidence(self, slot: bytes) -> EvidenceRecord | None:
        with self._read() as txn:
            return LmdbState(txn, self._dbs).get_evidence(slot)

    def evidence_page(
        self, after: bytes | None = None, limit: int = 100
    ) -> list[tuple[bytes, EvidenceRecord]]:
        """Up to ``limit`` (<= MAX_PAGE) recorded equivocations by slot (height, round, type,
        validator), strictly after the slot key ``after``."""
        limit = max(0, min(limit, MAX_PAGE))
        out: list[tuple[bytes, EvidenceRecord]] = []
        with self._read() as txn, txn.cursor(db=self._dbs.evidence) as cur:
            found = cur.first() if after is None else cur.set_range(after)
            if found and after is not None and bytes(cur.key()) == after:
                found = cur.next()
            while found and len(out) < limit:
                key = bytes(cur.key())
                out.append((key, _evidence_row(key, unseal("evidence", key, cur.value()))))
                found = cur.next()
        return out

    def entries(self, db_name: str) -> int:
        """Number of records in one named database (O(1), from LMDB's statistics)."""
        if db_name not in _DB_NAMES:
            raise StoreError(f"unknown database {db_name!r}")
        with self._read() as txn:
            return int(txn.stat(getattr(self._dbs, db_name))["entries"])

    def scrub(self, table: str, after: bytes | None, limit: int
              ) -> tuple[int, bytes | None, list[StoreCorruption]]:
        """Check the seals of up to ``limit`` rows of ``table`` after key ``after`` (one read
        transaction; see ``ledger.rowcheck.scrub_rows``)."""
        if table not in _DB_NAMES:
            raise StoreError(f"unknown database {table!r}")
        with self._read() as txn:
            return scrub_rows(txn, getattr(self._dbs, table), table, after, limit)

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        """Stored Merkle nodes at ``(level, index)`` keys, in one read transaction."""
        with self._read() as txn:
            nodes = LmdbNodeStore(txn, self._dbs)
            return [nodes.get_node(level, index) for level, index in keys]

    def tree_root(self, tree_size: int | None = None) -> bytes:
        """Root of the stored Merkle log at ``tree_size`` leaves (default: current)."""
        with self._read() as txn:
            return PersistentTree(LmdbNodeStore(txn, self._dbs)).root(tree_size)

    # -- proofs ------------------------------------------------------------------------------
    def _height_for_size(self, txn: lmdb.Transaction, tree_size: int) -> int:
        """Lowest height whose header has exactly ``tree_size`` leaves (binary search)."""
        lo, hi = 1, self._height(txn)
        if hi == 0:
            raise StoreError("no block yet")
        while lo < hi:
            mid = (lo + hi) // 2
            if self._header(txn, mid).tree_size < tree_size:
                lo = mid + 1
            else:
                hi = mid
        if self._header(txn, lo).tree_size != tree_size:
            raise StoreError(f"no block ends at tree size {tree_size}")
        return lo

    def proof(
        self, tx_id: bytes, tree_size: int | None = None, *, height: int | None = None
    ) -> ProofBundle:
        """Inclusion bundle of ``tx_id`` against the header at ``height``, or the first header
        with ``tree_size`` leaves, or the head. Raises StoreError if it cannot be proven there.
        """
        with self._read() as txn:
            loc = self._tx_location(txn, tx_id)
            if loc is None:
                raise StoreError(f"unknown transaction {tx_id.hex()[:16]}")
            if height is None:
                height = (
                    self._height(txn) if tree_size is None
                    else self._height_for_size(txn, tree_size)
                )
            header = self._header(txn, height)
            if tree_size is not None and header.tree_size != tree_size:
                raise StoreError(f"block {height} does not end at tree size {tree_size}")
            if loc.leaf_index >= header.tree_size:
                raise StoreError(f"transaction is not yet in the log at height {height}")
            cert = self._cert(txn, height)
            tx = self._tx_bytes(txn, loc)
            path = PersistentTree(LmdbNodeStore(txn, self._dbs)).inclusion_path(
                loc.leaf_index, header.tree_size
            )
        return ProofBundle(
            chain_id=self.genesis.chain_id,
            genesis_hash=self.genesis_hash,
            tx=tx,
            leaf_index=loc.leaf_index,
            tree_size=header.tree_size,
            path=tuple(path),
            header=header,
            certificate=cert,
        )

    def checkpoint(self, height: int | None = None) -> Checkpoint:
        """The certified header at ``height`` (default: head)."""
        with self._read() as txn:
            h = self._height(txn) if height is None else height
            return Checkpoint(self._header(txn, h), self._cert(txn, h))

    def consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency path between two log sizes (default new: current)."""
        with self._read() as txn:
            return PersistentTree(LmdbNodeStore(txn, self._dbs)).consistency_path(
                old_size, new_size
            )

    def consistency_proof(self, old_height: int, new_height: int | None = None) -> ConsistencyProof:
        """Two checkpoints and the path proving the newer log extends the older one."""
        with self._read() as txn:
            new_h = self._height(txn) if new_height is None else new_height
            if not 1 <= old_height <= new_h:
                raise StoreError("need 1 <= old_height <= new_height")
            old = Checkpoint(self._header(txn, old_height), self._cert(txn, old_height))
            new = Checkpoint(self._header(txn, new_h), self._cert(txn, new_h))
            path = PersistentTree(LmdbNodeStore(txn, self._dbs)).consistency_path(
                old.header.tree_size, new.header.tree_size
            )
        return ConsistencyProof(old, new, tuple(path))

    # -- meta (node's consensus state) -------------------------------------------------------
    @staticmethod
    def _meta_key(key: bytes) -> bytes:
        if not isinstance(key, bytes) or not 1 <= len(key) <= MAX_META_KEY_BYTES:
            raise StoreError(f"meta keys are 1 to {MAX_META_KEY_BYTES} bytes")
        return _META_USER + key

    def meta_get(self, key: bytes) -> bytes | None:
        k = self._meta_key(key)
        with self._read() as txn:
            return _get(txn, k, self._dbs.meta, "meta")

    def meta_put(self, key: bytes, value: bytes) -> None:
        """Write one node key; durable (fsync'd) when this returns."""
        k = self._meta_key(key)
        if not isinstance(value, bytes) or len(value) > MAX_META_VALUE_BYTES:
            raise StoreError(f"meta values are bytes of at most {MAX_META_VALUE_BYTES}")
        self._write(lambda txn: _put(txn, k, value, self._dbs.meta))

    def meta_delete(self, key: bytes) -> None:
        k = self._meta_key(key)
        self._write(lambda txn: txn.delete(k, db=self._dbs.meta))

    def _write(self, fn: Any) -> None:
        if self.readonly:
            raise StoreError("the store is open read-only")
        try:
            with self._env.begin(write=True) as txn:
                fn(txn)
        except lmdb.MapFullError:
            raise StoreError(
                f"{self.path}: LMDB map is full; reopen with a larger map_size"
            ) from None
        except lmdb.Error as exc:
            raise StoreError(f"LMDB write failed: {exc}") from None

    # -- validation and execution ------------------------------------------------------------
    def _check_shape(
        self, block: Block, prev: _Prev, now_ms: int | None,
        decoded: Sequence[SignedTx | None] | None = None,
    ) -> tuple[list[SignedTx], list[bytes]]:
        """Everything about a block that needs no state: returns its decoded txs and their
        Merkle leaf hashes."""
        h = block.header
        p = self.genesis.params
        if h.chain_id != self.genesis.chain_id:
            raise StoreError("block is for another chain id")
        if h.height != prev.height + 1:
            raise StoreError(f"block height {h.height}, expected {prev.height + 1}")
        if h.prev_hash != prev.hash:
            raise StoreError(f"block {h.height}: prev_hash is not the hash of block {prev.height}")
        if h.time_ms <= prev.time_ms:
            raise StoreError(f"block {h.height}: time_ms not after the previous block's")
        if now_ms is not None and h.time_ms > now_ms + p.max_clock_drift_ms:
            raise StoreError(f"block {h.height}: time_ms is too far in the future")
        if h.proposer >= len(self._validator_keys):
            raise StoreError(f"block {h.height}: unknown proposer {h.proposer}")
        if len(block.txs) > p.max_block_txs:
            raise StoreError(f"block {h.height}: {len(block.txs)} txs exceeds max_block_txs")
        if encoded_size(block) > p.max_block_bytes:
            raise StoreError(f"block {h.height}: exceeds max_block_bytes")
        leaves = [_leaf(raw) for raw in block.txs]  # RFC 9162 leaf hashes, shared with _execute
        if root_from_leaf_hashes(leaves) != h.txs_root:
            raise StoreError(f"block {h.height}: txs_root does not match the transactions")
        stxs: list[SignedTx] = []
        for i, raw in enumerate(block.txs):
            if len(raw) > p.max_tx_bytes:
                raise StoreError(f"block {h.height}: tx {i} exceeds max_tx_bytes")
            known = None if decoded is None else decoded[i]
            if known is not None and known.encode() == raw:
                stxs.append(known)  # the caller decoded these very bytes already
                continue
            try:
                stxs.append(SignedTx.decode(raw))
            except EncodingError as exc:
                raise RuleError("bad_encoding", f"tx {i}: {exc}") from None
        return stxs, leaves

    def _execute(
        self,
        block: Block,
        prev: _Prev,
        view: StateView,
        nodes: LmdbNodeStore | OverlayNodeStore,
        stxs: Sequence[SignedTx],
        leaves: list[bytes],
        check_signatures: bool,
    ) -> None:
        """Replay the rules and append to the tree; raise unless the header's roots match."""
        h = block.header
        digest = apply_block_txs(view, self.ctx, stxs, h.height, h.time_ms, prev.state_digest,
                                 check_signatures)
        tree = PersistentTree(nodes)
        if tree.size != prev.tree_size:
            raise StoreError("corrupt store: Merkle tree size differs from the head header")
        size = tree.append_leaf_hashes(leaves)
        if size != h.tree_size:
            raise StoreError(f"block {h.height}: tree_size {h.tree_size}, replay gives {size}")
        if tree.root() != h.tree_root:
            raise StoreError(f"block {h.height}: tree_root does not match the replayed log")
        if digest != h.state_digest:
            raise StoreError(f"block {h.height}: state_digest does not match the replayed state")

    def _check_cert(self, header: Header, cert: CommitCertificate) -> None:
        if cert.height != header.height:
            raise StoreError(f"certificate is for height {cert.height}, block is {header.height}")
        if cert.block_hash != header.hash():
            raise StoreError(f"block {header.height}: certificate is for another block")
        try:
            cert.check(self.genesis.chain_id, self._validator_keys)
        except LedgerError as exc:
            raise StoreError(f"block {header.height}: bad certificate: {exc}") from None

    def check_block(
        self, block: Block, now_ms: int | None = None, check_signatures: bool = True,
        decoded: Sequence[SignedTx | None] | None = None,
    ) -> None:
        """Consensus validity check: raise StoreError/RuleError (clear reason) unless ``block``
        is a valid next block. Dry run on overlays; writes nothing. ``now_ms`` (optional)
        also bounds the block time by the genesis ``max_clock_drift_ms``;
        ``check_signatures=False`` skips tx signatures the caller already verified;
        ``decoded`` may give already-decoded txs (checked byte for byte against the block).
        """
        with self._read() as txn:
            prev = self._prev(txn)
            if decoded is not None and len(decoded) != len(block.txs):
                raise StoreError("decoded transactions do not match the block")
            stxs, leaves = self._check_shape(block, prev, now_ms, decoded)
            state = OverlayState(LmdbState(txn, self._dbs))
            nodes = OverlayNodeStore(LmdbNodeStore(txn, self._dbs))
            self._execute(block, prev, state, nodes, stxs, leaves, check_signatures)
        # The dry run's writes are exactly what applying this block on this head will write:
        # keep them, so that apply_block (right after consensus commits it) need not replay.
        self._memo = _DryRun(block.header.hash(), prev.hash, stxs, state, nodes)

    def apply_block(
        self, block: Block, cert: CommitCertificate, check_signatures: bool = True
    ) -> None:
        """Validate and append a certified block in one durable LMDB transaction.

        Any mismatch raises StoreError/RuleError and writes nothing. ``check_signatures=False``
        skips the tx signatures only (e.g. already checked by :meth:`check_block`); the
        certificate is always checked.
        """
        if self.readonly:  # said before the certificate is looked at
            raise StoreError("the store is open read-only")
        self._check_cert(block.header, cert)
        # one write transaction, aborted on any exception
        self._write(lambda txn: self._apply_in(txn, block, cert, check_signatures))

    def _apply_in(
        self, txn: lmdb.Transaction, block: Block, cert: CommitCertificate, check_signatures: bool
    ) -> None:
        d = self._dbs
        prev = self._prev(txn)
        memo, self._memo = self._memo, None
        h = block.header
        height = h.height
        places = [place_key(height, pos) for pos in range(len(block.txs))]
        if (memo is not None and not check_signatures and memo.prev_hash == prev.hash
                and memo.block_hash == block.header.hash()):
            # Same block on the same head as a completed dry run: write its results.
            stxs = memo.stxs
            new_places = dict(zip([stx.tx_id() for stx in stxs], places, strict=True))
            memo.state.commit_to(LmdbState(txn, d, new_places))
            memo.nodes.apply_to(LmdbNodeStore(txn, d))
        else:
            stxs, leaves = self._check_shape(block, prev, None)
            new_places = dict(zip([stx.tx_id() for stx in stxs], places, strict=True))
            self._execute(block, prev, LmdbState(txn, d, new_places), LmdbNodeStore(txn, d),
                          stxs, leaves, check_signatures)
        key = _u64(height)
        _put(txn, key, h.encode(), d.headers)
        _put(txn, key, cert.encode(), d.certs)
        first_leaf = prev.tree_size
        assert len(stxs) == len(block.txs), "the dry run or replay decoded every tx of the block"
        # Batched puts (one C loop per table) rather than one Python call per row.
        rows = seal_rows(zip(places, block.txs, strict=True))
        _, added = txn.cursor(db=d.blocks).putmulti(rows, append=True)
        if added != len(places):
            raise StoreError(f"corrupt store: transactions stored past the head at {height}")
        # TxLocation rows packed straight from their three checked ints (the header's height
        # and tree size were checked; a test pins these bytes to TxLocation.encode()).
        tag, version = TxLocation.TAG, TxLocation.VERSION
        locs = seal_rows((stx.tx_id(), pack([tag, version, height, pos, first_leaf + pos]))
                         for pos, stx in enumerate(stxs))
        _, added = txn.cursor(db=d.txloc).putmulti(locs, overwrite=False)
        if added != len(locs):
            raise StoreError(f"block {height}: a tx is already in the log")
        _put(txn, _META_HEIGHT, key, d.meta)

    def build_block(
        self,
        candidates: Sequence[SignedTx],
        proposer: int,
        time_ms: int,
        max_txs: int | None = None,
        max_bytes: int | None = None,
        check_signatures: bool = True,
    ) -> tuple[Block, list[tuple[bytes, RuleError]]]:
        """Propose the next block from ``candidates`` (in order), skipping invalid ones.

        Returns the block and ``(tx_id, error)`` for each rejected candidate; candidates that
        merely do not fit (count/bytes) are neither included nor rejected. ``time_ms`` is raised
        to the previous block's time + 1 if needed. Limits default to the genesis params.
        """
        p = self.genesis.params
        max_txs = p.max_block_txs if max_txs is None else min(max_txs, p.max_block_txs)
        max_bytes = p.max_block_bytes if max_bytes is None else min(max_bytes, p.max_block_bytes)
        budget_bytes = max_bytes - _HEADER_SLACK_BYTES - 5
        rejected: list[tuple[bytes, RuleError]] = []
        chosen: list[bytes] = []
        chosen_stxs: list[SignedTx] = []
        with self._read() as txn:
            prev = self._prev(txn)
            height = prev.height + 1
            time_ms = max(time_ms, prev.time_ms + 1)
            overlay = OverlayState(LmdbState(txn, self._dbs))
            for stx in candidates:
                if len(chosen) >= max_txs:
                    break
                try:
                    raw = stx.encode()
                except EncodingError as exc:
                    rejected.append((b"", RuleError("bad_encoding", str(exc))))
                    continue
                tx_id = stx.tx_id()
                if len(raw) > p.max_tx_bytes:
                    rejected.append((tx_id, RuleError("tx_too_large", "exceeds max_tx_bytes")))
                    continue
                cost = len(raw) + tx_entry_overhead(len(raw))
                if cost > budget_bytes:
                    continue
                try:
                    apply_tx(overlay, self.ctx, stx, height, time_ms,
                             check_signature=check_signatures)
                except RuleError as exc:
                    rejected.append((tx_id, exc))
                    continue
                chosen.append(raw)
                chosen_stxs.append(stx)
                budget_bytes -= cost
            digest = compute_state_digest(prev.state_digest, overlay.changes())
            nodes = OverlayNodeStore(LmdbNodeStore(txn, self._dbs))
            tree = PersistentTree(nodes)
            leaves = [_leaf(raw) for raw in chosen]
            size = tree.append_leaf_hashes(leaves)
            root = tree.root()
        header = Header(
            chain_id=self.genesis.chain_id,
            height=height,
            prev_hash=prev.hash,
            time_ms=time_ms,
            proposer=proposer,
            tree_size=size,
            tree_root=root,
            txs_root=root_from_leaf_hashes(leaves),
            state_digest=digest,
        )
        # Built here, so valid on this head by construction: keep the dry run for apply_block.
        self._memo = _DryRun(header.hash(), prev.hash, chosen_stxs, overlay, nodes)
        return Block(header, tuple(chosen)), rejected

    def check_tx(
        self, stx: SignedTx, time_ms: int | None = None, check_signature: bool = True
    ) -> None:
        """Mempool admission: raise RuleError unless ``stx`` applies on the current state.

        ``check_signature=False`` when the caller has verified the signature already.
        """
        try:
            raw = stx.encode()
        except EncodingError as exc:
            raise RuleError("bad_encoding", str(exc)) from None
        if len(raw) > self.genesis.params.max_tx_bytes:
            raise RuleError("tx_too_large", "exceeds max_tx_bytes")
        with self._read() as txn:
            prev = self._prev(txn)
            t = max(prev.time_ms + 1, int(time.time() * 1000) if time_ms is None else time_ms)
            apply_tx(CheckOnlyOverlay(LmdbState(txn, self._dbs)), self.ctx, stx, prev.height + 1, t,
                     check_signature=check_signature)

    def check_txs(
        self, stxs: Sequence[SignedTx], check_signatures: bool = True,
        time_ms: int | None = None,
    ) -> list[RuleError | None]:
        """Mempool admission of a batch: one read transaction, applied in order on one overlay
        (a claim and a decision on it may come in one batch). ``None`` where a tx applies."""
        out: list[RuleError | None] = []
        max_tx = self.genesis.params.max_tx_bytes
        with self._read() as txn:
            prev = self._prev(txn)
            t = max(prev.time_ms + 1, int(time.time() * 1000) if time_ms is None else time_ms)
            overlay = CheckOnlyOverlay(LmdbState(txn, self._dbs))
            for stx in stxs:
                try:
                    if len(stx.encode()) > max_tx:
                        raise RuleError("tx_too_large", "exceeds max_tx_bytes")
                    apply_tx(overlay, self.ctx, stx, prev.height + 1, t,
                             check_signature=check_signatures)
                    out.append(None)
                except RuleError as exc:
                    out.append(exc)
                except EncodingError as exc:
                    out.append(RuleError("bad_encoding", str(exc)))
        return out

    def disk_usage_bytes(self) -> int:
        try:
            return sum(
                os.path.getsize(self.path / f) for f in ("data.mdb", "lock.mdb")
                if (self.path / f).exists()
            )
        except OSError:
            return 0


SCRUB_TABLES = _DB_NAMES

__all__ = ["SCRUB_TABLES", "HeightRaw", "LmdbNodeStore", "LmdbState", "Store", "TxLocation",
           "place_key", "put_in_key_order"]
