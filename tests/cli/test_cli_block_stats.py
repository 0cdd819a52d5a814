"""Statistics from certified blocks: each block checked against its certificate, then folded
into anonymous counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.helpers import (
    add_block,
    make_claim,
    make_decision,
    make_payment,
    make_world,
    open_store,
)
from tpledger.cli.block_stats import aggregate_blocks, check_block
from tpledger.cli.errors import CliError
from tpledger.ledger.store import Store
from tpledger.ledger.tx import SHARE_AMC, SHARE_AMO

CID = "ab" * 32


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
