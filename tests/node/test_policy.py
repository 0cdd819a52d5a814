"""The read policy (``node/policy.py``), row by row of its table. The API's own enforcement is
shown on real nodes in tests/security/test_api_attacks.py."""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.ledger.helpers import make_world
from tpledger.ledger.genesis import REVOKED, SUSPENDED, Genesis, Participant
from tpledger.ledger.registry import Registry, gov_key_slot, memory_tree
from tpledger.node.policy import is_payer, may_read_blocks, may_read_claim, reader_of, refusal_of

W = make_world("policy")
OPTIC_A, OPTIC_B = (Participant(k.org, k.role, k.signer.public, k.box.public)
                    for k in W.opticians)
INS_A, INS_B = (Participant(k.org, k.role, k.signer.public, k.box.public) for k in W.insurers)
CNAM = Participant(W.cnam.org, W.cnam.role, W.cnam.signer.public, W.cnam.box.public)
AUDITOR = dataclasses.replace(CNAM, org="audit", role="auditor", ed25519=b"\x0a" * 32)


def changed_registry(genesis: Genesis, org: str, **change: Any) -> Registry:
    """The registry after a block that changed participant ``org``'s record (at height 1)."""
    tree = memory_tree()
    reg = Registry.of_genesis(genesis, tree)
    rec = reg.participant(org)
    assert rec is not None
    new = dataclasses.replace(rec, since_height=1, **change)
    return reg.updated([(gov_key_slot(rec.slot), new.encode())], tree)


def test_whole_blocks_go_to_validators_auditors_and_the_cnam_only() -> None:
    g = dataclasses.replace(W.genesis, participants=(*W.genesis.participants, AUDITOR))
    reg = Registry.of_genesis(g)
    vals = g.validator_keys
    readers = [p.org for p in (OPTIC_A, INS_A, CNAM, AUDITOR)
               if may_read_blocks(vals, reg, p.ed25519)]
    assert readers == ["cnam", "audit"]
    assert may_read_blocks(vals, reg, W.validators[0].public)
    assert not may_read_blocks(vals, reg, b"\x00" * 32)  # a stranger
    assert may_read_blocks(vals, Registry.of_genesis(W.genesis), CNAM.ed25519)
    revoked = changed_registry(W.genesis, "cnam", status=REVOKED)
    assert not may_read_blocks(vals, revoked, CNAM.ed25519)


def test_readers_come_from_the_registry_in_force() -> None:
    """A revoked, suspended or rotated-out key reads nothing (403 with its code); the
    genesis alone would still name it."""
    reg = Registry.of_genesis(W.genesis)
    assert reader_of(reg, OPTIC_A.ed25519) == reg.participant(OPTIC_A.org)
    assert refusal_of(reg, b"\x01" * 32)[0] == "forbidden"
    for change, code in (({"status": REVOKED}, "revoked_signer"),
                         ({"status": SUSPENDED}, "suspended_signer"),
                         ({"ed25519": b"\x07" * 32}, "revoked_signer")):  # rotated out
        after = changed_registry(W.genesis, OPTIC_A.org, **change)
        assert reader_of(after, OPTIC_A.ed25519) is None
        assert refusal_of(after, OPTIC_A.ed25519)[0] == code
        assert OPTIC_A.ed25519 in {p.ed25519 for p in W.genesis.participants}  # yet refused


def test_a_claim_is_read_by_its_optician_its_insurer_the_cnam_and_auditors() -> None:
    readers = [p.org for p in (OPTIC_A, OPTIC_B, INS_A, INS_B, CNAM, AUDITOR)
               if may_read_claim(p, OPTIC_A.org, INS_A.org)]
    assert readers == [OPTIC_A.org, INS_A.org, "cnam", "audit"]


def test_openings_go_to_the_claims_payers_only() -> None:
    payers = [p.org for p in (OPTIC_A, INS_A, INS_B, CNAM, AUDITOR) if is_payer(p, INS_A.org)]
    assert payers == [INS_A.org, "cnam"]
