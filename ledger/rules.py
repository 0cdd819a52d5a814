"""Deterministic ledger rules: who may sign what, and how a claim's state moves.

Every rejection raises :class:`RuleError` with one of these stable codes:

| code                       | when                                                              |
|----------------------------|-------------------------------------------------------------------|
| ``bad_encoding``           | the body is not a canonical Claim/Decision/Payment/Cancel          |
| ``duplicate_tx``           | this tx id was already applied (replay)                            |
| ``bad_signature``          | the signature does not verify for this chain                       |
| ``unknown_signer``         | the signing key is not a registered participant                    |
| ``wrong_role``             | the signer's role may not sign this tx (or this share)            |
| ``wrong_org``              | right role, wrong organisation (not the claim's optician/insurer) |
| ``unknown_insurer``        | the claim names an org that is not a registered insurer           |
| ``unknown_lpp``            | a line's LPP code is not in the table                              |
| ``price_above_limit``      | a line's amount exceeds qty × PLV                                  |
| ``shares_exceed_total``    | amo_cents + amc_cents > sum of the lines                           |
| ``nothing_asked``          | amo_cents + amc_cents == 0                                         |
| ``bad_sealed_ref``         | a sealed ref names a non-payer of the claim, or a payer twice      |
| ``duplicate_reference``    | the optician already has a claim with this ``client_ref`` (the    |
|                            | message, and ``DuplicateReference.existing_claim_id``, name it)   |
| ``unknown_claim``          | decision/payment/cancel for a claim id not on the ledger           |
| ``claim_cancelled``        | decision/payment/cancel on a cancelled claim                       |
| ``share_not_applicable``   | decision/payment on a share the claim asked 0 of                  |
| ``already_decided``        | a second decision on one share                                     |
| ``bad_decision``           | accept: approved 0 or a reason; reject: approved > 0 or no reason  |
| ``approved_exceeds_asked`` | approved_cents > asked_cents of that share                         |
| ``not_accepted``           | payment on a share that is not accepted (submitted/rejected/paid)  |
| ``payment_exceeds_approved`` | paid so far + amount_cents > approved_cents                      |
| ``cancel_after_decision``  | cancel once any share has been decided                             |
| ``bad_evidence``           | vote evidence that proves nothing: not one validator's two votes  |
|                            | for one (height, round, type) with different values, a signature |
|                            | that does not verify for this chain, or votes above the block     |
| ``duplicate_evidence``     | evidence for an (offender, height, round, type) already recorded   |
| ``unknown_tx_kind``        | a body type with no entry in :data:`TX_KINDS` (no rule applies it) |
| ``revoked_signer``         | the key was revoked, or rotated out, before this block            |
| ``suspended_signer``       | the key's participant is suspended in the registry in force       |
| ``not_authorised``         | an admin (or participant) key that may not make this change       |
| ``participant_exists``     | participant add: the participant id is taken                      |
| ``key_in_use``             | a key that was ever registered (any status), or a validator's     |
| ``bad_identifier``         | participant add: RPPS/billing/SIRET/AMC wrong for the role        |
| ``registry_full``          | participant add: every registry slot is used                       |
| ``unknown_participant``    | participant change: no such participant                           |
| ``bad_change``             | participant change: keys given or missing for the operation       |
| ``bad_status_change``      | suspend not from active, reinstate not from suspended, ...        |
| ``bad_proposal``           | a proposal's expiry is past or beyond the policy's maximum TTL    |
| ``bad_action``             | a proposal action that cannot apply (``ledger/gov_proposals.py``) |
| ``proposal_expired``       | a ballot on, or a proposal with, an expiry already reached       |
| ``unknown_proposal``       | a ballot on a proposal id not on the ledger                        |
| ``proposal_closed``        | a ballot on an executed, expired or failed proposal               |
| ``ballot_replayed``        | the ballot's org has already voted on this proposal               |
| ``bad_tariff``             | a tariff release with an invalid row or a duplicate code          |
| ``bad_tariff_version``     | a release not numbered latest + 1 or not later than the latest    |
| ``bad_tariff_digest``      | a release whose rows do not hash to its table digest              |
| ``tariff_not_in_force``    | a claim dated before the first tariff version                     |
| ``claim_too_old``          | a claim older than the policy's ``max_claim_age_days`` at its block |

Who signs what: claims, decisions, payments and cancels are signed by ACTIVE participants of
the **registry in force** (``StateView.registry()``: the registry after the previous block;
``unknown_signer``, ``revoked_signer`` or ``suspended_signer`` otherwise); vote evidence is
signed by a validator key of the genesis, and only by one (:func:`evidence_signer`: a
participant key gets ``wrong_role``); governance txs are signed by the admin key of an active
governing organisation (``TxKind.signer_kind == "admin"``; a participant may rotate its own
keys), see ``ledger/gov_participants.py`` and ``ledger/gov_proposals.py``. A governance tx of
block h changes who may sign from block h+1: the registry in force is fixed for a block.

Lifecycle per share: not_applicable (asked 0, final) | submitted -> accepted | rejected;
accepted -> paid once payments sum to approved_cents (> 0). Cancel only while no share is
decided. A rejected tx writes nothing: checks run first, writes happen only at the end.

State digest of a block::

    tagged_hash("tpledger/state", prev_state_digest || pack([claims, tx_ids]))

where ``claims`` is ``[[claim_id, ClaimState.to_wire()], ...]`` with each claim written by the
block once, at its final value, in order of its first write, and ``tx_ids`` the applied tx ids
in order (see :meth:`StateChanges.encode`). A block that records evidence hashes
``pack([claims, tx_ids, evidence])`` instead, ``evidence`` being
``[[slot_key, EvidenceRecord.to_wire()], ...]`` in order of the block's txs (blocks without
evidence keep the two-element form, so every earlier digest is unchanged). A block with new
claims also hashes their (optician, client reference) index entries as a fourth element
``[[reference_key, claim_id], ...]`` in order (the third, evidence, then present even if empty).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from tpledger.ledger import gov_participants, gov_proposals
from tpledger.ledger.errors import DuplicateReference, EncodingError, RuleError
from tpledger.ledger.genesis import ACTIVE, Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.registry import OrgRecord, ParticipantRecord, Registry, day_of
from tpledger.ledger.state import (  # the state views; re-exported for the rules' callers
    CheckOnlyOverlay,
    MemoryState,
    NewClaimState,
    OverlayState,
    StateChanges,
    StateView,
    state_digest,
)
from tpledger.ledger.tx import (
    ACCEPTED,
    NOT_APPLICABLE,
    PAID,
    REJECTED,
    SHARE_AMC,
    SHARE_AMO,
    SUBMITTED,
    Cancel,
    Claim,
    ClaimState,
    Decision,
    EvidenceRecord,
    GovBallot,
    GovPropose,
    LppPublish,
    ParticipantAdd,
    ParticipantChange,
    PayerState,
    Payment,
    SignedTx,
    VoteEvidence,
)

Participant = ParticipantRecord  # the signer of a participant's tx, as the rules see it

RULE_CODES = (
    "bad_encoding",
    "duplicate_tx",
    "bad_signature",
    "unknown_signer",
    "wrong_role",
    "wrong_org",
    "unknown_insurer",
    "unknown_lpp",
    "price_above_limit",
    "shares_exceed_total",
    "nothing_asked",
    "bad_sealed_ref",
    "duplicate_reference",
    "unknown_claim",
    "claim_cancelled",
    "share_not_applicable",
    "already_decided",
    "bad_decision",
    "approved_exceeds_asked",
    "not_accepted",
    "payment_exceeds_approved",
    "cancel_after_decision",
    "bad_evidence",
    "duplicate_evidence",
    "unknown_tx_kind",
    "revoked_signer",
    "suspended_signer",
    "not_authorised",
    "participant_exists",
    "key_in_use",
    "bad_identifier",
    "registry_full",
    "unknown_participant",
    "bad_change",
    "bad_status_change",
    "bad_proposal",
    "bad_action",
    "proposal_expired",
    "unknown_proposal",
    "proposal_closed",
    "ballot_replayed",
    "bad_tariff",
    "bad_tariff_version",
    "bad_tariff_digest",
    "tariff_not_in_force",
    "claim_too_old",
)


@dataclass(frozen=True)
class RulesContext:
    """Chain constants the rules need (``lpp``: tariff version 1, the genesis table).
    Participants are not here: the rules read them from the registry in force
    (``StateView.registry()``)."""

    chain_id: str
    genesis: Genesis
    lpp: LppTable

    @cached_property
    def validator_keys(self) -> tuple[bytes, ...]:
        return self.genesis.validator_keys

    @cached_property
    def validator_index(self) -> dict[bytes, int]:
        return {k: i for i, k in enumerate(self.validator_keys)}


OPTICIAN = "optician"  # the role that signs claims and cancels
PARTICIPANT, VALIDATOR, ADMIN = "participant", "validator", "admin"
SIGNER_KINDS = (PARTICIPANT, VALIDATOR, ADMIN)


def payer_role(share: int) -> str:
    """The role that decides and pays a share: the CNAM the AMO share, an insurer the AMC."""
    return "cnam" if share == SHARE_AMO else "insurer"


def share_of_payer(role: str) -> int | None:
    """The share a payer role decides and pays (None: the role pays no share)."""
    return next((share for share in (SHARE_AMO, SHARE_AMC) if payer_role(share) == role), None)


def _fail(code: str, message: str) -> RuleError:
    return RuleError(code, message)


def _check_claim(reg: Registry, ctx: RulesContext, signer: Participant, claim: Claim) -> int:
    """The checks of a claim that read only the registry in force and the tx; returns the
    tariff version the claim is judged by (the one in force on its dispensing day)."""
    if signer.role != OPTICIAN:
        raise _fail("wrong_role", f"a claim must be signed by an optician, not a {signer.role}")
    if signer.org != claim.optician:
        raise _fail("wrong_org", "a claim must be signed by the optician it names")
    insurer = reg.participant(claim.insurer)
    if insurer is None or insurer.role != "insurer" or insurer.status != ACTIVE:
        raise _fail("unknown_insurer", f"{claim.insurer} is not an active registered insurer")
    tariff = reg.tariff_at(day_of(claim.created_at_ms), ctx.lpp)
    if tariff is None:
        raise _fail("tariff_not_in_force", "no LPP table version is in force on the claim's "
                                           "dispensing date")
    version, table = tariff
    for i, line in enumerate(claim.lines):
        entry = table.get(line.lpp)
        if entry is None:
            raise _fail("unknown_lpp", f"line {i}: LPP code {line.lpp} is not in the table "
                                       f"(version {version})")
        if entry.max_price_cents is not None and (
            line.amount_cents > line.qty * entry.max_price_cents
        ):
            raise _fail(
                "price_above_limit",
                f"line {i}: {line.amount_cents} cents exceeds {line.qty} x PLV "
                f"{entry.max_price_cents} cents",
            )
    total = claim.total_cents
    if claim.amo_cents + claim.amc_cents > total:
        raise _fail(
            "shares_exceed_total",
            f"amo {claim.amo_cents} + amc {claim.amc_cents} cents exceeds total {total} cents",
        )
    if claim.amo_cents + claim.amc_cents == 0:
        raise _fail("nothing_asked", "a claim must ask something of the AMO or the AMC")
    seen: set[str] = set()
    for ref in claim.sealed:
        payer = reg.participant(ref.payer)
        is_payer = ref.payer == claim.insurer or (payer is not None and payer.role == "cnam")
        if not is_payer:
            raise _fail("bad_sealed_ref", f"sealed ref for {ref.payer}, not a payer of the claim")
        if ref.payer in seen:
            raise _fail("bad_sealed_ref", f"two sealed refs for {ref.payer}")
        seen.add(ref.payer)
    return version


def _check_payer(signer: Participant, state: ClaimState, share: int) -> None:
    if signer.role != payer_role(share):
        whose = "AMO share is the CNAM's" if share == SHARE_AMO else "AMC share is the insurer's"
        raise _fail("wrong_role", f"the {whose}, not a {signer.role}'s")
    if share != SHARE_AMO and signer.org != state.insurer:
        raise _fail("wrong_org", "only the insurer named in the claim decides/pays the AMC")


def _existing(view: StateView, claim_id: bytes) -> ClaimState:
    state = view.get_claim(claim_id)
    if state is None:
        raise _fail("unknown_claim", f"no claim {claim_id.hex()[:16]}")
    if state.cancelled:
        raise _fail("claim_cancelled", f"claim {claim_id.hex()[:16]} is cancelled")
    return state


def _decide(signer: Participant, state: ClaimState, d: Decision) -> ClaimState:
    _check_payer(signer, state, d.share)
    ps = state.share(d.share)
    if ps.status == NOT_APPLICABLE:
        raise _fail("share_not_applicable", "the claim asked nothing of this share")
    if ps.status != SUBMITTED:
        raise _fail("already_decided", f"share is already {ps.status_name()}")
    if d.accept:
        if d.approved_cents == 0 or d.reason_code != "":
            raise _fail("bad_decision", "an acceptance approves > 0 cents and has no reason code")
        if d.approved_cents > ps.asked_cents:
            raise _fail(
                "approved_exceeds_asked",
                f"approved {d.approved_cents} cents exceeds asked {ps.asked_cents} cents",
            )
        new = replace(ps, status=ACCEPTED, approved_cents=d.approved_cents)
    else:
        if d.approved_cents != 0 or d.reason_code == "":
            raise _fail("bad_decision", "a rejection approves 0 cents and gives a reason code")
        new = replace(ps, status=REJECTED, reason_code=d.reason_code)
    return state.with_share(d.share, new)


def _pay(signer: Participant, state: ClaimState, p: Payment) -> ClaimState:
    _check_payer(signer, state, p.share)
    ps = state.share(p.share)
    if ps.status == NOT_APPLICABLE:
        raise _fail("share_not_applicable", "the claim asked nothing of this share")
    if ps.status != ACCEPTED:
        raise _fail("not_accepted", f"share is {ps.status_name()}, not accepted")
    paid = ps.paid_cents + p.amount_cents
    if paid > ps.approved_cents:
        raise _fail(
            "payment_exceeds_approved",
            f"payments would total {paid} cents, approved is {ps.approved_cents} cents",
        )
    new: PayerState = replace(
        ps, paid_cents=paid, status=PAID if paid == ps.approved_cents else ACCEPTED
    )
    return state.with_share(p.share, new)


def _cancel(signer: Participant, state: ClaimState) -> ClaimState:
    if signer.role != OPTICIAN:
        raise _fail("wrong_role", f"only the claim's optician cancels, not a {signer.role}")
    if signer.org != state.optician:
        raise _fail("wrong_org", "only the claim's own optician cancels it")
    if state.amo.decided() or state.amc.decided():
        raise _fail("cancel_after_decision", "a share has already been decided")
    return replace(state, cancelled=True)


# ---------------------------------------------------------------------------------------------
# Vote evidence


def evidence_signer(validator_index: Mapping[bytes, int], is_participant: bool,
                    key: bytes) -> int:
    """The one rule for who signs vote evidence: a validator key of the genesis (any of them,
    the offender included). Returns its index; raises ``wrong_role`` for a participant's key
    and ``unknown_signer`` for any other. The offline verifier applies it too."""
    index = validator_index.get(key)
    if index is not None:
        return index
    if is_participant:
        raise _fail("wrong_role", "vote evidence is signed by a validator, not a participant")
    raise _fail("unknown_signer", "the evidence signer is not a validator of the genesis")


def check_vote_evidence(chain_id: str, validator_keys: Sequence[bytes],
                        ev: VoteEvidence) -> None:
    """Raise ``bad_evidence`` unless ``ev`` proves an equivocation on this chain: one
    validator of the genesis, one (height, round, type), two values, both signatures valid
    (a vote of another chain does not verify: the chain id is in the signed bytes)."""
    a, b = ev.first.vote, ev.second.vote
    if (a.validator, a.height, a.round, a.vote_type) != (b.validator, b.height, b.round,
                                                          b.vote_type):
        raise _fail("bad_evidence", "the votes are not for one validator, height, round, type")
    if a.value_id == b.value_id:
        raise _fail("bad_evidence", "the votes are for the same value: not an equivocation")
    if a.validator >= len(validator_keys):
        raise _fail("bad_evidence", f"the votes name unknown validator {a.validator}")
    if not (ev.first.verify(chain_id, validator_keys)
            and ev.second.verify(chain_id, validator_keys)):
        raise _fail("bad_evidence", f"a vote signature is not validator {a.validator}'s on "
                                    "this chain")


def _record_evidence(view: StateView, ctx: RulesContext, stx: SignedTx, ev: VoteEvidence,
                     tx_id: bytes, height: int) -> None:
    evidence_signer(ctx.validator_index, view.registry().signer(stx.signer) is not None,
                    stx.signer)
    if not stx.checked_under(ctx):  # stateless: once per context
        check_vote_evidence(ctx.chain_id, ctx.validator_keys, ev)
        stx.mark_checked(ctx)
    vote_height = ev.first.vote.height
    if vote_height > height:
        raise _fail("bad_evidence", f"votes at height {vote_height} are above this block "
                                    f"({height})")
    slot = ev.slot_key()
    if view.get_evidence(slot) is not None:
        raise _fail("duplicate_evidence",
                    f"validator {ev.validator} at height {vote_height} round "
                    f"{ev.first.vote.round} is already recorded")
    view.put_evidence(slot, EvidenceRecord.of(ev, height, tx_id))
    view.mark_tx(tx_id)


def _write(view: StateView, claim_id: bytes, state: ClaimState, tx_id: bytes) -> None:
    view.put_claim(claim_id, state)
    view.mark_tx(tx_id)


def _apply_claim(view: StateView, ctx: RulesContext, stx: SignedTx, claim: Claim, tx_id: bytes,
                 signer: Participant, height: int, time_ms: int) -> None:
    reg = view.registry()
    if time_ms - claim.created_at_ms > reg.max_claim_age_ms:
        raise _fail("claim_too_old", f"the claim is older than "
                                     f"{reg.policy.max_claim_age_days} days at this block")
    # The claim checks read nothing but the registry in force (an immutable snapshot, with
    # the tariff versions), ``ctx`` (one per chain) and the immutable tx: a tx that passed
    # them under this very snapshot (at admission, then in the block check) passes again.
    if not stx.checked_under(reg):
        _check_claim(reg, ctx, signer, claim)
        stx.mark_checked(reg)
    ref_key = claim.reference_key  # built once per claim, not once per pass
    first = view.get_reference(ref_key)  # the one state read of a new claim
    if first is not None:
        raise DuplicateReference(first)
    view.put_reference(ref_key, tx_id)
    if isinstance(view, OverlayState):  # its state is built only if something reads it
        view.put_new_claim(tx_id, claim, height)
        view.mark_tx(tx_id)
        return
    _write(view, tx_id, ClaimState.from_claim(claim, height), tx_id)


def _apply_decision(view: StateView, ctx: RulesContext, stx: SignedTx, d: Decision,
                    tx_id: bytes, signer: Participant, height: int, time_ms: int) -> None:
    _write(view, d.claim_id, _decide(signer, _existing(view, d.claim_id), d), tx_id)


def _apply_payment(view: StateView, ctx: RulesContext, stx: SignedTx, p: Payment,
                   tx_id: bytes, signer: Participant, height: int, time_ms: int) -> None:
    _write(view, p.claim_id, _pay(signer, _existing(view, p.claim_id), p), tx_id)


def _apply_cancel(view: StateView, ctx: RulesContext, stx: SignedTx, c: Cancel, tx_id: bytes,
                  signer: Participant, height: int, time_ms: int) -> None:
    _write(view, c.claim_id, _cancel(signer, _existing(view, c.claim_id)), tx_id)


# ---------------------------------------------------------------------------------------------
# The table of transaction kinds (aioquic's ``__frame_handlers`` style)


@dataclass(frozen=True)
class TxKind:
    """One kind of transaction: its name, who may sign it, which claim it concerns, and how
    the rules apply it. ``signer_role`` and ``named_org`` are the part of "who may sign" that
    needs no state (the offline verifier checks them alone); ``apply`` checks the rest."""

    name: str  # as shown in proofs and the API: "claim", "decision", ..., "evidence"
    signer_kind: str  # SIGNER_KINDS: a participant's, a validator's or a governing org's admin
    signer_role: Callable[[Any], str | None]  # the participant role that signs this body
    named_org: Callable[[Any], str | None]  # the org the body names as its signer, if any
    claim_id_of: Callable[[Any, bytes], bytes | None]  # (body, tx_id) -> the claim, or None
    apply: Callable[..., None]  # (view, ctx, stx, body, tx_id, signer, height, time_ms)

    def __post_init__(self) -> None:
        if self.signer_kind not in SIGNER_KINDS:
            raise ValueError(f"unknown signer kind {self.signer_kind!r}")

    def may_sign(self, body: Any, role: str, org: str) -> bool:
        """A participant of ``role``/``org`` may sign ``body`` as far as the body alone says."""
        named = self.named_org(body)
        return (self.signer_kind == PARTICIPANT and role == self.signer_role(body)
                and (named is None or named == org))


def _no_org(body: Any) -> str | None:
    return None


def _its_claim(body: Any, tx_id: bytes) -> bytes | None:
    return bytes(body.claim_id)


def _no_claim(body: Any, tx_id: bytes) -> bytes | None:
    return None


def _no_role(body: Any) -> str | None:
    return None


def _gov_kind(name: str, named_org: Callable[[Any], str | None],
              apply: Callable[..., None]) -> TxKind:
    return TxKind(name, ADMIN, _no_role, named_org, _no_claim, apply)


TX_KINDS: dict[type, TxKind] = {
    Claim: TxKind("claim", PARTICIPANT, lambda b: OPTICIAN, lambda b: b.optician,
                  lambda b, tx_id: tx_id, _apply_claim),
    Decision: TxKind("decision", PARTICIPANT, lambda b: payer_role(b.share), _no_org,
                     _its_claim, _apply_decision),
    Payment: TxKind("payment", PARTICIPANT, lambda b: payer_role(b.share), _no_org,
                    _its_claim, _apply_payment),
    Cancel: TxKind("cancel", PARTICIPANT, lambda b: OPTICIAN, _no_org, _its_claim,
                   _apply_cancel),
    VoteEvidence: TxKind("evidence", VALIDATOR, _no_role, _no_org, _no_claim,
                         lambda view, ctx, stx, ev, tx_id, signer, height, time_ms:
                         _record_evidence(view, ctx, stx, ev, tx_id, height)),
    ParticipantAdd: _gov_kind("participant_add", lambda b: b.gov_org,
                              gov_participants.apply_participant_add),
    ParticipantChange: _gov_kind("participant_change", _no_org,
                                 gov_participants.apply_participant_change),
    GovPropose: _gov_kind("gov_propose", _no_org, gov_proposals.apply_propose),
    GovBallot: _gov_kind("gov_ballot", _no_org, gov_proposals.apply_ballot),
    LppPublish: _gov_kind("lpp_publish", _no_org, gov_proposals.apply_lpp_publish),
}


def tx_kind(body: object) -> TxKind:
    """The table entry of ``body``'s type; ``unknown_tx_kind`` if it has none."""
    kind = TX_KINDS.get(type(body))
    if kind is None:
        raise _fail("unknown_tx_kind", f"no rule applies a {type(body).__name__} transaction")
    return kind


