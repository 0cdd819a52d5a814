"""The LMDB store: apply/read back, rejection leaves the store unchanged, reopen, build/check."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from tpledger.ledger import store as store_module
from tpledger.ledger.blocks import Block, Header
from tpledger.ledger.errors import LedgerError, RuleError, StoreError
from tpledger.ledger.rowcheck import seal, unseal
from tpledger.ledger.store import Store, TxLocation
from tpledger.ledger.tx import PAID, SHARE_AMC, SignedTx

try:
    from tests.ledger import helpers as h
except ModuleNotFoundError:  # pytest run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ledger import helpers as h


@pytest.fixture()
def world() -> h.World:
    return h.make_world("store")


@pytest.fixture()
def store(tmp_path: Path, world: h.World) -> Any:
    s = h.open_store(tmp_path / "db", world)
    yield s
    s.close()


def _snapshot(s: Store) -> tuple[Any, ...]:
    return (
        s.height, s.head_hash, s.tree_size, s.tree_root(), s.state_digest,
        *(s.entries(n) for n in ("headers", "blocks", "certs", "txloc", "tree", "claims")),
    )


def test_empty_store_is_genesis(store: Store, world: h.World) -> None:
    assert store.height == 0
    assert store.head_hash == world.genesis.hash()
    assert store.tree_size == 0
    with pytest.raises(StoreError):
        store.header(1)
    with pytest.raises(StoreError):
        store.header(0)


def test_apply_and_read_back(store: Store, world: h.World) -> None:
    txs = h.fill_store(world, store, blocks=4, txs_per_block=3)
    assert store.height == 4
    assert store.tree_size == len(txs)
    leaf = 0
    for height in range(1, 5):
        blk = store.block(height)
        assert blk.header == store.header(height)
        assert store.certificate(height).block_hash == blk.header.hash()
        for pos, raw in enumerate(blk.txs):
            stx = SignedTx.decode(raw)
            assert store.tx_location(stx.tx_id()) == TxLocation(height, pos, leaf)
            assert store.tx(stx.tx_id()) == stx
            leaf += 1
    assert store.header(2).prev_hash == store.header(1).hash()
    first = txs[0].tx_id()
    st = store.claim(first)
    assert st is not None and st.amc.paid_cents == 2000 and st.amc.status == PAID
    assert store.claim(b"\x00" * 32) is None
    assert store.tx_location(b"\x00" * 32) is None


def _tamper_header(block: Block, **kw: Any) -> Block:
    return Block(dataclasses.replace(block.header, **kw), block.txs)


@pytest.mark.parametrize(
    "mutation",
    ["cert_other_block", "cert_too_few", "cert_wrong_height", "prev_hash", "height", "time",
     "tree_root", "tree_size", "txs_root", "state_digest", "bad_tx_signature", "dup_tx",
     "chain_id", "proposer", "extra_tx"],
)
def test_bad_blocks_rejected_store_unchanged(store: Store, world: h.World,
                                             mutation: str) -> None:
    h.fill_store(world, store, blocks=2, txs_per_block=2)
    before = _snapshot(store)
    block, cert = h.make_block(world, store, [h.make_claim(world), h.make_claim(world)])
    hd = block.header
    if mutation == "cert_other_block":
        cert = h.certify(world, dataclasses.replace(hd, time_ms=hd.time_ms + 1))
    elif mutation == "cert_too_few":
        cert = h.certify(world, hd, signers=(0, 1))
    elif mutation == "cert_wrong_height":
        cert = dataclasses.replace(cert, height=hd.height + 1)
    elif mutation == "bad_tx_signature":
        stx = SignedTx.decode(block.txs[0])
        bad = dataclasses.replace(stx, signature=bytes(64)).encode()
        block = Block(hd, (bad, *block.txs[1:]))
        from tpledger.ledger.blocks import txs_root

        block = _tamper_header(block, txs_root=txs_root(block.txs))
        cert = h.certify(world, block.header)
    elif mutation == "dup_tx":
        old = store.block(1).txs[0]
        from tpledger.ledger.blocks import txs_root

        block = Block(hd, (old, *block.txs[1:]))
        block = _tamper_header(block, txs_root=txs_root(block.txs))
        cert = h.certify(world, block.header)
    elif mutation == "extra_tx":
        block = Block(hd, (*block.txs, h.make_claim(world).encode()))
        cert = h.certify(world, block.header)
    else:
        table: dict[str, dict[str, Any]] = {
            "prev_hash": {"prev_hash": b"\x00" * 32},
            "height": {"height": hd.height + 1},
            "time": {"time_ms": store.head().time_ms},
            "tree_root": {"tree_root": b"\x00" * 32},
            "tree_size": {"tree_size": hd.tree_size + 1},
            "txs_root": {"txs_root": b"\x00" * 32},
            "state_digest": {"state_digest": b"\x00" * 32},
            "chain_id": {"chain_id": "other-chain"},
            "proposer": {"proposer": 9},
        }
        block = _tamper_header(block, **table[mutation])
        cert = h.certify(world, block.header)
    with pytest.raises(LedgerError):
        store.apply_certified(block, cert)
    if not mutation.startswith("cert"):
        with pytest.raises(LedgerError):
            store.check_block(block)
    assert _snapshot(store) == before
    # the good block still applies afterwards
    good, good_cert = h.make_block(world, store, [h.make_claim(world)])
    store.apply_certified(good, good_cert)
    assert store.height == 3


def test_check_block_is_a_dry_run(store: Store, world: h.World) -> None:
    h.fill_store(world, store, blocks=1, txs_per_block=2)
    block, cert = h.make_block(world, store, [h.make_claim(world) for _ in range(3)])
    before = _snapshot(store)
    store.check_block(block)
    store.check_block(block, now_ms=block.header.time_ms)
    assert _snapshot(store) == before
    with pytest.raises(StoreError, match="future"):
        store.check_block(block, now_ms=block.header.time_ms - 60_000)
    store.apply_certified(block, cert)
    with pytest.raises(StoreError):
        store.check_block(block)  # now it is not the next block any more


def test_build_block_skips_invalid_candidates(store: Store, world: h.World) -> None:
    good = h.make_claim(world)
    forged = dataclasses.replace(h.make_claim(world), signature=bytes(64))
    unknown = h.make_decision(world, b"\x07" * 32, SHARE_AMC)
    checked, rejected = store.build_block([good, forged, good, unknown], proposer=1,
                                          time_ms=h.GENESIS_TIME_MS + 5)
    block = checked.block
    assert block.txs == (good.encode(),)
    codes = sorted(err.code for _, err in rejected)
    assert codes == ["bad_signature", "duplicate_tx", "unknown_claim"]
    store.apply_block(checked, h.certify(world, block.header))
    assert store.height == 1


def test_build_block_respects_limits_and_time(store: Store, world: h.World) -> None:
    txs = [h.make_claim(world) for _ in range(5)]
    checked, rejected = store.build_block(txs, 0, time_ms=0, max_txs=3)
    block = checked.block
    assert len(block.txs) == 3 and not rejected
    assert block.header.time_ms == h.GENESIS_TIME_MS + 1
    one = len(txs[0].encode())
    block = store.build_block(txs, 0, time_ms=0, max_bytes=1024 + 16 + 5 + 2 * (one + 3))[0].block
    assert len(block.txs) == 2
    empty, _ = store.build_block([], 0, time_ms=h.GENESIS_TIME_MS + 1)
    store.apply_block(empty, h.certify(world, empty.header))
    assert store.height == 1 and store.tree_size == 0


def test_check_txs_refuses_a_replay(store: Store, world: h.World) -> None:
    stx = h.make_claim(world)
    assert store.check_txs([stx]) == [None]
    h.add_block(world, store, [stx])
    [err] = store.check_txs([stx])
    assert isinstance(err, RuleError) and err.code == "duplicate_tx"


def test_check_txs_applies_a_batch_in_order(store: Store, world: h.World) -> None:
    """Admission of a batch: later txs see the earlier ones (a claim, then a decision and a
    payment on it), replays within the batch are caught, and nothing is written."""
    claim = h.make_claim(world)
    cid = claim.tx_id()
    decide = h.make_decision(world, cid, share=SHARE_AMC, approved_cents=2400)
    pay = h.make_payment(world, cid, share=SHARE_AMC, amount_cents=2400)
    orphan = h.make_decision(world, b"\x07" * 32)
    verdicts = store.check_txs([claim, decide, pay, claim, orphan])
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None and verdicts[3].code == "duplicate_tx"
    assert verdicts[4] is not None and verdicts[4].code == "unknown_claim"
    # A payment before its decision fails even in one batch; the order is the batch's.
    verdicts = store.check_txs([claim, pay, decide])
    assert verdicts[0] is None and verdicts[2] is None
    assert verdicts[1] is not None and verdicts[1].code == "not_accepted"
    assert store.height == 0 and store.claim(cid) is None


def test_reopen_is_instant_and_consistent(tmp_path: Path, world: h.World,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    s = h.open_store(tmp_path / "db", world)
    h.fill_store(world, s, blocks=5, txs_per_block=3)
    before = _snapshot(s)
    s.close()

    def no_replay(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("opening a store replayed a block")

    with monkeypatch.context() as m:  # instant: the open reads its head, it replays nothing
        m.setattr(store_module, "replay_into", no_replay)
        s2 = h.open_store(tmp_path / "db", world)
        assert _snapshot(s2) == before
    h.add_block(world, s2, [h.make_claim(world)])
    assert s2.height == 6
    s2.close()
    ro = Store.open(tmp_path / "db", world.genesis, world.lpp, readonly=True)
    assert ro.height == 6
    with pytest.raises(StoreError):
        ro.meta_put(b"k", b"v")
    ro.close()


def test_open_with_other_genesis_fails(tmp_path: Path, world: h.World) -> None:
    h.open_store(tmp_path / "db", world).close()
    other = h.make_world("other")
    with pytest.raises(StoreError, match="another genesis"):
        Store.open(tmp_path / "db", other.genesis, other.lpp)
    with pytest.raises(StoreError, match="cannot open"):
        Store.open(tmp_path / "nothing", world.genesis, world.lpp, readonly=True)


def test_store_of_an_older_format_is_refused_with_what_to_do(tmp_path: Path,
                                                             world: h.World) -> None:
    import lmdb

    h.open_store(tmp_path / "db", world).close()
    env = lmdb.open(str(tmp_path / "db"), max_dbs=16)
    with env.begin(write=True) as txn:  # what format 1 stores looked like: no format key
        txn.delete(b"l/format", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(StoreError, match=r"store format 1 .* older version"):
        Store.open(tmp_path / "db", world.genesis, world.lpp)


def test_claim_states_live_at_their_claims_places(tmp_path: Path, world: h.World) -> None:
    """New claims are appended at their place in the log; a decision rewrites the state at the
    claim's (older) place; a row that names another claim is reported as corruption."""
    import lmdb

    s = h.open_store(tmp_path / "db", world)
    old = h.make_claim(world)
    h.add_block(world, s, [old, h.make_claim(world)])
    new = h.make_claim(world)
    decide = h.make_decision(world, old.tx_id(), share=SHARE_AMC, approved_cents=2400)
    h.add_block(world, s, [new, decide])  # one new claim and an update of an older one
    assert s.claim(old.tx_id()) is not None and s.claim(old.tx_id()).amc.approved_cents == 2400
    assert s.claim(new.tx_id()) is not None and s.claim(decide.tx_id()) is None
    assert s.entries("claims") == 3
    s.close()
    env = lmdb.open(str(tmp_path / "db"), max_dbs=16)
    with env.begin(write=True) as txn:
        db = env.open_db(b"claims", txn=txn)
        keys = [bytes(k) for k in txn.cursor(db=db).iternext(values=False)]
        assert keys == sorted(keys) and [k[:8] for k in keys] == [
            (1).to_bytes(8, "big"), (1).to_bytes(8, "big"), (2).to_bytes(8, "big")]
        row = unseal("claims", keys[0], bytes(txn.get(keys[0], db=db)))
        # another claim's id at this place (sealed: only the id check can tell)
        txn.put(keys[0], seal(keys[0], new.tx_id() + row[32:]), db=db)
    env.close()
    s = h.open_store(tmp_path / "db", world)
    first = SignedTx.decode(s.block(1).txs[0]).tx_id()
    with pytest.raises(StoreError, match="another claim"):
        s.claim(first)
    s.close()


