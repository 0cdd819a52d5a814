"""The offline verifier checks who may sign which kind of transaction, so a bundle is refused
even when its quorum certified a block that the rules should have refused."""

from __future__ import annotations

import pytest

from tests.ledger import helpers as h
from tpledger.ledger.blocks import Header
from tpledger.ledger.merkle import root_of
from tpledger.ledger.proofs import ProofBundle, verify_bundle
from tpledger.ledger.registry import Registry, memory_tree
from tpledger.ledger.rules import tx_kind
from tpledger.ledger.tx import SHARE_AMC, SHARE_AMO, Cancel, Decision, Payment, SignedTx, sign_tx


def _bundle_of(world: h.World, stx_bytes: bytes) -> ProofBundle:
    """A certified one-tx block holding ``stx_bytes``, without the rules (a faulty quorum),
    its signer proven by its leaf of the genesis registry (none for validator-signed kinds,
    as the store builds it)."""
    g = world.genesis
    tree = memory_tree()
    reg = Registry.of_genesis(g, tree)
    stx = SignedTx.decode(stx_bytes)
    slot = reg.slot_of_key(stx.signer)
    record, path = b"", []
    if slot is not None and tx_kind(stx.parse()).signer_kind != "validator":
        record, path = reg.leaf(slot).encode(), tree.path(slot)
    header = Header(g.chain_id, 1, g.hash(), h.GENESIS_TIME_MS + 1000, 0, 1,
                    root_of([stx_bytes]), root_of([stx_bytes]), b"\x00" * 32, reg.root,
                    reg.size)
    return ProofBundle.of(tx=stx_bytes, leaf_index=0, path=(), header=header,
                          certificate=h.certify(world, header),
                          signer_record=record, signer_path=path)


def test_rightly_signed_txs_pass_the_role_check() -> None:
    world = h.make_world("roles")
    claim = h.make_claim(world)
    assert verify_bundle(_bundle_of(world, claim.encode()), world.genesis).ok
    amo = h.make_decision(world, claim.tx_id(), share=SHARE_AMO)
    assert verify_bundle(_bundle_of(world, amo.encode()), world.genesis).ok


@pytest.mark.parametrize("case", ["insurer_claim", "other_optician_claim", "optician_decides",
                                  "insurer_pays_amo", "cnam_decides_amc", "insurer_cancels"])
def test_wrongly_signed_txs_are_refused(case: str) -> None:
    world = h.make_world("roles")
    chain = world.chain_id
    claim_stx = h.make_claim(world, optician=0)
    claim = claim_stx.parse()
    cid = claim_stx.tx_id()
    ins, opt, cnam = world.insurers[0].signer, world.opticians[0].signer, world.cnam.signer
    stx = {
        "insurer_claim": lambda: sign_tx(chain, ins, claim),
        "other_optician_claim": lambda: sign_tx(chain, world.opticians[1].signer, claim),
        "optician_decides": lambda: sign_tx(chain, opt, Decision(cid, SHARE_AMC, True, 100, "")),
        "insurer_pays_amo": lambda: sign_tx(chain, ins, Payment(cid, SHARE_AMO, 100, b"r" * 32)),
        "cnam_decides_amc": lambda: sign_tx(chain, cnam, Decision(cid, SHARE_AMC, True, 1, "")),
        "insurer_cancels": lambda: sign_tx(chain, ins, Cancel(cid, "oops")),
    }[case]()
    res = verify_bundle(_bundle_of(world, stx.encode()), world.genesis)
    assert not res.ok and res.failure_code == "participant", (res.failure_code, res.message)


def test_a_kind_missing_from_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier asks the rules' table of kinds: a rightly signed cancel verifies, and the
    same bundle fails once the table has no entry for cancels (no silent default)."""
    from tpledger.ledger import rules

    world = h.make_world("roles")
    claim_stx = h.make_claim(world, optician=0)
    cancel = sign_tx(world.chain_id, world.opticians[0].signer, Cancel(claim_stx.tx_id(), "x"))
    bundle = _bundle_of(world, cancel.encode())
    ok = verify_bundle(bundle, world.genesis)
    assert ok.ok and ok.tx_type == "cancel" and ok.claim_id == claim_stx.tx_id()
    monkeypatch.setattr(rules, "TX_KINDS", {k: v for k, v in rules.TX_KINDS.items()
                                            if k is not Cancel})
    res = verify_bundle(bundle, world.genesis)
    assert not res.ok and res.failure_code == "participant" and "no rule" in res.message
