"""Transactions (claims, decisions, payments, cancels, vote evidence), the signed envelope, and
the ledger state they write (claim states, evidence records).

A claim's id is the ``tx_id()`` of the :class:`SignedTx` that carried it. Money is always in
euro cents (``*_cents``), time in milliseconds (``*_ms``). No personal data ever appears here:
the patient is only a salted commitment (see ``ledger/patient.py``), and the sealed openings
for payers travel off-ledger; the claim carries only the digest of each one.

Shares: ``SHARE_AMO`` (1) is the compulsory insurer's share, decided and paid by the CNAM;
``SHARE_AMC`` (2) is the complementary insurer's share, decided and paid by the insurer named
in the claim.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import ClassVar

from tpledger.ledger.encoding import (
    BOOL,
    HASH32,
    MAX_REASON_LEN,
    PUBKEY,
    REASON_CHARS,
    SIG,
    U32,
    U64,
    U64_MAX,
    Bytes,
    Int,
    ListOf,
    LppCode,
    Nested,
    Optional,
    OrgId,
    ReasonCode,
    Record,
    Str,
    VarBytes,
    decode_any,
    pack,
    spec,
    tagged_hash,
)
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.genesis import Identifiers
from tpledger.ledger.keys import Signer, verify
from tpledger.ledger.registry import MAX_ACTIONS, GovAction, TariffRelease
from tpledger.ledger.votes import MAX_VALIDATORS, PRECOMMIT, PREVOTE, SignedVote

TX_KIND = "tx"
MAX_TX_BODY_BYTES = 16 * 1024
MAX_LINES = 64
MAX_SEALED = 4
MAX_AMOUNT_CENTS = 10**10  # 100 million euros: far above any optical claim, far below 2**63
NONCE_BYTES = 16

SHARE_AMO = 1
SHARE_AMC = 2
SHARES = (SHARE_AMO, SHARE_AMC)
SHARE_NAMES = {SHARE_AMO: "amo", SHARE_AMC: "amc"}

Amount = Int(0, MAX_AMOUNT_CENTS)
# A shop's own reference for a claim (its invoice or PEC number): visible ASCII, no spaces.
# The ledger refuses a second claim with the same (optician, client_ref): ``duplicate_reference``.
MAX_CLIENT_REF_LEN = 64
CLIENT_REF_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))
ClientRef = Str(MAX_CLIENT_REF_LEN, 1, CLIENT_REF_CHARS)

# Per-share statuses (small ints on the wire) and their names.
NOT_APPLICABLE = 0  # the claim asked 0 of this share
SUBMITTED = 1
ACCEPTED = 2
REJECTED = 3
PAID = 4
STATUS_NAMES = {
    NOT_APPLICABLE: "not_applicable",
    SUBMITTED: "submitted",
    ACCEPTED: "accepted",
    REJECTED: "rejected",
    PAID: "paid",
}

# Overall claim statuses (derived, never stored).
CLAIM_SUBMITTED = "submitted"
CLAIM_PARTIALLY_DECIDED = "partially_decided"
CLAIM_ACCEPTED = "accepted"
CLAIM_REJECTED = "rejected"
CLAIM_PAID = "paid"
CLAIM_CANCELLED = "cancelled"


@dataclass(frozen=True)
class LppLine(Record):
    """One dispensed item: LPP code, quantity, and the line's total price."""

    TAG: ClassVar[int] = 0x41
    lpp: str = spec(LppCode)
    qty: int = spec(Int(1, 99))
    amount_cents: int = spec(Amount)


@dataclass(frozen=True)
class SealedRef(Record):
    """Digest of the patient opening sealed to one payer (``patient.sealed_digest``)."""

    TAG: ClassVar[int] = 0x46
    payer: str = spec(OrgId)
    sealed_digest: bytes = spec(HASH32)  # patient.sealed_digest(sealed box)


