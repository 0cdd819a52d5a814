"""Pure parts of the claim lifecycle (cli/lifecycle.py): share inference, reference digests,
bodies, inbox filtering."""

from __future__ import annotations

import pytest

from tpledger.cli.errors import CliError
from tpledger.cli.lifecycle import (
    REFERENCE_DOMAIN,
    cancel_body,
    decision_body,
    is_awaiting,
    is_mine,
    my_share_cents,
    payment_body,
    reference_digest,
    share_for_role,
)
from tpledger.ledger.encoding import tagged_hash
from tpledger.ledger.tx import SHARE_AMC, SHARE_AMO, Cancel

CID = "ab" * 32


def claim_json(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "claim_id": CID, "optician": "optic-paris", "insurer": "mutuelle-a",
        "status": "submitted", "cancelled": False, "total_cents": 5400, "owed_cents": 0,
        "amo": {"status": "submitted", "asked_cents": 3000, "approved_cents": 0,
                "paid_cents": 0, "reason_code": ""},
        "amc": {"status": "submitted", "asked_cents": 2400, "approved_cents": 0,
                "paid_cents": 0, "reason_code": ""},
    }
    base.update(over)
    return base


def test_share_follows_the_role() -> None:
    assert share_for_role("cnam") == SHARE_AMO
    assert share_for_role("insurer") == SHARE_AMC
    for role in ("optician", "auditor", "validator"):
        with pytest.raises(CliError, match="decides no share"):
            share_for_role(role)


def test_reference_digest_is_tagged_and_never_the_reference() -> None:
    d = reference_digest("VIR-2024-000123")
    assert d == tagged_hash(REFERENCE_DOMAIN, b"VIR-2024-000123") and len(d) == 32
    assert reference_digest("  VIR-2024-000123 ") == d
    assert reference_digest("VIR-2024-000124") != d
    assert b"VIR" not in d
    with pytest.raises(CliError):
        reference_digest("   ")
    with pytest.raises(CliError):
        reference_digest("x" * 141)


def test_decision_bodies() -> None:
    c = claim_json()
    d = decision_body(c, "insurer", True, None, None)
    assert (d.share, d.accept, d.approved_cents, d.reason_code) == (SHARE_AMC, True, 2400, "")
    d = decision_body(c, "cnam", True, 1000, None)
    assert (d.share, d.approved_cents) == (SHARE_AMO, 1000)
    d = decision_body(c, "cnam", False, None, "not_covered")
    assert (d.accept, d.approved_cents, d.reason_code) == (False, 0, "not_covered")
    with pytest.raises(CliError, match="reason code"):
        decision_body(c, "cnam", False, None, "Not Covered!")
    with pytest.raises(CliError, match="more than 0"):
        decision_body(c, "cnam", True, 0, None)
    with pytest.raises(CliError, match="64 hex"):
        decision_body(claim_json(claim_id="zz"), "cnam", True, None, None)


def test_payment_and_cancel_bodies() -> None:
    p = payment_body(CID, "insurer", 1204, "REF-1")
    assert (p.share, p.amount_cents, p.reference_digest) == (SHARE_AMC, 1204,
                                                             reference_digest("REF-1"))
    with pytest.raises(CliError):
        payment_body(CID, "optician", 1, "R")
    assert cancel_body(CID, "optician", "wrong_lens") == Cancel(bytes.fromhex(CID), "wrong_lens")
    with pytest.raises(CliError, match="optician"):
        cancel_body(CID, "insurer", "x")


def test_inbox_and_mine_filters() -> None:
    c = claim_json()
    assert is_awaiting(c, "mutuelle-a", "insurer") and is_awaiting(c, "cnam", "cnam")
    assert not is_awaiting(c, "mutuelle-b", "insurer")
    decided = claim_json(amc={"status": "accepted", "asked_cents": 2400,
                              "approved_cents": 2000, "paid_cents": 500, "reason_code": ""})
    assert not is_awaiting(decided, "mutuelle-a", "insurer")
    assert is_awaiting(decided, "cnam", "cnam")
    assert not is_awaiting(claim_json(cancelled=True), "cnam", "cnam")
    na = claim_json(amo={"status": "not_applicable", "asked_cents": 0, "approved_cents": 0,
                         "paid_cents": 0, "reason_code": ""})
    assert not is_awaiting(na, "cnam", "cnam")
    assert is_mine(c, "optic-paris", "optician") and not is_mine(c, "optic-lyon", "optician")
    assert is_mine(c, "mutuelle-a", "insurer") and not is_mine(c, "mutuelle-b", "insurer")
    assert my_share_cents(decided, "insurer") == {"asked": 2400, "approved": 2000, "paid": 500,
                                                  "owed": 1500}
