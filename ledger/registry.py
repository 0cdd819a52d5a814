"""The participant registry: who may sign, with which key, under which governance policy.

The registry is ledger state (the ``gov`` rows below) and a positional RFC 9162 Merkle tree
(:class:`RegistryTree`): each governing organisation and each participant owns a **slot**, a
leaf index given at registration and never reused; its current record (an :class:`OrgRecord`
or a :class:`ParticipantRecord`, the leaf entry) is updated in place. Each header commits to
the root and size of the registry in force during its block, so an offline proof carries the
signer's leaf and its path.

:class:`Registry` is an immutable snapshot: the registry **in force for one block** is the one
after the previous block. Governance txs of block h write ``gov`` rows to the block's overlay;
their effect on signers starts at h+1 (:meth:`Registry.updated`). Every signer lookup of the
rules goes through the snapshot (``StateView.registry()``).

State keys of the ``gov`` rows (ASCII prefix + binary):

| key                                         | value                                   |
|---------------------------------------------|-----------------------------------------|
| ``b"s" + u32(slot)``                        | the leaf: ParticipantRecord / OrgRecord |
| ``b"p" + org``                              | ``u32(slot)``: participant by id         |
| ``b"o" + name``                             | ``u32(slot)``: governing org by name     |
| ``b"e" + ed25519``                          | ``u32(slot)``: every key ever registered |
| ``b"y"``                                    | the Policy                              |
| ``b"n"``                                    | ``u32(registry size)``                  |
| ``b"t" + u32(version)``                     | TariffVersion (versions >= 2)           |
| ``b"q" + proposal_id``                      | ProposalState                           |
| ``b"k" + org + b"\\0" + u64(h) + tx_id[:8]`` | KeyEvent (key history)                  |

No key is ever registered twice (``key_in_use``), rotated-out and revoked keys included, so a
key names at most one slot forever.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from tpledger.ledger.encoding import (
    HASH32,
    ID_CHARS,
    PUBKEY,
    U32,
    U64,
    Int,
    ListOf,
    LppCode,
    Nested,
    Optional,
    OrgId,
    ReasonCode,
    Record,
    Str,
    decode_any,
    spec,
)
from tpledger.ledger.errors import EncodingError, LedgerError, StoreError
from tpledger.ledger.genesis import (
    ACTIVE,
    DAY_MS,
    MAX_GOV_ORGS,
    MAX_ORG_ROLES,
    REVOKED,
    SUSPENDED,
    Genesis,
    Identifiers,
    Policy,
)
from tpledger.ledger.lpp import LppEntry, LppTable
from tpledger.ledger.merkle import leaf_hash
from tpledger.ledger.merkle_tree import MemoryNodeStore, NodeStore, PersistentTree

MAX_REGISTRY_SLOTS = 500_000  # orgs + participants ever registered (slots are never reused)
MAX_TARIFF_ROWS = 128
MAX_ACTIONS = 8

# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantRecord(Record):
    """A participant's current record: a registry leaf."""

    TAG: ClassVar[int] = 0xA1
    org: str = spec(OrgId)
    gov_org: str = spec(Str(64, 0, ID_CHARS))
    role: str = spec(Str(16, 1))
    ed25519: bytes = spec(PUBKEY)
    x25519: bytes = spec(PUBKEY)
    status: int = spec(Int(ACTIVE, REVOKED))
    ids: Identifiers = spec(Nested(Identifiers))
    since_height: int = spec(U64)  # the block that last changed the record (0 = genesis)
    slot: int = spec(U32)


@dataclass(frozen=True)
class OrgRecord(Record):
    """A governing organisation's current record: a registry leaf."""

    TAG: ClassVar[int] = 0xA2
    name: str = spec(OrgId)
    admin_ed25519: bytes = spec(PUBKEY)
    roles: tuple[str, ...] = spec(ListOf(Str(16, 1), MAX_ORG_ROLES, 1))
    status: int = spec(Int(ACTIVE, REVOKED))  # REVOKED: removed from governance
    since_height: int = spec(U64)
    slot: int = spec(U32)


Leaf = ParticipantRecord | OrgRecord


