"""Ledger rules (ledger/rules.py): one test per rule code, lifecycle, roles, determinism."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpledger.ledger.errors import DuplicateReference, RuleError
from tpledger.ledger.genesis import DEFAULT_PARAMS, Genesis, Participant, Validator
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.lpp import LppTable, default_shares
from tpledger.ledger.patient import (
    commitment,
    make_test_birth_date,
    make_test_nir,
    new_opening,
    seal_opening,
    sealed_digest,
)
from tpledger.ledger.rules import (
    RULE_CODES,
    CheckOnlyOverlay,
    MemoryState,
    OverlayState,
    RulesContext,
    apply_block_txs,
    apply_tx,
    describe,
    state_digest,
)
from tpledger.ledger.state import reference_key
from tpledger.ledger.tx import (
    ACCEPTED,
    CLAIM_CANCELLED,
    CLAIM_PAID,
    CLAIM_PARTIALLY_DECIDED,
    CLAIM_REJECTED,
    CLAIM_SUBMITTED,
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
    LppLine,
    PayerState,
    Payment,
    SealedRef,
    SignedTx,
    TxBody,
    VoteEvidence,
    sign_tx,
)

CHAIN = "tp-test"
ZERO = b"\0" * 32
REF = b"\x07" * 32
ORGS = {
    "opt-1": "optician",
    "opt-2": "optician",
    "ins-1": "insurer",
    "ins-2": "insurer",
    "cnam": "cnam",
    "aud": "auditor",
}
KEYS = {org: KeyFile.generate(org, role) for org, role in ORGS.items()}
VALIDATOR = Signer.generate()
LPP = LppTable.default()
GENESIS = Genesis(
    chain_id=CHAIN,
    genesis_time_ms=0,
    validators=(Validator("v0", "val-org", VALIDATOR.public),),
    participants=tuple(
        Participant(k.org, k.role, k.signer.public, k.box.public) for k in KEYS.values()
    ),
    lpp_table_digest=LPP.digest(),
    params=DEFAULT_PARAMS,
).validated()
CTX = RulesContext(CHAIN, GENESIS, LPP)


def fresh() -> MemoryState:
    """An empty state whose registry in force is GENESIS's (a version-1 genesis)."""
    return MemoryState.of_genesis(GENESIS)


def stx(org: str, body: TxBody) -> SignedTx:
    return sign_tx(CHAIN, KEYS[org].signer, body)


def claim(
    optician: str = "opt-1",
    insurer: str = "ins-1",
    lines: tuple[LppLine, ...] = (LppLine("2210546", 1, 3049), LppLine("2261874", 2, 2408)),
    amo_cents: int = 3000,
    amc_cents: int = 2457,
    sealed: tuple[SealedRef, ...] = (),
    nonce: int = 0,
    ref: str | None = None,
) -> Claim:
    if ref is None:  # one reference per distinct claim (the same claim: the same tx)
        ref = "INV-" + hashlib.sha256(repr((optician, insurer, lines, amo_cents, amc_cents,
                                            sealed, nonce)).encode()).hexdigest()[:32]
    return Claim(
        optician, insurer, lines, amo_cents, amc_cents, b"\x01" * 32, sealed, 1_700_000_000_000,
        nonce.to_bytes(16, "big"), ref,
    )


class Ledger:
    """A MemoryState plus helpers; each ``do`` is one tx at the next height."""

    def __init__(self) -> None:
        self.state = fresh()
        self.height = 0

    def do(self, org: str, body: TxBody) -> bytes:
        self.height += 1
        t = stx(org, body)
        apply_tx(self.state, CTX, t, self.height, 1_700_000_000_000 + self.height)
        return t.tx_id()

    def reject(self, org: str, body: TxBody, code: str) -> RuleError:
        assert code in RULE_CODES
        before = (dict(self.state.claims), set(self.state.tx_ids))
        with pytest.raises(RuleError) as ei:
            self.do(org, body)
        assert ei.value.code == code, str(ei.value)
        assert (dict(self.state.claims), set(self.state.tx_ids)) == before  # nothing written
        return ei.value

    def submit(self, **kw: object) -> bytes:
        return self.do(kw.pop("signer", "opt-1"), claim(**kw))  # type: ignore[arg-type]


