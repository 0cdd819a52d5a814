"""Governance txs for the store, proof and audit tests of the registry (WP3 of issue 13):
a federation admin adds, rotates and revokes optician shops."""

from __future__ import annotations

import dataclasses
import os

from tests.ledger import helpers as h
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.store import Store
from tpledger.ledger.tx import REVOKE, ROTATE, ParticipantAdd, ParticipantChange, SignedTx, sign_tx


def add_shop(world: h.World, org: str, n: int = 50) -> tuple[SignedTx, KeyFile]:
    """A federation admin's ParticipantAdd of a new optician shop ``org``, and its key."""
    key = world.key(org, "optician")
    body = ParticipantAdd(org, "federation", "optician", key.signer.public, key.box.public,
                          h.ids_for("optician", n))
    return sign_tx(world.chain_id, world.admin("federation"), body), key


def change_shop(world: h.World, org: str, op: int, new: KeyFile | None = None) -> SignedTx:
    """The federation admin's ParticipantChange ``op`` of shop ``org`` (new keys: ROTATE)."""
    body = ParticipantChange(org, op, None if new is None else new.signer.public,
                             None if new is None else new.box.public, "phished",
                             os.urandom(16))
    return sign_tx(world.chain_id, world.admin("federation"), body)


def claim_by(world: h.World, key: KeyFile) -> SignedTx:
    """A valid claim of shop ``key.org``, signed with ``key``."""
    claim = dataclasses.replace(h.make_claim(world).parse(), optician=key.org)
    return sign_tx(world.chain_id, key.signer, claim)


def revoked_after_claim(world: h.World, store: Store, org: str = "shop-x") -> SignedTx:
    """``org`` added (block n+1), claims (n+2), is revoked (n+3); an empty block follows.
    Returns the claim."""
    add, key = add_shop(world, org)
    h.add_block(world, store, [add])
    claim = claim_by(world, key)
    h.add_block(world, store, [claim])
    h.add_block(world, store, [change_shop(world, org, REVOKE)])
    h.add_block(world, store, [])
    return claim


def rotated_after_claim(world: h.World, store: Store, org: str = "shop-r") -> SignedTx:
    """``org`` added, claims, has its keys rotated, claims with the new key. Returns the
    first claim."""
    add, key = add_shop(world, org)
    h.add_block(world, store, [add])
    claim = claim_by(world, key)
    h.add_block(world, store, [claim])
    new = world.key(org, "optician", tag="2")
    h.add_block(world, store, [change_shop(world, org, ROTATE, new)])
    h.add_block(world, store, [claim_by(world, new)])
    return claim
