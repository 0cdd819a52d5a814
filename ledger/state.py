"""The state views the rules read and write: the protocol, a dict-backed view, the overlay that
buffers a block's writes (and the digest of those writes), used by :mod:`ledger.rules`, the store
and the audit. The state digest formula is documented in :mod:`ledger.rules`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tpledger.ledger.encoding import array_header, pack, tagged_hash
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.registry import Registry, RegistryTree, memory_tree
from tpledger.ledger.tx import Claim, ClaimState, EvidenceRecord, reference_key

STATE_DOMAIN = "tpledger/state"
_HASH_BIN = b"\xc4\x20"  # msgpack bin8 header of a 32-byte string


class StateView(Protocol):
    """What rules read and write; the store implements it over LMDB."""

    def get_claim(self, claim_id: bytes) -> ClaimState | None: ...
    def put_claim(self, claim_id: bytes, state: ClaimState) -> None: ...
    def has_tx(self, tx_id: bytes) -> bool: ...
    def mark_tx(self, tx_id: bytes) -> None: ...
    def get_evidence(self, slot: bytes) -> EvidenceRecord | None: ...
    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None: ...
    def get_reference(self, ref_key: bytes) -> bytes | None: ...
    def put_reference(self, ref_key: bytes, claim_id: bytes) -> None: ...
    def registry(self) -> Registry:
        """The registry in force for the block being applied (fixed for the whole block:
        governance writes of the block show in ``get_gov``, not here)."""
        ...
    def get_gov(self, key: bytes) -> bytes | None: ...
    def put_gov(self, key: bytes, value: bytes) -> None: ...


class MemoryState:
    """A dict-backed StateView. Its ``gov`` rows start as the rows of ``registry`` (the
    registry in force); ``set_registry`` installs the next one between blocks."""

    def __init__(self, registry: Registry | None = None,
                 tree: RegistryTree | None = None) -> None:
        self.claims: dict[bytes, ClaimState] = {}
        self.tx_ids: set[bytes] = set()
        self.evidence: dict[bytes, EvidenceRecord] = {}
        self.references: dict[bytes, bytes] = {}
        self._registry = registry
        self.tree = tree  # the tree holding ``registry``'s leaves (needed by ``end_block``)
        self.gov: dict[bytes, bytes] = {} if registry is None else dict(registry.rows())

    @classmethod
    def of_genesis(cls, genesis: Genesis) -> MemoryState:
        """A state at the genesis, with the genesis registry and its tree in memory."""
        tree = memory_tree()
        return cls(Registry.of_genesis(genesis, tree), tree)

    def end_block(self, gov_writes: Sequence[tuple[bytes, bytes]]) -> Registry:
        """Install the registry after a block (whose governance writes, already committed to
        this state, are ``gov_writes``) as the one in force; returns it."""
        if self.tree is None:
            raise RuntimeError("this MemoryState has no registry tree")
        self._registry = self.registry().updated(gov_writes, self.tree)
        return self._registry

    def registry(self) -> Registry:
        if self._registry is None:  # a bug of ours: every state that applies txs has one
            raise RuntimeError("this MemoryState was built without a registry")
        return self._registry

    def set_registry(self, registry: Registry) -> None:
        self._registry = registry

    def get_gov(self, key: bytes) -> bytes | None:
        return self.gov.get(key)

    def put_gov(self, key: bytes, value: bytes) -> None:
        self.gov[key] = value

    def get_claim(self, claim_id: bytes) -> ClaimState | None:
        return self.claims.get(claim_id)

    def put_claim(self, claim_id: bytes, state: ClaimState) -> None:
        self.claims[claim_id] = state

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self.tx_ids

    def mark_tx(self, tx_id: bytes) -> None:
        self.tx_ids.add(tx_id)

    def get_evidence(self, slot: bytes) -> EvidenceRecord | None:
        return self.evidence.get(slot)

    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None:
        self.evidence[slot] = record

    def get_reference(self, ref_key: bytes) -> bytes | None:
        return self.references.get(ref_key)

    def put_reference(self, ref_key: bytes, claim_id: bytes) -> None:
        self.references[ref_key] = claim_id


@dataclass(frozen=True)
class StateChanges:
    """The writes of an overlay, in order: claims (final value, first-write order), tx ids,
    evidence records, (optician, client reference) index entries, governance rows (final
    value, first-write order)."""

    claims: tuple[tuple[bytes, AnyClaimState], ...]
    tx_ids: tuple[bytes, ...]
    evidence: tuple[tuple[bytes, EvidenceRecord], ...] = ()
    references: tuple[tuple[bytes, bytes], ...] = ()
    gov: tuple[tuple[bytes, bytes], ...] = ()

    def encode(self) -> bytes:
        """Canonical bytes hashed into the state digest:
        ``pack([[[cid, st.to_wire()], ...], list(tx_ids)])``, assembled from each state's
        cached canonical bytes (``pack(st.to_wire()) == st.encode()``) instead of re-packing.
        With evidence, a third element; with reference entries, a fourth
        ``[[ref_key, claim_id], ...]`` (the third then present, maybe empty); with governance
        rows, a fifth ``[[key, value], ...]`` (the third and fourth then present)."""
        head = (b"\x95" if self.gov else b"\x94" if self.references else
                b"\x93" if self.evidence else b"\x92")
        parts = [head, array_header(len(self.claims))]
        for cid, st in self.claims:
            parts.append(b"\x92")
            parts.append(_HASH_BIN + cid if len(cid) == 32 else pack(cid))
            parts.append(st.encode())
        parts.append(pack(list(self.tx_ids)))
        if self.evidence or self.references or self.gov:
            parts.append(array_header(len(self.evidence)))
            for slot, rec in self.evidence:
                parts.extend((b"\x92", pack(slot), rec.encode()))
        if self.references or self.gov:
            parts.append(pack([list(entry) for entry in self.references]))
        if self.gov:
            parts.append(pack([list(entry) for entry in self.gov]))
        return b"".join(parts)

    def __len__(self) -> int:
        return (len(self.claims) + len(self.tx_ids) + len(self.evidence)
                + len(self.references) + len(self.gov))


class OverlayState:
    """A StateView buffering writes over a read-only base; ``commit_to`` flushes them."""

    def __init__(self, base: StateView) -> None:
        self.base = base
        self._claims: dict[bytes, AnyClaimState] = {}
        self._tx_ids: dict[bytes, None] = {}
        self._evidence: dict[bytes, EvidenceRecord] = {}
        self._references: dict[bytes, bytes] = {}
        self._gov: dict[bytes, bytes] = {}
        self._registry: Registry | None = None  # the base's, read once (a claim reads it twice)

    def registry(self) -> Registry:
        """The base's: the registry in force stays fixed for the whole block (an overlay lives
        within one block), so it is read from the base chain once."""
        reg = self._registry
        if reg is None:
            reg = self._registry = self.base.registry()
        return reg

    def get_gov(self, key: bytes) -> bytes | None:
        value = self._gov.get(key)
        return self.base.get_gov(key) if value is None else value

    def put_gov(self, key: bytes, value: bytes) -> None:
        self._gov[key] = value

    def gov_writes(self) -> tuple[tuple[bytes, bytes], ...]:
        """The buffered governance rows (first-write order, final values)."""
        return tuple(self._gov.items())

    def get_claim(self, claim_id: bytes) -> ClaimState | None:
        st = self._claims.get(claim_id)
        if st is None:
            return self.base.get_claim(claim_id)
        if isinstance(st, NewClaimState):  # read in the block that submits it: build it now
            real = st.materialize()
            self._claims[claim_id] = real
            return real
        return st

    def put_claim(self, claim_id: bytes, state: ClaimState) -> None:
        self._claims[claim_id] = state

    def put_new_claim(self, claim_id: bytes, claim: Claim, height: int) -> None:
        """A claim submitted at ``height``: its state is built only if something reads it."""
        self._claims[claim_id] = NewClaimState(claim, height)

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self._tx_ids or self.base.has_tx(tx_id)

    def mark_tx(self, tx_id: bytes) -> None:
        self._tx_ids[tx_id] = None

    def get_evidence(self, slot: bytes) -> EvidenceRecord | None:
        rec = self._evidence.get(slot)
        return self.base.get_evidence(slot) if rec is None else rec

    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None:
        self._evidence[slot] = record

    def get_reference(self, ref_key: bytes) -> bytes | None:
        claim_id = self._references.get(ref_key)
        return self.base.get_reference(ref_key) if claim_id is None else claim_id

    def put_reference(self, ref_key: bytes, claim_id: bytes) -> None:
        self._references[ref_key] = claim_id

    def changes(self) -> StateChanges:
        return StateChanges(tuple(self._claims.items()), tuple(self._tx_ids),
                            tuple(self._evidence.items()), tuple(self._references.items()),
                            tuple(self._gov.items()))

    def commit_to(self, base: StateView | None = None) -> None:
        """Write the buffered changes to ``base`` (default: this overlay's base), in order."""
        target = self.base if base is None else base
        if isinstance(target, OverlayState):  # overlay into overlay: new claims stay unbuilt
            target._claims.update(self._claims)
            target._tx_ids.update(self._tx_ids)
            target._evidence.update(self._evidence)
            target._references.update(self._references)
            target._gov.update(self._gov)
            return
        for slot, rec in self._evidence.items():  # rare: a few rows per misbehaviour
            target.put_evidence(slot, rec)
        for key, value in self._gov.items():  # rare: governance blocks only
            target.put_gov(key, value)
        put_references = getattr(target, "put_references", None)
        if put_references is not None:  # the LMDB state: one batched write
            put_references(self._references.items())
        else:
            for ref_key, claim_id in self._references.items():
                target.put_reference(ref_key, claim_id)
        write_many = getattr(target, "write_many", None)
        if write_many is not None:  # e.g. the LMDB state: batched writes, same rows
            write_many(self._claims.items(), self._tx_ids)
            return
        for cid, st in self._claims.items():
            target.put_claim(cid, _real(st))
        for tid in self._tx_ids:
            target.mark_tx(tid)

    def clear(self) -> None:
        self._claims.clear()
        self._tx_ids.clear()
        self._evidence.clear()
        self._references.clear()
        self._gov.clear()


class CheckOnlyOverlay(OverlayState):
    """An overlay for checking txs that will not be committed from it (mempool admission).
    ``changes``/``commit_to`` are refused (like every overlay, it builds a new claim's state
    only if a later tx of the same check reads it)."""

    def changes(self) -> StateChanges:
        raise RuntimeError("a check-only overlay has no changes to hash or commit")

    def commit_to(self, base: StateView | None = None) -> None:
        raise RuntimeError("a check-only overlay is never committed")


class NewClaimState:
    """The state of a claim submitted in the block being checked, kept as its claim, height
    and canonical bytes until something reads it (most never are: the block's digest and the
    store's row need only the bytes). Building the state objects of every new claim of a
    block was a tenth of a validator's CPU per claim (measured); ``materialize`` builds them
    for a later tx of the same block that reads the claim, or for a dict-backed state."""

    __slots__ = ("_bytes", "claim", "height")

    def __init__(self, claim: Claim, height: int) -> None:
        self.claim, self.height = claim, height
        self._bytes: bytes | None = None

    def encode(self) -> bytes:
        if self._bytes is None:
            data = ClaimState.initial_bytes(self.claim, self.height)
            self._bytes = data if data is not None else self.materialize().encode()
        return self._bytes

    def materialize(self) -> ClaimState:
        return ClaimState.from_claim(self.claim, self.height)


AnyClaimState = ClaimState | NewClaimState


def _real(state: AnyClaimState) -> ClaimState:
    return state.materialize() if isinstance(state, NewClaimState) else state


def state_digest(prev_state_digest: bytes, changes: StateChanges) -> bytes:
    """tagged_hash("tpledger/state", prev || changes.encode())."""
    if len(prev_state_digest) != 32:
        raise ValueError("a state digest is 32 bytes")
    return tagged_hash(STATE_DOMAIN, prev_state_digest + changes.encode())



__all__ = ["STATE_DOMAIN", "AnyClaimState", "CheckOnlyOverlay", "MemoryState", "NewClaimState",
           "OverlayState", "StateChanges", "StateView", "reference_key", "state_digest"]
