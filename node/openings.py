"""Sealed patient openings, kept off-ledger beside the store.

Each is the sealed box (to one payer's X25519 key) whose digest the signed claim carries. Only
that payer can open it, and the API serves it only to a request signed by that payer. Forgetting
deletes it on this node: the on-ledger commitment then links to nobody.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

from node.errors import NodeError

MAX_SEALED_BYTES = 4096


def _key(claim_id: bytes, org: str) -> bytes:
    return claim_id + org.encode()


class OpeningStore:
    def __init__(self, path: Path, map_size: int = 1 << 32) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(str(path), map_size=map_size, max_dbs=4, sync=True)
        except lmdb.Error as exc:
            raise NodeError(f"cannot open openings store at {path}: {exc}") from None
        self.db = self.env.open_db(b"openings")
        # Claim ids whose openings were forgotten: a replayed submission carrying the same
        # sealed boxes must not bring them back. Holds ids only, no personal data.
        self.tombstones = self.env.open_db(b"forgotten")

    def put_many(self, items: list[tuple[bytes, str, bytes]]) -> None:
        if not items:
            return
        if any(len(sealed) > MAX_SEALED_BYTES for _, _, sealed in items):
            raise NodeError("sealed opening too large")
        with self.env.begin(write=True, db=self.db) as txn:
            if txn.stat(self.tombstones)["entries"]:
                # forgotten once, forgotten for good
                items = [it for it in items if txn.get(it[0], db=self.tombstones) is None]
            txn.cursor().putmulti([(_key(claim_id, org), sealed)
                                   for claim_id, org, sealed in items])

    def get(self, claim_id: bytes, org: str) -> bytes | None:
        with self.env.begin(db=self.db) as txn:
            v = txn.get(_key(claim_id, org))
            return None if v is None else bytes(v)

    def orgs(self, claim_id: bytes) -> list[str]:
        out = []
        with self.env.begin(db=self.db) as txn:
            cur = txn.cursor()
            if cur.set_range(claim_id):
                for k in cur.iternext(values=False):
                    if not bytes(k).startswith(claim_id):
                        break
                    out.append(bytes(k)[len(claim_id):].decode())
        return out

    def is_forgotten(self, claim_id: bytes) -> bool:
        with self.env.begin(db=self.tombstones) as txn:
            return txn.get(claim_id) is not None

    def claim_ids(self, after: bytes = b"", limit: int = 10_000) -> list[bytes]:
        """Distinct claim ids holding openings, in key order, after ``after`` (paging)."""
        out: list[bytes] = []
        with self.env.begin(db=self.db) as txn:
            cur = txn.cursor()
            start = after + b"\xff" * 64 if after else b""
            if not cur.set_range(start):
                return out
            for k in cur.iternext(values=False):
                cid = bytes(k)[:32]
                if not out or out[-1] != cid:
                    if len(out) >= limit:
                        break
                    out.append(cid)
        return out

    def forget(self, claim_id: bytes, org: str | None = None) -> int:
        """Delete the openings of one claim (for one payer, or all); returns how many."""
        orgs = [org] if org is not None else self.orgs(claim_id)
        n = 0
        with self.env.begin(write=True, db=self.db) as txn:
            for o in orgs:
                if txn.delete(_key(claim_id, o)):
                    n += 1
            if org is None:
                txn.put(claim_id, b"", db=self.tombstones)
        return n

    def count(self) -> int:
        with self.env.begin(db=self.db) as txn:
            return int(txn.stat(self.db)["entries"])

    def close(self) -> None:
        self.env.close()
