"""Audit: passes on a good store, names the first bad height after on-disk corruption."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import lmdb
import pytest

from tpledger.ledger.audit import audit
from tpledger.ledger.rowcheck import seal, unseal
from tpledger.ledger.tx import SignedTx, sign_tx

try:
    from tests.ledger import helpers as h
except ModuleNotFoundError:  # pytest run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ledger import helpers as h

WORLD = h.make_world("audit")
HEIGHTS = 6


def _build(path: Path) -> None:
    s = h.open_store(path, WORLD)
    h.fill_store(WORLD, s, blocks=HEIGHTS, txs_per_block=3)
    s.close()


def _poke(path: Path, db: str, key: bytes, value: bytes | None) -> None:
    """Rewrite one row as a forger would: sealed, so only the ledger's checks can tell."""
    env = lmdb.open(str(path), max_dbs=16, map_size=64 * 1024 * 1024)
    try:
        handle = env.open_db(db.encode(), create=False)
        with env.begin(write=True) as txn:
            if value is None:
                txn.delete(key, db=handle)
            else:
                txn.put(key, seal(key, value), db=handle)
    finally:
        env.close()


def _read(path: Path, db: str, key: bytes) -> bytes:
    env = lmdb.open(str(path), max_dbs=16, map_size=64 * 1024 * 1024, readonly=True)
    try:
        handle = env.open_db(db.encode(), create=False)
        with env.begin() as txn:
            v = txn.get(key, db=handle)
            assert v is not None
            return unseal(db, key, bytes(v))
    finally:
        env.close()


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def test_audit_passes_and_reports_progress(tmp_path: Path) -> None:
    _build(tmp_path / "db")
    calls: list[tuple[int, int]] = []
    report = audit(tmp_path / "db", WORLD.genesis, WORLD.lpp,
                   progress=lambda i, n: calls.append((i, n)))
    assert report.ok, report
    assert report.heights_checked == HEIGHTS and report.first_bad_height is None
    assert calls == [(i, HEIGHTS) for i in range(1, HEIGHTS + 1)]
    # also on an open Store
    s = h.open_store(tmp_path / "db", WORLD)
    assert audit(s, WORLD.genesis, WORLD.lpp).ok
    s.close()


def _tx_with_other_signature(raw: bytes) -> bytes:
    stx = SignedTx.decode(raw)
    return SignedTx(stx.body, stx.signer, bytes(64)).encode()


@pytest.mark.parametrize(
    "target",
    ["tx_garbage", "tx_resigned", "tx_deleted", "header_garbage", "header_other",
     "cert_garbage", "cert_other", "txloc", "tree_node", "claim"],
)
def test_audit_names_first_bad_height(tmp_path: Path, target: str) -> None:
    path = tmp_path / "db"
    _build(path)
    bad_h = 3
    if target == "tx_garbage":
        _poke(path, "blocks", _u64(bad_h) + _u64(1)[4:], b"\x93garbage")
    elif target == "tx_resigned":
        key = _u64(bad_h) + (1).to_bytes(4, "big")
        _poke(path, "blocks", key, _tx_with_other_signature(_read(path, "blocks", key)))
    elif target == "tx_deleted":
        _poke(path, "blocks", _u64(bad_h) + (0).to_bytes(4, "big"), None)
    elif target == "header_garbage":
        _poke(path, "headers", _u64(bad_h), b"\x00")
    elif target == "header_other":
        _poke(path, "headers", _u64(bad_h), _read(path, "headers", _u64(bad_h + 1)))
    elif target == "cert_garbage":
        _poke(path, "certs", _u64(bad_h), b"\xc1")
    elif target == "cert_other":
        _poke(path, "certs", _u64(bad_h), _read(path, "certs", _u64(bad_h - 1)))
    elif target == "txloc":
        s = h.open_store(path, WORLD)
        tx_id = SignedTx.decode(s.block(bad_h).txs[2]).tx_id()
        loc = s.tx_location(tx_id)
        s.close()
        assert loc is not None
        from tpledger.ledger.store import TxLocation

        _poke(path, "txloc", tx_id, TxLocation(loc.height, 0, loc.leaf_index).encode())
    elif target == "tree_node":
        # the first leaf of block 3 (tree sizes: 3 per block + decision/payment pairs)
        s = h.open_store(path, WORLD)
        leaf = s.header(bad_h - 1).tree_size
        s.close()
        _poke(path, "tree", b"\x00" + _u64(leaf), b"\x11" * 32)
    elif target == "claim":
        s = h.open_store(path, WORLD)
        cid = SignedTx.decode(s.block(1).txs[1]).tx_id()
        other = s.claim(SignedTx.decode(s.block(1).txs[2]).tx_id())
        s.close()
        assert other is not None
        _poke(path, "claims", cid, other.encode())
        bad_h = HEIGHTS  # found by the final state comparison
    report = audit(path, WORLD.genesis, WORLD.lpp)
    assert not report.ok
    assert report.first_bad_height == bad_h, report
    assert report.heights_checked == (bad_h - 1 if target != "claim" else HEIGHTS)
    assert report.reason


