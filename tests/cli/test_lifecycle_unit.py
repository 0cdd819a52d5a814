"""Pure parts of the claim lifecycle commands: share inference, reference digests, bodies,
inbox filtering, statistics aggregation; and command-line checks that need no node."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.auditor import aggregate_blocks, check_block
from cli.errors import CliError
from cli.lifecycle import (
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
from cli.main import run
from ledger.encoding import tagged_hash
from ledger.store import Store
from ledger.tx import SHARE_AMC, SHARE_AMO, Cancel
from tests.ledger.helpers import (
    add_block,
    make_claim,
    make_decision,
    make_payment,
    make_world,
    open_store,
)

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


def test_stats_aggregate_certified_blocks(tmp_path: Path) -> None:
    world = make_world("stats")
    store: Store = open_store(tmp_path / "s", world)
    try:
        claims = [make_claim(world, optician=i % 2, insurer=i % 2) for i in range(5)]
        b1 = add_block(world, store, claims)
        cid0, cid1 = claims[0].tx_id(), claims[1].tx_id()
        b2 = add_block(world, store, [
            make_decision(world, cid0, SHARE_AMC, 2000, insurer=0),
            make_decision(world, cid0, SHARE_AMO, 3000),
            make_payment(world, cid0, SHARE_AMC, 1500, insurer=0),
        ])
        for h, b in ((1, b1), (2, b2)):
            check_block(b, store.certificate(h), world.genesis, h)
        with pytest.raises(CliError, match="another block"):
            check_block(b1, store.certificate(2), world.genesis, 1)
        st = aggregate_blocks([b1, b2], world.genesis, world.lpp)
    finally:
        store.close()
    assert (st.from_height, st.to_height, st.claims) == (1, 2, 5)
    assert st.claimed_cents == 5 * 5400
    assert st.by_lpp["2210546"].to_json() == {"count": 5, "qty": 5, "cents": 15000}
    assert st.by_lpp["2261874"].qty == 10
    assert sum(c.count for c in st.by_class.values()) == 10
    assert st.by_payer["cnam"].claims == 5 and st.by_payer["cnam"].asked_cents == 15000
    assert st.by_payer["cnam"].accepted == 1 and st.by_payer["cnam"].approved_cents == 3000
    ma = st.by_payer["mutuelle-a"]
    assert (ma.claims, ma.accepted, ma.approved_cents, ma.payments, ma.paid_cents) == (
        3, 1, 2000, 1, 1500)
    assert st.by_payer["mutuelle-b"].claims == 2
    assert sum(m.count for m in st.by_month.values()) == 5
    assert "optic" not in str(st.to_json())
    assert cid1.hex() not in str(st.to_json())


@pytest.mark.parametrize("argv", [
    ["claim", "inbox", "--help"], ["claim", "open", "--help"], ["claim", "decide", "--help"],
    ["claim", "pay", "--help"], ["claim", "cancel", "--help"], ["claim", "list", "--help"],
    ["claim", "forget", "--help"], ["checkpoint", "get", "--help"],
    ["checkpoint", "verify", "--help"], ["checkpoint", "consistency", "--help"],
    ["witness", "--help"], ["stats", "--help"],
])
def test_help_has_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "tpledger" in out


def test_bad_usage_is_one_line_without_traceback(cluster_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster_dir / "keys" / "mutuelle-a.key")
    node = "http://127.0.0.1:9"  # never contacted: refused before
    assert run(["claim", "decide", CID, "--node", node, "--key", key]) == 2
    assert run(["claim", "decide", CID, "--accept", "--reject", "x", "--node", node,
                "--key", key]) == 2
    assert run(["claim", "decide", CID, "--reject", "x", "--amount", "1", "--node", node,
                "--key", key]) == 2
    capsys.readouterr()
    rc = run(["claim", "pay", CID, "--amount", "-1", "--reference", "R", "--node", node,
              "--key", key])
    _, err = capsys.readouterr()
    assert rc == 1 and err.startswith("error: --amount") and err.count("\n") == 1
    rc = run(["claim", "cancel", CID, "--reason", "x", "--node", node, "--key", key])
    _, err = capsys.readouterr()
    assert rc == 1 and "only the claim's optician" in err
    rc = run(["claim", "inbox", "--node", node, "--key",
              str(cluster_dir / "keys" / "optic-paris.key")])
    _, err = capsys.readouterr()
    assert rc == 1 and "decides no share" in err
    rc = run(["claim", "open", CID, "--node", node, "--key",
              str(cluster_dir / "keys" / "optic-paris.key")])
    _, err = capsys.readouterr()
    assert rc == 1 and "only a payer" in err and "Traceback" not in err