@pytest.fixture()
def led() -> Ledger:
    return Ledger()


# -- the full lifecycle --------------------------------------------------------------------


def test_full_lifecycle(led: Ledger) -> None:
    rng = random.Random(3)
    opening = new_opening(make_test_nir(rng), make_test_birth_date(rng), "M-1")
    sealed_ins = seal_opening(opening, KEYS["ins-1"].box.public)
    sealed_cnam = seal_opening(opening, KEYS["cnam"].box.public)
    c = replace(
        claim(),
        patient_commitment=commitment(opening),
        sealed=(SealedRef("ins-1", sealed_digest(sealed_ins)),
                SealedRef("cnam", sealed_digest(sealed_cnam))),
    )
    cid = led.do("opt-1", c)
    s = led.state.get_claim(cid)
    assert s is not None and s.status() == CLAIM_SUBMITTED and s.total_cents == 3049 + 2408
    assert s.submitted_height == 1 and s.amo.status == SUBMITTED and s.owed_cents() == 0
    led.do("cnam", Decision(cid, SHARE_AMO, True, 3000, ""))
    s = led.state.get_claim(cid)
    assert s is not None and s.status() == CLAIM_PARTIALLY_DECIDED and s.owed_cents() == 3000
    led.do("ins-1", Decision(cid, SHARE_AMC, True, 2000, ""))
    s = led.state.get_claim(cid)
    assert s is not None and s.amc.status == ACCEPTED and s.owed_cents() == 5000
    led.do("cnam", Payment(cid, SHARE_AMO, 1000, REF))
    led.do("cnam", Payment(cid, SHARE_AMO, 2000, b"\x08" * 32))
    s = led.state.get_claim(cid)
    assert s is not None and s.amo.status == PAID and s.amo.paid_cents == 3000
    led.do("ins-1", Payment(cid, SHARE_AMC, 2000, REF))
    s = led.state.get_claim(cid)
    assert s is not None and s.status() == CLAIM_PAID and s.owed_cents() == 0
    assert describe(s)["shares"]["amc"]["status"] == "paid"
    assert len(led.state.tx_ids) == 6


def test_rejection_path(led: Ledger) -> None:
    cid = led.submit(amo_cents=0, amc_cents=5000)
    s = led.state.get_claim(cid)
    assert s is not None and s.amo.status == NOT_APPLICABLE
    led.do("ins-1", Decision(cid, SHARE_AMC, False, 0, "no_rights"))
    s = led.state.get_claim(cid)
    assert s is not None and s.status() == CLAIM_REJECTED and s.amc.status == REJECTED
    assert s.amc.reason_code == "no_rights"
    led.reject("ins-1", Payment(cid, SHARE_AMC, 1, REF), "not_accepted")


def test_default_shares_claim_accepted(led: Ledger) -> None:
    lines = (LppLine("2210546", 1, 3049), LppLine("2243540", 2, 8004))
    amo, amc = default_shares(lines, LPP)
    led.submit(lines=lines, amo_cents=amo, amc_cents=amc)


# -- one test per rule code ---------------------------------------------------------------


def test_bad_encoding(led: Ledger) -> None:
    s = KEYS["opt-1"].signer
    body = LppLine("2210546", 1, 1).encode()
    led.height += 1
    with pytest.raises(RuleError) as ei:
        apply_tx(led.state, CTX, SignedTx(body, s.public, s.sign(CHAIN, "tx", body)), 1, 0)
    assert ei.value.code == "bad_encoding"


def test_duplicate_tx(led: Ledger) -> None:
    t = stx("opt-1", claim())
    apply_tx(led.state, CTX, t, 1, 0)
    with pytest.raises(RuleError) as ei:
        apply_tx(led.state, CTX, t, 2, 0)
    assert ei.value.code == "duplicate_tx"
    cid = t.tx_id()
    d = stx("cnam", Decision(cid, SHARE_AMO, True, 10, ""))
    apply_tx(led.state, CTX, d, 3, 0)
    with pytest.raises(RuleError) as ei:
        apply_tx(led.state, CTX, d, 4, 0)
    assert ei.value.code == "duplicate_tx"