def test_meta_roundtrip(tmp_path: Path, world: h.World) -> None:
    s = h.open_store(tmp_path / "db", world)
    assert s.meta_get(b"consensus/state") is None
    s.meta_put(b"consensus/state", b"\x01\x02")
    s.close()
    s = h.open_store(tmp_path / "db", world)
    assert s.meta_get(b"consensus/state") == b"\x01\x02"
    with pytest.raises(StoreError):
        s.meta_put(b"", b"x")
    # node keys cannot clobber the store's own meta
    s.meta_put(b"height", b"junk")
    assert s.height == 0
    s.close()


def test_proofs_and_checkpoints_from_store(store: Store, world: h.World) -> None:
    h.fill_store(world, store, blocks=3, txs_per_block=2)
    first = SignedTx.decode(store.block(1).txs[0]).tx_id()
    size1 = store.header(1).tree_size
    assert store.proof(first, tree_size=size1).header == store.header(1)
    assert store.proof(first, height=2).header == store.header(2)
    assert store.proof(first).header == store.header(1)  # default: the tx's own block
    with pytest.raises(StoreError):
        store.proof(first, tree_size=size1 + 1)
    late = SignedTx.decode(store.block(3).txs[0]).tx_id()
    with pytest.raises(StoreError, match="not yet"):
        store.proof(late, height=1)
    with pytest.raises(StoreError, match="unknown"):
        store.proof(b"\x00" * 32)
    cp = store.checkpoint()
    assert cp.header == store.header(3)
    assert store.consistency_path(size1, store.tree_size) == list(store.consistency_proof(1).path)


