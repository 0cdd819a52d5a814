"""The read policy: who may read what through the API, written once.

==========================  ============================================================
what                        who may read it
==========================  ============================================================
whole blocks (all txs)      validators (catch-up), auditors and the CNAM (which may read
                            every claim already, as the AMO payer of each, e.g. for
                            ``tpledger stats``): every claim of every shop is in them, so
                            no optician or insurer reads them
one claim, its state and    its optician, its insurer, the CNAM (payer of the AMO share
its inclusion proof         of every claim) and auditors
a claim's sealed opening    that claim's payers only (its insurer, the CNAM), each its own
erasing the openings        that claim's payers only, by a signed request (node/erasure.py)
headers, certificates,      anyone: they carry roots and signatures, no claim data, and
checkpoints, consistency    let auditors verify proofs and the log's growth offline
status, metrics, evidence   anyone: no claim data
==========================  ============================================================

A proof bundle holds the claim's own tx, its leaf index and the audit path (sibling hashes),
the header and its certificate: it reveals no other claim's content, so a participant can
verify its own claims without reading anybody else's.
"""

from __future__ import annotations

from tpledger.ledger.genesis import Genesis, Participant

BLOCK_READER_ROLES = frozenset({"auditor", "cnam"})
ALL_CLAIMS_READER_ROLES = frozenset({"cnam", "auditor"})
PAYER_OF_EVERY_CLAIM_ROLES = frozenset({"cnam"})


def may_read_blocks(genesis: Genesis, signer: bytes) -> bool:
    """Whole blocks: validators, auditors and the CNAM."""
    if signer in genesis.validator_keys:
        return True
    p = genesis.participant_by_key(signer)
    return p is not None and p.role in BLOCK_READER_ROLES


def may_read_claim(p: Participant, optician: str, insurer: str) -> bool:
    """One claim (state, proof): its optician, its insurer, the CNAM, auditors."""
    return p.role in ALL_CLAIMS_READER_ROLES or p.org in (optician, insurer)


def is_payer(p: Participant, insurer: str) -> bool:
    """A payer of a claim whose insurer (AMC payer) is ``insurer``: that insurer, or the CNAM
    (AMO payer). Only payers get the sealed openings and may ask to erase them."""
    return p.org == insurer or p.role in PAYER_OF_EVERY_CLAIM_ROLES
