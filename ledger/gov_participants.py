"""Participant governance txs: an organisation's admin adds, suspends, reinstates, revokes and
rotates the keys of the participants it governs; a participant may rotate its own keys.

Checks read the **pending** state (the registry rows as this block has written them so far,
through ``view.get_gov``), so two txs of one block see each other's effect on the registry
rows; who may sign is decided by the **registry in force** (``view.registry()``, fixed for the
block), so a revocation in block h stops the key from block h+1. Every check runs before any
write. The ``gov`` row layout is in ``ledger/registry.py``.

| op        | who                             | from status          | to        |
|-----------|---------------------------------|----------------------|-----------|
| add       | the admin of ``gov_org``        | (new id, new key)    | ACTIVE    |
| rotate    | the admin, or the participant   | admin: any; self:    | ACTIVE    |
|           | itself (its current key)        | ACTIVE               |           |
| suspend   | the admin                       | ACTIVE               | SUSPENDED |
| reinstate | the admin                       | SUSPENDED            | ACTIVE    |
| revoke    | the admin                       | ACTIVE or SUSPENDED  | REVOKED   |
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tpledger.ledger.errors import RuleError, StoreError
from tpledger.ledger.genesis import ACTIVE, REVOKED, STATUS_NAMES, SUSPENDED, check_identifiers
from tpledger.ledger.registry import (
    ADDED,
    GOV_SIZE_KEY,
    MAX_REGISTRY_SLOTS,
    REINSTATED,
    REVOKED_EV,
    ROTATED,
    SUSPENDED_EV,
    KeyEvent,
    Leaf,
    OrgRecord,
    ParticipantRecord,
    gov_key_ed,
    gov_key_event,
    gov_key_org,
    gov_key_participant,
    gov_key_slot,
    leaf_index_key,
    leaf_of_row,
    u32_bytes,
    u32_of,
)
from tpledger.ledger.state import StateView
from tpledger.ledger.tx import (
    CHANGE_NAMES,
    REINSTATE,
    REVOKE,
    ROTATE,
    SUSPEND,
    ParticipantAdd,
    ParticipantChange,
    SignedTx,
)

# op -> (statuses it may start from, status it ends in, key event)
_TRANSITIONS = {
    SUSPEND: ((ACTIVE,), SUSPENDED, SUSPENDED_EV),
    REINSTATE: ((SUSPENDED,), ACTIVE, REINSTATED),
    REVOKE: ((ACTIVE, SUSPENDED), REVOKED, REVOKED_EV),
    ROTATE: ((ACTIVE, SUSPENDED, REVOKED), ACTIVE, ROTATED),
}


def _fail(code: str, message: str) -> RuleError:
    return RuleError(code, message)


# -- pending-state helpers (shared with ledger/gov_proposals.py) -----------------------------


def _leaf_at(view: StateView, index_key: bytes) -> Leaf | None:
    raw = view.get_gov(index_key)
    if raw is None:
        return None
    leaf = view.get_gov(gov_key_slot(u32_of(raw, "slot index")))
    if leaf is None:
        raise StoreError(f"corrupt registry: index {index_key[:1]!r} names an empty slot")
    return leaf_of_row(leaf)


def pending_participant(view: StateView, org: str) -> ParticipantRecord | None:
    """The participant ``org`` as this block has left it so far (any status)."""
    rec = _leaf_at(view, gov_key_participant(org))
    if rec is not None and not isinstance(rec, ParticipantRecord):
        raise StoreError(f"corrupt registry: participant {org} indexes an org record")
    return rec


def pending_org(view: StateView, name: str) -> OrgRecord | None:
    """The governing organisation ``name`` as this block has left it so far (any status)."""
    rec = _leaf_at(view, gov_key_org(name))
    if rec is not None and not isinstance(rec, OrgRecord):
        raise StoreError(f"corrupt registry: org {name} indexes a participant record")
    return rec


def pending_size(view: StateView) -> int:
    """The registry's size (slots used) as this block has left it so far."""
    raw = view.get_gov(GOV_SIZE_KEY)
    if raw is None:
        raise StoreError("corrupt registry: no size row")
    return u32_of(raw, "registry size")


def write_leaf(view: StateView, rec: Leaf) -> None:
    """Write a leaf at its slot; a new slot (``== size``) is also indexed by id and grows the
    size. Its key is not indexed here: see :func:`register_key`."""
    size = pending_size(view)
    if rec.slot == size:
        view.put_gov(leaf_index_key(rec), u32_bytes(rec.slot))
        view.put_gov(GOV_SIZE_KEY, u32_bytes(size + 1))
    elif rec.slot > size:
        raise RuntimeError(f"registry slot {rec.slot} past the size {size}")
    view.put_gov(gov_key_slot(rec.slot), rec.encode())


def key_fresh(view: StateView, ctx: Any, key: bytes) -> bool:
    """No slot ever registered ``key`` (any status, rotated-out keys included), and it is no
    validator's: a key names one slot forever (a participant's key, an org's admin key)."""
    return view.get_gov(gov_key_ed(key)) is None and key not in ctx.validator_index


