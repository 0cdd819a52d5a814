"""Checked blocks (``ledger.execution``): ``apply_block`` applies the token of a dry run of
``check_block`` or ``build_block``; the result must be byte-for-byte what a full replay
(``apply_certified``) gives, and a token checked on another head must never be applied."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from tests.ledger import helpers as h
from tpledger.ledger.audit import audit
from tpledger.ledger.errors import StoreError
from tpledger.ledger.execution import CheckedBlock


def _dump(path: Path) -> dict[str, list[tuple[bytes, bytes]]]:
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=16)
    out: dict[str, list[tuple[bytes, bytes]]] = {}
    with env.begin() as txn:
        for name in (b"headers", b"certs", b"blocks", b"txloc", b"tree", b"claims"):
            db = env.open_db(name, txn=txn, create=False)
            out[name.decode()] = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=db)]
    env.close()
    return out


def _run(tmp: Path, mode: str) -> dict[str, list[tuple[bytes, bytes]]]:
    world = h.make_world("reuse")  # same seed: same keys, claims and blocks in every mode
    store = h.open_store(tmp / mode, world)
    pending = []
    for _ in range(4):
        txs = [h.make_claim(world, i % 2, i % 2) for i in range(6)]
        txs += [h.make_decision(world, cid) for cid in pending]
        checked, rejected = store.build_block(txs, proposer=1, time_ms=h.next_time_ms(store))
        assert not rejected
        block, cert = checked.block, h.certify(world, checked.header)
        if mode == "check":
            checked = store.check_block(block, check_signatures=False)
        if mode == "full":
            store.apply_certified(block, cert, check_signatures=False)
        else:
            store.apply_block(checked, cert)
        pending = [t.tx_id() for t in txs[:2]]
    report = audit(store, world.genesis, world.lpp)
    assert report.ok, report
    path = store.path
    store.close()
    return _dump(path)


def test_checked_blocks_write_exactly_what_a_replay_writes(tmp_path: Path) -> None:
    full = _run(tmp_path, "full")
    assert _run(tmp_path, "build") == full
    assert _run(tmp_path, "check") == full


def test_a_block_checked_on_another_head_is_refused(tmp_path: Path) -> None:
    world = h.make_world("stale")
    store = h.open_store(tmp_path / "s", world)
    h.add_block(world, store, [h.make_claim(world)])
    # One candidate block for height 2 is checked ...
    stale, _ = store.build_block([h.make_claim(world)], 1, h.next_time_ms(store))
    assert isinstance(stale, CheckedBlock) and stale.head == store.head()
    # ... while another block is committed at height 2: the head moved.
    other, _ = store.build_block([h.make_claim(world)], 1, h.next_time_ms(store))
    store.apply_block(other, h.certify(world, other.header))
    head = store.head()
    # The stale token, even re-certified for its own header, is refused and writes nothing.
    with pytest.raises(StoreError, match="checked on another head"):
        store.apply_block(stale, h.certify(world, stale.header))
    assert store.head() == head and store.head_hash == other.header.hash()
    # The same goes for a token of a later height checked on an older head.
    h.add_block(world, store, [h.make_claim(world)])
    with pytest.raises(StoreError, match="checked on another head"):
        store.apply_block(other, h.certify(world, other.header))
    report = audit(store, world.genesis, world.lpp)
    assert report.ok, report
    store.close()


def test_a_checked_block_needs_its_own_certificate(tmp_path: Path) -> None:
    world = h.make_world("cert")
    store = h.open_store(tmp_path / "s", world)
    a, _ = store.build_block([h.make_claim(world)], 1, h.next_time_ms(store))
    b, _ = store.build_block([h.make_claim(world)], 1, h.next_time_ms(store))
    with pytest.raises(StoreError, match="another block"):
        store.apply_block(a, h.certify(world, b.header))
    with pytest.raises(StoreError, match="bad certificate"):
        store.apply_block(a, h.certify(world, a.header, signers=(0,)))
    assert store.height == 0
    store.apply_block(a, h.certify(world, a.header))
    assert store.head_hash == a.header.hash()
    store.close()


def test_without_the_head_check_a_stale_token_rewrites_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: with ``require_head`` removed, an (empty) block checked on an older
    head overwrites a committed header and moves the head back."""
    world = h.make_world("stale-broken")
    store = h.open_store(tmp_path / "s", world)
    h.add_block(world, store, [h.make_claim(world)])
    stale, _ = store.build_block([], 1, h.next_time_ms(store))
    h.add_block(world, store, [h.make_claim(world)])
    h.add_block(world, store, [h.make_claim(world)])
    committed = store.header(2)
    monkeypatch.setattr("tpledger.ledger.store.require_head", lambda checked, head: None)
    store.apply_block(stale, h.certify(world, stale.header))
    assert store.height == 2 and store.header(2) != committed  # history rewritten
    assert not audit(store, world.genesis, world.lpp).ok
    store.close()