def test_audit_of_wrong_genesis_or_missing_dir(tmp_path: Path) -> None:
    _build(tmp_path / "db")
    other = h.make_world("not-audit")
    r = audit(tmp_path / "db", other.genesis, other.lpp)
    assert not r.ok and "another genesis" in r.reason
    r = audit(tmp_path / "missing", WORLD.genesis, WORLD.lpp)
    assert not r.ok and r.first_bad_height is None


@pytest.mark.parametrize("change", ["repointed", "extra", "deleted"])
def test_audit_replays_the_client_reference_index(tmp_path: Path, change: str) -> None:
    """The (optician, client reference) index is state: reopened, it still refuses a retry;
    forged (another claim's id, an extra row, a missing row), the audit names it."""
    from tpledger.ledger.errors import DuplicateReference
    from tpledger.ledger.state import reference_key

    path = tmp_path / "db"
    _build(path)
    s = h.open_store(path, WORLD)  # reopened: the index is on disk
    first = SignedTx.decode(s.block(1).txs[0])
    second = SignedTx.decode(s.block(1).txs[1]).tx_id()
    key = reference_key(first.parse().optician, first.parse().client_ref)  # type: ignore[union-attr]
    assert s.reference(key) == first.tx_id()
    assert s.entries("references") == s.entries("claims")
    retry = h.make_claim(WORLD)
    body = dataclasses.replace(retry.parse(), optician=first.parse().optician,  # type: ignore[type-var]
                               client_ref=first.parse().client_ref)  # type: ignore[union-attr]
    signer = WORLD.opticians[[o.org for o in WORLD.opticians].index(body.optician)].signer
    [err] = s.check_txs([sign_tx(WORLD.chain_id, signer, body)])
    assert isinstance(err, DuplicateReference) and err.existing_claim_id == first.tx_id()
    s.close()
    assert audit(path, WORLD.genesis, WORLD.lpp).ok
    if change == "repointed":
        _poke(path, "references", key, second)
    elif change == "extra":
        _poke(path, "references", b"opt\x00FAC-forged", second)
    else:
        _poke(path, "references", key, None)
    report = audit(path, WORLD.genesis, WORLD.lpp)
    assert not report.ok and report.first_bad_height == HEIGHTS
    assert "client-reference" in str(report.reason) or "client references" in str(report.reason)


# -- governance (issue 13) ---------------------------------------------------------------------
def _governed(path: Path) -> int:
    """A store where a shop is added, claims, is rotated, claims again and is revoked;
    returns the slot of its leaf."""
    from tests.ledger import registry_helpers as rh
    from tpledger.ledger.tx import REVOKE

    s = h.open_store(path, WORLD)
    rh.rotated_after_claim(WORLD, s, "shop-g")
    h.add_block(WORLD, s, [rh.change_shop(WORLD, "shop-g", REVOKE)])
    rec = s.participant("shop-g")
    s.close()
    assert rec is not None
    return rec.slot


def test_audit_replays_governance_and_counts_it(tmp_path: Path) -> None:
    _governed(tmp_path / "db")
    report = audit(tmp_path / "db", WORLD.genesis, WORLD.lpp)
    assert report.ok, report
    assert report.governance_txs == 3 and report.tx_count == 5  # add, rotate, revoke
    assert report.proposals_executed == 0


def _forge_reinstated(path: Path, slot: int) -> None:
    """The forger's edit: shop-g's revoked leaf set back to ACTIVE, sealed."""
    from tpledger.ledger.genesis import ACTIVE
    from tpledger.ledger.registry import decode_leaf, gov_key_slot

    key = gov_key_slot(slot)
    rec = decode_leaf(_read(path, "gov", key))
    _poke(path, "gov", key, dataclasses.replace(rec, status=ACTIVE).encode())


def test_audit_catches_a_forged_governance_row(tmp_path: Path) -> None:
    _forge_reinstated(tmp_path / "db", _governed(tmp_path / "db"))
    report = audit(tmp_path / "db", WORLD.genesis, WORLD.lpp)
    assert not report.ok and "governance row" in report.reason, report


def test_forged_governance_row_passes_without_the_gov_check(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Broken variant: without the comparison of the governance rows the forgery passes."""
    from tpledger.ledger import audit as audit_mod

    _forge_reinstated(tmp_path / "db", _governed(tmp_path / "db"))
    monkeypatch.setattr(audit_mod, "_check_gov", lambda store, state, head: None)
    assert audit(tmp_path / "db", WORLD.genesis, WORLD.lpp).ok