@dataclass(frozen=True)
class Claim(Record):
    """A tiers-payant claim, signed by the optician. Version 2 added ``client_ref`` (the
    shop's invoice/PEC number, unique per optician on the ledger); version 1 is refused."""

    TAG: ClassVar[int] = 0x42
    VERSION: ClassVar[int] = 2
    optician: str = spec(OrgId)
    insurer: str = spec(OrgId)
    lines: tuple[LppLine, ...] = spec(ListOf(Nested(LppLine), MAX_LINES, 1))
    amo_cents: int = spec(Amount)
    amc_cents: int = spec(Amount)
    patient_commitment: bytes = spec(HASH32)
    sealed: tuple[SealedRef, ...] = spec(ListOf(Nested(SealedRef), MAX_SEALED))
    created_at_ms: int = spec(U64)
    nonce: bytes = spec(Bytes(NONCE_BYTES))
    client_ref: str = spec(ClientRef)

    @property
    def total_cents(self) -> int:
        cached: int | None = self.__dict__.get("_total_cents")
        if cached is None:  # the record is immutable: sum once
            cached = self.__dict__["_total_cents"] = sum(ln.amount_cents for ln in self.lines)
        return cached

    def asked_cents(self, share: int) -> int:
        return self.amo_cents if share == SHARE_AMO else self.amc_cents


@dataclass(frozen=True)
class Decision(Record):
    """A payer's decision on one share. ``reason_code`` is empty iff ``accept``."""

    TAG: ClassVar[int] = 0x43
    claim_id: bytes = spec(HASH32)
    share: int = spec(Int(SHARE_AMO, SHARE_AMC))
    accept: bool = spec(BOOL)
    approved_cents: int = spec(Amount)
    reason_code: str = spec(ReasonCode)


@dataclass(frozen=True)
class Payment(Record):
    """A payer's payment (possibly partial) on an accepted share."""

    TAG: ClassVar[int] = 0x44
    claim_id: bytes = spec(HASH32)
    share: int = spec(Int(SHARE_AMO, SHARE_AMC))
    amount_cents: int = spec(Int(1, MAX_AMOUNT_CENTS))
    reference_digest: bytes = spec(HASH32)  # digest of the bank transfer reference


@dataclass(frozen=True)
class Cancel(Record):
    """The optician withdraws a claim before any decision."""

    TAG: ClassVar[int] = 0x45
    claim_id: bytes = spec(HASH32)
    reason_code: str = spec(Str(MAX_REASON_LEN, 1, REASON_CHARS))


_SLOT = struct.Struct(">QIBH")  # height u64 || round u32 || vote type u8 || validator u16
VOTE_TYPE_NAMES = {PREVOTE: "prevote", PRECOMMIT: "precommit"}


def evidence_slot_key(height: int, round: int, vote_type: int, validator: int) -> bytes:
    """The key of one (validator, height, round, vote type): at most one evidence record each
    (15 bytes, sorting by height, then round)."""
    return _SLOT.pack(height, round, vote_type, validator)


@dataclass(frozen=True)
class VoteEvidence(Record):
    """Two votes one validator signed for one (height, round, type) with different values.

    Any validator of the genesis may submit it (the signer of the envelope); the rules check
    both vote signatures against the offender's genesis key (``ledger/rules.py``). Tags
    0x4E/0x4F sit at the end of the ledger/tx range, away from the next free ones.
    """

    TAG: ClassVar[int] = 0x4E
    first: SignedVote = spec(Nested(SignedVote))
    second: SignedVote = spec(Nested(SignedVote))

    @property
    def validator(self) -> int:
        return self.first.vote.validator

    def slot_key(self) -> bytes:
        v = self.first.vote
        return evidence_slot_key(v.height, v.round, v.vote_type, v.validator)


# -- governance txs (signed by an admin key; ParticipantChange ROTATE also by the participant)

ROTATE, SUSPEND, REINSTATE, REVOKE = 1, 2, 3, 4
CHANGE_NAMES = {ROTATE: "rotate", SUSPEND: "suspend", REINSTATE: "reinstate", REVOKE: "revoke"}


@dataclass(frozen=True)
class ParticipantAdd(Record):
    """A governing org's admin registers a participant (of a role its org governs)."""

    TAG: ClassVar[int] = 0x49
    org: str = spec(OrgId)
    gov_org: str = spec(OrgId)
    role: str = spec(Str(16, 1))
    ed25519: bytes = spec(PUBKEY)
    x25519: bytes = spec(PUBKEY)
    ids: Identifiers = spec(Nested(Identifiers))


