"""The openings store's integrity checks and the background scrub (``node/scrub.py``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import lmdb
import pytest

from tpledger.ledger.errors import StoreCorruption, StoreError
from tpledger.ledger.store import place_key
from tpledger.node.metrics import Metrics
from tpledger.node.openings import OpeningStore
from tpledger.node.scrub import Scrubber, ScrubSource


def _damage_opening(path: Path, key: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=4)
    db = env.open_db(b"openings_by_location", create=False)
    with env.begin(write=True) as txn:
        raw = bytearray(txn.get(key, db=db))
        raw[2] ^= 0x01
        txn.put(key, bytes(raw), db=db)
    env.close()


def _filled(path: Path, n: int = 50) -> OpeningStore:
    s = OpeningStore(path)
    s.put_many([(1, i, org, os.urandom(80)) for i in range(n) for org in ("cnam", "mut")])
    return s


def test_a_damaged_opening_is_refused_never_served(tmp_path: Path) -> None:
    _filled(tmp_path / "o").close()
    key = place_key(1, 7) + b"mut"
    _damage_opening(tmp_path / "o", key)
    s = OpeningStore(tmp_path / "o")
    try:
        with pytest.raises(StoreCorruption, match=f"openings/{key.hex()}"):
            s.get((1, 7), "mut")
        assert s.get((1, 7), "cnam") is not None
        n, after, damaged = s.scrub(None, 1000)
        assert (n, after, [d.key_hex for d in damaged]) == (100, None, [key.hex()])
    finally:
        s.close()


def test_a_half_length_openings_file_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path / "o", 400).close()
    data = tmp_path / "o" / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    with pytest.raises(StoreError, match="the store is damaged"):
        OpeningStore(tmp_path / "o")


def test_scrubber_checks_every_row_in_bounded_chunks_and_reports_damage(
        tmp_path: Path) -> None:
    _filled(tmp_path / "o").close()
    key = place_key(1, 3) + b"cnam"
    _damage_opening(tmp_path / "o", key)
    s = OpeningStore(tmp_path / "o")
    calls: list[int] = []

    def scan(after: bytes | None, limit: int) -> tuple[int, bytes | None, list[StoreCorruption]]:
        calls.append(limit)
        return s.scrub(after, limit)

    found: list[tuple[str, str]] = []
    m = Metrics()
    scrubber = Scrubber([ScrubSource("openings", scan)], rows_per_s=400, metrics=m,
                        on_damage=lambda exc, who: found.append((exc.key_hex, who)))
    try:
        started = asyncio.run(_timed(scrubber))
    finally:
        s.close()
    assert found == [(key.hex(), "scrub")]
    assert m.value("scrub_rows_total") == 100 and m.value("scrub_errors_total") == 1
    assert m.value("scrub_pass_rows") == 100
    assert set(calls) == {40} and len(calls) == 3  # a tenth of a second's rows per chunk
    assert started >= 100 / 400 * 0.9  # the rate holds: 100 rows at 400 rows/s


async def _timed(scrubber: Scrubber) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await scrubber.one_pass()
    return loop.time() - t0


def test_a_zero_rate_disables_the_scrub() -> None:
    m = Metrics()

    def scan(after: bytes | None, limit: int) -> tuple[int, bytes | None, list[StoreCorruption]]:
        raise AssertionError("not called")

    asyncio.run(Scrubber([ScrubSource("x", scan)], 0, m, lambda e, w: None).run())
    assert m.value("scrub_passes_total") == 0 and m.value("scrub_rows_total") == 0