def test_bad_signature(led: Ledger) -> None:
    t = stx("opt-1", claim())
    other = sign_tx("other-chain", KEYS["opt-1"].signer, claim())
    forged = SignedTx(t.body, t.signer, other.signature)
    with pytest.raises(RuleError) as ei:
        apply_tx(led.state, CTX, forged, 1, 0)
    assert ei.value.code == "bad_signature"
    assert not led.state.claims
    apply_tx(led.state, CTX, forged, 1, 0, check_signature=False)  # trusted replay path


def test_unknown_signer(led: Ledger) -> None:
    t = sign_tx(CHAIN, Signer.generate(), claim())
    with pytest.raises(RuleError) as ei:
        apply_tx(led.state, CTX, t, 1, 0)
    assert ei.value.code == "unknown_signer"


def test_claim_roles(led: Ledger) -> None:
    led.reject("ins-1", claim(), "wrong_role")
    led.reject("cnam", claim(), "wrong_role")
    led.reject("aud", claim(), "wrong_role")
    led.reject("opt-2", claim(optician="opt-1"), "wrong_org")
    led.submit(signer="opt-2", optician="opt-2")


def test_unknown_insurer(led: Ledger) -> None:
    led.reject("opt-1", claim(insurer="nobody"), "unknown_insurer")
    led.reject("opt-1", claim(insurer="cnam"), "unknown_insurer")
    led.reject("opt-1", claim(insurer="opt-2"), "unknown_insurer")


def test_unknown_lpp(led: Ledger) -> None:
    led.reject("opt-1", claim(lines=(LppLine("9999999", 1, 100),), amo_cents=0,
                              amc_cents=100), "unknown_lpp")


def test_price_above_limit(led: Ledger) -> None:
    ok = (LppLine("2261874", 2, 2 * 1204),)
    led.submit(lines=ok, amo_cents=0, amc_cents=100)
    bad = (LppLine("2261874", 2, 2 * 1204 + 1),)
    led.reject("opt-1", claim(lines=bad, amo_cents=0, amc_cents=100), "price_above_limit")
    # no PLV (adult frame): any price
    led.submit(lines=(LppLine("2223342", 1, 25_000),), amo_cents=170, amc_cents=20_000)


def test_shares_exceed_total(led: Ledger) -> None:
    total = 3049 + 2408
    led.submit(amo_cents=3000, amc_cents=total - 3000, nonce=1)
    led.reject("opt-1", claim(amo_cents=3000, amc_cents=total - 2999, nonce=2),
               "shares_exceed_total")


def test_nothing_asked(led: Ledger) -> None:
    led.reject("opt-1", claim(amo_cents=0, amc_cents=0), "nothing_asked")


def test_bad_sealed_ref(led: Ledger) -> None:
    def ref(p: str) -> SealedRef:
        return SealedRef(p, ZERO)

    led.submit(sealed=(ref("ins-1"), ref("cnam")))
    led.reject("opt-1", claim(sealed=(ref("ins-2"),)), "bad_sealed_ref")
    led.reject("opt-1", claim(sealed=(ref("opt-1"),)), "bad_sealed_ref")
    led.reject("opt-1", claim(sealed=(ref("nobody"),)), "bad_sealed_ref")
    led.reject("opt-1", claim(sealed=(ref("ins-1"), ref("ins-1"))), "bad_sealed_ref")


def test_unknown_claim(led: Ledger) -> None:
    led.reject("cnam", Decision(ZERO, SHARE_AMO, True, 1, ""), "unknown_claim")
    led.reject("cnam", Payment(ZERO, SHARE_AMO, 1, REF), "unknown_claim")
    led.reject("opt-1", Cancel(ZERO, "typo"), "unknown_claim")