def leaf_key(rec: Leaf) -> bytes:
    """The signing key a leaf names (a participant's key, an org's admin key)."""
    return rec.ed25519 if isinstance(rec, ParticipantRecord) else rec.admin_ed25519


def leaf_index_key(rec: Leaf) -> bytes:
    """The ``gov`` row that indexes a leaf's slot by its id (a participant's org, an org's
    name)."""
    return (gov_key_participant(rec.org) if isinstance(rec, ParticipantRecord)
            else gov_key_org(rec.name))


@dataclass(frozen=True)
class LppRow(Record):
    """One LPP table row on the wire (an :class:`LppEntry`; ``klass`` "" = none)."""

    TAG: ClassVar[int] = 0xA3
    code: str = spec(LppCode)
    label: str = spec(Str(200, 1))
    category: str = spec(Str(8, 1))
    age_group: str = spec(Str(8, 1))
    klass: str = spec(Str(1, 0))
    max_price_cents: int | None = spec(Optional(Int(0, 10**8)))
    amo_base_cents: int | None = spec(Optional(Int(0, 10**8)))

    def entry(self) -> LppEntry:
        """The table entry (raises ``LppTableError`` when the row is not a valid one)."""
        return LppEntry(self.code, self.label, self.category, self.age_group,
                        self.klass or None, self.max_price_cents, self.amo_base_cents)

    @classmethod
    def of(cls, e: LppEntry) -> LppRow:
        return cls(e.code, e.label, e.category, e.age_group, e.klass or "", e.max_price_cents,
                   e.amo_base_cents)


@dataclass(frozen=True)
class TariffRelease(Record):
    """A full LPP table version, in force from ``effective_day`` (UTC days since 1970)."""

    TAG: ClassVar[int] = 0xA4
    version: int = spec(Int(2, 2**32 - 1))
    effective_day: int = spec(U32)
    table_digest: bytes = spec(HASH32)  # == LppTable(rows).digest()
    rows: tuple[LppRow, ...] = spec(ListOf(Nested(LppRow), MAX_TARIFF_ROWS, 1))

    def table(self) -> LppTable:
        """The table (raises ``LppTableError`` for an invalid row or a duplicate code)."""
        return LppTable((r.entry() for r in self.rows), version=str(self.version))


@dataclass(frozen=True)
class TariffVersion(Record):
    """A published tariff version (state row)."""

    TAG: ClassVar[int] = 0xA5
    release: TariffRelease = spec(Nested(TariffRelease))
    published_height: int = spec(U64)
    tx_id: bytes = spec(HASH32)


ADD_ORG, REMOVE_ORG, SET_ADMIN_KEY, SET_POLICY, PUBLISH_TARIFF = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class GovAction(Record):
    """One action of a quorum proposal."""

    TAG: ClassVar[int] = 0xA6
    op: int = spec(Int(ADD_ORG, PUBLISH_TARIFF))
    org: str = spec(Str(64, 0, ID_CHARS))  # ADD_ORG, REMOVE_ORG, SET_ADMIN_KEY
    admin_ed25519: bytes | None = spec(Optional(PUBKEY))  # ADD_ORG, SET_ADMIN_KEY
    roles: tuple[str, ...] = spec(ListOf(Str(16, 1), MAX_ORG_ROLES))  # ADD_ORG
    policy: Policy | None = spec(Optional(Nested(Policy)))  # SET_POLICY
    tariff: TariffRelease | None = spec(Optional(Nested(TariffRelease)))  # PUBLISH_TARIFF


OPEN, EXECUTED, EXPIRED, FAILED = 1, 2, 3, 4


@dataclass(frozen=True)
class ProposalState(Record):
    """A proposal's state, keyed by the proposal tx's id."""

    TAG: ClassVar[int] = 0xA7
    proposer: str = spec(OrgId)
    actions: tuple[GovAction, ...] = spec(ListOf(Nested(GovAction), MAX_ACTIONS, 1))
    created_height: int = spec(U64)
    expires_at_ms: int = spec(U64)
    yes: tuple[str, ...] = spec(ListOf(OrgId, MAX_GOV_ORGS))  # sorted org names
    no: tuple[str, ...] = spec(ListOf(OrgId, MAX_GOV_ORGS))
    status: int = spec(Int(OPEN, FAILED))
    outcome: str = spec(ReasonCode)  # FAILED: the rule code of the failing action
    closed_height: int = spec(U64)