@dataclass(frozen=True)
class ParticipantChange(Record):
    """Rotate, suspend, reinstate or revoke a participant: by its org's admin, or (rotate
    only) by the participant itself. ``ed25519``/``x25519``: the new keys (rotate only)."""

    TAG: ClassVar[int] = 0x4A
    org: str = spec(OrgId)
    op: int = spec(Int(ROTATE, REVOKE))
    ed25519: bytes | None = spec(Optional(PUBKEY))
    x25519: bytes | None = spec(Optional(PUBKEY))
    reason_code: str = spec(ReasonCode)  # e.g. "phished", "shop_closed"
    nonce: bytes = spec(Bytes(NONCE_BYTES))  # a second suspend is a new tx


@dataclass(frozen=True)
class GovPropose(Record):
    """A quorum proposal (its id is its tx id); the proposer's ballot is yes."""

    TAG: ClassVar[int] = 0x4B
    actions: tuple[GovAction, ...] = spec(ListOf(Nested(GovAction), MAX_ACTIONS, 1))
    expires_at_ms: int = spec(U64)
    nonce: bytes = spec(Bytes(NONCE_BYTES))


@dataclass(frozen=True)
class GovBallot(Record):
    """A governing org's ballot on a proposal."""

    TAG: ClassVar[int] = 0x4C
    proposal_id: bytes = spec(HASH32)
    approve: bool = spec(BOOL)


@dataclass(frozen=True)
class LppPublish(Record):
    """A direct tariff publication by the policy's tariff publisher."""

    TAG: ClassVar[int] = 0x4D
    release: TariffRelease = spec(Nested(TariffRelease))


GOV_BODY_TYPES = (ParticipantAdd, ParticipantChange, GovPropose, GovBallot, LppPublish)
TxBody = (Claim | Decision | Payment | Cancel | VoteEvidence | ParticipantAdd | ParticipantChange
          | GovPropose | GovBallot | LppPublish)


def tx_id_of(encoded: bytes) -> bytes:
    """The id of the tx whose canonical encoding is ``encoded`` (a block's or the log's
    entry): ``SignedTx.decode(encoded).tx_id()`` without decoding it."""
    return tagged_hash("tpledger/tx", encoded)

BODY_TYPES: tuple[type[Record], ...] = (Claim, Decision, Payment, Cancel, VoteEvidence,
                                        *GOV_BODY_TYPES)


@dataclass(frozen=True)
class SignedTx(Record):
    """The signed envelope; ``encode()`` is the Merkle log's leaf entry."""

    TAG: ClassVar[int] = 0x40
    MAX_BYTES: ClassVar[int] = MAX_TX_BODY_BYTES + 256
    body: bytes = spec(VarBytes(MAX_TX_BODY_BYTES, 1))
    signer: bytes = spec(PUBKEY)
    signature: bytes = spec(SIG)

    def tx_id(self) -> bytes:
        """:func:`tx_id_of` ``encode()``; a claim's id is its tx id (computed once)."""
        cached: bytes | None = self.__dict__.get("_tx_id")
        if cached is None:
            cached = self.__dict__["_tx_id"] = tx_id_of(self.encode())
        return cached

    def checked_under(self, context: object) -> bool:
        """Whether the stateless checks of this tx's body already passed under ``context``
        (the rules' context object: same genesis, same table). The envelope is immutable, so
        a tx that passed them at admission passes them again in the block check."""
        return self.__dict__.get("_checked_under") is context

    def mark_checked(self, context: object) -> None:
        """Record that the stateless checks of the body passed under ``context``."""
        self.__dict__["_checked_under"] = context

    @classmethod
    def decode_with_id(cls, encoded: bytes, tx_id: bytes | None = None) -> SignedTx:
        """``decode(encoded)`` with its tx id cached: ``tx_id`` when the caller has computed
        ``tx_id_of(encoded)`` already (decoding checks that ``encoded`` is canonical, so this
        is the id ``tx_id()`` would compute)."""
        stx = cls.decode(encoded)
        stx.__dict__["_tx_id"] = tx_id_of(encoded) if tx_id is None else tx_id
        return stx

    def parse(self) -> TxBody:
        """Decode the body as one of the ``BODY_TYPES`` (raises EncodingError).

        Decoded once per instance (the envelope is immutable).
        """
        cached: TxBody | None = self.__dict__.get("_body")
        if cached is not None:
            return cached
        obj = decode_any(self.body, BODY_TYPES, MAX_TX_BODY_BYTES)
        if not isinstance(obj, TxBody):
            raise EncodingError("unexpected transaction body type")  # pragma: no cover
        self.__dict__["_body"] = obj
        return obj

    def verify(self, chain_id: str) -> bool:
        """True iff the signature is the signer's over (chain_id, "tx", body). Never raises."""
        return verify(self.signer, chain_id, TX_KIND, self.body, self.signature)


