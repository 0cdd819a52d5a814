"""LPP table loader, digest and default share split (ledger/lpp.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpledger.ledger.lpp import (
    CSV_COLUMNS,
    LppEntry,
    LppTable,
    LppTableError,
    amo_base_of,
    default_shares,
)
from tpledger.ledger.tx import LppLine

HEADER = ",".join(CSV_COLUMNS)
ROW_A = '2210546,"Monture, avant 18 ans (OME)",frame,child,,3049,3049,verified'
ROW_B = "2261874,Verre OV1,lens,child,,1204,1204,verified"


def _csv(*rows: str) -> str:
    return "\n".join(["# version: t1", "# source: test", HEADER, *rows]) + "\n"


def test_default_table() -> None:
    t = LppTable.default()
    assert len(t) >= 10
    frame = t.get("2210546")
    assert frame is not None
    assert frame.max_price_cents == 3049 and frame.category == "frame"
    assert frame.age_group == "child" and frame.klass is None
    ov2 = t.get("2243540")
    assert ov2 is not None and (ov2.max_price_cents, ov2.amo_base_cents) == (4002, 2668)
    adult = t.get("2223342")
    assert adult is not None and adult.max_price_cents is None
    assert t.version
    assert [e.code for e in t] == sorted(e.code for e in t)
    assert "2210546" in t and "0000000" not in t and t.get("0000000") is None


def test_digest_stable() -> None:
    a = LppTable.from_csv_text(_csv(ROW_A, ROW_B))
    b = LppTable.from_csv_text(_csv(ROW_B, ROW_A))  # order-independent
    assert a.digest() == b.digest() and len(a.digest()) == 32
    assert LppTable.default().digest() == LppTable.default().digest()
    c = LppTable.from_csv_text(_csv(ROW_A, ROW_B.replace("1204,1204", "1204,1203")))
    assert c.digest() != a.digest()
    # provenance (status) and comments are not part of the digest
    d = LppTable.from_csv_text(_csv(ROW_A, ROW_B.replace("verified", "unverified")))
    assert d.digest() == a.digest()


def test_pinned_default_digest() -> None:
    # Changing the seed changes every genesis: update this on purpose only.
    assert LppTable.default().digest().hex() == (
        "a3f25cb30b0dfc8c5011b710ef06aef467b0a25f99909b988bc0776d74c66b49"
    )


@pytest.mark.parametrize(
    ("rows", "line", "needle"),
    [
        ((ROW_A, "123456,x,frame,child,,1,1,verified"), 5, "7 digits"),
        ((ROW_A, "1234567,x,hat,child,,1,1,verified"), 5, "category"),
        ((ROW_A, "1234567,x,frame,baby,,1,1,verified"), 5, "age_group"),
        ((ROW_A, "1234567,x,frame,child,C,1,1,verified"), 5, "klass"),
        ((ROW_A, "1234567,x,frame,child,,-1,1,verified"), 5, "amounts"),
        ((ROW_A, "1234567,x,frame,child,,1.5,1,verified"), 5, "amounts"),
        ((ROW_A, "1234567,x,frame,child,,01,1,verified"), 5, "amounts"),
        ((ROW_A, "1234567,x,frame,child,,1,1"), 5, "expected 8 fields"),
        ((ROW_A, "1234567,x,frame,child,,1,1,maybe"), 5, "status"),
        ((ROW_A, "1234567,,frame,child,,1,1,verified"), 5, "label"),
        ((ROW_A, ROW_A), 5, "duplicate LPP code 2210546 (first on line 4)"),
        ((ROW_A, '1234567,"x,frame,child,,1,1,verified'), 5, "malformed CSV"),
    ],
)
def test_bad_rows_name_the_line(rows: tuple[str, ...], line: int, needle: str) -> None:
    with pytest.raises(LppTableError) as ei:
        LppTable.from_csv_text(_csv(*rows), "t.csv")
    assert f"t.csv:{line}:" in str(ei.value)
    assert needle in str(ei.value)


def test_bad_header_and_file(tmp_path: Path) -> None:
    with pytest.raises(LppTableError, match="header"):
        LppTable.from_csv_text("code,label\n")
    with pytest.raises(LppTableError, match="no header"):
        LppTable.from_csv_text("# only comments\n")
    with pytest.raises(LppTableError, match="cannot read"):
        LppTable.load_csv(tmp_path / "missing.csv")
    p = tmp_path / "bad.csv"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(LppTableError, match="UTF-8"):
        LppTable.load_csv(p)
    good = tmp_path / "good.csv"
    good.write_text(_csv(ROW_A))
    assert LppTable.load_csv(good).version == "t1"


def test_entry_validation() -> None:
    with pytest.raises(LppTableError):
        LppEntry("1234567", "x", "frame", "child", None, True, None)
    with pytest.raises(LppTableError):
        LppTable([LppEntry("1234567", "x", "frame", "any", "A", 1, 1)] * 2)


def test_default_shares() -> None:
    t = LppTable.default()
    # child frame 30.49 (base 30.49) + two OV2 lenses 40.02 (base 26.68)
    lines = [LppLine("2210546", 1, 3049), LppLine("2243540", 2, 8004)]
    amo, amc = default_shares(lines, t)
    # 60 % rounded per line: 18.29 + 32.02 (2 x 26.68 = 53.36 -> 32.016 -> 32.02)
    assert amo == 1829 + 3202
    assert amo + amc == 3049 + 8004
    assert amo_base_of(lines, t) == 3049 + 2 * 2668
    # clamp: amount below the AMO share
    amo2, amc2 = default_shares([LppLine("2210546", 1, 100)], t)
    assert (amo2, amc2) == (100, 0)
    # adult frame: base 2.84 -> AMO 1.70, the AMC the rest
    assert default_shares([LppLine("2223342", 1, 5000)], t) == (170, 4830)
    with pytest.raises(LppTableError):
        default_shares([LppLine("0000000", 1, 1)], t)
