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

Who signs what: claims, decisions, payments and cancels are signed by participants of the
genesis (``unknown_signer`` otherwise); vote evidence is signed by a validator key of the
genesis, and only by one (:func:`evidence_signer`: a participant key gets ``wrong_role``).

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
evidence keep the two-element form, so every earlier digest is unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Protocol

from ledger.encoding import array_header, pack, tagged_hash
from ledger.errors import EncodingError, RuleError
from ledger.genesis import Genesis, Participant
from ledger.lpp import LppTable
from ledger.tx import (
    ACCEPTED,
    NOT_APPLICABLE,
    PAID,
    REJECTED,
    SHARE_AMO,
    SUBMITTED,
    Cancel,
    Claim,
    ClaimState,
    Decision,
    EvidenceRecord,
    PayerState,
    Payment,
    SignedTx,
    VoteEvidence,
)

STATE_DOMAIN = "tpledger/state"
_HASH_BIN = b"\xc4\x20"  # msgpack bin8 header of a 32-byte string

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
)


class StateView(Protocol):
    """What rules read and write; the store implements it over LMDB."""

    def get_claim(self, claim_id: bytes) -> ClaimState | None: ...
    def put_claim(self, claim_id: bytes, state: ClaimState) -> None: ...
    def has_tx(self, tx_id: bytes) -> bool: ...
    def mark_tx(self, tx_id: bytes) -> None: ...
    def get_evidence(self, slot: bytes) -> EvidenceRecord | None: ...
    def put_evidence(self, slot: bytes, record: EvidenceRecord) -> None: ...


class MemoryState:
    """A dict-backed StateView."""

    def __init__(self) -> None:
        self.claims: dict[bytes, ClaimState] = {}
        self.tx_ids: set[bytes] = set()
        self.evidence: dict[bytes, EvidenceRecord] = {}

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


@dataclass(frozen=True)
class StateChanges:
    """The writes of an overlay, in order: claims (final value, first-write order), tx ids,
    evidence records."""

    claims: tuple[tuple[bytes, AnyClaimState], ...]
    tx_ids: tuple[bytes, ...]
    evidence: tuple[tuple[bytes, EvidenceRecord], ...] = ()

    def encode(self) -> bytes:
        """Canonical bytes hashed into the state digest:
        ``pack([[[cid, st.to_wire()], ...], list(tx_ids)])``, assembled from each state's
        cached canonical bytes (``pack(st.to_wire()) == st.encode()``) instead of re-packing."""
        parts = [b"\x93" if self.evidence else b"\x92", array_header(len(self.claims))]
        for cid, st in self.claims:
            parts.append(b"\x92")
            parts.append(_HASH_BIN + cid if len(cid) == 32 else pack(cid))
            parts.append(st.encode())
        parts.append(pack(list(self.tx_ids)))
        if self.evidence:
            parts.append(array_header(len(self.evidence)))
            for slot, rec in self.evidence:
                parts.extend((b"\x92", pack(slot), rec.encode()))
        return b"".join(parts)

    def __len__(self) -> int:
        return len(self.claims) + len(self.tx_ids) + len(self.evidence)


class OverlayState:
    """A StateView buffering writes over a read-only base; ``commit_to`` flushes them."""

    def __init__(self, base: StateView) -> None:
        self.base = base
        self._claims: dict[bytes, AnyClaimState] = {}
        self._tx_ids: dict[bytes, None] = {}
        self._evidence: dict[bytes, EvidenceRecord] = {}

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

    def changes(self) -> StateChanges:
        return StateChanges(tuple(self._claims.items()), tuple(self._tx_ids),
                            tuple(self._evidence.items()))

    def commit_to(self, base: StateView | None = None) -> None:
        """Write the buffered changes to ``base`` (default: this overlay's base), in order."""
        target = self.base if base is None else base
        if isinstance(target, OverlayState):  # overlay into overlay: new claims stay unbuilt
            target._claims.update(self._claims)
            target._tx_ids.update(self._tx_ids)
            target._evidence.update(self._evidence)
            return
        for slot, rec in self._evidence.items():  # rare: a few rows per misbehaviour
            target.put_evidence(slot, rec)
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


class CheckOnlyOverlay(OverlayState):
    """An overlay for checking txs that will not be committed from it (mempool admission).
    ``changes``/``commit_to`` are refused (like every overlay, it builds a new claim's state
    only if a later tx of the same check reads it)."""

    def changes(self) -> StateChanges:
        raise RuntimeError("a check-only overlay has no changes to hash or commit")

    def commit_to(self, base: StateView | None = None) -> None:
        raise RuntimeError("a check-only overlay is never committed")


@dataclass(frozen=True)
class RulesContext:
    """Chain constants the rules need. Participant look-ups are indexed once, lazily."""

    chain_id: str
    genesis: Genesis
    lpp: LppTable

    @cached_property
    def _by_key(self) -> dict[bytes, Participant]:
        return {p.ed25519: p for p in self.genesis.participants}

    @cached_property
    def _by_org(self) -> dict[str, Participant]:
        return {p.org: p for p in self.genesis.participants}

    def participant_by_key(self, ed25519: bytes) -> Participant | None:
        return self._by_key.get(ed25519)

    def participant(self, org: str) -> Participant | None:
        return self._by_org.get(org)

    @cached_property
    def validator_keys(self) -> tuple[bytes, ...]:
        return self.genesis.validator_keys

    @cached_property
    def validator_index(self) -> dict[bytes, int]:
        return {k: i for i, k in enumerate(self.validator_keys)}