def sign_tx(chain_id: str, signer: Signer, body: TxBody) -> SignedTx:
    """Encode ``body`` canonically and sign it for ``chain_id``."""
    data = body.encode()
    if len(data) > MAX_TX_BODY_BYTES:
        raise EncodingError(f"transaction body exceeds {MAX_TX_BODY_BYTES} bytes")
    return SignedTx(data, signer.public, signer.sign(chain_id, TX_KIND, data))


# ---------------------------------------------------------------------------------------------
# Claim state: what the ledger knows of a claim


@dataclass(frozen=True)
class PayerState(Record):
    """State of one share of a claim."""

    TAG: ClassVar[int] = 0x48
    status: int = spec(Int(NOT_APPLICABLE, PAID))
    asked_cents: int = spec(Amount)
    approved_cents: int = spec(Amount)
    paid_cents: int = spec(Amount)
    reason_code: str = spec(ReasonCode)

    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    def decided(self) -> bool:
        return self.status in (ACCEPTED, REJECTED, PAID)

    @classmethod
    def initial(cls, asked_cents: int) -> PayerState:
        status = SUBMITTED if asked_cents > 0 else NOT_APPLICABLE
        return cls._make(status=status, asked_cents=asked_cents, approved_cents=0,
                         paid_cents=0, reason_code="")


@dataclass(frozen=True)
class ClaimState(Record):
    """Ledger state of one claim, keyed by claim id."""

    TAG: ClassVar[int] = 0x47
    optician: str = spec(OrgId)
    insurer: str = spec(OrgId)
    total_cents: int = spec(Int(0, MAX_AMOUNT_CENTS * MAX_LINES))
    amo: PayerState = spec(Nested(PayerState))
    amc: PayerState = spec(Nested(PayerState))
    cancelled: bool = spec(BOOL)
    submitted_height: int = spec(U64)

    @classmethod
    def from_claim(cls, claim: Claim, height: int) -> ClaimState:
        """The state of a claim just submitted at ``height`` (with its canonical bytes)."""
        state = cls._make(
            optician=claim.optician,
            insurer=claim.insurer,
            total_cents=claim.total_cents,
            amo=PayerState.initial(claim.amo_cents),
            amc=PayerState.initial(claim.amc_cents),
            cancelled=False,
            submitted_height=height,
        )
        data = cls.initial_bytes(claim, height)
        if data is not None:
            state.__dict__["_encoded"] = data
        return state

    @classmethod
    def initial_bytes(cls, claim: Claim, height: int) -> bytes | None:
        """``from_claim(claim, height).encode()`` without building the state.

        Every field comes from a claim whose canonical bytes exist (so it was checked when
        decoded or encoded): the bytes are packed straight from the wire layout (one of these
        per claim per validator; a test pins them to the spec-checked packing). None when the
        claim was never checked or the height is not a u64: then ``encode`` checks the specs.
        """
        if "_encoded" not in claim.__dict__ or not (
                height.__class__ is int and 0 <= height <= U64_MAX):
            return None
        amo, amc = claim.amo_cents, claim.amc_cents
        ptag = PayerState.TAG
        return pack([
            cls.TAG, cls.VERSION, claim.optician, claim.insurer, claim.total_cents,
            [ptag, 1, SUBMITTED if amo > 0 else NOT_APPLICABLE, amo, 0, 0, ""],
            [ptag, 1, SUBMITTED if amc > 0 else NOT_APPLICABLE, amc, 0, 0, ""],
            False, height])

    def share(self, share: int) -> PayerState:
        if share == SHARE_AMO:
            return self.amo
        if share == SHARE_AMC:
            return self.amc
        raise ValueError(f"unknown share {share}")

    def with_share(self, share: int, state: PayerState) -> ClaimState:
        if share == SHARE_AMO:
            return replace(self, amo=state)
        if share == SHARE_AMC:
            return replace(self, amc=state)
        raise ValueError(f"unknown share {share}")

    def status(self) -> str:
        """Overall status: submitted, partially_decided, accepted, rejected, paid, cancelled."""
        if self.cancelled:
            return CLAIM_CANCELLED
        shares = [s for s in (self.amo, self.amc) if s.status != NOT_APPLICABLE]
        decided = [s for s in shares if s.decided()]
        if not decided:
            return CLAIM_SUBMITTED
        if len(decided) < len(shares):
            return CLAIM_PARTIALLY_DECIDED
        if all(s.status == REJECTED for s in shares):
            return CLAIM_REJECTED
        if all(s.status in (PAID, REJECTED) for s in shares):
            return CLAIM_PAID
        return CLAIM_ACCEPTED

    def owed_cents(self) -> int:
        """Approved but not yet paid, over both shares: what payers still owe the optician."""
        if self.cancelled:
            return 0
        return sum(
            s.approved_cents - s.paid_cents
            for s in (self.amo, self.amc)
            if s.status in (ACCEPTED, PAID)
        )

    def pending_cents(self) -> int:
        """Asked on shares not yet decided."""
        if self.cancelled:
            return 0
        return sum(s.asked_cents for s in (self.amo, self.amc) if s.status == SUBMITTED)

    def total_paid_cents(self) -> int:
        return self.amo.paid_cents + self.amc.paid_cents