def test_claim_cancelled(led: Ledger) -> None:
    cid = led.submit()
    led.do("opt-1", Cancel(cid, "patient_left"))
    s = led.state.get_claim(cid)
    assert s is not None and s.status() == CLAIM_CANCELLED and s.owed_cents() == 0
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 1, ""), "claim_cancelled")
    led.reject("ins-1", Payment(cid, SHARE_AMC, 1, REF), "claim_cancelled")
    led.reject("opt-1", Cancel(cid, "again"), "claim_cancelled")


def test_share_not_applicable(led: Ledger) -> None:
    cid = led.submit(amo_cents=0, amc_cents=100)
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 1, ""), "share_not_applicable")
    led.reject("cnam", Payment(cid, SHARE_AMO, 1, REF), "share_not_applicable")


def test_already_decided(led: Ledger) -> None:
    cid = led.submit()
    led.do("cnam", Decision(cid, SHARE_AMO, False, 0, "not_covered"))
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 10, ""), "already_decided")
    led.do("ins-1", Decision(cid, SHARE_AMC, True, 10, ""))
    led.reject("ins-1", Decision(cid, SHARE_AMC, False, 0, "changed_mind"), "already_decided")


def test_bad_decision(led: Ledger) -> None:
    cid = led.submit()
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 0, ""), "bad_decision")
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 10, "why"), "bad_decision")
    led.reject("cnam", Decision(cid, SHARE_AMO, False, 10, "no"), "bad_decision")
    led.reject("cnam", Decision(cid, SHARE_AMO, False, 0, ""), "bad_decision")


def test_approved_exceeds_asked(led: Ledger) -> None:
    cid = led.submit(amo_cents=3000, amc_cents=2000)
    led.reject("cnam", Decision(cid, SHARE_AMO, True, 3001, ""), "approved_exceeds_asked")
    led.reject("ins-1", Decision(cid, SHARE_AMC, True, 2001, ""), "approved_exceeds_asked")
    led.do("cnam", Decision(cid, SHARE_AMO, True, 3000, ""))


def test_not_accepted(led: Ledger) -> None:
    cid = led.submit()
    led.reject("cnam", Payment(cid, SHARE_AMO, 1, REF), "not_accepted")  # still submitted
    led.do("cnam", Decision(cid, SHARE_AMO, True, 100, ""))
    led.do("cnam", Payment(cid, SHARE_AMO, 100, REF))
    led.reject("cnam", Payment(cid, SHARE_AMO, 1, b"\x09" * 32), "not_accepted")  # paid


def test_payment_exceeds_approved(led: Ledger) -> None:
    cid = led.submit()
    led.do("ins-1", Decision(cid, SHARE_AMC, True, 500, ""))
    led.reject("ins-1", Payment(cid, SHARE_AMC, 501, REF), "payment_exceeds_approved")
    led.do("ins-1", Payment(cid, SHARE_AMC, 300, REF))
    led.reject("ins-1", Payment(cid, SHARE_AMC, 201, b"\x0a" * 32), "payment_exceeds_approved")
    led.do("ins-1", Payment(cid, SHARE_AMC, 200, b"\x0a" * 32))
    s = led.state.get_claim(cid)
    assert s is not None and s.amc.status == PAID


def test_cancel_after_decision(led: Ledger) -> None:
    cid = led.submit()
    led.do("ins-1", Decision(cid, SHARE_AMC, False, 0, "no_rights"))
    led.reject("opt-1", Cancel(cid, "oops"), "cancel_after_decision")


# -- client references (idempotent submission, issue 14) -------------------------------------


def test_duplicate_reference_names_the_first_claim(led: Ledger) -> None:
    first = led.submit(ref="FAC-2026-0042", nonce=1)
    # a retry: the same invoice, signed again (fresh nonce: another tx id), is refused
    err = led.reject("opt-1", claim(ref="FAC-2026-0042", nonce=2), "duplicate_reference")
    assert isinstance(err, DuplicateReference) and err.existing_claim_id == first
    assert first.hex() in err.message  # the id in full: it is not personal data
    assert len(led.state.claims) == 1
    assert led.state.references == {reference_key("opt-1", "FAC-2026-0042"): first}


