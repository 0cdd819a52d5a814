"""Byte scanner for the privacy tests: is any NIR or birth date written anywhere?

:func:`identity_needles` expands each (NIR, birth date) into every form it could be written in;
:func:`scan_paths` reads every byte of every file under the given roots (memory-mapped, so
sparse LMDB files cost little) and reports each hit as ``(where, form)`` — the form's *kind*,
never the value itself, so a failing test does not print personal data either.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

Needle = tuple[str, bytes]  # (kind, bytes)


def _nir_forms(nir: str) -> list[Needle]:
    n = nir.replace(" ", "").upper()
    grouped = f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}"
    forms = [("nir", n), ("nir-lower", n.lower()), ("nir-grouped", grouped),
             ("nir-without-key", n[:13])]
    out = [(kind, s.encode("ascii")) for kind, s in forms]
    out.append(("nir-utf16", n.encode("utf-16-le")))
    return out


def _date_forms(birth_date: str) -> list[Needle]:
    y, m, d = birth_date.split("-")
    forms = [("birth-date", birth_date), ("birth-date-compact", f"{y}{m}{d}"),
             ("birth-date-fr", f"{d}/{m}/{y}"), ("birth-date-fr-compact", f"{d}{m}{y}"),
             ("birth-date-fr-dashes", f"{d}-{m}-{y}")]
    out = [(kind, s.encode("ascii")) for kind, s in forms]
    out.append(("birth-date-utf16", birth_date.encode("utf-16-le")))
    return out


def identity_needles(patients: Iterable[tuple[str, str]]) -> list[Needle]:
    """Every written form of every NIR and birth date (deduplicated)."""
    seen: dict[bytes, str] = {}
    for nir, bd in patients:
        for kind, b in (*_nir_forms(nir), *_date_forms(bd)):
            seen.setdefault(b, kind)
    return [(kind, b) for b, kind in seen.items()]


def scan_bytes(data: bytes | mmap.mmap, needles: Sequence[Needle]) -> list[str]:
    return [kind for kind, b in needles if data.find(b) != -1]


def scan_file(path: Path, needles: Sequence[Needle]) -> list[str]:
    size = path.stat().st_size
    if size == 0:
        return []
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return scan_bytes(mm, needles)


def scan_paths(roots: Iterable[Path], needles: Sequence[Needle]) -> list[tuple[str, str]]:
    """Hits ``(file, kind)`` in every regular file under ``roots`` (symlinks not followed)."""
    hits: list[tuple[str, str]] = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                hits.extend((str(p), kind) for kind in scan_file(p, needles))
    return hits


def scan_texts(items: Iterable[tuple[str, bytes]], needles: Sequence[Needle]
               ) -> list[tuple[str, str]]:
    """Hits ``(where, kind)`` in in-memory documents (e.g. ``/metrics`` pages)."""
    return [(where, kind) for where, data in items for kind in scan_bytes(data, needles)]