@dataclass(frozen=True)
class EvidenceRecord(Record):
    """Ledger state of one recorded equivocation, keyed by ``evidence_slot_key``."""

    TAG: ClassVar[int] = 0x4F
    validator: int = spec(Int(0, MAX_VALIDATORS - 1))
    height: int = spec(U64)
    round: int = spec(U32)
    vote_type: int = spec(Int(PREVOTE, PRECOMMIT))
    first_value: bytes | None = spec(Optional(HASH32))
    second_value: bytes | None = spec(Optional(HASH32))
    recorded_height: int = spec(U64)
    tx_id: bytes = spec(HASH32)

    @classmethod
    def of(cls, ev: VoteEvidence, recorded_height: int, tx_id: bytes) -> EvidenceRecord:
        a = ev.first.vote
        return cls(a.validator, a.height, a.round, a.vote_type, a.value_id,
                   ev.second.vote.value_id, recorded_height, tx_id)


__all__ = [
    "ACCEPTED",
    "CHANGE_NAMES",
    "CLAIM_ACCEPTED",
    "CLAIM_CANCELLED",
    "CLAIM_PAID",
    "CLAIM_PARTIALLY_DECIDED",
    "CLAIM_REJECTED",
    "CLAIM_SUBMITTED",
    "CLIENT_REF_CHARS",
    "GOV_BODY_TYPES",
    "MAX_AMOUNT_CENTS",
    "MAX_CLIENT_REF_LEN",
    "MAX_TX_BODY_BYTES",
    "NOT_APPLICABLE",
    "PAID",
    "REASON_CHARS",
    "REINSTATE",
    "REJECTED",
    "REVOKE",
    "ROTATE",
    "SHARES",
    "SHARE_AMC",
    "SHARE_AMO",
    "STATUS_NAMES",
    "SUBMITTED",
    "SUSPEND",
    "Cancel",
    "Claim",
    "ClaimState",
    "ClientRef",
    "Decision",
    "EvidenceRecord",
    "GovBallot",
    "GovPropose",
    "LppCode",
    "LppLine",
    "LppPublish",
    "ParticipantAdd",
    "ParticipantChange",
    "PayerState",
    "Payment",
    "ReasonCode",
    "SealedRef",
    "SignedTx",
    "TxBody",
    "VoteEvidence",
    "evidence_slot_key",
    "sign_tx",
]
