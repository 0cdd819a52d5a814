"""Row checksums (``ledger.rowcheck``): every single-bit flip of a row is caught, the C fast
paths give the Python reference's bytes, and the store refuses damaged rows on every read path
(get, cursor scans, the head check, the scrub) with ``StoreCorruption`` naming table and key."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ledger import helpers as h
from tpledger.ledger import rowcheck
from tpledger.ledger.encoding import _c
from tpledger.ledger.errors import StoreCorruption, StoreError
from tpledger.ledger.rowcheck import py_seal_rows, py_unseal, seal, seal_rows, unseal
from tpledger.ledger.store import place_key
from tpledger.ledger.tx import SignedTx

needs_c = pytest.mark.skipif(getattr(_c, "seal_rows", None) is None,
                             reason="ledger._speedups is not built here")
UNSEALS = [pytest.param(py_unseal, id="python"),
           pytest.param(unseal, id="c", marks=needs_c)]


def _flips(data: bytes) -> list[bytes]:
    out = []
    for i in range(len(data) * 8):
        b = bytearray(data)
        b[i // 8] ^= 1 << (i % 8)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("unseal_fn", UNSEALS)
def test_every_single_bit_flip_of_a_row_is_detected(unseal_fn: object) -> None:
    key, value = place_key(7, 3), os.urandom(200)
    stored = seal(key, value)
    assert stored[:-4] == value and unseal_fn("claims", key, stored) == value  # type: ignore
    for bad in _flips(stored):  # value and seal
        with pytest.raises(StoreCorruption):
            unseal_fn("claims", key, bad)  # type: ignore[operator]
    for bad_key in _flips(key):  # the row read at another key
        with pytest.raises(StoreCorruption):
            unseal_fn("claims", bad_key, stored)  # type: ignore[operator]
    for short in (b"", b"\x00", stored[:3]):
        with pytest.raises(StoreCorruption):
            unseal_fn("claims", key, short)  # type: ignore[operator]


def test_the_error_names_table_and_key_never_the_value() -> None:
    key, value = b"\x01" * 12, b"NIR-LIKE-180057512345627"
    bad = bytearray(seal(key, value))
    bad[0] ^= 1
    with pytest.raises(StoreCorruption) as ei:
        unseal("openings", key, bytes(bad))
    assert ei.value.table == "openings" and ei.value.key_hex == key.hex()
    assert str(ei.value) == (f"store damaged at openings/{key.hex()}: resync this node "
                             "(docs/operations.md)")
    assert isinstance(ei.value, StoreError) and "1800575" not in str(ei.value)


def test_the_seal_is_zlib_crc32_of_key_then_value() -> None:
    key, value = b"k", b"value"
    assert seal(key, value)[-4:] == zlib.crc32(key + value).to_bytes(4, "big")


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=3000)), max_size=20))
def test_c_seal_rows_and_unseal_match_the_python_reference(
        rows: list[tuple[bytes, bytes]]) -> None:
    assert _c.seal_rows(rows) == py_seal_rows(rows) == [(k, seal(k, v)) for k, v in rows]
    for k, v in py_seal_rows(rows):
        assert _c.unseal(k, v) == py_unseal("t", k, v)


@needs_c
def test_c_seal_rows_refuses_what_is_not_bytes_rows() -> None:
    for bad in ([(b"k", "v")], [(b"k",)], [[b"k", b"v"]], [(bytearray(b"k"), b"v")]):
        with pytest.raises(TypeError):
            _c.seal_rows(bad)
    with pytest.raises(TypeError):
        _c.seal_rows(row for row in [(b"k", b"v")])
    assert seal_rows(row for row in [(b"k", b"v")]) == [(b"k", seal(b"k", b"v"))]


# -- the store -------------------------------------------------------------------------------
WORLD = h.make_world("rowcheck")


def _store(path: Path) -> list[SignedTx]:
    s = h.open_store(path, WORLD)
    txs = h.fill_store(WORLD, s, blocks=4, txs_per_block=3)
    s.close()
    return txs


def _damage(path: Path, table: str, key: bytes, byte: int = 0) -> None:
    """Flip one bit of a stored row's value in place (what a bad disk does)."""
    env = lmdb.open(str(path), max_dbs=16)
    try:
        db = env.open_db(table.encode(), create=False)
        with env.begin(write=True) as txn:
            raw = bytearray(txn.get(key, db=db))
            raw[byte] ^= 0x10
            txn.put(key, bytes(raw), db=db)
    finally:
        env.close()


def test_every_read_path_refuses_a_damaged_claim_row(tmp_path: Path) -> None:
    txs = _store(tmp_path / "db")
    claim = txs[0].tx_id()
    _damage(tmp_path / "db", "claims", place_key(1, 0), byte=40)
    with h.open_store(tmp_path / "db", WORLD) as s:
        with pytest.raises(StoreCorruption, match=r"claims/" + place_key(1, 0).hex()):
            s.claim(claim)
        with pytest.raises(StoreCorruption):
            s.claims_page(None, 100)
        assert s.claim(txs[1].tx_id()) is not None  # the other rows are still served
        s.verify_head()  # the head is intact: the node may start, and refuses this row only
        n, after, damaged = s.scrub("claims", None, 1000)
        assert (n, after) == (s.entries("claims"), None)
        assert [(d.table, d.key_hex) for d in damaged] == [("claims", place_key(1, 0).hex())]