def apply_tx(
    view: StateView,
    ctx: RulesContext,
    stx: SignedTx,
    height: int,
    block_time_ms: int,
    check_signature: bool = True,
) -> None:
    """Check ``stx`` against the rules and, only if it passes, write its effect to ``view``.

    Raises :class:`RuleError` (code in ``RULE_CODES``); nothing is written on error.
    ``block_time_ms`` is the block's time (claim age, proposal expiry). Signers are looked up
    in the registry in force (``view.registry()``), fixed for the block.
    """
    try:
        body = stx.parse()
        tx_id = stx.tx_id()
    except EncodingError as exc:
        raise _fail("bad_encoding", str(exc)) from None
    kind = tx_kind(body)
    if view.has_tx(tx_id):
        raise _fail("duplicate_tx", f"tx {tx_id.hex()[:16]} already applied")
    if check_signature and not stx.verify(ctx.chain_id):
        raise _fail("bad_signature", "signature does not verify for this chain")
    reg = view.registry()
    signer: ParticipantRecord | OrgRecord | None
    if kind.signer_kind == PARTICIPANT:  # the hot path: one dict get
        signer = reg.signer(stx.signer)
    elif kind.signer_kind == ADMIN:  # the handler decides which may sign (e.g. self-rotation)
        signer = reg.admin(stx.signer) or reg.signer(stx.signer)
    else:  # a validator's: its handler applies the validator-signer rule
        kind.apply(view, ctx, stx, body, tx_id, None, height, block_time_ms)
        return
    if signer is None:
        raise _refused(reg, stx.signer)
    kind.apply(view, ctx, stx, body, tx_id, signer, height, block_time_ms)  # writes only if
    # every check passes


