"""Vote evidence on the ledger (ledger/rules.py, ledger/store.py, ledger/proofs.py).

A validator that signs two different votes for one (height, round, type) can be proven faulty
by anyone holding both: any validator submits them as a ``VoteEvidence`` tx, the rules verify
them, and the record becomes ledger state (state digest, LMDB store, audit, offline proofs).
Each refusal has its code; the last tests show the checks are what refuses forged evidence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tpledger.ledger.rules as rules
from tests.ledger import helpers as h
from tests.ledger.test_proofs_roles import _bundle_of
from tpledger.ledger.audit import audit
from tpledger.ledger.encoding import pack
from tpledger.ledger.errors import RuleError
from tpledger.ledger.keys import Signer
from tpledger.ledger.proofs import verify_bundle
from tpledger.ledger.rules import MemoryState, RulesContext, StateChanges, apply_tx
from tpledger.ledger.tx import (
    EvidenceRecord,
    SignedTx,
    VoteEvidence,
    evidence_slot_key,
    sign_tx,
)
from tpledger.ledger.votes import PRECOMMIT, PREVOTE, SignedVote, Vote

WORLD = h.make_world("evidence")
CTX = RulesContext(WORLD.chain_id, WORLD.genesis, WORLD.lpp)
A, B = b"\xaa" * 32, b"\xbb" * 32
HEIGHT = 5  # the height of the block the evidence tx is applied in


def vote(value: bytes | None, offender: int = 1, height: int = 3, round_: int = 0,
         vote_type: int = PREVOTE, key_of: int | None = None, chain: str | None = None
         ) -> SignedVote:
    """A vote of ``offender`` signed by validator ``key_of`` (default: the offender)."""
    signer = WORLD.validators[offender if key_of is None else key_of]
    return Vote(height, round_, vote_type, value, offender).sign(chain or WORLD.chain_id, signer)


def evidence_tx(first: SignedVote | None = None, second: SignedVote | None = None,
                signer: Signer | None = None) -> SignedTx:
    ev = VoteEvidence(first or vote(A), second or vote(B))
    return sign_tx(WORLD.chain_id, signer or WORLD.validators[0], ev)


def apply(state: MemoryState, stx: SignedTx, height: int = HEIGHT) -> None:
    apply_tx(state, CTX, stx, height, h.GENESIS_TIME_MS + height)


def refused(stx: SignedTx, code: str, state: MemoryState | None = None) -> RuleError:
    state = state if state is not None else WORLD.state()
    before = (dict(state.claims), set(state.tx_ids), dict(state.evidence))
    with pytest.raises(RuleError) as ei:
        apply(state, stx)
    assert ei.value.code == code, (ei.value.code, ei.value.message)
    assert (dict(state.claims), set(state.tx_ids), dict(state.evidence)) == before
    return ei.value


def test_valid_evidence_is_recorded() -> None:
    state = WORLD.state()
    stx = evidence_tx()
    apply(state, stx)
    slot = evidence_slot_key(3, 0, PREVOTE, 1)
    assert state.evidence == {slot: EvidenceRecord(1, 3, 0, PREVOTE, A, B, HEIGHT, stx.tx_id())}
    assert stx.tx_id() in state.tx_ids
    # A nil vote against a value is an equivocation too; the offender may confess itself.
    apply(state, evidence_tx(vote(None, round_=1), vote(A, round_=1), WORLD.validators[1]))
    assert len(state.evidence) == 2


@pytest.mark.parametrize("case", ["same_value", "other_round", "other_height", "other_type",
                                  "other_validator", "forged_signature", "other_chain",
                                  "unknown_validator", "future_height"])
def test_evidence_that_proves_nothing_is_refused(case: str) -> None:
    first = vote(A)
    second = {
        "same_value": lambda: vote(A),
        "other_round": lambda: vote(B, round_=1),
        "other_height": lambda: vote(B, height=4),
        "other_type": lambda: vote(B, vote_type=PRECOMMIT),
        "other_validator": lambda: vote(B, offender=2),
        "forged_signature": lambda: vote(B, key_of=2),  # says validator 1, signed by 2
        "other_chain": lambda: vote(B, chain="another-chain"),
        "unknown_validator": lambda: SignedVote(Vote(3, 0, PREVOTE, B, 7), vote(B).signature),
        "future_height": lambda: vote(B, height=HEIGHT + 1),
    }[case]()
    if case == "other_chain":
        first = vote(A, chain="another-chain")  # both votes valid, on another chain
    elif case == "unknown_validator":
        first = SignedVote(Vote(3, 0, PREVOTE, A, 7), first.signature)
    elif case == "future_height":
        first = vote(A, height=HEIGHT + 1)
    refused(evidence_tx(first, second), "bad_evidence")


def test_signer_must_be_a_validator_of_the_genesis() -> None:
    refused(evidence_tx(signer=Signer.generate()), "unknown_signer")
    refused(evidence_tx(signer=WORLD.opticians[0].signer), "wrong_role")
    refused(evidence_tx(signer=WORLD.cnam.signer), "wrong_role")
    # A bad envelope signature is refused before anything else.
    good = evidence_tx()
    bad = SignedTx(good.body, good.signer, bytes(64))
    refused(bad, "bad_signature")
    # A validator key signs only evidence: a claim signed by it is refused as before.
    claim = h.make_claim(WORLD).parse()
    refused(sign_tx(WORLD.chain_id, WORLD.validators[0], claim), "unknown_signer")


def test_duplicate_evidence_is_refused() -> None:
    state = WORLD.state()
    stx = evidence_tx()
    apply(state, stx)
    refused(stx, "duplicate_tx", state)  # the very same tx again
    # The same slot from another validator, or with the votes swapped: one record per slot.
    refused(evidence_tx(signer=WORLD.validators[2]), "duplicate_evidence", state)
    refused(evidence_tx(vote(B), vote(A)), "duplicate_evidence", state)
    refused(evidence_tx(vote(A), vote(None)), "duplicate_evidence", state)
    # Another slot of the same offender is new evidence.
    apply(state, evidence_tx(vote(A, vote_type=PRECOMMIT), vote(B, vote_type=PRECOMMIT)))
    assert len(state.evidence) == 2


def test_duplicate_within_one_block_is_refused() -> None:
    txs = [evidence_tx(), evidence_tx(signer=WORLD.validators[3])]
    with pytest.raises(RuleError) as ei:
        rules.apply_block_txs(WORLD.state(), CTX, txs, HEIGHT, 0, b"\0" * 32)
    assert ei.value.code == "duplicate_evidence" and ei.value.message.startswith("tx 1:")


def test_checks_are_what_refuses_forged_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: without the vote checks, a validator could frame an honest one."""
    forged = evidence_tx(vote(A), vote(B, key_of=0))  # validator 0 forges validator 1's vote
    refused(forged, "bad_evidence")
    monkeypatch.setattr(rules, "check_vote_evidence", lambda *a, **k: None)
    state = WORLD.state()
    apply(state, forged)
    assert len(state.evidence) == 1  # framed: this is what check_vote_evidence prevents


