"""The read policy (``node/policy.py``), row by row of its table. The API's own enforcement is
shown on real nodes in tests/security/test_api_attacks.py."""

from __future__ import annotations

import dataclasses

from tests.ledger.helpers import make_world
from tpledger.ledger.genesis import Participant
from tpledger.node.policy import is_payer, may_read_blocks, may_read_claim

W = make_world("policy")
OPTIC_A, OPTIC_B = (Participant(k.org, k.role, k.signer.public, k.box.public)
                    for k in W.opticians)
INS_A, INS_B = (Participant(k.org, k.role, k.signer.public, k.box.public) for k in W.insurers)
CNAM = Participant(W.cnam.org, W.cnam.role, W.cnam.signer.public, W.cnam.box.public)
AUDITOR = dataclasses.replace(CNAM, org="audit", role="auditor", ed25519=b"\x0a" * 32)


def test_whole_blocks_go_to_validators_auditors_and_the_cnam_only() -> None:
    g = dataclasses.replace(W.genesis, participants=(*W.genesis.participants, AUDITOR))
    readers = [p.org for p in (OPTIC_A, INS_A, CNAM, AUDITOR) if may_read_blocks(g, p.ed25519)]
    assert readers == ["cnam", "audit"]
    assert may_read_blocks(g, W.validators[0].public)
    assert not may_read_blocks(g, b"\x00" * 32)  # a stranger


def test_a_claim_is_read_by_its_optician_its_insurer_the_cnam_and_auditors() -> None:
    readers = [p.org for p in (OPTIC_A, OPTIC_B, INS_A, INS_B, CNAM, AUDITOR)
               if may_read_claim(p, OPTIC_A.org, INS_A.org)]
    assert readers == [OPTIC_A.org, INS_A.org, "cnam", "audit"]


def test_openings_go_to_the_claims_payers_only() -> None:
    payers = [p.org for p in (OPTIC_A, INS_A, INS_B, CNAM, AUDITOR) if is_payer(p, INS_A.org)]
    assert payers == [INS_A.org, "cnam"]
