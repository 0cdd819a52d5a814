"""Admission (``node/admission.py``) on a real LMDB store, mempool and openings store: what is
admitted, refused, cached and gossiped. Each security check is also shown switched off."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tpledger.node.admission as admission_mod
from tests.ledger.helpers import World, add_block, make_claim, make_world, open_store
from tpledger.ledger.errors import RuleError, StoreCorruption
from tpledger.ledger.patient import sealed_digest
from tpledger.ledger.store import Store
from tpledger.ledger.tx import Claim, SealedRef, SignedTx, sign_tx, tx_id_of
from tpledger.node.admission import Admission
from tpledger.node.mempool import Mempool
from tpledger.node.metrics import Metrics
from tpledger.node.openings import OpeningStore
from tpledger.node.peers import FRAME_TXS
from tpledger.node.submission import Item, encode_submission, parse_submission


@dataclasses.dataclass
class Rig:
    world: World
    store: Store
    openings: OpeningStore
    admission: Admission
    frames: list[tuple[int, bytes]]
    admitted_calls: list[None]
    damage: list[tuple[StoreCorruption, str]]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    world = make_world("admission")
    store = open_store(tmp_path / "ledger", world)
    openings = OpeningStore(tmp_path / "openings")
    frames: list[tuple[int, bytes]] = []
    admitted: list[None] = []
    damage: list[tuple[StoreCorruption, str]] = []
    adm = Admission(world.chain_id, world.genesis.params, store, Mempool(3), openings,
                    Metrics(), lambda k, p: frames.append((k, p)), lambda: admitted.append(None),
                    lambda exc, who: damage.append((exc, who)))
    yield Rig(world, store, openings, adm, frames, admitted, damage)
    openings.close()
    store.close()


def sealed_claim(world: World) -> tuple[SignedTx, list[tuple[str, bytes]]]:
    """A signed claim whose sealed digests are those of two (opaque) sealed boxes."""
    body = make_claim(world).parse()
    assert isinstance(body, Claim)
    boxes = [(ref.payer, os.urandom(80)) for ref in body.sealed]
    body = dataclasses.replace(body, sealed=tuple(
        SealedRef(org, sealed_digest(blob)) for org, blob in boxes))
    return sign_tx(world.chain_id, world.opticians[0].signer, body), boxes


def test_a_good_claim_is_admitted_once_and_gossiped_once(rig: Rig) -> None:
    stx, boxes = sealed_claim(rig.world)
    item: Item = (stx.encode(), boxes)
    [res] = rig.admission.admit_batch([item], gossip=True)
    assert res == {"tx_id": stx.tx_id().hex(), "status": "pending"}
    assert rig.admission.tx_status(stx.tx_id())["status"] == "pending"
    assert len(rig.frames) == 1 and rig.frames[0][0] == FRAME_TXS
    assert parse_submission(rig.frames[0][1], 10) == [item]  # the gossip carries the openings
    assert rig.admitted_calls == [None]
    # The same tx again: pending, not admitted nor gossiped twice.
    assert rig.admission.admit_batch([item], gossip=True)[0]["status"] == "pending"
    assert len(rig.frames) == 1 and rig.admitted_calls == [None]


def test_a_forged_signature_is_refused(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    stx = make_claim(rig.world)
    forged = SignedTx(stx.body, stx.signer, bytes([stx.signature[0] ^ 1]) + stx.signature[1:])
    [res] = rig.admission.admit_batch([(forged.encode(), [])], gossip=True)
    assert res["code"] == "bad_signature" and rig.frames == []
    # Broken variant: without the signature check the forgery would enter the mempool.
    monkeypatch.setattr(SignedTx, "verify", lambda self, chain_id: True)
    [res] = rig.admission.admit_batch([(forged.encode(), [])], gossip=True)
    assert res["status"] == "pending"


def test_a_signature_is_verified_once_per_node(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    txs = [make_claim(rig.world) for _ in range(2)]
    calls: list[bytes] = []
    real = SignedTx.verify

    def counting(self: SignedTx, chain_id: str) -> bool:
        calls.append(self.signature)
        return real(self, chain_id)

    monkeypatch.setattr(SignedTx, "verify", counting)
    rig.admission.admit_batch([(t.encode(), []) for t in txs], gossip=False)
    assert len(calls) == 2
    # A block carrying them (the validity callback) does not verify them again.
    assert rig.admission.verify_signatures(txs, [t.tx_id() for t in txs])
    assert len(calls) == 2


def test_an_opening_that_does_not_match_is_refused(rig: Rig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stx, boxes = sealed_claim(rig.world)
    swapped = [(boxes[0][0], boxes[1][1]), (boxes[1][0], boxes[0][1])]  # each to the wrong payer
    [res] = rig.admission.admit_batch([(stx.encode(), swapped)], gossip=True)
    assert res["code"] == "sealed_mismatch" and rig.frames == []
    # Broken variant: without the check a payer would be handed another payer's box.
    monkeypatch.setattr(admission_mod, "check_sealed", lambda stx, sealed: tuple(sealed))
    [res] = rig.admission.admit_batch([(stx.encode(), swapped)], gossip=True)
    assert res["status"] == "pending"


def test_refusals_each_get_their_code(rig: Rig) -> None:
    ok = [make_claim(rig.world) for _ in range(4)]
    committed = make_claim(rig.world)
    add_block(rig.world, rig.store, [committed])
    items: list[Item] = [(b"\x00garbage", []), (committed.encode(), []),
                         *((t.encode(), []) for t in ok)]
    codes = [r.get("code", r["status"]) for r in rig.admission.admit_batch(items, gossip=False)]
    # the mempool holds 3: the fourth good claim finds it full
    assert codes == ["malformed_tx", "duplicate_tx", "pending", "pending", "pending",
                     "mempool_full"]
    assert rig.admission.tx_status(committed.tx_id())["status"] == "committed"


def test_late_openings_of_a_committed_claim_are_kept_when_they_match(rig: Rig) -> None:
    stx, boxes = sealed_claim(rig.world)
    add_block(rig.world, rig.store, [stx])  # the block came before the gossip
    wrong = [(boxes[0][0], b"not the box")]
    rig.admission.admit_batch([(stx.encode(), wrong)], gossip=False)
    assert rig.openings.count() == 0
    [res] = rig.admission.admit_batch([(stx.encode(), boxes)], gossip=False)
    assert res["code"] == "duplicate_tx" and rig.openings.count() == 2


def test_gossip_is_admitted_silently_and_garbage_is_counted(rig: Rig) -> None:
    txs = [make_claim(rig.world) for _ in range(2)]
    rig.admission.on_gossip(encode_submission([(t.encode(), []) for t in txs]))
    assert all(rig.admission.tx_status(t.tx_id())["status"] == "pending" for t in txs)
    assert rig.frames == []  # a peer's txs are not gossiped again
    rig.admission.on_gossip(b"\xc1 not msgpack")
    assert "tpledger_gossip_rejected_total 1" in rig.admission.metrics.render()


def test_gossip_envelopes_are_bounded(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission_mod, "MAX_GOSSIP_ITEMS", 2)
    txs = [make_claim(rig.world) for _ in range(3)]
    rig.admission.admit_batch([(t.encode(), []) for t in txs], gossip=True)
    assert [len(parse_submission(p, 2)) for _, p in rig.frames] == [2, 1]


def test_rejected_ids_are_remembered_within_a_bound(rig: Rig,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission_mod, "MAX_REJECTED_REMEMBERED", 2)
    ids = [tx_id_of(bytes([i])) for i in range(3)]
    for tx_id in ids:
        rig.admission.reject(tx_id, RuleError("bad_rule", "refused by the block builder"))
    assert [rig.admission.tx_status(i)["status"] for i in ids] == ["unknown", "rejected",
                                                                    "rejected"]
    assert rig.admission.tx_status(ids[2])["code"] == "bad_rule"


def test_a_damaged_row_read_by_gossip_is_reported(rig: Rig,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def damaged(*a: object, **k: object) -> None:
        raise StoreCorruption("txs", b"\x00")

    monkeypatch.setattr(rig.store, "check_txs", damaged)
    rig.admission.on_gossip(encode_submission([(make_claim(rig.world).encode(), [])]))
    assert [who for _, who in rig.damage] == ["gossip"]
    assert len(rig.admission.mempool) == 0