def test_the_same_reference_of_another_optician_is_another_claim(led: Ledger) -> None:
    a = led.submit(ref="FAC-1", nonce=1)
    b = led.submit(signer="opt-2", optician="opt-2", ref="FAC-1", nonce=1)
    assert a != b and len(led.state.claims) == 2
    led.reject("opt-2", claim(optician="opt-2", ref="FAC-1", nonce=3), "duplicate_reference")


def test_two_claims_with_one_reference_in_one_block() -> None:
    txs = [stx("opt-1", claim(ref="FAC-9", nonce=n)) for n in (1, 2)]
    view = fresh()
    with pytest.raises(RuleError) as ei:
        apply_block_txs(view, CTX, txs, 1, 0, b"\0" * 32)
    assert ei.value.code == "duplicate_reference" and ei.value.message.startswith("tx 1:")
    assert not view.claims and not view.references  # nothing written
    ov = CheckOnlyOverlay(fresh())  # mempool admission of one batch: the same
    apply_tx(ov, CTX, txs[0], 1, 0)
    with pytest.raises(DuplicateReference):
        apply_tx(ov, CTX, txs[1], 1, 0)


def test_the_index_key_is_built_once_per_claim_and_is_its_own() -> None:
    first = claim(ref="FAC-1", nonce=1)
    key = first.reference_key
    assert key == reference_key("opt-1", "FAC-1") and first.reference_key is key  # cached
    other = replace(first, client_ref="FAC-2")  # a new record: its own key, never the copy's
    assert other.reference_key == reference_key("opt-1", "FAC-2")
    view = fresh()
    apply_block_txs(view, CTX, [stx("opt-1", first), stx("opt-1", other)], 1, 0, b"\0" * 32)
    assert set(view.references) == {key, other.reference_key}


