"""Integrity of what an LMDB file holds: a checksum on every row, and the file's size.

LMDB trusts its file: a flipped bit in a value is served as it is, and a file shorter than
the pages its meta page names makes the first read of a missing page kill the process with
SIGBUS. So every LMDB environment of tpledger (the ledger store, the node's openings store):

- is opened through :func:`check_file_size`, before any database is opened (``open_db``
  already reads pages): ``(last_pgno + 1) * page size`` must fit in ``data.mdb``;
- stores every value *sealed*: ``value || crc32(key || value)`` (4 bytes, big-endian), and
  checks the seal on every read (:func:`unseal`), raising :class:`StoreCorruption` naming the
  table and the key, never the value.

Why CRC-32 (zlib's, the IEEE polynomial): it detects every single-bit flip, every burst of up
to 32 bits and every odd number of flipped bits in a row, and misses other random damage with
probability 2**-32; one C call (``zlib.crc32``, a few GB/s) per row, no allocation. A
cryptographic digest would protect against nobody more: whoever can write the file can
recompute any unkeyed digest; what stops a forger is the ledger itself (certificates, roots,
``tpledger audit``). The key is covered too, so a row moved to another key is refused.

The C fast paths (``ledger/_speedups.c``: ``seal_rows``, one call per table written, and
``unseal``) compute the same CRC; the Python functions here are their reference (the tests
compare both), and run alone when the extension is not built or ``TPLEDGER_NO_SPEEDUPS`` is set.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zlib import crc32

import lmdb

from tpledger.ledger.encoding import _c
from tpledger.ledger.errors import StoreCorruption, StoreError

SEAL_BYTES = 4
_SEAL = struct.Struct(">I")
_pack_seal = _SEAL.pack
RESYNC_HINT = ("move the directory aside and let the node fetch the blocks from its peers "
               "(docs/operations.md)")


def seal(key: bytes, value: bytes) -> bytes:
    """The stored form of ``value`` at ``key``: ``value || crc32(key || value)``."""
    return value + _pack_seal(crc32(value, crc32(key)))


def py_seal_rows(rows: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``[(key, seal(key, value)), ...]``: the Python reference of :func:`seal_rows`."""
    return [(k, v + _pack_seal(crc32(v, crc32(k)))) for k, v in rows]


_c_seal_rows = getattr(_c, "seal_rows", None)
_c_unseal = getattr(_c, "unseal", None)


def seal_rows(rows: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``[(key, seal(key, value)), ...]`` for ``(bytes, bytes)`` rows: the write hot path,
    one C call per table when the fast paths are built."""
    if _c_seal_rows is None:
        return py_seal_rows(rows)
    return _c_seal_rows(rows if type(rows) is list else list(rows))


def unseal(table: str, key: bytes | memoryview, stored: bytes | memoryview) -> bytes:
    """The value of a stored row, or :class:`StoreCorruption` if its seal does not match."""
    if _c_unseal is not None and type(stored) is bytes and type(key) is bytes:
        value = _c_unseal(key, stored)
        if value is None:
            raise StoreCorruption(table, key)
        return value
    return py_unseal(table, key, stored)


def py_unseal(table: str, key: bytes | memoryview, stored: bytes | memoryview) -> bytes:
    """The Python reference of :func:`unseal`."""
    body = stored[:-SEAL_BYTES]
    if len(stored) < SEAL_BYTES or crc32(body, crc32(key)) != _SEAL.unpack_from(
            stored, len(body))[0]:
        raise StoreCorruption(table, bytes(key))
    return bytes(body)  # no copy when ``stored`` is bytes


def check_file_size(env: lmdb.Environment, path: Path) -> None:
    """Refuse (StoreError) an environment whose ``data.mdb`` is shorter than the pages its
    meta page says are in use: reading one of those pages would SIGBUS the process."""
    try:
        need = (int(env.info()["last_pgno"]) + 1) * int(env.stat()["psize"])
        data = path / "data.mdb" if path.is_dir() else path
        have = os.path.getsize(data)
    except (lmdb.Error, OSError) as exc:
        raise StoreError(f"{path}: cannot check the store's size: {exc}") from None
    if have < need:
        raise StoreError(
            f"{path}: the store is damaged (data.mdb is {have} bytes, its pages need {need}): "
            f"{RESYNC_HINT}")


def open_env(path: Path, **kwargs: Any) -> lmdb.Environment:
    """``lmdb.open`` then :func:`check_file_size` (closing the environment if refused)."""
    try:
        env = lmdb.open(str(path), **kwargs)
    except lmdb.Error as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from None
    try:
        check_file_size(env, path)
    except StoreError:
        env.close()
        raise
    return env


def scrub_rows(txn: lmdb.Transaction, db: Any, table: str, after: bytes | None,
               limit: int) -> tuple[int, bytes | None, list[StoreCorruption]]:
    """Check the seals of up to ``limit`` rows of one table, in key order, strictly after
    ``after`` (from the first row if None). Returns (rows checked, the last key checked or
    None when the table's end was reached, the damaged rows found)."""
    damaged: list[StoreCorruption] = []
    n = 0
    last: bytes | None = None
    with txn.cursor(db=db) as cur:
        found = cur.set_range(after) if after is not None else cur.first()
        if found and after is not None and bytes(cur.key()) == after:
            found = cur.next()
        while found and n < limit:
            key = bytes(cur.key())
            try:
                unseal(table, key, bytes(cur.value()))
            except StoreCorruption as exc:
                damaged.append(exc)
            n += 1
            last = key
            found = cur.next()
    return n, (last if found else None), damaged


__all__ = ["RESYNC_HINT", "SEAL_BYTES", "check_file_size", "open_env", "py_seal_rows",
           "py_unseal", "scrub_rows", "seal", "seal_rows", "unseal"]
