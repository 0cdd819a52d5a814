"""apply_block may reuse the dry run of check_block or build_block on the same head: the result
must be byte-for-byte what a full replay gives, and a stale dry run must never be used."""

from __future__ import annotations

from pathlib import Path

import lmdb

from ledger.audit import audit
from tests.ledger import helpers as h


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
        block, cert = h.make_block(world, store, txs)  # build_block leaves a dry run behind
        if mode == "check":
            store.check_block(block, check_signatures=False)  # replaces it with check's
        elif mode == "full":
            store._memo = None  # force the full replay
        store.apply_block(block, cert, check_signatures=False)
        pending = [t.tx_id() for t in txs[:2]]
    report = audit(store, world.genesis, world.lpp)
    assert report.ok, report
    path = store.path
    store.close()
    return _dump(path)


def test_reused_dry_runs_write_exactly_what_a_replay_writes(tmp_path: Path) -> None:
    full = _run(tmp_path, "full")
    assert _run(tmp_path, "build") == full
    assert _run(tmp_path, "check") == full


def test_a_dry_run_of_another_block_is_not_reused(tmp_path: Path) -> None:
    world = h.make_world("stale")
    store = h.open_store(tmp_path / "s", world)
    b1, c1 = h.make_block(world, store, [h.make_claim(world)])
    store.apply_block(b1, c1)
    # A dry run of one candidate block for height 2 ...
    b2, _ = h.make_block(world, store, [h.make_claim(world)])
    memo = store._memo
    assert memo is not None and memo.block_hash == b2.header.hash()
    # ... while another block is committed at height 2: the dry run must not be used.
    store._memo = None
    b2x, c2x = h.make_block(world, store, [h.make_claim(world)])
    store._memo = memo
    store.apply_block(b2x, c2x, check_signatures=False)
    assert store.height == 2 and store.head_hash == b2x.header.hash()
    assert store._memo is None
    report = audit(store, world.genesis, world.lpp)
    assert report.ok, report
    store.close()
