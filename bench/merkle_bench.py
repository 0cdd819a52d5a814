"""Merkle benchmark: pymerkle (in memory) against ``PersistentTree`` persisting to LMDB.

Run ``python -m bench.merkle_bench [--leaves 1000000]``. Measures, in one run:

* append rate: pymerkle ``InmemoryTree.append_entry`` vs ``PersistentTree.append_entries``
  writing nodes to LMDB in blocks of ``--batch`` leaves, one write transaction per block,
  committed with fsync (``sync=True, metasync=True``, as ``ledger/store.py`` opens LMDB), and
  again without fsync: the gap is the disk's fsync latency x blocks, paid once per block by
  the store anyway, whatever the tree;
* inclusion-proof generation: pymerkle ``prove_inclusion`` (current size) vs ours read from
  LMDB at the current size and at random past sizes; our consistency proofs at past sizes;
* our ``verify_inclusion`` rate.

The hashes are RFC 9162 on both sides; the bench checks both trees agree on the root.
"""

from __future__ import annotations

import argparse
import gc
import random
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat, starmap
from typing import Any

import lmdb
from pymerkle import InmemoryTree

from tpledger.ledger.merkle import verify_inclusion
from tpledger.ledger.merkle_tree import PersistentTree

_KEY = struct.Struct(">BQ")
_SIZE_KEY = b"size"


class LmdbNodeStore:
    """Minimal node store over one LMDB transaction: key = pack(">BQ", level, index)."""

    def __init__(self, txn: Any) -> None:
        self.txn = txn

    def get_node(self, level: int, index: int) -> bytes | None:
        v: bytes | None = self.txn.get(_KEY.pack(level, index))
        return v

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        return list(map(self.txn.get, starmap(_KEY.pack, keys)))

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        self.txn.put(_KEY.pack(level, index), digest)

    def put_nodes(self, level: int, start: int, digests: Sequence[bytes]) -> None:
        keys = map(_KEY.pack, repeat(level), range(start, start + len(digests)))
        with self.txn.cursor() as cur:
            cur.putmulti(list(zip(keys, digests, strict=True)))

    def get_size(self) -> int:
        v = self.txn.get(_SIZE_KEY)
        return 0 if v is None else int.from_bytes(v, "big")

    def set_size(self, size: int) -> None:
        self.txn.put(_SIZE_KEY, size.to_bytes(8, "big"))


@dataclass
class Row:
    name: str
    count: int
    seconds: float
    baseline: float | None = None  # pymerkle rate this row compares with

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.rate / self.baseline


@dataclass
class BenchResult:
    leaves: int
    rows: list[Row]
    root_hex: str

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def table(self) -> str:
        lines = [
            f"Merkle bench, {self.leaves:,} leaves, root {self.root_hex[:16]}...",
            f"{'operation':<52} {'count':>10} {'seconds':>9} {'ops/s':>12} {'vs pymerkle':>12}",
        ]
        for r in self.rows:
            ratio = "" if r.ratio is None else f"{r.ratio:.1f}x"
            lines.append(
                f"{r.name:<52} {r.count:>10,} {r.seconds:>9.3f} {r.rate:>12,.0f} {ratio:>12}"
            )
        return "\n".join(lines)


def make_entries(n: int, seed: int = 1) -> list[bytes]:
    """``n`` distinct 64-byte entries (a small signed transaction is ~200 bytes)."""
    pad = random.Random(seed).randbytes(56)
    pack = struct.Struct(">Q").pack
    return [pack(i) + pad for i in range(n)]


def _append_all(env: Any, entries: Sequence[bytes], batch: int) -> float:
    """Append ``entries`` in blocks of ``batch``, one committed write txn each; seconds taken."""
    t0 = time.perf_counter()
    for s in range(0, len(entries), batch):
        with env.begin(write=True) as txn:
            PersistentTree(LmdbNodeStore(txn)).append_entries(entries[s : s + batch])
    return time.perf_counter() - t0


