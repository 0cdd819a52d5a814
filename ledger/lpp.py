"""The LPP table (optical codes, price limits, reimbursement bases) and default share split.

The table is a versioned CSV in ``seeds/`` (see ``seeds/SOURCES.md``; an installed wheel
carries it as package data in ``ledger/seeds/``, read with :mod:`importlib.resources`):
a ``#`` comment block (source, date, version) then a header row and one row per code::

    code,label,category,age_group,klass,max_price_cents,amo_base_cents,status

``max_price_cents`` is the PLV (prix limite de vente), empty when none; ``amo_base_cents`` is
the reimbursement base (tarif de responsabilité), empty when unknown; ``status`` says how well
the row is sourced (verified / secondary / unverified) and is provenance only: it is not part
of the entry nor of the digest. The loader is strict: any bad row raises
:class:`LppTableError` naming the file and line.

``digest()`` = tagged_hash("tpledger/lpp-table", pack([row, ...])) with rows sorted by code and
each row ``[code, label, category, age_group, klass, max_price_cents, amo_base_cents]``; the
genesis file pins it (``Genesis.lpp_table_digest``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from tpledger.ledger.encoding import pack, tagged_hash
from tpledger.ledger.errors import LedgerError

DEFAULT_TABLE_NAME = "lpp_optique_v1.csv"  # seeds/ here; tpledger/ledger/seeds/ in a wheel
SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
CSV_COLUMNS = (
    "code", "label", "category", "age_group", "klass", "max_price_cents", "amo_base_cents",
    "status",
)
CATEGORIES = ("frame", "lens", "other")
AGE_GROUPS = ("adult", "child", "any")
KLASSES = ("A", "B")
STATUSES = ("verified", "secondary", "unverified")
MAX_LABEL_LEN = 200
MAX_PRICE_CENTS = 10**8
MAX_CSV_BYTES = 64 * 1024 * 1024

# AMO rate on the reimbursement base for optical devices: 60 % (source: the CMU-C optical
# basket table, column "Régime obligatoire (60%)", e.g. 30,49 → 18,29 and 26,68 → 16,01, i.e.
# rounded to the nearest cent per item; see seeds/SOURCES.md). Exemptions (ALD, C2S, Alsace-
# Moselle regime...) change the rate; the ledger does not model them, payers decide the amount.
AMO_RATE_PERCENT = 60


class LppTableError(LedgerError):
    """A malformed LPP table file or an unknown code."""


@dataclass(frozen=True)
class LppEntry:
    """One LPP code as the rules see it."""

    code: str
    label: str
    category: str
    age_group: str
    klass: str | None
    max_price_cents: int | None  # PLV; None when the list sets no price limit
    amo_base_cents: int | None  # tarif de responsabilité; None when unknown

    def __post_init__(self) -> None:
        if not (isinstance(self.code, str) and len(self.code) == 7 and self.code.isascii()
                and self.code.isdigit()):
            raise LppTableError("LPP code must be 7 digits")
        if not isinstance(self.label, str) or not 1 <= len(self.label) <= MAX_LABEL_LEN:
            raise LppTableError(f"label must have 1 to {MAX_LABEL_LEN} characters")
        if not self.label.isprintable():
            raise LppTableError("label has a control character")
        if self.category not in CATEGORIES:
            raise LppTableError(f"category must be one of {', '.join(CATEGORIES)}")
        if self.age_group not in AGE_GROUPS:
            raise LppTableError(f"age_group must be one of {', '.join(AGE_GROUPS)}")
        if self.klass is not None and self.klass not in KLASSES:
            raise LppTableError("klass must be A, B or empty")
        for name in ("max_price_cents", "amo_base_cents"):
            v = getattr(self, name)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_PRICE_CENTS
            ):
                raise LppTableError(f"{name} must be empty or an integer in [0, {MAX_PRICE_CENTS}]")

    def to_wire(self) -> list[Any]:
        return [
            self.code, self.label, self.category, self.age_group, self.klass,
            self.max_price_cents, self.amo_base_cents,
        ]


class LppTable:
    """An immutable set of LPP entries keyed by code."""

    def __init__(self, entries: Iterable[LppEntry], version: str = "") -> None:
        by_code: dict[str, LppEntry] = {}
        for e in entries:
            if e.code in by_code:
                raise LppTableError(f"duplicate LPP code {e.code}")
            by_code[e.code] = e
        self._by_code = dict(sorted(by_code.items()))
        self.version = version
        self._digest: bytes | None = None

    def get(self, code: str) -> LppEntry | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[LppEntry]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __repr__(self) -> str:
        return f"LppTable(version={self.version!r}, entries={len(self)})"

    def digest(self) -> bytes:
        """Domain-separated SHA-256 over the canonical encoding of all rows, sorted by code."""
        if self._digest is None:
            rows = [e.to_wire() for e in self._by_code.values()]
            self._digest = tagged_hash("tpledger/lpp-table", pack(rows))
        return self._digest

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_csv_text(cls, text: str, name: str = "<lpp>") -> LppTable:
        """Parse the seed CSV format strictly; errors name ``name`` and the line number."""
        version = ""
        header_seen = False
        entries: list[LppEntry] = []
        seen: dict[str, int] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                meta = line[1:].strip()
                if meta.lower().startswith("version:"):
                    version = meta.split(":", 1)[1].strip()
                continue
            try:
                fields = next(csv.reader([raw], strict=True))
            except csv.Error as exc:
                raise LppTableError(f"{name}:{lineno}: malformed CSV ({exc})") from None
            if not header_seen:
                if tuple(f.strip() for f in fields) != CSV_COLUMNS:
                    raise LppTableError(
                        f"{name}:{lineno}: header must be {','.join(CSV_COLUMNS)}"
                    )
                header_seen = True
                continue
            if len(fields) != len(CSV_COLUMNS):
                raise LppTableError(
                    f"{name}:{lineno}: expected {len(CSV_COLUMNS)} fields, got {len(fields)}"
                )
            code, label, category, age_group, klass, max_price, base, status = (
                f.strip() for f in fields
            )
            if status not in STATUSES:
                raise LppTableError(f"{name}:{lineno}: status must be one of {STATUSES}")
            try:
                entry = LppEntry(
                    code=code,
                    label=label,
                    category=category,
                    age_group=age_group,
                    klass=klass or None,
                    max_price_cents=_cents(max_price),
                    amo_base_cents=_cents(base),
                )
            except LppTableError as exc:
                raise LppTableError(f"{name}:{lineno}: {exc}") from None
            if code in seen:
                raise LppTableError(
                    f"{name}:{lineno}: duplicate LPP code {code} (first on line {seen[code]})"
                )
            seen[code] = lineno
            entries.append(entry)
        if not header_seen:
            raise LppTableError(f"{name}: no header row")
        return cls(entries, version)

    @classmethod
    def load_csv(cls, path: str | Path) -> LppTable:
        p = Path(path)
        try:
            if p.stat().st_size > MAX_CSV_BYTES:
                raise LppTableError(f"{p}: LPP table file too large")
            data = p.read_bytes()
        except OSError as exc:
            raise LppTableError(f"{p}: cannot read LPP table: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LppTableError(f"{p}: not UTF-8 (byte {exc.start})") from None
        return cls.from_csv_text(text, str(p))

    load = load_csv  # alias

    @classmethod
    def default(cls) -> LppTable:
        """The shipped seed table (``seeds/lpp_optique_v1.csv``; in a wheel, package data)."""
        package = __package__ or "tpledger.ledger"
        res: Any = resources.files(package).joinpath("seeds", DEFAULT_TABLE_NAME)
        if not res.is_file():  # a source checkout: the repository's seeds/ folder
            res = SEEDS_DIR / DEFAULT_TABLE_NAME
        try:
            data = res.read_bytes()
        except OSError as exc:  # a broken install: name the file, never a traceback
            raise LppTableError(f"{res}: cannot read the shipped LPP table: {exc.strerror}"
                                ) from None
        return cls.from_csv_text(data.decode("utf-8"), f"seeds/{DEFAULT_TABLE_NAME}")


def _cents(field: str) -> int | None:
    if field == "":
        return None
    if not (field.isascii() and field.isdigit()) or (len(field) > 1 and field[0] == "0"):
        raise LppTableError("amounts must be empty or a non-negative integer of cents")
    return int(field)


class _Line(Protocol):
    @property
    def lpp(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def amount_cents(self) -> int: ...


def amo_base_of(lines: Sequence[_Line], table: LppTable) -> int:
    """Sum of qty × reimbursement base over the lines (0 where the base is unknown)."""
    total = 0
    for line in lines:
        entry = table.get(line.lpp)
        if entry is None:
            raise LppTableError(f"unknown LPP code {line.lpp}")
        total += line.qty * (entry.amo_base_cents or 0)
    return total


def default_shares(lines: Sequence[_Line], table: LppTable) -> tuple[int, int]:
    """(amo_cents, amc_cents): AMO pays 60 % of the base, the AMC the rest of the total.

    Per line, AMO = round-half-up(qty × base × 60 / 100) cents; the AMO share is capped at the
    claim total, and the AMC share is total − AMO (never negative). This is the common case
    only (no exemption, no 100 % Santé specifics); see AMO_RATE_PERCENT.
    """
    total = sum(line.amount_cents for line in lines)
    amo = 0
    for line in lines:
        entry = table.get(line.lpp)
        if entry is None:
            raise LppTableError(f"unknown LPP code {line.lpp}")
        base = line.qty * (entry.amo_base_cents or 0)
        amo += (base * AMO_RATE_PERCENT + 50) // 100
    amo = min(amo, total)
    return amo, max(0, total - amo)


__all__ = [
    "AMO_RATE_PERCENT",
    "DEFAULT_TABLE_NAME",
    "LppEntry",
    "LppTable",
    "LppTableError",
    "amo_base_of",
    "default_shares",
]
