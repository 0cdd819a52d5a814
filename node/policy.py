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
the registry (participants  any active participant or governing organisation's admin: it
and their public ids),      holds professional, public data only (no patient data)
proposals, tariff versions
==========================  ============================================================

Who a signer is comes from the **registry in force** (``Store.registry()``: the registry after
the last committed block), never from the genesis alone: a participant added after the
genesis reads like any other, and a key revoked, suspended or rotated out is refused (403
``revoked_signer`` / ``suspended_signer``) from the block after the one that changed it.

A proof bundle holds the claim's own tx, its leaf index and the audit path (sibling hashes),
the header and its certificate: it reveals no other claim's content, so a participant can
verify its own claims without reading anybody else's.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from tpledger.ledger.registry import OrgRecord, ParticipantRecord, Registry

BLOCK_READER_ROLES = frozenset({"auditor", "cnam"})
ALL_CLAIMS_READER_ROLES = frozenset({"cnam", "auditor"})
PAYER_OF_EVERY_CLAIM_ROLES = frozenset({"cnam"})


class Member(Protocol):
    """What the read rules need of a participant (a genesis ``Participant`` or a registry
    ``ParticipantRecord``)."""

    @property
    def org(self) -> str: ...
    @property
    def role(self) -> str: ...


def reader_of(registry: Registry, key: bytes) -> ParticipantRecord | OrgRecord | None:
    """The active participant, or the active governing organisation (its admin key), that
    ``key`` is in the registry in force; None for anybody else (see :func:`refusal_of`)."""
    return registry.signer(key) or registry.admin(key)


def refusal_of(registry: Registry, key: bytes) -> tuple[str, str]:
    """The API error (code, message) for a key that is no active reader."""
    code = registry.refusal(key)
    if code in ("revoked_signer", "suspended_signer"):
        return code, f"this key is {code.split('_')[0]} in the registry in force"
    return "forbidden", "the signer is not a registered participant"


def may_read_blocks(validator_keys: Collection[bytes], registry: Registry, signer: bytes) -> bool:
    """Whole blocks: validators, auditors and the CNAM."""
    if signer in validator_keys:
        return True
    p = registry.signer(signer)
    return p is not None and p.role in BLOCK_READER_ROLES


def may_read_claim(p: Member, optician: str, insurer: str) -> bool:
    """One claim (state, proof): its optician, its insurer, the CNAM, auditors."""
    return p.role in ALL_CLAIMS_READER_ROLES or p.org in (optician, insurer)


def is_payer(p: Member, insurer: str) -> bool:
    """A payer of a claim whose insurer (AMC payer) is ``insurer``: that insurer, or the CNAM
    (AMO payer). Only payers get the sealed openings and may ask to erase them."""
    return p.org == insurer or p.role in PAYER_OF_EVERY_CLAIM_ROLES