ADDED, ROTATED, SUSPENDED_EV, REINSTATED, REVOKED_EV, ADMIN_KEY_SET = 1, 2, 3, 4, 5, 6
GOV_OP_NAMES = {ADD_ORG: "add-org", REMOVE_ORG: "remove-org", SET_ADMIN_KEY: "set-admin",
                SET_POLICY: "set-policy", PUBLISH_TARIFF: "publish-tariff"}  # node and CLI
PROPOSAL_STATUS_NAMES = {OPEN: "open", EXECUTED: "executed", EXPIRED: "expired",
                         FAILED: "failed"}
KEY_EVENT_NAMES = {ADDED: "added", ROTATED: "rotated", SUSPENDED_EV: "suspended",
                   REINSTATED: "reinstated", REVOKED_EV: "revoked", ADMIN_KEY_SET: "admin_key_set"}


@dataclass(frozen=True)
class KeyEvent(Record):
    """One change of a participant's (or an org's admin) key or status, with its height."""

    TAG: ClassVar[int] = 0xA8
    org: str = spec(OrgId)
    op: int = spec(Int(ADDED, ADMIN_KEY_SET))
    height: int = spec(U64)
    ed25519: bytes = spec(PUBKEY)
    x25519: bytes = spec(PUBKEY)
    signer: bytes = spec(PUBKEY)
    tx_id: bytes = spec(HASH32)


GENESIS_SIGNER = b"\0" * 32  # the signer of a key event that comes from the genesis file
NO_X25519 = b"\0" * 32  # an organisation has no box key: its key events carry zeros


def genesis_key_event(genesis: Genesis, org: str) -> KeyEvent | None:
    """The first key event of a participant or governing org listed in the genesis: ADDED at
    height 0, signed by no one (zeros), its tx id the genesis hash. Not stored: readers put
    it before the stored events, so the history of a genesis member starts with its first
    keys."""
    p = genesis.participant(org)
    if p is not None:
        return KeyEvent(org, ADDED, 0, p.ed25519, p.x25519, GENESIS_SIGNER, genesis.hash())
    admin = next((o.admin_ed25519 for o in genesis.gov_orgs if o.name == org), None)
    if admin is not None:
        return KeyEvent(org, ADDED, 0, admin, NO_X25519, GENESIS_SIGNER, genesis.hash())
    return None


# -- state keys ------------------------------------------------------------------------------

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
GOV_POLICY_KEY = b"y"
GOV_SIZE_KEY = b"n"


def day_of(time_ms: int) -> int:
    """The UTC day (days since 1970-01-01) of a time in milliseconds."""
    return time_ms // DAY_MS


def u32_bytes(n: int) -> bytes:
    return _U32.pack(n)


def u32_of(raw: bytes, what: str) -> int:
    if len(raw) != 4:
        raise StoreError(f"corrupt registry row: {what} is not a u32")
    value: int = _U32.unpack(raw)[0]
    return value


def gov_key_slot(slot: int) -> bytes:
    return b"s" + _U32.pack(slot)


def gov_key_participant(org: str) -> bytes:
    return b"p" + org.encode()


def gov_key_org(name: str) -> bytes:
    """The key of a governing organisation's slot (``gov_key_participant`` for a participant)."""
    return b"o" + name.encode()


def gov_key_ed(key: bytes) -> bytes:
    return b"e" + key


def gov_key_tariff(version: int) -> bytes:
    return b"t" + _U32.pack(version)


def gov_key_proposal(pid: bytes) -> bytes:
    return b"q" + pid


def gov_key_event(org: str, height: int, tx_id: bytes) -> bytes:
    return b"k" + org.encode() + b"\0" + _U64.pack(height) + tx_id[:8]


def gov_key_events_prefix(org: str) -> bytes:
    """The prefix of ``org``'s key events (a cursor range gives them in height order)."""
    return b"k" + org.encode() + b"\0"