def register_key(view: StateView, key: bytes, slot: int) -> None:
    view.put_gov(gov_key_ed(key), u32_bytes(slot))


def add_key_event(view: StateView, ev: KeyEvent) -> None:
    view.put_gov(gov_key_event(ev.org, ev.height, ev.tx_id), ev.encode())


def check_new_key(view: StateView, ctx: Any, key: bytes) -> None:
    """``key_in_use`` unless ``key`` is fresh: never registered, and no validator's."""
    if not key_fresh(view, ctx, key):
        raise _fail("key_in_use", f"key {key.hex()[:16]} is already registered")


# -- handlers --------------------------------------------------------------------------------


def apply_participant_add(view: StateView, ctx: Any, stx: SignedTx, body: ParticipantAdd,
                          tx_id: bytes, signer: ParticipantRecord | OrgRecord, height: int,
                          time_ms: int) -> None:
    """Register a participant: signed by the admin of ``body.gov_org``."""
    if not isinstance(signer, OrgRecord) or signer.name != body.gov_org:
        raise _fail("not_authorised", f"only the admin of {body.gov_org} adds its participants")
    if body.role not in signer.roles:
        raise _fail("wrong_role", f"{signer.name} does not govern {body.role}s")
    if pending_participant(view, body.org) is not None:
        raise _fail("participant_exists", f"participant {body.org} is already registered")
    check_new_key(view, ctx, body.ed25519)
    why = check_identifiers(body.role, body.ids)
    if why is not None:
        raise _fail("bad_identifier", why)
    slot = pending_size(view)
    if slot >= MAX_REGISTRY_SLOTS:
        raise _fail("registry_full", f"the registry has {MAX_REGISTRY_SLOTS} slots, all used")
    rec = ParticipantRecord(body.org, body.gov_org, body.role, body.ed25519, body.x25519,
                            ACTIVE, body.ids, height, slot)
    write_leaf(view, rec)
    register_key(view, body.ed25519, slot)
    add_key_event(view, KeyEvent(body.org, ADDED, height, body.ed25519, body.x25519,
                                 stx.signer, tx_id))
    view.mark_tx(tx_id)


def _authorise_change(rec: ParticipantRecord, body: ParticipantChange,
                      signer: ParticipantRecord | OrgRecord, key: bytes) -> None:
    """Pass if the signer is the participant's admin or the participant itself rotating its
    own current, active key; ``not_authorised`` otherwise."""
    if isinstance(signer, OrgRecord):
        if rec.gov_org and signer.name == rec.gov_org:
            return
        raise _fail("not_authorised", f"only the admin of {rec.gov_org or 'its org'} changes "
                                      f"{rec.org}")
    if body.op != ROTATE or signer.org != rec.org:
        raise _fail("not_authorised", "a participant may only rotate its own keys")
    if not _current_active_key(rec, key):  # e.g. revoked or rotated earlier in this block
        raise _fail("not_authorised", "only the participant's current active key rotates it")


def _current_active_key(rec: ParticipantRecord, key: bytes) -> bool:
    """``key`` is the pending record's key and the record is ACTIVE: a key still in force
    for this block but revoked or rotated away by an earlier tx of it may not rotate."""
    return rec.status == ACTIVE and rec.ed25519 == key


def apply_participant_change(view: StateView, ctx: Any, stx: SignedTx,
                             body: ParticipantChange, tx_id: bytes,
                             signer: ParticipantRecord | OrgRecord, height: int,
                             time_ms: int) -> None:
    """Rotate, suspend, reinstate or revoke a participant (see the table above)."""
    rec = pending_participant(view, body.org)
    if rec is None:
        raise _fail("unknown_participant", f"no participant {body.org}")
    _authorise_change(rec, body, signer, stx.signer)
    rotate = body.op == ROTATE
    if rotate != (body.ed25519 is not None) or rotate != (body.x25519 is not None):
        raise _fail("bad_change", "a rotation gives both new keys, other changes none")
    starts, status, event = _TRANSITIONS[body.op]
    if rec.status not in starts:
        raise _fail("bad_status_change", f"{body.org} is {STATUS_NAMES[rec.status]}: cannot "
                                         f"{CHANGE_NAMES[body.op]}")
    new = replace(rec, status=status, since_height=height)
    if rotate:
        assert body.ed25519 is not None and body.x25519 is not None
        check_new_key(view, ctx, body.ed25519)
        new = replace(new, ed25519=body.ed25519, x25519=body.x25519)
        register_key(view, body.ed25519, rec.slot)
    write_leaf(view, new)
    add_key_event(view, KeyEvent(body.org, event, height, new.ed25519, new.x25519, stx.signer,
                                 tx_id))
    view.mark_tx(tx_id)


__all__ = ["add_key_event", "apply_participant_add", "apply_participant_change",
           "check_new_key", "key_fresh", "pending_org", "pending_participant", "pending_size",
           "register_key", "write_leaf"]
