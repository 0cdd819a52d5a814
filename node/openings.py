"""Sealed patient openings, kept off-ledger beside the store.

Each is the sealed box (to one payer's X25519 key) whose digest the signed claim carries. Only
that payer can open it, and the API serves it only to a request signed by that payer. Forgetting
deletes it on this node: the on-ledger commitment then links to nobody.

Openings are stored only for committed claims, keyed by the claim's place in the log
(``height u64 || position u32 || payer org``), not by its (random) id: a block's openings are
then appended at the end of the table instead of dirtying one page each (measured: 0.5 µs
instead of 9 µs of CPU per claim once the table holds some 50,000 claims), and the oldest
openings, which retention deletes first, come first. The node finds a claim's place through
the ledger's tx index. A forgotten claim leaves a tombstone at its place (no personal data).

Every opening and tombstone is stored sealed with a checksum of its key and value
(``ledger.rowcheck``), checked on every read: a damaged one raises ``StoreCorruption``, it is
never served. The file's size is checked before any page is read.
"""

from __future__ import annotations

from pathlib import Path

from tpledger.ledger.errors import StoreCorruption
from tpledger.ledger.rowcheck import open_env, scrub_rows, seal, unseal
from tpledger.ledger.store import Store, place_key, put_in_key_order
from tpledger.node.errors import NodeError
from tpledger.node.submission import MAX_SEALED_BYTES

__all__ = ["MAX_SEALED_BYTES", "OpeningStore", "claim_location"]
_LOC_BYTES = 12  # height u64 || position u32

Location = tuple[int, int]  # (height, position) of a committed claim


def _key(height: int, position: int, org: str) -> bytes:
    return place_key(height, position) + org.encode()


class OpeningStore:
    def __init__(self, path: Path, map_size: int = 1 << 32) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.env = open_env(path, map_size=map_size, max_dbs=4, sync=True)  # size checked
        self.db = self.env.open_db(b"openings_by_location")
        # Places of claims whose openings were forgotten: a replayed submission carrying the
        # same sealed boxes must not bring them back. Holds places only, no personal data.
        self.tombstones = self.env.open_db(b"forgotten_locations")

    def put_many(self, items: list[tuple[int, int, str, bytes]]) -> None:
        """Store ``(height, position, payer org, sealed)`` openings, except forgotten ones."""
        if not items:
            return
        if any(len(sealed) > MAX_SEALED_BYTES for _, _, _, sealed in items):
            raise NodeError("sealed opening too large")
        rows = [(_key(h, p, org), sealed) for h, p, org, sealed in items]
        with self.env.begin(write=True, db=self.db) as txn:
            tombs = txn.cursor(db=self.tombstones)
            if tombs.last():  # forgotten once, forgotten for good
                newest = bytes(tombs.key())  # rows at later places cannot have a tombstone
                rows = [r for r in rows if r[0][:_LOC_BYTES] > newest
                        or txn.get(r[0][:_LOC_BYTES], db=self.tombstones) is None]
            # a block's openings come after every stored one: appended
            put_in_key_order(txn.cursor(), rows)

    def get(self, loc: Location, org: str) -> bytes | None:
        with self.env.begin(db=self.db) as txn:
            key = _key(*loc, org)
            v = txn.get(key)
            return None if v is None else unseal("openings", key, v)

    def orgs(self, loc: Location) -> list[str]:
        prefix = place_key(*loc)
        out = []
        with self.env.begin(db=self.db) as txn:
            cur = txn.cursor()
            if cur.set_range(prefix):
                for k in cur.iternext(values=False):
                    k = bytes(k)
                    if not k.startswith(prefix):
                        break
                    out.append(k[_LOC_BYTES:].decode())
        return out

    def is_forgotten(self, loc: Location) -> bool:
        with self.env.begin(db=self.tombstones) as txn:
            return txn.get(place_key(*loc)) is not None

    def tombstone(self, loc: Location) -> bytes | None:
        """The signed request kept when this claim's openings were forgotten (b"": expired by
        retention), or None if they were not."""
        key = place_key(*loc)
        with self.env.begin(db=self.tombstones) as txn:
            v = txn.get(key)
            return None if v is None else unseal("forgotten_locations", key, v)

    def oldest(self, limit: int) -> list[Location]:
        """Up to ``limit`` distinct places holding openings, oldest first."""
        out: list[Location] = []
        with self.env.begin(db=self.db) as txn:
            for k in txn.cursor().iternext(values=False):
                k = bytes(k)
                loc = (int.from_bytes(k[:8], "big"), int.from_bytes(k[8:_LOC_BYTES], "big"))
                if not out or out[-1] != loc:
                    if len(out) >= limit:
                        break
                    out.append(loc)
        return out

    def forget(self, loc: Location, org: str | None = None, request: bytes = b"") -> int:
        """Delete the openings of one claim (for one payer, or all); returns how many.

        Deleting all of them leaves a tombstone holding ``request``: the payer's signed forget
        request that entitled it (empty when retention expired the openings)."""
        orgs = [org] if org is not None else self.orgs(loc)
        n = 0
        with self.env.begin(write=True, db=self.db) as txn:
            for o in orgs:
                if txn.delete(_key(*loc, o)):
                    n += 1
            if org is None:
                key = place_key(*loc)
                txn.put(key, seal(key, request), db=self.tombstones)
        return n

    def scrub(self, after: bytes | None, limit: int, tombstones: bool = False
              ) -> tuple[int, bytes | None, list[StoreCorruption]]:
        """Check the seals of up to ``limit`` openings (or tombstones) after key ``after``."""
        db, table = ((self.tombstones, "forgotten_locations") if tombstones
                     else (self.db, "openings"))
        with self.env.begin(db=db) as txn:
            return scrub_rows(txn, db, table, after, limit)

    def count(self) -> int:
        with self.env.begin(db=self.db) as txn:
            return int(txn.stat(self.db)["entries"])

    def close(self) -> None:
        self.env.close()


def claim_location(store: Store, claim_id: bytes) -> Location | None:
    """(height, position) of a committed claim: where its openings are kept."""
    loc = store.tx_location(claim_id)
    return None if loc is None else (loc.height, loc.position)
