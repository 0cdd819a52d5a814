"""Proof benchmarks: bundle verification time, bundle size, proof generation rate.

Run: ``python -m bench.proof_bench [--blocks N] [--txs-per-block K]``. Builds a throwaway LMDB
store of certified blocks (4 validators, 3-of-4 certificates) in a temp dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tpledger.ledger.keys import verify
from tpledger.ledger.proofs import ProofBundle, Verifier, verify_bundle
from tpledger.ledger.tx import SignedTx
from tpledger.ledger.votes import PRECOMMIT, VOTE_KIND, Vote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.ledger import helpers as h


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    """Median over 3 runs of the mean time of ``n`` calls, in microseconds."""
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def bundle_at_1e9(b: ProofBundle) -> ProofBundle:
    """The same bundle as if the log had 10^9 leaves (30 path hashes, 5-byte integers) and
    the registry 100,020 slots (17 path hashes)."""
    size = 10**9
    header = dataclasses.replace(b.header, tree_size=size, height=10**7, registry_size=100_020)
    return dataclasses.replace(b, leaf_index=size - 1,
                               path=tuple(bytes([i]) * 32 for i in range(30)), header=header,
                               signer_path=tuple(bytes([i]) * 32 for i in range(17)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blocks", type=int, default=100)
    ap.add_argument("--txs-per-block", type=int, default=50)
    ap.add_argument("--proofs", type=int, default=3000)
    args = ap.parse_args(argv)

    world = h.make_world("bench")
    with tempfile.TemporaryDirectory() as tmp:
        store = h.open_store(Path(tmp) / "db", world, map_size=4 * 1024**3)
        t0 = time.perf_counter()
        tx_ids: list[bytes] = []
        for _ in range(args.blocks):
            txs = [h.make_claim(world, i % 2, i % 2) for i in range(args.txs_per_block)]
            h.add_block(world, store, txs)
            tx_ids.extend(t.tx_id() for t in txs)
        build_s = time.perf_counter() - t0
        n = len(tx_ids)
        print(f"store: {store.height} blocks, {n} txs, built+applied in {build_s:.1f} s "
              f"({n / build_s:.0f} tx/s incl. signing, 2 signature checks per tx, fsync per block)")

        rng = random.Random(1)
        sample = [rng.choice(tx_ids) for _ in range(args.proofs)]
        t0 = time.perf_counter()
        bundles = [store.proof(t) for t in sample]
        gen_s = time.perf_counter() - t0
        print(f"proof generation (LMDB, head checkpoint): {args.proofs / gen_s:,.0f} proofs/s "
              f"({gen_s / args.proofs * 1e6:.0f} us each)")
        mid = store.height // 2
        early = tx_ids[: len(tx_ids) // 4]
        t0 = time.perf_counter()
        for t in early[:500]:
            store.proof(t, height=mid)
        old_s = time.perf_counter() - t0
        print(f"proof generation at past height {mid}: "
              f"{old_s / min(500, len(early)) * 1e6:.0f} us each")

        b = bundles[0]
        data = b.to_bytes()
        v = Verifier(world.genesis)
        assert v.verify_bundle(data).ok
        verify_us = _per_call_us(lambda: v.verify_bundle(data), 1000)
        fn_us = _per_call_us(lambda: verify_bundle(data, world.genesis), 1000)
        obj_us = _per_call_us(lambda: v.verify_bundle(b), 1000)

        stx = SignedTx.decode(b.tx)
        cert = b.certificate
        sig0 = cert.signatures[0]
        vote = Vote(cert.height, cert.round, PRECOMMIT, cert.block_hash, sig0.validator).encode()
        key0 = world.genesis.validator_keys[sig0.validator]
        ed_us = _per_call_us(lambda: verify(key0, world.chain_id, VOTE_KIND, vote,
                                            sig0.signature), 1000)
        tx_us = _per_call_us(lambda: stx.verify(world.chain_id), 1000)
        dec_us = _per_call_us(lambda: ProofBundle.from_bytes(data), 1000)
        print(f"bundle verification (bytes -> result, 1 tx + {len(cert.signatures)} precommit "
              f"signatures): {verify_us:.0f} us  [verify_bundle(): {fn_us:.0f} us, "
              f"pre-decoded: {obj_us:.0f} us]")
        print(f"  of which: 1 Ed25519 verify (PyNaCl) {ed_us:.0f} us x "
              f"{1 + len(cert.signatures)} = {ed_us * (1 + len(cert.signatures)):.0f} us; "
              f"tx.verify {tx_us:.0f} us; bundle decode {dec_us:.0f} us")
        target = "met" if verify_us < 500 else "NOT met"
        print(f"  target < 500 us with 4 validators: {target}")

        big = bundle_at_1e9(b)
        print(f"bundle size now (tree size {b.tree_size}, path {len(b.path)}): {len(data)} bytes "
              f"(tx {len(b.tx)}, header {len(b.header.encode())}, "
              f"certificate {len(cert.encode())})")
        big_len = len(big.to_bytes())
        print(f"bundle size at 10^9 leaves (path 30): {big_len} bytes; "
              f"without the tx: {big_len - len(b.tx) - 3} bytes; "
              f"target < 1500 bytes: {'met' if big_len < 1500 else 'NOT met'} with the tx, "
              f"{'met' if big_len - len(b.tx) - 3 < 1500 else 'NOT met'} for the proof around it "
              f"(path {30 * 32 + 3} B, header ~{len(big.header.encode())} B, "
              f"certificate {len(cert.encode())} B, tx {len(b.tx)} B)")
        store.close()


if __name__ == "__main__":
    main()