def _refused(reg: Registry, key: bytes) -> RuleError:
    """Why ``key`` may not sign under the registry in force: ``unknown_signer``,
    ``revoked_signer`` (revoked or rotated out), ``suspended_signer``, or ``wrong_role`` (an
    admin key for a participant's tx, or the reverse)."""
    code = reg.refusal(key)
    return _fail(code, _REFUSALS.get(code, "the signer may not sign this transaction"))


_REFUSALS = {
    "unknown_signer": "signer is not a registered participant",
    "revoked_signer": "the signing key was revoked or rotated out before this block",
    "suspended_signer": "the signer is suspended",
    "wrong_role": "an admin key signs only governance txs, a participant key no admin ones",
}


def apply_block_txs(
    view: StateView,
    ctx: RulesContext,
    txs: Sequence[SignedTx],
    height: int,
    block_time_ms: int,
    prev_state_digest: bytes,
    check_signatures: bool = True,
) -> bytes:
    """Apply all txs of a block atomically and return the new state digest.

    On the first failing tx, raises RuleError (same code, message prefixed with its index)
    and writes nothing to ``view``.
    """
    overlay = OverlayState(view)
    for i, stx in enumerate(txs):
        try:
            apply_tx(overlay, ctx, stx, height, block_time_ms, check_signatures)
        except RuleError as exc:
            raise RuleError(exc.code, f"tx {i}: {exc.message}") from None
    changes = overlay.changes()
    digest = state_digest(prev_state_digest, changes)
    overlay.commit_to(view)
    return digest