def test_without_the_reference_index_a_retry_is_a_second_claim(
        led: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: a state that never finds the reference accepts the retry."""
    monkeypatch.setattr(MemoryState, "get_reference", lambda self, key: None)
    led.submit(ref="FAC-7", nonce=1)
    led.submit(ref="FAC-7", nonce=2)
    assert len(led.state.claims) == 2


def test_every_code_has_a_test() -> None:
    import inspect
    import sys
    from pathlib import Path

    src = inspect.getsource(sys.modules[__name__])
    here = Path(__file__)
    src += here.with_name("test_evidence_rules.py").read_text()  # vote evidence
    src += here.with_name("test_gov_participants.py").read_text()  # participant governance
    proposals = here.with_name("test_gov_proposals.py")  # proposals, ballots, tariffs (WP2)
    if proposals.exists():
        src += proposals.read_text()
    pending = () if proposals.exists() else _PROPOSAL_CODES
    for code in RULE_CODES:
        assert f'"{code}"' in src or code in pending, code


# The codes of ledger/gov_proposals.py, tested in test_gov_proposals.py (issue 13, WP2).
_PROPOSAL_CODES = ("bad_proposal", "bad_action", "proposal_expired", "unknown_proposal",
                   "proposal_closed", "ballot_replayed", "bad_tariff", "bad_tariff_version",
                   "bad_tariff_digest")


# -- role violations ------------------------------------------------------------------------


def test_payer_roles(led: Ledger) -> None:
    cid = led.submit()
    # optician decides -> rejected
    led.reject("opt-1", Decision(cid, SHARE_AMO, True, 1, ""), "wrong_role")
    led.reject("opt-1", Decision(cid, SHARE_AMC, True, 1, ""), "wrong_role")
    # insurer decides the AMO share -> rejected
    led.reject("ins-1", Decision(cid, SHARE_AMO, True, 1, ""), "wrong_role")
    # another insurer decides this claim's AMC share -> rejected
    led.reject("ins-2", Decision(cid, SHARE_AMC, True, 1, ""), "wrong_org")
    # CNAM decides the AMC share -> rejected
    led.reject("cnam", Decision(cid, SHARE_AMC, True, 1, ""), "wrong_role")
    led.reject("aud", Decision(cid, SHARE_AMO, True, 1, ""), "wrong_role")
    led.do("cnam", Decision(cid, SHARE_AMO, True, 100, ""))
    led.do("ins-1", Decision(cid, SHARE_AMC, True, 100, ""))
    led.reject("ins-1", Payment(cid, SHARE_AMO, 1, REF), "wrong_role")
    led.reject("ins-2", Payment(cid, SHARE_AMC, 1, REF), "wrong_org")
    led.reject("opt-1", Payment(cid, SHARE_AMC, 1, REF), "wrong_role")


def test_cancel_roles(led: Ledger) -> None:
    cid = led.submit()
    led.reject("opt-2", Cancel(cid, "not_mine"), "wrong_org")
    led.reject("ins-1", Cancel(cid, "no"), "wrong_role")
    led.do("opt-1", Cancel(cid, "mine"))


# -- blocks, determinism, overlays ----------------------------------------------------------


def _scenario(seed: int) -> list[SignedTx]:
    c1, c2 = claim(nonce=seed), claim(optician="opt-2", nonce=seed + 1, amo_cents=0)
    t1, t2 = stx("opt-1", c1), stx("opt-2", c2)
    return [
        t1, t2,
        stx("cnam", Decision(t1.tx_id(), SHARE_AMO, True, 3000, "")),
        stx("ins-1", Decision(t2.tx_id(), SHARE_AMC, True, 2000, "")),
        stx("cnam", Payment(t1.tx_id(), SHARE_AMO, 3000, REF)),
    ]


def test_block_digest_deterministic() -> None:
    txs = _scenario(10)
    digests = []
    for _ in range(2):
        s = fresh()
        d1 = apply_block_txs(s, CTX, txs[:2], 1, 1000, ZERO)
        d2 = apply_block_txs(s, CTX, txs[2:], 2, 2000, d1)
        digests.append((d1, d2))
        assert len(s.tx_ids) == 5
    assert digests[0] == digests[1]
    assert digests[0][0] != digests[0][1]
    # different order -> different digest (order is part of the state history)
    s = fresh()
    d_swapped = apply_block_txs(s, CTX, [txs[1], txs[0]], 1, 1000, ZERO)
    assert d_swapped != digests[0][0]
    # different prev -> different digest
    assert apply_block_txs(fresh(), CTX, txs[:2], 1, 1000, b"\x01" * 32) != digests[0][0]


def test_block_digest_definition() -> None:
    txs = _scenario(20)
    s = fresh()
    ov = OverlayState(s)
    for t in txs:
        apply_tx(ov, CTX, t, 1, 0)
    ch = ov.changes()
    assert [cid for cid, _ in ch.claims] == [txs[0].tx_id(), txs[1].tx_id()]  # first-write order
    assert ch.tx_ids == tuple(t.tx_id() for t in txs)
    assert apply_block_txs(fresh(), CTX, txs, 1, 0, ZERO) == state_digest(ZERO, ch)


def test_block_failure_is_atomic() -> None:
    txs = _scenario(30)
    s = fresh()
    bad = stx("opt-1", Decision(txs[0].tx_id(), SHARE_AMO, True, 1, ""))
    with pytest.raises(RuleError) as ei:
        apply_block_txs(s, CTX, [*txs[:3], bad], 1, 0, ZERO)
    assert ei.value.code == "wrong_role" and "tx 3" in str(ei.value)
    assert not s.claims and not s.tx_ids
    with pytest.raises(RuleError) as ei:
        apply_block_txs(s, CTX, [txs[0], txs[0]], 1, 0, ZERO)
    assert ei.value.code == "duplicate_tx" and "tx 1" in str(ei.value)


def test_overlay_isolation() -> None:
    base = fresh()
    t = stx("opt-1", claim(nonce=99))
    apply_tx(base, CTX, t, 1, 0)
    cid = t.tx_id()
    ov = OverlayState(base)
    apply_tx(ov, CTX, stx("cnam", Decision(cid, SHARE_AMO, True, 10, "")), 2, 0)
    t2 = stx("opt-1", claim(nonce=100))
    apply_tx(ov, CTX, t2, 2, 0)
    base_state, ov_state = base.get_claim(cid), ov.get_claim(cid)
    assert base_state is not None and base_state.amo.status == SUBMITTED
    assert ov_state is not None and ov_state.amo.status == ACCEPTED
    assert base.get_claim(t2.tx_id()) is None and not base.has_tx(t2.tx_id())
    assert ov.has_tx(t.tx_id()) and ov.has_tx(t2.tx_id())
    # a failing tx on the overlay changes nothing there either
    before = ov.changes()
    with pytest.raises(RuleError):
        apply_tx(ov, CTX, t2, 3, 0)
    assert ov.changes() == before
    ov.commit_to(base)
    committed = base.get_claim(cid)
    assert committed is not None and committed.amo.status == ACCEPTED
    assert base.has_tx(t2.tx_id())
    # nested overlays
    o1 = OverlayState(base)
    o2 = OverlayState(o1)
    t3 = stx("opt-1", claim(nonce=101))
    apply_tx(o2, CTX, t3, 4, 0)
    assert o1.get_claim(t3.tx_id()) is None
    o2.commit_to()
    assert o1.get_claim(t3.tx_id()) is not None and base.get_claim(t3.tx_id()) is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(ORGS)), st.integers(0, 5), st.integers(0, 40)),
                min_size=1, max_size=12))
def test_random_tx_sequences_keep_invariants(ops: list[tuple[str, int, int]]) -> None:
    """Random txs by random signers: either rejected with a known code or invariants hold."""
    led = Ledger()
    cids: list[bytes] = []
    digests = []
    for n, (org, kind, x) in enumerate(ops):
        cid = cids[x % len(cids)] if cids else ZERO
        share = SHARE_AMO if x % 2 else SHARE_AMC
        body: TxBody
        if kind == 0:
            body = claim(optician=org if ORGS[org] == "optician" else "opt-1", nonce=n,
                         amo_cents=x * 10, amc_cents=x * 20)
        elif kind in (1, 2):
            body = Decision(cid, share, kind == 1, x * 50 if kind == 1 else 0,
                            "" if kind == 1 else "no")
        elif kind in (3, 4):
            body = Payment(cid, share, x * 30 + 1, n.to_bytes(32, "big"))
        else:
            body = Cancel(cid, "c")
        try:
            tid = led.do(org, body)
        except RuleError as exc:
            assert exc.code in RULE_CODES
            continue
        if kind == 0:
            cids.append(tid)
        for s in led.state.claims.values():
            for ps in (s.amo, s.amc):
                assert ps.paid_cents <= ps.approved_cents <= ps.asked_cents
                assert (ps.status == PAID) == (ps.paid_cents == ps.approved_cents > 0)
            assert s.amo.asked_cents + s.amc.asked_cents <= s.total_cents
        digests.append(len(led.state.tx_ids))
    assert digests == sorted(digests)


_payer_states = st.builds(
    PayerState, st.integers(0, 4), st.integers(0, 10**10), st.integers(0, 10**10),
    st.integers(0, 10**10), st.sampled_from(["", "no_rights"]))
_claim_states = st.builds(
    ClaimState, st.sampled_from(["optic-a", "o"]), st.sampled_from(["mutuelle-b", "i"]),
    st.integers(0, 6 * 10**11), _payer_states, _payer_states, st.booleans(),
    st.integers(0, 2**64 - 1))


@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32), _claim_states), max_size=40),
       st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_state_changes_bytes_are_the_documented_packing(
    claims: list[tuple[bytes, ClaimState]], tx_ids: list[bytes]
) -> None:
    from tpledger.ledger.encoding import pack
    from tpledger.ledger.rules import StateChanges

    ch = StateChanges(tuple(claims), tuple(tx_ids))
    assert ch.encode() == pack([[[cid, s.to_wire()] for cid, s in claims], tx_ids])


def test_claim_checks_are_redone_under_another_registry() -> None:
    """The cached pass of the stateless claim checks is bound to the registry in force (an
    immutable snapshot: any governance change gives a new one)."""
    tx = stx("opt-1", claim())
    apply_tx(fresh(), CTX, tx, 1, 0)
    other = replace(GENESIS, participants=tuple(
        p for p in GENESIS.participants if p.role != "insurer"))
    with pytest.raises(RuleError) as exc:
        apply_tx(MemoryState.of_genesis(other), CTX, tx, 1, 0)
    assert exc.value.code == "unknown_insurer"


def test_new_claims_stay_unbuilt_until_read_and_hash_as_built_states() -> None:
    """A block's new claims are kept as (claim, height) until something reads them: the state
    digest, the committed states and a read in the same block are those of built states."""
    from tpledger.ledger.encoding import pack
    from tpledger.ledger.rules import NewClaimState

    txs = [stx("opt-1", claim(nonce=500 + i)) for i in range(3)]
    ov = OverlayState(fresh())
    for t in txs:
        apply_tx(ov, CTX, t, 7, 0)
    ch = ov.changes()
    assert all(isinstance(st_, NewClaimState) for _, st_ in ch.claims)
    built = [ClaimState.from_claim(t.parse(), 7) for t in txs]  # type: ignore[arg-type]
    refs = [[reference_key("opt-1", t.parse().client_ref), t.tx_id()]  # type: ignore[union-attr]
            for t in txs]
    assert ch.encode() == pack([[[t.tx_id(), b.to_wire()] for t, b in zip(txs, built,
                                                                            strict=True)],
                                [t.tx_id() for t in txs], [], refs])
    # a decision in the same block reads the first claim: built then, and decided
    apply_tx(ov, CTX, stx("cnam", Decision(txs[0].tx_id(), SHARE_AMO, True, 3000, "")), 7, 0)
    first = ov.get_claim(txs[0].tx_id())
    assert isinstance(first, ClaimState) and first.amo.approved_cents == 3000
    outer = OverlayState(fresh())  # overlay into overlay: still unbuilt, same order
    ov.commit_to(outer)
    assert [cid for cid, _ in outer.changes().claims] == [t.tx_id() for t in txs]
    assert isinstance(dict(outer.changes().claims)[txs[1].tx_id()], NewClaimState)
    assert outer.changes().encode() == ov.changes().encode()
    target = fresh()
    outer.commit_to(target)
    assert all(isinstance(v, ClaimState) for v in target.claims.values())
    assert target.claims[txs[1].tx_id()] == built[1]
    # a claim that was never checked (no canonical bytes yet) is encoded through its specs
    raw_claim = claim(nonce=777)
    lazy = NewClaimState(raw_claim, 9)
    assert lazy.encode() == ClaimState.from_claim(raw_claim, 9).encode()


def test_unknown_tx_kind(led: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body type with no entry in the table of kinds is refused, writing nothing; with its
    entry back, the same tx applies (the table is what the rules dispatch through)."""
    from tpledger.ledger import rules

    cid = led.submit()
    monkeypatch.setattr(rules, "TX_KINDS", {k: v for k, v in rules.TX_KINDS.items()
                                            if k is not Cancel})
    led.reject("opt-1", Cancel(cid, "oops"), "unknown_tx_kind")
    monkeypatch.undo()
    led.do("opt-1", Cancel(cid, "oops"))
    st_ = led.state.get_claim(cid)
    assert st_ is not None and st_.cancelled


def test_the_table_says_who_signs_what() -> None:
    """One entry per body type the codec knows; roles as the rules apply them."""
    from tpledger.ledger.rules import TX_KINDS, payer_role, share_of_payer
    from tpledger.ledger.tx import BODY_TYPES

    assert set(TX_KINDS) == set(BODY_TYPES)
    assert {k.name for k in TX_KINDS.values()} == {
        "claim", "decision", "payment", "cancel", "evidence", "participant_add",
        "participant_change", "gov_propose", "gov_ballot", "lpp_publish"}
    assert [k for k, v in TX_KINDS.items() if v.signer_kind == "validator"] == [VoteEvidence]
    assert {k.name for k in TX_KINDS.values() if k.signer_kind == "admin"} == {
        "participant_add", "participant_change", "gov_propose", "gov_ballot", "lpp_publish"}
    assert (payer_role(SHARE_AMO), payer_role(SHARE_AMC)) == ("cnam", "insurer")
    assert share_of_payer("cnam") == SHARE_AMO and share_of_payer("insurer") == SHARE_AMC
    assert share_of_payer("optician") is None
