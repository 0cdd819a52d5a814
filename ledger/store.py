"""The validator's ledger store, over LMDB: the façade the node, the CLI and the audit use.

The LMDB layout and row access are in :mod:`ledger.store_layout` (every value sealed and
checked on read: a damaged row is refused, never returned), block checking and execution in
:mod:`ledger.execution` (every validity rule is :mod:`ledger.validity`'s), proof building in
:mod:`ledger.store_proofs`. :meth:`Store.verify_head` checks the head header, certificate and
Merkle tree (a node calls it at start).

Checking a block returns a :class:`CheckedBlock` (the dry run's writes and the head it was
checked on); :meth:`Store.apply_block` applies exactly that token and refuses it if the head
moved. :meth:`Store.apply_certified` checks and applies a block in one step (catch-up).

A block is applied in ONE write transaction: checks, rules replay, tree append, and all writes
commit together or not at all (LMDB with ``sync=True``: after a crash the store is at the
previous block or at the new one, never in between). Opening reads three meta keys; every read is
bounded (O(log n) tree nodes, O(log height) headers for ``proof(tree_size=...)``, one block's
transactions for ``block(h)``); only :mod:`ledger.audit` and ``scrub`` (in bounded chunks) scan.

Missing things asked by height (``header(h)``, ``block(h)``...) raise :class:`StoreError`;
look-ups by id (``tx_location``, ``tx``, ``claim``) return ``None`` when absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from tpledger.ledger.blocks import Block, Header
from tpledger.ledger.errors import EncodingError, RuleError, StoreCorruption, StoreError
from tpledger.ledger.execution import (
    BlockLimits,
    CheckedBlock,
    build,
    commit_checked,
    dry_run,
    regtree_nodes,
    replay_into,
    require_head,
    write_block_rows,
    write_leaf_history,
)
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.merkle_tree import PersistentTree
from tpledger.ledger.proofs import Checkpoint, ConsistencyProof, ProofBundle
from tpledger.ledger.registry import (
    REGISTRY_ROW_PREFIXES,
    KeyEvent,
    ParticipantRecord,
    ProposalState,
    Registry,
    RegistryTree,
    TariffVersion,
    genesis_key_event,
    gov_key_events_prefix,
    gov_key_proposal,
)
from tpledger.ledger.rowcheck import RESYNC_HINT, open_env, scrub_rows, unseal
from tpledger.ledger.rules import CheckOnlyOverlay, RulesContext, apply_tx
from tpledger.ledger.store_layout import (
    DB_NAMES,
    DEFAULT_MAP_SIZE_BYTES,
    MAX_META_KEY_BYTES,
    MAX_META_VALUE_BYTES,
    MAX_PAGE,
    META_FORMAT,
    META_GENESIS,
    META_HEIGHT,
    META_USER,
    STORE_FORMAT,
    Dbs,
    HeightRaw,
    LmdbNodeStore,
    LmdbState,
    LmdbVersionedNodeStore,
    TxLocation,
    claim_row,
    decode_row,
    evidence_row,
    get_row,
    place_key,
    put_in_key_order,
    put_row,
    read_block_txs,
    read_cert,
    read_head,
    read_header,
    read_height,
    read_location,
    read_tx_bytes,
    u64,
)
from tpledger.ledger.store_proofs import (
    checkpoint_at,
    consistency_path,
    consistency_proof,
    inclusion_bundle,
)
from tpledger.ledger.tx import ClaimState, EvidenceRecord, SignedTx
from tpledger.ledger.validity import Head, check_certificate
from tpledger.ledger.votes import CommitCertificate


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
        if lpp.digest() != genesis.lpp_table_digest:
            raise StoreError("the LPP table does not match the genesis lpp_table_digest")
        try:
            if not readonly:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store: {exc.strerror}") from None
        # open_env checks the file's size before open_db reads any page (never a SIGBUS)
        self._env = open_env(self.path, map_size=map_size, max_dbs=len(DB_NAMES) + 2,
                             subdir=True, readonly=readonly, sync=True, metasync=True,
                             lock=True, readahead=False)
        try:
            created = self._init_meta()  # the format is checked before any table is made
            self._dbs = Dbs(self._env, readonly)
            if created:
                self._write(self._init_registry)
            self._registries: dict[int, Registry] = {}  # loaded on first use
            self._last_retired: frozenset[bytes] = frozenset()
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

    def _init_meta(self) -> bool:
        """Check the store's format and genesis (a new store: write them); True if new."""
        meta = self._env.open_db(b"meta", create=not self.readonly)
        with self._env.begin(write=False) as txn:
            stored, fmt = txn.get(META_GENESIS, db=meta), txn.get(META_FORMAT, db=meta)
        if stored is None and fmt is None:
            if self.readonly:
                raise StoreError(f"{self.path}: not an initialised tpledger store")
            with self._env.begin(write=True) as txn:
                put_row(txn, META_GENESIS, self.genesis_hash, meta)
                put_row(txn, META_HEIGHT, u64(0), meta)
                put_row(txn, META_FORMAT, bytes([STORE_FORMAT]), meta)
            return True
        if fmt is None or len(fmt) == 1:  # formats 1 and 2 stored unsealed values
            found = "1" if fmt is None else fmt.hex()
            raise StoreError(
                f"{self.path}: store format {found} was written by an older version "
                f"(this one reads format {STORE_FORMAT}); move it aside and let the node "
                "fetch the blocks again from its peers (docs/operations.md)"
            )
        found_fmt = unseal("meta", META_FORMAT, fmt)
        if found_fmt != bytes([STORE_FORMAT]):
            older = len(found_fmt) == 1 and found_fmt[0] < STORE_FORMAT
            what = (f"{found_fmt[0]} was written by an older version (this one reads format "
                    f"{STORE_FORMAT}: block headers commit to the participant registry)"
                    if older else "unknown")
            raise StoreError(f"{self.path}: store format {what}; {RESYNC_HINT}")
        if stored is None:
            raise StoreError(f"{self.path}: the store is damaged (no genesis); {RESYNC_HINT}")
        stored = unseal("meta", META_GENESIS, stored)
        if stored != self.genesis_hash:
            raise StoreError(
                f"{self.path}: the store belongs to another genesis "
                f"({stored.hex()[:16]}…, expected {self.genesis_hash.hex()[:16]}…)"
            )
        return False

    # -- the registry in force -----------------------------------------------------------------
    def _init_registry(self, txn: lmdb.Transaction) -> None:
        """A new store: the genesis registry's rows, its tree and leaves (version 0)."""
        nodes = regtree_nodes(txn, self._dbs, write_height=0)
        reg = Registry.of_genesis(self.genesis, RegistryTree(nodes))
        rows = reg.rows()
        put_in_key_order(txn.cursor(db=self._dbs.gov), rows)
        write_leaf_history(nodes, rows)  # it keeps the leaf rows

    def _load_registry(self, txn: lmdb.Transaction, height: int) -> Registry:
        """The registry after the head (at ``height``), from the ``gov`` rows and the tree
        (at open, or if a reader's head has no snapshot); kept for the head's height."""
        rows: list[tuple[bytes, bytes]] = []
        with txn.cursor(db=self._dbs.gov) as cur:
            for prefix in REGISTRY_ROW_PREFIXES:
                found = cur.set_range(prefix)
                while found and bytes(cur.key())[:1] == prefix:
                    key = bytes(cur.key())
                    rows.append((key, unseal("gov", key, cur.value())))
                    found = cur.next()
        reg = Registry.load(rows, RegistryTree(regtree_nodes(txn, self._dbs)))
        self._keep_registry(height, reg)
        return reg

    def _keep_registry(self, height: int, registry: Registry) -> None:
        """Install the snapshot for ``height`` (before the write that makes it the head:
        a reader of either head finds its own); the two newest are kept."""
        self._registries[height] = registry
        for old in [h for h in self._registries if h < height - 1]:
            self._registries.pop(old, None)

    def _registry(self, txn: lmdb.Transaction, height: int) -> Registry:
        reg = self._registries.get(height)
        return reg if reg is not None else self._load_registry(txn, height)

    def registry(self) -> Registry:
        """The registry in force for the next block (the one after the head)."""
        with self._read() as txn:
            return self._registry(txn, self._height(txn))

    def last_retired_keys(self) -> frozenset[bytes]:
        """The signing keys the last block applied through this object retired (revoked,
        suspended, rotated out): the node drops their pending txs."""
        return self._last_retired

    # -- governance state (current values) -----------------------------------------------------
    def participant(self, org: str) -> ParticipantRecord | None:
        """The participant ``org``'s current record (any status), as in force next block."""
        return self.registry().participant(org)

    def key_history(self, org: str, limit: int = 100) -> list[KeyEvent]:
        """The last ``limit`` (<= MAX_PAGE) key events of participant or org ``org``, oldest
        first; a member listed in the genesis has a first event at height 0 (not stored)."""
        limit = max(0, min(limit, MAX_PAGE))
        prefix = gov_key_events_prefix(org)
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        out: list[KeyEvent] = []
        with self._read() as txn, txn.cursor(db=self._dbs.gov) as cur:
            found = cur.prev() if cur.set_range(end) else cur.last()
            while found and len(out) < limit and bytes(cur.key()).startswith(prefix):
                key = bytes(cur.key())
                out.append(decode_row(KeyEvent, unseal("gov", key, cur.value()), "key event"))
                found = cur.prev()
        if len(out) < limit:  # every stored event was read: the genesis one goes first
            first = genesis_key_event(self.genesis, org)
            if first is not None:
                out.append(first)
        out.reverse()
        return out

    def gov_row(self, key: bytes) -> bytes | None:
        """One stored governance row (current value), e.g. for the audit."""
        with self._read() as txn:
            return get_row(txn, key, self._dbs.gov, "gov")

    def proposal(self, pid: bytes) -> ProposalState | None:
        with self._read() as txn:
            raw = get_row(txn, gov_key_proposal(pid), self._dbs.gov, "gov")
        return None if raw is None else decode_row(ProposalState, raw, "proposal")

    def proposals(self, status: int | None = None, after: bytes = b"", limit: int = 100
                  ) -> list[tuple[bytes, ProposalState]]:
        """Up to ``limit`` (<= MAX_PAGE) proposals by id, strictly after the id ``after``,
        with that status if given (at most MAX_PAGE rows are looked at per call)."""
        limit = max(0, min(limit, MAX_PAGE))
        out: list[tuple[bytes, ProposalState]] = []
        start = gov_key_proposal(after)
        with self._read() as txn, txn.cursor(db=self._dbs.gov) as cur:
            found = cur.set_range(start)
            if found and after and bytes(cur.key()) == start:
                found = cur.next()
            seen = 0
            while found and len(out) < limit and seen < MAX_PAGE:
                key = bytes(cur.key())
                if key[:1] != b"q":
                    break
                seen += 1
                st = decode_row(ProposalState, unseal("gov", key, cur.value()), "proposal")
                if status is None or st.status == status:
                    out.append((key[1:], st))
                found = cur.next()
        return out

    def tariff_versions(self) -> list[TariffVersion]:
        """The published tariff versions >= 2, in version order (version 1 is the genesis
        table)."""
        out: list[TariffVersion] = []
        with self._read() as txn, txn.cursor(db=self._dbs.gov) as cur:
            found = cur.set_range(b"t")
            while found and bytes(cur.key())[:1] == b"t":
                key = bytes(cur.key())
                out.append(decode_row(TariffVersion, unseal("gov", key, cur.value()),
                                      "tariff version"))
                found = cur.next()
        return out

    def verify_head(self) -> None:
        """Start-up check of the head: its header and certificate decode, the certificate is
        a quorum of the genesis validators over the header's hash, the stored Merkle tree
        has the header's size and root, and the stored registry tree (as in force for the
        head block) the header's registry size and root. StoreError (with how to resync)
        otherwise."""
        try:
            with self._read() as txn:
                height = self._height(txn)
                nodes = LmdbNodeStore(txn, self._dbs)
                size = nodes.get_size()
                if height == 0:
                    if size != 0:
                        raise StoreError("Merkle leaves stored but no block")
                    return
                header = read_header(txn, self._dbs, height)
                if header.height != height or header.chain_id != self.genesis.chain_id:
                    raise StoreError(f"the head header is not the one of height {height}")
                check_certificate(header, read_cert(txn, self._dbs, height),
                                  self.genesis.chain_id, self.genesis.validator_keys)
                if size != header.tree_size:
                    raise StoreError("Merkle tree size differs from the head header")
                if PersistentTree(nodes).root(size) != header.tree_root:
                    raise StoreError("Merkle tree root differs from the head header")
                reg = PersistentTree(LmdbVersionedNodeStore(txn, self._dbs.regtree,
                                                            at_height=height - 1))
                if (reg.size, reg.root()) != (header.registry_size, header.registry_root):
                    raise StoreError("registry tree differs from the head header")
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
        return read_height(txn, self._dbs)

    def _head(self, txn: lmdb.Transaction) -> Head:
        return read_head(txn, self._dbs, self.genesis)

    def head(self) -> Head:
        """The last applied block's height, hash, time, tree size and state digest (the
        genesis at height 0)."""
        with self._read() as txn:
            return self._head(txn)

    @property
    def height(self) -> int:
        """Height of the last applied block (0: only the genesis)."""
        with self._read() as txn:
            return self._height(txn)

    @property
    def head_hash(self) -> bytes:
        """Hash of the last header (the genesis hash at height 0)."""
        return self.head().hash

    @property
    def tree_size(self) -> int:
        return self.head().tree_size

    @property
    def state_digest(self) -> bytes:
        return self.head().state_digest

    # -- getters -----------------------------------------------------------------------------
    def header(self, height: int) -> Header:
        with self._read() as txn:
            return read_header(txn, self._dbs, height)

    def certificate(self, height: int) -> CommitCertificate:
        with self._read() as txn:
            return read_cert(txn, self._dbs, height)


    def block(self, height: int) -> Block:
        """The block at ``height``; StoreCorruption if its stored transactions are not the
        header's count at positions 0..n-1 (a row lost or moved by damage to its key)."""
        with self._read() as txn:
            header = read_header(txn, self._dbs, height)
            txs = read_block_txs(txn, self._dbs, height)
            before = read_header(txn, self._dbs, height - 1).tree_size if height > 1 else 0
        if len(txs) != header.tree_size - before:
            raise StoreCorruption("blocks", place_key(height, min(len(txs), header.tree_size -
                                                                   before)))
        return Block(header, tuple(txs))

    def raw_height(self, height: int) -> HeightRaw:
        """The stored bytes of one height, undecoded (for audits and debugging)."""
        with self._read() as txn:
            key = u64(height)
            return HeightRaw(
                get_row(txn, key, self._dbs.headers, "headers"),
                get_row(txn, key, self._dbs.certs, "certs"),
                read_block_txs(txn, self._dbs, height),
            )

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        with self._read() as txn:
            return read_location(txn, self._dbs, tx_id)

    def tx_bytes(self, tx_id: bytes) -> bytes | None:
        with self._read() as txn:
            loc = read_location(txn, self._dbs, tx_id)
            return None if loc is None else read_tx_bytes(txn, self._dbs, loc)

    def tx(self, tx_id: bytes) -> SignedTx | None:
        raw = self.tx_bytes(tx_id)
        return None if raw is None else decode_row(SignedTx, raw, f"tx {tx_id.hex()[:16]}")

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
                out.append(claim_row(key, unseal("claims", key, cur.value())))
                found = cur.next()
        return out

    def has_tx(self, tx_id: bytes) -> bool:
        with self._read() as txn:
            return LmdbState(txn, self._dbs).has_tx(tx_id)

    def reference(self, ref_key: bytes) -> bytes | None:
        """The claim id indexed under ``state.reference_key(optician, client_ref)``."""
        with self._read() as txn:
            return LmdbState(txn, self._dbs).get_reference(ref_key)

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
                out.append((key, evidence_row(key, unseal("evidence", key, cur.value()))))
                found = cur.next()
        return out

    def entries(self, db_name: str) -> int:
        """Number of records in one named database (O(1), from LMDB's statistics)."""
        if db_name not in DB_NAMES:
            raise StoreError(f"unknown database {db_name!r}")
        with self._read() as txn:
            return int(txn.stat(getattr(self._dbs, db_name))["entries"])

    def scrub(self, table: str, after: bytes | None, limit: int
              ) -> tuple[int, bytes | None, list[StoreCorruption]]:
        """Check the seals of up to ``limit`` rows of ``table`` after key ``after`` (one read
        transaction; see ``ledger.rowcheck.scrub_rows``)."""
        if table not in DB_NAMES:
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
    def proof(
        self, tx_id: bytes, tree_size: int | None = None, *, height: int | None = None
    ) -> ProofBundle:
        """Inclusion bundle of ``tx_id`` against the header at ``height``, or the first header
        with ``tree_size`` leaves, or (default) the header of the tx's own block: the
        registry in force there is the one that let the signer sign, so the bundle verifies
        even after a later rotation or revocation of the signer. Raises StoreError if it
        cannot be proven there.
        """
        with self._read() as txn:
            return inclusion_bundle(txn, self._dbs, tx_id, tree_size, height)

    def checkpoint(self, height: int | None = None) -> Checkpoint:
        """The certified header at ``height`` (default: head)."""
        with self._read() as txn:
            return checkpoint_at(txn, self._dbs, height)

    def consistency_path(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency path between two log sizes (default new: current)."""
        with self._read() as txn:
            return consistency_path(txn, self._dbs, old_size, new_size)

    def consistency_proof(self, old_height: int, new_height: int | None = None) -> ConsistencyProof:
        """Two checkpoints and the path proving the newer log extends the older one."""
        with self._read() as txn:
            return consistency_proof(txn, self._dbs, old_height, new_height)

    # -- meta (node's consensus state) -------------------------------------------------------
    @staticmethod
    def _meta_key(key: bytes) -> bytes:
        if not isinstance(key, bytes) or not 1 <= len(key) <= MAX_META_KEY_BYTES:
            raise StoreError(f"meta keys are 1 to {MAX_META_KEY_BYTES} bytes")
        return META_USER + key

    def meta_get(self, key: bytes) -> bytes | None:
        k = self._meta_key(key)
        with self._read() as txn:
            return get_row(txn, k, self._dbs.meta, "meta")

    def meta_put(self, key: bytes, value: bytes) -> None:
        """Write one node key; durable (fsync'd) when this returns."""
        k = self._meta_key(key)
        if not isinstance(value, bytes) or len(value) > MAX_META_VALUE_BYTES:
            raise StoreError(f"meta values are bytes of at most {MAX_META_VALUE_BYTES}")
        self._write(lambda txn: put_row(txn, k, value, self._dbs.meta))

    def _write(self, fn: Callable[[lmdb.Transaction], Any]) -> Any:
        if self.readonly:
            raise StoreError("the store is open read-only")
        try:
            with self._env.begin(write=True) as txn:
                return fn(txn)
        except lmdb.MapFullError:
            raise StoreError(
                f"{self.path}: LMDB map is full; reopen with a larger map_size"
            ) from None
        except lmdb.Error as exc:
            raise StoreError(f"LMDB write failed: {exc}") from None

    # -- checking and applying blocks --------------------------------------------------------
    def check_block(
        self, block: Block, now_ms: int | None = None, check_signatures: bool = True,
        decoded: Sequence[SignedTx | None] | None = None,
    ) -> CheckedBlock:
        """Consensus validity check: raise StoreError/RuleError (clear reason) unless ``block``
        is a valid next block; return it checked (hand it to :meth:`apply_block`). Dry run on
        overlays; writes nothing. ``now_ms`` (optional) also bounds the block time by the
        genesis ``max_clock_drift_ms``; ``check_signatures=False`` skips tx signatures the
        caller already verified; ``decoded`` may give already-decoded txs (checked byte for
        byte against the block).
        """
        with self._read() as txn:
            head = self._head(txn)
            return dry_run(txn, self._dbs, head, self.genesis, self.ctx, block, now_ms,
                           check_signatures, decoded, registry=self._registry(txn, head.height))

    def apply_block(self, checked: CheckedBlock, cert: CommitCertificate) -> None:
        """Append a checked block (from :meth:`check_block` or :meth:`build_block`) with its
        certificate in one durable LMDB transaction, writing exactly the dry run's results.

        Refused (StoreError, nothing written) if the head is no longer the one the block was
        checked on, or if ``cert`` does not certify the block's header.
        """
        if not isinstance(checked, CheckedBlock):
            raise TypeError("apply_block takes a CheckedBlock: use apply_certified for a Block")
        if self.readonly:  # said before the certificate is looked at
            raise StoreError("the store is open read-only")
        header = checked.header
        check_certificate(header, cert, self.genesis.chain_id, self.genesis.validator_keys)

        def apply(txn: lmdb.Transaction) -> None:
            head = self._head(txn)
            require_head(checked, head)
            commit_checked(txn, self._dbs, checked)
            write_block_rows(txn, self._dbs, checked.block, cert, checked.stxs, head.tree_size)
            self._keep_registry(header.height, checked.registry_after)

        self._write(apply)
        self._last_retired = checked.retired_keys

    def apply_certified(
        self, block: Block, cert: CommitCertificate, check_signatures: bool = True
    ) -> None:
        """Check and append a certified block (e.g. fetched from a peer) in one durable LMDB
        transaction: the certificate, then the block on the current head, replayed straight
        into the write transaction. Any mismatch raises StoreError/RuleError and writes
        nothing. ``check_signatures=False`` skips the tx signatures only."""
        if self.readonly:  # said before the certificate is looked at
            raise StoreError("the store is open read-only")
        check_certificate(block.header, cert, self.genesis.chain_id, self.genesis.validator_keys)

        def apply(txn: lmdb.Transaction) -> frozenset[bytes]:
            head = self._head(txn)
            before = self._registry(txn, head.height)
            stxs, after = replay_into(txn, self._dbs, head, self.genesis, self.ctx, block,
                                      check_signatures, registry=before)
            write_block_rows(txn, self._dbs, block, cert, stxs, head.tree_size)
            self._keep_registry(block.height, after)
            return after.retired_since(before)

        self._last_retired = self._write(apply)

    def build_block(
        self,
        candidates: Sequence[SignedTx],
        proposer: int,
        time_ms: int,
        max_txs: int | None = None,
        max_bytes: int | None = None,
        check_signatures: bool = True,
    ) -> tuple[CheckedBlock, list[tuple[bytes, RuleError]]]:
        """Propose the next block from ``candidates`` (in order), skipping invalid ones.

        Returns the block, checked (valid on this head by construction), and ``(tx_id, error)``
        for each rejected candidate; candidates that merely do not fit (count/bytes) are
        neither included nor rejected. ``time_ms`` is raised to the previous block's time + 1
        if needed. Limits default to the genesis params.
        """
        p = self.genesis.params
        limits = BlockLimits(
            p.max_block_txs if max_txs is None else min(max_txs, p.max_block_txs),
            p.max_block_bytes if max_bytes is None else min(max_bytes, p.max_block_bytes),
            p.max_tx_bytes,
        )
        with self._read() as txn:
            head = self._head(txn)
            return build(txn, self._dbs, head, self.genesis, self.ctx, candidates, proposer,
                         time_ms, limits, check_signatures,
                         registry=self._registry(txn, head.height))

    def check_txs(
        self, stxs: Sequence[SignedTx], check_signatures: bool = True,
        time_ms: int | None = None,
    ) -> list[RuleError | None]:
        """Mempool admission of a batch: one read transaction, applied in order on one overlay
        (a claim and a decision on it may come in one batch). ``None`` where a tx applies."""
        out: list[RuleError | None] = []
        max_tx = self.genesis.params.max_tx_bytes
        with self._read() as txn:
            head = self._head(txn)
            t = max(head.time_ms + 1, int(time.time() * 1000) if time_ms is None else time_ms)
            overlay = CheckOnlyOverlay(LmdbState(txn, self._dbs,
                                                 registry=self._registry(txn, head.height)))
            for stx in stxs:
                try:
                    if len(stx.encode()) > max_tx:
                        raise RuleError("tx_too_large", "exceeds max_tx_bytes")
                    apply_tx(overlay, self.ctx, stx, head.height + 1, t,
                             check_signature=check_signatures)
                    out.append(None)
                except RuleError as exc:
                    out.append(exc)
                except EncodingError as exc:
                    out.append(RuleError("bad_encoding", str(exc)))
        return out


SCRUB_TABLES = DB_NAMES

__all__ = ["SCRUB_TABLES", "CheckedBlock", "Head", "HeightRaw", "LmdbNodeStore", "LmdbState",
           "Store", "TxLocation", "place_key", "put_in_key_order"]