def test_signer_rule_is_what_refuses_a_participant(monkeypatch: pytest.MonkeyPatch) -> None:
    stx = evidence_tx(signer=WORLD.opticians[0].signer)
    refused(stx, "wrong_role")
    monkeypatch.setattr(rules, "evidence_signer", lambda *a, **k: 0)
    state = WORLD.state()
    apply(state, stx)
    assert len(state.evidence) == 1


def test_evidence_feeds_the_state_digest() -> None:
    stx = evidence_tx()
    state = WORLD.state()
    digest = rules.apply_block_txs(state, CTX, [stx], HEIGHT, 0, b"\0" * 32)
    (slot, rec), = state.evidence.items()
    changes = StateChanges((), (stx.tx_id(),), ((slot, rec),))
    assert changes.encode() == pack([[], [stx.tx_id()], [[slot, rec.to_wire()]]])
    assert digest == rules.state_digest(b"\0" * 32, changes)
    # Without evidence the digest input keeps its two-element form (earlier chains unchanged).
    assert StateChanges((), (stx.tx_id(),)).encode() == pack([[], [stx.tx_id()]])
    assert digest != rules.state_digest(b"\0" * 32, StateChanges((), (stx.tx_id(),)))


def test_store_keeps_evidence_across_reopen_and_audit_checks_it(tmp_path: Path) -> None:
    world = WORLD
    store = h.open_store(tmp_path / "db", world)
    h.add_block(world, store, [h.make_claim(world)])
    h.add_block(world, store, [h.make_claim(world)])
    ev1 = evidence_tx(vote(A, height=1), vote(B, height=1))
    ev2 = evidence_tx(vote(A, height=2, offender=3), vote(B, height=2, offender=3))
    h.add_block(world, store, [ev2, ev1, h.make_claim(world)])
    # admission refuses the same slot again
    [err] = store.check_txs([evidence_tx(vote(B, height=1), vote(A, height=1),
                                         WORLD.validators[2])])
    assert isinstance(err, RuleError) and err.code == "duplicate_evidence"
    store.close()
    store = h.open_store(tmp_path / "db", world)
    page = store.evidence_page()
    assert [(r.validator, r.height, r.recorded_height) for _, r in page] == [(1, 1, 3), (3, 2, 3)]
    assert page[0][1].tx_id == ev1.tx_id()
    assert store.evidence_page(after=page[0][0]) == page[1:]
    assert store.evidence_page(limit=1) == page[:1]
    assert store.evidence(page[1][0]) == page[1][1]
    assert audit(store, world.genesis, world.lpp).ok
    # A proof of the evidence tx verifies offline and names the submitting validator.
    res = verify_bundle(store.proof(ev1.tx_id()), world.genesis)
    assert res.ok and res.tx_type == "evidence" and res.signer_org == "val-0", res
    assert res.claim_id is None
    # A record the replay does not produce is caught by the audit.
    slot = evidence_slot_key(2, 9, PREVOTE, 0)
    store._write(lambda txn: txn.put(slot, page[0][1].encode(), db=store._dbs.evidence))
    rep = audit(store, world.genesis, world.lpp)
    assert not rep.ok and "evidence" in (rep.reason or "")
    store.close()