def _fail(code: str, message: str) -> RuleError:
    return RuleError(code, message)


def _check_claim(ctx: RulesContext, signer: Participant, claim: Claim) -> None:
    if signer.role != "optician":
        raise _fail("wrong_role", f"a claim must be signed by an optician, not a {signer.role}")
    if signer.org != claim.optician:
        raise _fail("wrong_org", "a claim must be signed by the optician it names")
    insurer = ctx.participant(claim.insurer)
    if insurer is None or insurer.role != "insurer":
        raise _fail("unknown_insurer", f"{claim.insurer} is not a registered insurer")
    for i, line in enumerate(claim.lines):
        entry = ctx.lpp.get(line.lpp)
        if entry is None:
            raise _fail("unknown_lpp", f"line {i}: LPP code {line.lpp} is not in the table")
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
        payer = ctx.participant(ref.payer)
        is_payer = ref.payer == claim.insurer or (payer is not None and payer.role == "cnam")
        if not is_payer:
            raise _fail("bad_sealed_ref", f"sealed ref for {ref.payer}, not a payer of the claim")
        if ref.payer in seen:
            raise _fail("bad_sealed_ref", f"two sealed refs for {ref.payer}")
        seen.add(ref.payer)


def _check_payer(signer: Participant, state: ClaimState, share: int) -> None:
    if share == SHARE_AMO:
        if signer.role != "cnam":
            raise _fail("wrong_role", f"the AMO share is the CNAM's, not a {signer.role}'s")
    else:
        if signer.role != "insurer":
            raise _fail("wrong_role", f"the AMC share is the insurer's, not a {signer.role}'s")
        if signer.org != state.insurer:
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
    if signer.role != "optician":
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
    evidence_signer(ctx.validator_index, ctx.participant_by_key(stx.signer) is not None,
                    stx.signer)
    if stx.__dict__.get("_evidence_checked_by") is not ctx:  # stateless: once per context
        check_vote_evidence(ctx.chain_id, ctx.validator_keys, ev)
        stx.__dict__["_evidence_checked_by"] = ctx
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
    ``block_time_ms`` is accepted for future time rules; no current rule reads it.
    """
    del block_time_ms  # no time-based rule yet; kept in the signature for the contract
    try:
        body = stx.parse()
        tx_id = stx.tx_id()
    except EncodingError as exc:
        raise _fail("bad_encoding", str(exc)) from None
    if view.has_tx(tx_id):
        raise _fail("duplicate_tx", f"tx {tx_id.hex()[:16]} already applied")
    if check_signature and not stx.verify(ctx.chain_id):
        raise _fail("bad_signature", "signature does not verify for this chain")
    if type(body) is VoteEvidence:  # signed by a validator, not a participant
        _record_evidence(view, ctx, stx, body, tx_id, height)
        return
    signer = ctx.participant_by_key(stx.signer)
    if signer is None:
        raise _fail("unknown_signer", "signer is not a registered participant")

    if isinstance(body, Claim):
        # The claim checks read nothing but ``ctx`` and the (immutable) tx: a tx that passed
        # them under this very context (at admission, then in the block check) passes again.
        if stx.__dict__.get("_claim_checked_by") is not ctx:
            _check_claim(ctx, signer, body)
            stx.__dict__["_claim_checked_by"] = ctx
        if isinstance(view, OverlayState):  # its state is built only if something reads it
            view.put_new_claim(tx_id, body, height)
            view.mark_tx(tx_id)
            return
        claim_id, new_state = tx_id, ClaimState.from_claim(body, height)
    elif isinstance(body, Decision):
        claim_id = body.claim_id
        new_state = _decide(signer, _existing(view, claim_id), body)
    elif isinstance(body, Payment):
        claim_id = body.claim_id
        new_state = _pay(signer, _existing(view, claim_id), body)
    else:
        assert isinstance(body, Cancel)
        claim_id = body.claim_id
        new_state = _cancel(signer, _existing(view, claim_id))
    # All checks passed: write.
    view.put_claim(claim_id, new_state)
    view.mark_tx(tx_id)


def state_digest(prev_state_digest: bytes, changes: StateChanges) -> bytes:
    """tagged_hash("tpledger/state", prev || changes.encode())."""
    if len(prev_state_digest) != 32:
        raise ValueError("a state digest is 32 bytes")
    return tagged_hash(STATE_DOMAIN, prev_state_digest + changes.encode())


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
    "RULE_CODES",
    "CheckOnlyOverlay",
    "MemoryState",
    "OverlayState",
    "RulesContext",
    "StateChanges",
    "StateView",
    "apply_block_txs",
    "apply_tx",
    "check_vote_evidence",
    "describe",
    "evidence_signer",
    "state_digest",
]