def test_header_decode_rejects_garbage() -> None:
    with pytest.raises(LedgerError):
        Header.decode(b"\x93\x01\x02\x03")


def test_claims_page(store: Store, world: h.World) -> None:
    """Claims page in log order (oldest first), the cursor being the last claim seen."""
    txs = h.fill_store(world, store, blocks=2, txs_per_block=5, decisions=False)
    ids = [SignedTx.decode(raw).tx_id() for height in (1, 2) for raw in store.block(height).txs]
    assert sorted(ids) == sorted(t.tx_id() for t in txs)
    page = store.claims_page(None, 4)
    assert [cid for cid, _ in page] == ids[:4]
    assert all(st == store.claim(cid) for cid, st in page)
    rest = store.claims_page(page[-1][0], 100)
    assert [cid for cid, _ in rest] == ids[4:]
    assert store.claims_page(ids[-1], 10) == []
    with pytest.raises(StoreError):
        store.claims_page(b"\x00" * 32, 1)  # not a claim in the log


# -- the registry's store (issue 13) ---------------------------------------------------------
def test_versioned_node_store_reads_the_latest_version_at_a_height(tmp_path: Path) -> None:
    """Each write is kept under its height; a read at h sees the latest version <= h."""
    import lmdb

    from tpledger.ledger.store_layout import LmdbVersionedNodeStore

    env = lmdb.open(str(tmp_path / "db"), max_dbs=2)
    db = env.open_db(b"regtree")
    with env.begin(write=True) as txn:
        for height, digest in ((0, b"a" * 32), (3, b"b" * 32), (7, b"c" * 32)):
            w = LmdbVersionedNodeStore(txn, db, write_height=height)
            w.put_node(1, 2, digest)
            w.put_leaves([(5, digest[:4])])
            w.set_size(height + 1)
        LmdbVersionedNodeStore(txn, db, write_height=3).put_node(1, 3, b"x" * 32)
    with env.begin() as txn:
        want = {0: b"a", 1: b"a", 2: b"a", 3: b"b", 6: b"b", 7: b"c", 100: b"c", None: b"c"}
        for at, first in want.items():
            r = LmdbVersionedNodeStore(txn, db, at_height=at)
            assert r.get_node(1, 2) == first * 32 and r.get_leaf(5) == first * 4
            assert r.get_nodes([(1, 3), (1, 2), (0, 2)]) == [
                None if at is not None and at < 3 else b"x" * 32, first * 32, None]
        assert LmdbVersionedNodeStore(txn, db, at_height=4).get_size() == 4
        assert LmdbVersionedNodeStore(txn, db).get_size() == 8
        with pytest.raises(RuntimeError, match="never written"):
            LmdbVersionedNodeStore(txn, db, at_height=4).put_node(0, 0, b"y" * 32)
    env.close()