def run_bench(
    leaves: int = 1_000_000,
    batch: int = 2000,
    proofs: int = 20_000,
    seed: int = 7,
    sync: bool = True,
) -> BenchResult:
    """Run every measurement once; returns the rows (no printing)."""
    if leaves < 2:
        raise ValueError("need at least 2 leaves")
    rng = random.Random(seed)
    entries = make_entries(leaves)
    rows: list[Row] = []

    # -- pymerkle, in memory -------------------------------------------------------------------
    pm = InmemoryTree()
    t0 = time.perf_counter()
    for e in entries:
        pm.append_entry(e)
    pm_append = Row(
        "pymerkle InmemoryTree.append_entry (in memory)", leaves, time.perf_counter() - t0
    )
    rows.append(pm_append)

    idx = [rng.randrange(leaves) for _ in range(proofs)]
    t0 = time.perf_counter()
    for i in idx:
        pm.prove_inclusion(i + 1)  # pymerkle counts leaves from one
    pm_proof = Row("pymerkle prove_inclusion (current size)", proofs, time.perf_counter() - t0)
    rows.append(pm_proof)
    pm_root = pm.get_root()
    del pm
    gc.collect()  # pymerkle's nodes form reference cycles: free them before timing ours

    # -- ours, persisting to LMDB --------------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="merkle-bench-") as tmp:
        env = lmdb.open(f"{tmp}/tree", map_size=1 << 34, sync=sync, metasync=sync)
        try:
            label = "fsync" if sync else "no fsync"
            rows.append(
                Row(
                    f"ours append_entries -> LMDB, {batch}/txn, {label}",
                    leaves,
                    _append_all(env, entries, batch),
                    pm_append.rate,
                )
            )
            if sync:  # the same appends without fsync: what the durable commits cost
                nosync = lmdb.open(f"{tmp}/nosync", map_size=1 << 34, sync=False, metasync=False)
                try:
                    seconds = _append_all(nosync, entries, batch)
                finally:
                    nosync.close()
                rows.append(
                    Row(
                        f"ours append_entries -> LMDB, {batch}/txn, no fsync",
                        leaves,
                        seconds,
                        pm_append.rate,
                    )
                )
            with env.begin() as txn:
                tree = PersistentTree(LmdbNodeStore(txn))
                root = tree.root()
                if root != pm_root:
                    raise RuntimeError("pymerkle and PersistentTree disagree on the root")

                t0 = time.perf_counter()
                paths = [tree.inclusion_path(i) for i in idx]
                rows.append(
                    Row(
                        "ours inclusion_path from LMDB, current size",
                        proofs,
                        time.perf_counter() - t0,
                        pm_proof.rate,
                    )
                )

                past: list[tuple[int, int]] = []
                for _ in range(proofs):
                    size = rng.randint(1, leaves)
                    past.append((rng.randrange(size), size))
                t0 = time.perf_counter()
                for i, size in past:
                    tree.inclusion_path(i, size)
                rows.append(
                    Row(
                        "ours inclusion_path from LMDB, random past sizes",
                        proofs,
                        time.perf_counter() - t0,
                        pm_proof.rate,
                    )
                )

                t0 = time.perf_counter()
                for _, size in past:
                    tree.consistency_path(rng.randint(0, size), size)
                rows.append(
                    Row(
                        "ours consistency_path from LMDB, random past sizes",
                        proofs,
                        time.perf_counter() - t0,
                    )
                )

                leaf_hashes = [tree.leaf_hash(i) for i in idx]
        finally:
            env.close()

    t0 = time.perf_counter()
    ok = 0
    for i, lh, path in zip(idx, leaf_hashes, paths, strict=True):
        ok += verify_inclusion(lh, i, leaves, path, root)
    rows.append(Row("ours merkle.verify_inclusion", proofs, time.perf_counter() - t0))
    if ok != proofs:
        raise RuntimeError(f"{proofs - ok} generated proofs did not verify")
    return BenchResult(leaves, rows, root.hex())


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--leaves", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=2000, help="leaves per LMDB write txn")
    p.add_argument("--proofs", type=int, default=20_000)
    p.add_argument("--no-sync", action="store_true", help="open LMDB without fsync")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res = run_bench(args.leaves, args.batch, args.proofs, sync=not args.no_sync)
    print(res.table())
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