MAX_LEAF_BYTES = 4096  # a registry leaf's record, encoded


def decode_leaf(raw: bytes) -> Leaf:
    """A leaf's record (raises EncodingError)."""
    rec = decode_any(raw, (ParticipantRecord, OrgRecord), MAX_LEAF_BYTES)
    assert isinstance(rec, ParticipantRecord | OrgRecord)
    return rec


# -- the tree --------------------------------------------------------------------------------


class RegistryTree:
    """The positional RFC 9162 tree of the registry's leaves over a ``NodeStore`` (an LMDB
    table, an overlay for dry runs, a versioned store: anything with the protocol). A slot's
    leaf is set in place (O(log n) node writes) or appended at ``slot == size``."""

    def __init__(self, nodes: NodeStore) -> None:
        self.nodes = nodes
        self._tree = PersistentTree(nodes)

    @property
    def size(self) -> int:
        return self._tree.size

    def set(self, slot: int, leaf_entry: bytes) -> None:
        """Set slot ``slot``'s leaf entry (``slot == size``: append)."""
        self.set_many([(slot, leaf_entry)])

    def set_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Set many leaves: updates in place first, then appends (their slots must continue
        the tree: size, size + 1, ...)."""
        size = self._tree.size
        appends: list[tuple[int, bytes]] = []
        for slot, entry in items:
            if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
                raise StoreError("registry slot must be a non-negative int")
            if slot < size:
                self._tree.set_leaf_hash(slot, leaf_hash(entry))
            else:
                appends.append((slot, entry))
        appends.sort()
        if [s for s, _ in appends] != list(range(size, size + len(appends))):
            raise StoreError("registry slots must be appended in order, without gaps")
        self._tree.append_entries([e for _, e in appends])

    def root(self) -> bytes:
        return self._tree.root()

    def path(self, slot: int, size: int | None = None) -> list[bytes]:
        """The inclusion path of ``slot`` in the tree of ``size`` leaves (default: all)."""
        return self._tree.inclusion_path(slot, size)


def memory_tree() -> RegistryTree:
    return RegistryTree(MemoryNodeStore())


# -- the snapshot ----------------------------------------------------------------------------

_Tariff = tuple[int, int, LppTable]  # (effective_day, version, table)


class Registry:
    """The registry in force for one block: immutable, built once, shared by admission and
    the block check (the rules' stateless-check cache is keyed by it)."""

    def __init__(self, root: bytes, size: int, policy: Policy, leaves: list[Leaf],
                 key_slot: dict[bytes, int], tariffs: tuple[_Tariff, ...] = (),
                 changed_slots: frozenset[int] = frozenset(),
                 parent: Registry | None = None) -> None:
        """A snapshot of ``leaves`` (by slot). With ``parent``, the snapshot this one
        updates, only the ``changed_slots`` are re-indexed (its indexes are copied)."""
        self.root, self.size, self.policy = root, size, policy
        self.max_claim_age_ms = policy.max_claim_age_days * DAY_MS  # read once per claim
        self._leaves = leaves
        self._key_slot = key_slot
        self._tariffs = tariffs
        self._tariff_days = [t[0] for t in tariffs]  # increasing (the rules require it)
        self.changed_slots = changed_slots  # slots changed since the snapshot ``base``
        self._base: object = None if parent is None else parent._token  # not a reference
        self._token: object = object()  # identifies this snapshot
        if parent is None:
            self._by_key: dict[bytes, ParticipantRecord] = {}
            self._by_org: dict[str, ParticipantRecord] = {}
            self._orgs: dict[str, OrgRecord] = {}
            self._admins: dict[bytes, OrgRecord] = {}
            changed: Iterable[int] = range(len(leaves))
        else:
            # copy on write: only the indexes of the kinds of record that changed
            kinds = {type(leaves[slot]) for slot in changed_slots}
            kinds |= {type(parent._leaves[s]) for s in changed_slots if s < parent.size}
            p_changed = ParticipantRecord in kinds
            self._by_key = dict(parent._by_key) if p_changed else parent._by_key
            self._by_org = dict(parent._by_org) if p_changed else parent._by_org
            self._orgs = dict(parent._orgs) if OrgRecord in kinds else parent._orgs
            self._admins = dict(parent._admins) if OrgRecord in kinds else parent._admins
            for slot in changed_slots:
                if slot < parent.size:
                    self._unindex(parent._leaves[slot])
            changed = sorted(changed_slots)
        for slot in changed:
            self._index(leaves[slot])

    def _index(self, rec: Leaf) -> None:
        if isinstance(rec, ParticipantRecord):
            self._by_org[rec.org] = rec
            if rec.status == ACTIVE:
                self._by_key[rec.ed25519] = rec
        else:
            self._orgs[rec.name] = rec
            if rec.status == ACTIVE:
                self._admins[rec.admin_ed25519] = rec

    def _unindex(self, rec: Leaf) -> None:
        if isinstance(rec, ParticipantRecord):
            self._by_org.pop(rec.org, None)
            if self._by_key.get(rec.ed25519) is rec:
                del self._by_key[rec.ed25519]
        else:
            self._orgs.pop(rec.name, None)
            if self._admins.get(rec.admin_ed25519) is rec:
                del self._admins[rec.admin_ed25519]

    # -- lookups (the hot path: one dict get) ----------------------------------------------
    def signer(self, ed25519: bytes) -> ParticipantRecord | None:
        """The ACTIVE participant whose current key is ``ed25519``."""
        return self._by_key.get(ed25519)

    def admin(self, ed25519: bytes) -> OrgRecord | None:
        """The ACTIVE governing organisation whose current admin key is ``ed25519``."""
        return self._admins.get(ed25519)

    def refusal(self, ed25519: bytes) -> str:
        """The rule code for a key that may not sign: ``revoked_signer`` (revoked, or rotated
        out), ``suspended_signer``, ``wrong_role`` (an active key of the other kind: an admin
        key for a participant's tx or the reverse), else ``unknown_signer``."""
        slot = self._key_slot.get(ed25519)
        if slot is None:
            return "unknown_signer"
        rec = self._leaves[slot]
        if leaf_key(rec) != ed25519 or rec.status == REVOKED:
            return "revoked_signer"
        if rec.status == SUSPENDED:
            return "suspended_signer"
        return "wrong_role"

    def participant(self, org: str) -> ParticipantRecord | None:
        """The participant ``org``, whatever its status."""
        return self._by_org.get(org)

    def org(self, name: str) -> OrgRecord | None:
        """The governing organisation ``name``, whatever its status."""
        return self._orgs.get(name)

    def orgs(self) -> tuple[OrgRecord, ...]:
        """The ACTIVE governing organisations, by name."""
        return tuple(sorted(self._admins.values(), key=lambda o: o.name))

    def leaf(self, slot: int) -> Leaf:
        return self._leaves[slot]

    def leaves(self) -> Sequence[Leaf]:
        return tuple(self._leaves)

    def slot_of_key(self, ed25519: bytes) -> int | None:
        """The slot that ever registered ``ed25519`` (any status, rotated-out keys too)."""
        return self._key_slot.get(ed25519)

    def tariff_at(self, day: int, v1: LppTable) -> tuple[int, LppTable] | None:
        """(version, table) in force on UTC day ``day``: the latest version whose effective
        day is <= ``day``; version 1 is the genesis table ``v1``. None before version 1.
        A bisection: effective days increase with the version (``bad_tariff_version``)."""
        i = bisect.bisect_right(self._tariff_days, day)
        if i:
            _, version, table = self._tariffs[i - 1]
            return version, table
        if day >= self.policy.lpp_v1_effective_day:
            return 1, v1
        return None

    def tariffs(self) -> tuple[tuple[int, int, LppTable], ...]:
        """(version, effective_day, table) of versions >= 2, in order."""
        return tuple((version, day, table) for day, version, table in self._tariffs)

    def tariff_versions(self) -> tuple[tuple[int, int], ...]:
        """(version, effective_day) of versions >= 2, in order."""
        return tuple((version, day) for version, day, _ in self.tariffs())

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def of_genesis(cls, genesis: Genesis, tree: RegistryTree | None = None) -> Registry:
        """The genesis registry: slots go to the orgs first, then to the participants, in
        genesis order. Its leaves are written into ``tree`` (empty; default: in memory)."""
        tree = memory_tree() if tree is None else tree
        if tree.size != 0:
            raise StoreError("the genesis registry goes into an empty tree")
        leaves: list[Leaf] = [OrgRecord(o.name, o.admin_ed25519, o.roles, ACTIVE, 0, i)
                              for i, o in enumerate(genesis.gov_orgs)]
        base = len(leaves)
        leaves += [ParticipantRecord(p.org, p.gov_org, p.role, p.ed25519, p.x25519, ACTIVE,
                                     p.ids, 0, base + i)
                   for i, p in enumerate(genesis.participants)]
        tree.set_many((rec.slot, rec.encode()) for rec in leaves)
        key_slot = {leaf_key(rec): rec.slot for rec in leaves}
        return cls(tree.root(), tree.size, genesis.policy, leaves, key_slot)

    def rows(self) -> list[tuple[bytes, bytes]]:
        """The ``gov`` rows of this registry (leaves, indexes, keys, policy, size, tariff
        versions are not included: they are rows of their own), for a new store or state."""
        out: list[tuple[bytes, bytes]] = [(GOV_POLICY_KEY, self.policy.encode()),
                                          (GOV_SIZE_KEY, u32_bytes(self.size))]
        for rec in self._leaves:
            out.append((gov_key_slot(rec.slot), rec.encode()))
            out.append((leaf_index_key(rec), u32_bytes(rec.slot)))
        out += [(gov_key_ed(key), u32_bytes(slot)) for key, slot in self._key_slot.items()]
        return out

    def updated(self, writes: Sequence[tuple[bytes, bytes]], tree: RegistryTree) -> Registry:
        """The registry after a block whose ``gov`` writes are ``writes`` (final values; the
        records carry their own since_height); the changed leaves are set in ``tree`` (which
        holds this registry's leaves). The same object when the block changed nothing the
        registry holds."""
        rows = _Rows(writes)
        changed, keys = rows.leaves, rows.key_slot
        policy = self.policy if rows.policy is None else rows.policy
        if not changed and not keys and rows.policy is None and not rows.tariffs:
            return self
        tariffs = [*self._tariffs, *rows.tariffs]
        if tree.size != self.size:
            raise StoreError(f"registry tree has {tree.size} leaves, the registry {self.size}")
        leaves = list(self._leaves)
        in_order = sorted(changed.items())
        for slot, rec in in_order:
            if rec.slot != slot or slot > len(leaves):
                raise StoreError(f"registry leaf at slot {slot} names slot {rec.slot}")
            if slot == len(leaves):
                leaves.append(rec)
            else:
                leaves[slot] = rec
        tree.set_many((slot, rec.encode()) for slot, rec in in_order)
        if rows.size is not None and rows.size != tree.size:
            raise StoreError(f"registry size row {rows.size}, tree size {tree.size}")
        tariffs.sort(key=lambda t: t[1])
        key_slot = {**self._key_slot, **keys} if keys else self._key_slot  # never mutated
        return Registry(tree.root(), tree.size, policy, leaves, key_slot, tuple(tariffs),
                        frozenset(changed), self)

    @classmethod
    def load(cls, rows: Iterable[tuple[bytes, bytes]], tree: RegistryTree) -> Registry:
        """The registry from the ``gov`` rows of a store (any order) and its tree; raises
        StoreError if they disagree."""
        parsed = _Rows(rows)
        leaves, key_slot, policy, tariffs = (parsed.leaves, parsed.key_slot, parsed.policy,
                                             parsed.tariffs)
        size = -1 if parsed.size is None else parsed.size
        ordered = [leaves[s] for s in range(len(leaves)) if s in leaves]
        if policy is None or size != len(ordered) or size != len(leaves) or any(
                rec.slot != i for i, rec in enumerate(ordered)):
            raise StoreError("corrupt registry: policy, size or slots inconsistent")
        if tree.size != size or any(s >= size for s in key_slot.values()):
            raise StoreError("corrupt registry: the tree or the key index disagrees")
        tariffs.sort(key=lambda t: t[1])
        return cls(tree.root(), size, policy, ordered, key_slot, tuple(tariffs))

    def retired_since(self, older: Registry) -> frozenset[bytes]:
        """The signing keys usable under ``older`` (an ACTIVE leaf's key) that are not any
        more: revoked, suspended, rotated out, or a removed org's admin key. A diff over the
        changed slots when ``older`` is the snapshot this one was updated from."""
        if older is self:
            return frozenset()
        if self._base is older._token:
            slots: Iterable[int] = (s for s in self.changed_slots if s < older.size)
        else:
            slots = range(min(older.size, self.size))
        out = set()
        for slot in slots:
            old, new = older._leaves[slot], self._leaves[slot]
            if old is new or old.status != ACTIVE:
                continue
            key = leaf_key(old)
            if new.status != ACTIVE or leaf_key(new) != key:
                out.add(key)
        return frozenset(out)

    def __repr__(self) -> str:
        return f"Registry(size={self.size}, root={self.root.hex()[:16]})"


# the gov rows a registry snapshot is loaded from (leaves, key index, size, tariffs, policy;
# not proposals nor key events): the kinds ``_Rows`` reads
REGISTRY_ROW_PREFIXES = (b"e", b"n", b"s", b"t", b"y")


class _Rows:
    """The ``gov`` rows the registry holds (leaves, key index, policy, size, tariff
    versions), decoded; the others (indexes by id, proposals, key events) are skipped."""

    def __init__(self, rows: Iterable[tuple[bytes, bytes]]) -> None:
        self.leaves: dict[int, Leaf] = {}
        self.key_slot: dict[bytes, int] = {}
        self.tariffs: list[_Tariff] = []
        self.policy: Policy | None = None
        self.size: int | None = None
        for key, value in rows:
            kind = key[:1]
            if kind == b"s":
                self.leaves[u32_of(key[1:], "slot key")] = leaf_of_row(value)
            elif kind == b"e":
                self.key_slot[key[1:]] = u32_of(value, "key slot")
            elif kind == b"y":
                self.policy = _record_row(Policy, value)
            elif kind == b"n":
                self.size = u32_of(value, "registry size")
            elif kind == b"t":
                self.tariffs.append(_tariff_row(value))


def leaf_of_row(raw: bytes) -> Leaf:
    """A stored leaf row's record; a damaged one is a StoreError."""
    try:
        return decode_leaf(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt registry leaf: {exc}") from None


def _record_row(cls: type[Policy], raw: bytes) -> Policy:
    try:
        return cls.decode(raw)
    except EncodingError as exc:
        raise StoreError(f"corrupt registry row {cls.__name__}: {exc}") from None


def _tariff_row(raw: bytes) -> _Tariff:
    try:
        rel = TariffVersion.decode(raw).release
        return rel.effective_day, rel.version, rel.table()
    except LedgerError as exc:  # EncodingError, LppTableError
        raise StoreError(f"corrupt tariff version: {exc}") from None


__all__ = [
    "ACTIVE", "ADDED", "ADD_ORG", "ADMIN_KEY_SET", "EXECUTED", "EXPIRED", "FAILED",
    "GOV_POLICY_KEY", "GOV_SIZE_KEY", "KEY_EVENT_NAMES", "MAX_REGISTRY_SLOTS",
    "MAX_TARIFF_ROWS", "OPEN", "PUBLISH_TARIFF", "REINSTATED", "REMOVE_ORG", "REVOKED",
    "REVOKED_EV", "ROTATED", "SET_ADMIN_KEY", "SET_POLICY", "SUSPENDED", "SUSPENDED_EV",
    "GovAction", "KeyEvent", "Leaf", "LppRow", "OrgRecord", "ParticipantRecord",
    "ProposalState", "Registry", "RegistryTree", "TariffRelease", "TariffVersion", "day_of",
    "decode_leaf", "gov_key_ed", "gov_key_event", "gov_key_events_prefix", "gov_key_org",
    "gov_key_participant", "gov_key_proposal", "gov_key_slot", "gov_key_tariff", "leaf_key",
    "memory_tree", "u32_bytes", "u32_of",
]