def test_key_history_and_participant_getters(store: Store, world: h.World) -> None:
    from tests.ledger import registry_helpers as rh
    from tpledger.ledger.registry import ADDED, REVOKED_EV, ROTATED, SUSPENDED_EV
    from tpledger.ledger.tx import REVOKE, SUSPEND

    rh.rotated_after_claim(world, store, "shop-k")  # added at 1, rotated at 3
    h.add_block(world, store, [rh.change_shop(world, "shop-k", REVOKE)])  # revoked at 5
    events = store.key_history("shop-k")
    assert [(e.op, e.height) for e in events] == [(ADDED, 1), (ROTATED, 3), (REVOKED_EV, 5)]
    assert store.key_history("shop-k", limit=2) == events[1:]
    assert store.key_history("nobody") == []
    rec = store.participant("shop-k")
    assert rec is not None and rec.ed25519 == events[1].ed25519
    assert store.participant("nobody") is None
    assert store.proposals() == [] and store.proposal(b"\x00" * 32) is None
    assert store.tariff_versions() == []
    assert store.last_retired_keys() == frozenset({events[1].ed25519})
    # a genesis member's history starts with its genesis keys, at height 0 (not a stored row)
    shop = world.genesis.participant("optic-a")
    assert shop is not None
    (first,) = store.key_history("optic-a")
    assert (first.op, first.height, first.tx_id) == (ADDED, 0, world.genesis.hash())
    assert (first.ed25519, first.x25519, first.signer) == (shop.ed25519, shop.x25519, b"\0" * 32)
    h.add_block(world, store, [rh.change_shop(world, "optic-a", SUSPEND)])
    history = [(e.op, e.height) for e in store.key_history("optic-a")]
    assert history == [(ADDED, 0), (SUSPENDED_EV, 6)]
    assert [e.op for e in store.key_history("optic-a", limit=1)] == [SUSPENDED_EV]  # newest kept
    (org_first,) = store.key_history("federation")  # a governing org: its genesis admin key
    assert org_first.ed25519 == world.admin("federation").public
    h.add_block(world, store, [])
    assert store.last_retired_keys() == frozenset()