def describe(state: ClaimState) -> dict[str, Any]:
    """A JSON-friendly view of a claim's state (no personal data is ever in it)."""
    return {
        "optician": state.optician,
        "insurer": state.insurer,
        "status": state.status(),
        "total_cents": state.total_cents,
        "owed_cents": state.owed_cents(),
        "submitted_height": state.submitted_height,
        "shares": {
            name: {
                "status": ps.status_name(),
                "asked_cents": ps.asked_cents,
                "approved_cents": ps.approved_cents,
                "paid_cents": ps.paid_cents,
                "reason_code": ps.reason_code,
            }
            for name, ps in (("amo", state.amo), ("amc", state.amc))
        },
    }


__all__ = [
    "ADMIN",
    "OPTICIAN",
    "PARTICIPANT",
    "RULE_CODES",
    "SIGNER_KINDS",
    "TX_KINDS",
    "VALIDATOR",
    "CheckOnlyOverlay",
    "MemoryState",
    "NewClaimState",
    "OverlayState",
    "RulesContext",
    "StateChanges",
    "StateView",
    "TxKind",
    "apply_block_txs",
    "apply_tx",
    "check_vote_evidence",
    "describe",
    "evidence_signer",
    "payer_role",
    "share_of_payer",
    "state_digest",
    "tx_kind",
]