@pytest.mark.parametrize("table,key", [
    ("headers", (2).to_bytes(8, "big")), ("certs", (2).to_bytes(8, "big")),
    ("blocks", place_key(2, 1)), ("meta", b"l/height"),
])
def test_damaged_rows_of_every_table_are_refused(tmp_path: Path, table: str, key: bytes) -> None:
    txs = _store(tmp_path / "db")
    _damage(tmp_path / "db", table, key, byte=1)
    with h.open_store(tmp_path / "db", WORLD) as s:
        with pytest.raises(StoreCorruption, match=f"{table}/{key.hex()}"):
            if table == "headers":
                s.header(2)
            elif table == "certs":
                s.certificate(2)
            elif table == "blocks":
                s.block(2)
            else:
                s.height  # noqa: B018
        if table == "blocks":
            with pytest.raises(StoreCorruption):
                s.tx(txs[4].tx_id())  # block 2's second tx (3 claims a block, then decisions)
        damaged = [d for t in ("headers", "certs", "blocks", "meta")
                   for d in s.scrub(t, None, 10_000)[2]]
        assert [(d.table, d.key_hex) for d in damaged] == [(table, key.hex())]


def test_tree_and_txloc_rows_are_checked(tmp_path: Path) -> None:
    txs = _store(tmp_path / "db")
    _damage(tmp_path / "db", "txloc", txs[0].tx_id(), byte=2)
    _damage(tmp_path / "db", "tree", b"\x00" + (0).to_bytes(8, "big"), byte=5)
    with h.open_store(tmp_path / "db", WORLD) as s:
        with pytest.raises(StoreCorruption, match="txloc/"):
            s.tx_location(txs[0].tx_id())
        with pytest.raises(StoreCorruption, match="tree/"):
            s.proof(txs[1].tx_id())


def test_head_check_refuses_a_damaged_or_inconsistent_head(tmp_path: Path) -> None:
    _store(tmp_path / "db")
    with h.open_store(tmp_path / "db", WORLD) as s:
        s.verify_head()
        head = s.height
    _damage(tmp_path / "db", "certs", head.to_bytes(8, "big"), byte=3)
    with h.open_store(tmp_path / "db", WORLD) as s, pytest.raises(
            StoreError, match=r"damaged at its head.*docs/operations\.md"):
        s.verify_head()
    # a consistent forgery (sealed) of the tree size: the head check compares with the header
    _store(tmp_path / "db2")
    env = lmdb.open(str(tmp_path / "db2"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.put(b"size", seal(b"size", (1).to_bytes(8, "big")), db=env.open_db(b"tree", txn=txn))
    env.close()
    with h.open_store(tmp_path / "db2", WORLD) as s, pytest.raises(
            StoreError, match="tree size differs"):
        s.verify_head()


def test_a_block_missing_a_row_is_refused(tmp_path: Path) -> None:
    _store(tmp_path / "db")
    env = lmdb.open(str(tmp_path / "db"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.delete(place_key(2, 2), db=env.open_db(b"blocks", txn=txn))
    env.close()
    with h.open_store(tmp_path / "db", WORLD) as s, pytest.raises(StoreCorruption):
        s.block(2)


def test_scrub_resumes_chunk_by_chunk(tmp_path: Path) -> None:
    _store(tmp_path / "db")
    with h.open_store(tmp_path / "db", WORLD) as s:
        total, after, seen = s.entries("blocks"), None, 0
        while True:
            n, after, damaged = s.scrub("blocks", after, 5)
            seen += n
            assert not damaged and n <= 5
            if after is None:
                break
        assert seen == total
        with pytest.raises(StoreError):
            s.scrub("nope", None, 1)


def test_checks_off_serve_the_damaged_value(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: without the seal check, a flipped bit is served as data."""
    txs = _store(tmp_path / "db")
    with h.open_store(tmp_path / "db", WORLD) as s:
        before = s.claim(txs[0].tx_id())
    _damage(tmp_path / "db", "claims", place_key(1, 0), byte=60)
    monkeypatch.setattr(rowcheck, "_c_unseal", None)
    monkeypatch.setattr(rowcheck, "py_unseal", lambda table, key, stored: bytes(stored[:-4]))
    with h.open_store(tmp_path / "db", WORLD) as s:
        try:
            after = s.claim(txs[0].tx_id())
        except StoreError:  # the flip may also break the encoding: then caught by the decoder
            return
    assert after != before


def test_a_format_2_store_is_refused_with_what_to_do(tmp_path: Path) -> None:
    _store(tmp_path / "db")
    env = lmdb.open(str(tmp_path / "db"), max_dbs=16)
    with env.begin(write=True) as txn:  # format 2 stored its values unsealed
        txn.put(b"l/format", b"\x02", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(StoreError, match=r"store format 02 .* older version.*operations\.md"):
        h.open_store(tmp_path / "db", WORLD)