@pytest.mark.parametrize("case", ["participant", "unknown", "forged_vote"])
def test_offline_verifier_refuses_bad_evidence_bundles(case: str) -> None:
    """A faulty quorum certifies a block the rules refuse: the offline verifier still says no."""
    stx = {
        "participant": lambda: evidence_tx(signer=WORLD.insurers[0].signer),
        "unknown": lambda: evidence_tx(signer=Signer.generate()),
        "forged_vote": lambda: evidence_tx(vote(A), vote(B, key_of=2)),
    }[case]()
    res = verify_bundle(_bundle_of(WORLD, stx.encode()), WORLD.genesis)
    want = "evidence" if case == "forged_vote" else "participant"
    assert not res.ok and res.failure_code == want, (res.failure_code, res.message)
    assert verify_bundle(_bundle_of(WORLD, evidence_tx().encode()), WORLD.genesis).ok


def test_offline_verifier_uses_the_rules_signer_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken variant: with the signer rule patched out of the verifier, a participant-signed
    evidence bundle would pass."""
    import tpledger.ledger.proofs as proofs

    bundle = _bundle_of(WORLD, evidence_tx(signer=WORLD.opticians[1].signer).encode())
    assert not verify_bundle(bundle, WORLD.genesis).ok
    monkeypatch.setattr(proofs, "evidence_signer", lambda *a, **k: 0)
    assert proofs.Verifier(WORLD.genesis).verify_bundle(bundle).ok
