"""The LMDB layout of the ledger store and its row access (used by :mod:`ledger.store`).

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
references  optician || 0x00 || client_ref        claim_id (32) of the optician's claim with that
            (``state.reference_key``)           reference: the index that refuses a second one
meta        ``l/...`` (ours) / ``u/...`` (node) ``l/genesis``: genesis hash, ``l/height``: head
gov         ASCII prefix || binary id           the governance state, current values (the
            (``ledger.registry.gov_key_*``)     registry leaves, slot and key indexes,
                                                policy, tariff versions, proposals, key
                                                events; ``ledger.registry``)
regtree     level u8 || index u64 ||            the registry tree's complete-subtree hashes
            ~version u64                        (32), with history: one row per version (the
                                                height that wrote it, 0 = genesis); level 0xFE
                                                keeps each leaf's bytes, 0xFF the tree size
                                                (``LmdbVersionedNodeStore``)
==========  ==================================  ==========================================

Every value above is stored *sealed* (format 3): ``value || crc32(key || value)`` (4 bytes,
big-endian; ``ledger.rowcheck``). Every read checks the seal (``get_row``, cursor scans,
``scrub``) and raises :class:`StoreCorruption` (table and key, never the value) on a mismatch:
a damaged row is refused, never returned. ``block(h)`` also checks that the block's rows are
the header's count at positions 0..n-1. The environment is opened through
``rowcheck.open_env``, which refuses a ``data.mdb`` shorter than its pages (no SIGBUS), and
:meth:`Store.verify_head` checks the head header, certificate and Merkle tree (a node calls it
at start).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import lmdb

from tpledger.ledger.blocks import Header
from tpledger.ledger.encoding import U32, U64, Int, R, Record, spec
from tpledger.ledger.errors import EncodingError, StoreCorruption, StoreError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.registry import Registry
from tpledger.ledger.rowcheck import seal, seal_rows, unseal
from tpledger.ledger.tx import ClaimState, EvidenceRecord
from tpledger.ledger.validity import Head
from tpledger.ledger.votes import CommitCertificate

DEFAULT_MAP_SIZE_BYTES = 8 * 1024**3
MAX_META_KEY_BYTES = 256
MAX_PAGE = 10_000
MAX_META_VALUE_BYTES = 16 * 1024 * 1024
DB_NAMES = ("headers", "blocks", "certs", "txloc", "tree", "claims", "meta", "evidence",
            "references", "gov", "regtree")
META_GENESIS = b"l/genesis"
META_HEIGHT = b"l/height"
META_FORMAT = b"l/format"
STORE_FORMAT = 5  # 2: claim states keyed by log place; 3: every value sealed (crc32);
# 4: claims carry a client reference (Claim version 2) and the references table exists;
# 5: headers commit to the participant registry (Header version 2), gov and regtree tables
META_USER = b"u/"
_TREE_SIZE_KEY = b"size"


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


def u64(n: int) -> bytes:
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


def read_location(txn: lmdb.Transaction, dbs: Dbs, tx_id: bytes) -> TxLocation | None:
    raw = get_row(txn, tx_id, dbs.txloc, "txloc")
    return None if raw is None else decode_row(TxLocation, raw, f"tx location {tx_id.hex()[:16]}")


def get_row(txn: lmdb.Transaction, key: bytes, db: Any, table: str) -> bytes | None:
    """The value at ``key`` (None if absent); StoreCorruption if its seal does not match."""
    v = txn.get(key, db=db)
    return None if v is None else unseal(table, key, v)


def put_row(txn: lmdb.Transaction, key: bytes, value: bytes, db: Any) -> None:
    txn.put(key, seal(key, value), db=db)


_NODE_KEY = struct.Struct(">BQ")  # level u8 || index u64


def node_key(level: int, index: int) -> bytes:
    return _NODE_KEY.pack(level, index)


class Dbs:
    def __init__(self, env: lmdb.Environment, readonly: bool) -> None:
        create = not readonly
        handles = {n: env.open_db(n.encode(), create=create) for n in DB_NAMES}
        self.headers = handles["headers"]
        self.blocks = handles["blocks"]
        self.certs = handles["certs"]
        self.txloc = handles["txloc"]
        self.tree = handles["tree"]
        self.claims = handles["claims"]
        self.meta = handles["meta"]
        self.evidence = handles["evidence"]
        self.references = handles["references"]
        self.gov = handles["gov"]
        self.regtree = handles["regtree"]


def claim_row(key: bytes, raw: bytes) -> tuple[bytes, ClaimState]:
    """Decode a claims row: ``claim_id (32) || ClaimState bytes``."""
    try:
        return raw[:32], ClaimState.decode(raw[32:])
    except EncodingError as exc:
        raise StoreError(f"corrupt claim state at {key.hex()}: {exc}") from None


def evidence_row(key: bytes, raw: bytes) -> EvidenceRecord:
    try:
        return EvidenceRecord.decode(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt evidence record at {key.hex()}: {exc}") from None


class LmdbState:
    """``StateView`` over an LMDB transaction (writes need a write transaction).

    Claim states live at their claim's place in the log; ``new_places`` gives the places of
    the txs of the block being applied (whose location rows may not be written yet).
    """

    def __init__(self, txn: lmdb.Transaction, dbs: Dbs,
                 new_places: dict[bytes, bytes] | None = None,
                 registry: Registry | None = None) -> None:
        self.txn, self.dbs = txn, dbs
        self.new_places = new_places or {}
        self._registry = registry

    def registry(self) -> Registry:
        """The registry in force (the store's snapshot, given at construction)."""
        if self._registry is None:  # a bug of ours: the store passes its snapshot
            raise RuntimeError("LmdbState built without the registry in force")
        return self._registry

    def get_gov(self, key: bytes) -> bytes | None:
        return get_row(self.txn, key, self.dbs.gov, "gov")

    def put_gov(self, key: bytes, value: bytes) -> None:
        put_row(self.txn, key, value, self.dbs.gov)

    def _place(self, claim_id: bytes) -> bytes | None:
        place = self.new_places.get(claim_id)
        if place is not None:
            return place
        loc = read_location(self.txn, self.dbs, claim_id)
        return None if loc is None else place_key(loc.height, loc.position)

    def get_claim(self, claim_id: bytes) -> ClaimState | None:
        place = self._place(claim_id)
        raw = None if place is None else get_row(self.txn, place, self.dbs.claims, "claims")
        if raw is None:
            return None
        assert place is not None
        stored_id, state = claim_row(place, raw)
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
        raw = get_row(self.txn, slot, self.dbs.evidence, "evidence")
        return None if raw is None else evidence_row(slot, raw)

    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None:
        put_in_key_order(self.txn.cursor(db=self.dbs.evidence), [(slot, record.encode())])

    def get_reference(self, ref_key: bytes) -> bytes | None:
        claim_id = get_row(self.txn, ref_key, self.dbs.references, "references")
        if claim_id is not None and len(claim_id) != 32:
            raise StoreError("corrupt reference index row: not a claim id")
        return claim_id

    def put_reference(self, ref_key: bytes, claim_id: bytes) -> None:
        self.put_references([(ref_key, claim_id)])

    def put_references(self, rows: Iterable[tuple[bytes, bytes]]) -> None:
        """Index rows of a block's new claims, sealed, in one sorted batch."""
        put_in_key_order(self.txn.cursor(db=self.dbs.references), list(rows))

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

    def __init__(self, txn: lmdb.Transaction, dbs: Dbs) -> None:
        self.txn, self.db = txn, dbs.tree

    def get_node(self, level: int, index: int) -> bytes | None:
        raw = get_row(self.txn, node_key(level, index), self.db, "tree")
        if raw is not None and len(raw) != 32:
            raise StoreError(f"corrupt Merkle node ({level}, {index})")
        return raw

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        put_row(self.txn, node_key(level, index), digest, self.db)

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
        raw = get_row(self.txn, _TREE_SIZE_KEY, self.db, "tree")
        return 0 if raw is None else int.from_bytes(raw, "big")

    def set_size(self, size: int) -> None:
        put_row(self.txn, _TREE_SIZE_KEY, u64(size), self.db)


# -- the versioned registry tree ----------------------------------------------------------
_VKEY = struct.Struct(">BQQ")  # level u8 || index u64 || (2**64 - 1 - version) u64
_VPREFIX = struct.Struct(">BQ")
_MAX_VERSION = 2**64 - 1
LEAF_LEVEL = 0xFE  # leaf-record history: 0xFE || slot || ~version -> the leaf's bytes
_SIZE_LEVEL = 0xFF  # tree size history: 0xFF || 0 || ~version -> size u64


class LmdbVersionedNodeStore:
    """Merkle ``NodeStore`` with history, over the ``regtree`` table: every write is kept
    under the block height that made it (``write_height``; 0 = genesis) and reads see, for
    each node, the latest version ``<= at_height`` (default: the latest). The registry tree
    is updated in place (``PersistentTree.set_leaf_hash``), so this is what lets a proof of
    block h show the registry in force then (``at_height = h - 1``) after later changes.

    Keys: ``level u8 || index u64 || ~version u64`` (newest version first), so a read is one
    cursor ``set_range``. Leaf records (``put_leaf``/``get_leaf``) and the tree size are kept
    the same way (levels 0xFE and 0xFF, which no tree of < 2**64 leaves reaches)."""

    def __init__(self, txn: lmdb.Transaction, db: Any, at_height: int | None = None,
                 write_height: int | None = None) -> None:
        self.txn, self.db = txn, db
        self._inv = 0 if at_height is None else _MAX_VERSION - at_height
        self._write_inv = None if write_height is None else _MAX_VERSION - write_height

    def _get(self, cur: lmdb.Cursor, level: int, index: int) -> bytes | None:
        prefix = _VPREFIX.pack(level, index)
        if not cur.set_range(prefix + self._inv.to_bytes(8, "big")):
            return None
        key = bytes(cur.key())
        if key[:9] != prefix:
            return None
        return unseal("regtree", key, cur.value())

    def _put_rows(self, rows: list[tuple[tuple[int, int], bytes]]) -> None:
        if self._write_inv is None:
            raise RuntimeError("a versioned node store opened for reading is never written")
        inv = self._write_inv
        with self.txn.cursor(db=self.db) as cur:
            cur.putmulti(seal_rows([(_VKEY.pack(level, index, inv), value)
                                    for (level, index), value in rows]))

    def get_node(self, level: int, index: int) -> bytes | None:
        return self.get_nodes([(level, index)])[0]

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        out: list[bytes | None] = []
        with self.txn.cursor(db=self.db) as cur:
            for level, index in keys:
                raw = self._get(cur, level, index)
                if raw is not None and len(raw) != 32:
                    raise StoreError(f"corrupt registry tree node ({level}, {index})")
                out.append(raw)
        return out

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        self._put_rows([((level, index), digest)])

    def put_node_items(self, items: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        self._put_rows(list(items))

    def get_size(self) -> int:
        with self.txn.cursor(db=self.db) as cur:
            raw = self._get(cur, _SIZE_LEVEL, 0)
        if raw is not None and len(raw) != 8:
            raise StoreError("corrupt registry tree size")
        return 0 if raw is None else int.from_bytes(raw, "big")

    def set_size(self, size: int) -> None:
        self._put_rows([((_SIZE_LEVEL, 0), u64(size))])

    def get_leaf(self, slot: int) -> bytes | None:
        """The bytes of the registry leaf at ``slot`` as of ``at_height``."""
        with self.txn.cursor(db=self.db) as cur:
            return self._get(cur, LEAF_LEVEL, slot)

    def put_leaves(self, leaves: Iterable[tuple[int, bytes]]) -> None:
        self._put_rows([((LEAF_LEVEL, slot), raw) for slot, raw in leaves])


# -- readers of the head and of one height ---------------------------------------------------
def read_height(txn: lmdb.Transaction, dbs: Dbs) -> int:
    raw = get_row(txn, META_HEIGHT, dbs.meta, "meta")
    if raw is None or len(raw) != 8:
        raise StoreError("corrupt store: head height missing")
    return int.from_bytes(raw, "big")


def decode_row(cls: type[R], raw: bytes, what: str) -> R:
    """A stored record decoded; StoreError naming ``what`` (never the bytes) if it does not."""
    try:
        return cls.decode(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt {what}: {exc}") from None


def read_header(txn: lmdb.Transaction, dbs: Dbs, height: int) -> Header:
    raw = get_row(txn, u64(height), dbs.headers, "headers") if height >= 1 else None
    if raw is None:
        raise StoreError(f"no block at height {height}")
    return decode_row(Header, raw, f"header at height {height}")


def read_cert(txn: lmdb.Transaction, dbs: Dbs, height: int) -> CommitCertificate:
    raw = get_row(txn, u64(height), dbs.certs, "certs") if height >= 1 else None
    if raw is None:
        raise StoreError(f"no certificate at height {height}")
    return decode_row(CommitCertificate, raw, f"certificate at height {height}")


def read_head(txn: lmdb.Transaction, dbs: Dbs, genesis: Genesis) -> Head:
    """The head (the genesis at height 0)."""
    h = read_height(txn, dbs)
    return Head.of_genesis(genesis) if h == 0 else Head.of_header(read_header(txn, dbs, h))


def read_tx_bytes(txn: lmdb.Transaction, dbs: Dbs, loc: TxLocation) -> bytes:
    raw = get_row(txn, place_key(loc.height, loc.position), dbs.blocks, "blocks")
    if raw is None:
        raise StoreError(f"corrupt store: tx at {loc.height}/{loc.position} missing")
    return raw


def read_block_txs(txn: lmdb.Transaction, dbs: Dbs, height: int) -> list[bytes]:
    """The stored txs of one height, in order; StoreCorruption if a position is missing."""
    prefix = u64(height)
    out: list[bytes] = []
    with txn.cursor(db=dbs.blocks) as cur:
        if cur.set_range(prefix):
            for key, value in cur:
                if key[:8] != prefix:
                    break
                if key != place_key(height, len(out)):  # a position is missing
                    raise StoreCorruption("blocks", place_key(height, len(out)))
                out.append(unseal("blocks", key, value))
    return out
