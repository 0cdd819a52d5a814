"""End-to-end throughput and latency of a local 4-validator cluster (``tpledger bench``,
``python -m bench.cluster_bench``).

1. Measures the Ed25519 verification rate of this machine (PyNaCl, one core), before the run and
   again after it (the mean of the two), and derives the bound:
   ``cores x verifies/s / validators`` — every validator must verify every claim once.
2. Pre-signs claims in worker processes (not timed: signing and sealing are the opticians' work).
3. Starts a local cluster (real node subprocesses), then several client processes submit the
   claims in batches to the nodes (round robin), keeping a few batches in flight each, and ask
   (``wait_ms``: the node answers at the commit) until each batch's last claim is committed.
   Latency of a batch = submit -> seen committed.
4. Prints committed claims/s, commit latency p50/p99, and the ratio to the bound.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing


def ed25519_verifies_per_s(seconds: float = 1.0) -> float:
    """Single-core PyNaCl verification rate of a claim-sized message."""
    sk = nacl.signing.SigningKey.generate()
    msg = os.urandom(330)
    sig = sk.sign(msg).signature
    vk = sk.verify_key
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            vk.verify(msg, sig)
        n += 200
    return n / (time.perf_counter() - t0)


def _make_claims(args: tuple[str, str, str, int, int]
                 ) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    cluster_dir, optician, insurer, n, seed = args
    from tpledger.cli.claims import ClaimBuilder, ClaimInput
    from tpledger.ledger.genesis import Genesis
    from tpledger.ledger.keys import KeyFile
    from tpledger.ledger.patient import make_test_birth_date, make_test_nir

    root = Path(cluster_dir)
    info = json.loads((root / "cluster.json").read_text())
    key_path = next(c["key"] for c in info["clients"] if c["org"] == optician)
    # a bench cluster publishes no tariff version: the genesis table is in force, kept here
    # (``claim submit`` reads the one in force from the node, cli.governance.node_tariff)
    builder = ClaimBuilder(KeyFile.load(root / key_path), Genesis.load(root / info["genesis"]))
    rng = random.Random(seed)
    out = []
    for i in range(n):
        inp = ClaimInput(f"claim {i}", insurer, make_test_nir(rng), make_test_birth_date(rng),
                         "", (("2210546", 1, 3049), ("2261874", 2, 2408)))
        pc = builder.build(inp)
        out.append((pc.stx.encode(), list(pc.sealed)))
    return out


# -- the registry warm-up (--registry N) -------------------------------------------------------
REGISTRY_GOV_ORG = "federation"  # the cluster's opticians' federation registers the shops
SIRET_PREFIX = "9"  # far from La Poste's SIREN 356000000 (its SIRETs follow another rule)


def synthetic_shop(i: int) -> tuple[str, bytes, bytes, str, str]:
    """Shop ``i`` of the bench registry: org id, Ed25519 and X25519 public keys (derived from
    ``i``, distinct), a valid-format billing number and a SIRET with its Luhn key."""
    import nacl.bindings

    from tpledger.ledger.encoding import sha256
    from tpledger.ledger.genesis import luhn_complete

    seed = sha256(b"tpledger-bench-shop/" + i.to_bytes(4, "big"))
    ed, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
    x = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed)
    return (f"bench-shop-{i:06d}", ed, x, f"{i % 10**9:09d}",
            luhn_complete(f"{SIRET_PREFIX}{i:012d}"))


def _registry_batches(args: tuple[str, str, int, int, int]) -> list[bytes]:
    """ParticipantAdd txs of shops ``start .. start+count-1``, signed by the federation's
    admin, encoded as submission batches of ``batch`` txs."""
    genesis_path, admin_key, start, count, batch = args
    from tpledger.cli.governance import load_admin_key
    from tpledger.ledger.genesis import Genesis, Identifiers
    from tpledger.ledger.tx import ParticipantAdd, sign_tx
    from tpledger.node.submission import encode_submission

    chain_id = Genesis.load(genesis_path).chain_id
    admin = load_admin_key(Path(admin_key)).signer
    items: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    for i in range(start, start + count):
        org, ed, x, billing, siret = synthetic_shop(i)
        body = ParticipantAdd(org, REGISTRY_GOV_ORG, "optician", ed, x,
                              Identifiers("", billing, siret, ""))
        items.append((sign_tx(chain_id, admin, body).encode(), []))
    return [encode_submission(items[j:j + batch]) for j in range(0, len(items), batch)]


def store_bytes(data_dir: Path) -> int:
    """Bytes on disk (allocated blocks) of the files under a node's data directory."""
    total = 0
    for f in data_dir.rglob("*"):
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            total += st.st_blocks * 512
    return total


def warm_registry(root: Path, urls: list[str], admin_key: Path, n: int, clients: int,
                  batch: int, window: int, timeout_s: float) -> dict[str, Any]:
    """Register ``n`` synthetic shops (participant-add txs of the federation's admin, signed
    in worker processes, submitted in batches, each waited for): the registry the timed claims
    then meet. Returns its figures (size, seconds, the first node's store on disk)."""
    info = json.loads((root / "cluster.json").read_text())
    genesis = str(root / info["genesis"])
    reader = next(c["org"] for c in info["clients"] if c["role"] == "optician")
    workers = max(1, min(clients, os.cpu_count() or 1))
    per = -(-n // workers)
    t0 = time.monotonic()
    with mp.get_context("spawn").Pool(workers) as pool:
        made = pool.map(_registry_batches, [
            (genesis, str(admin_key), k * per, min(per, n - k * per), batch)
            for k in range(workers) if k * per < n])
        results = pool.map(_client, [(urls, str(root), reader, b, window, timeout_s)
                                     for b in made])
    seconds = time.monotonic() - t0
    added = sum(r.committed for r in results)
    errors = sum(r.errors for r in results)
    size = store_bytes(root / "nodes" / "v0" / "data")
    print(f"registry: {added:,} shops registered in {seconds:.1f} s (not timed; errors "
          f"{errors}); store of v0 on disk: {size / 1e6:,.1f} MB", flush=True)
    if added != n:
        from tpledger.cli.errors import CliError

        raise CliError(f"the registry warm-up committed {added} of {n} shops ({errors} "
                       "refused or lost)")
    return {"registry": added, "registry_warmup_s": round(seconds, 2),
            "registry_errors": errors, "store_bytes_after_registry": size}


@dataclass
class ClientResult:
    committed: int
    latencies_s: list[tuple[float, int]]  # (latency, claims in the batch)
    first_submit: float
    last_commit: float
    errors: int


def _client(args: tuple[list[str], str, str, list[bytes], int, float]) -> ClientResult:
    """Submit pre-signed batches (msgpack) to the nodes, ``window`` batches in flight."""
    urls, cluster_dir, org, batches, window, timeout_s = args
    from tpledger.cli.client import ClientError, NodeClient
    from tpledger.ledger.keys import KeyFile

    root = Path(cluster_dir)
    info = json.loads((root / "cluster.json").read_text())
    key = KeyFile.load(root / next(c["key"] for c in info["clients"] if c["org"] == org))
    chain_id = json.loads((root / info["genesis"]).read_text())["chain_id"]
    clients = [NodeClient(u, signer=key.signer, chain_id=chain_id, timeout_s=30, max_retries=50)
               for u in urls]
    inflight: deque[tuple[float, bytes, int, int]] = deque()  # (t0, last tx id, n, node)
    lat: list[tuple[float, int]] = []
    committed = errors = 0
    first = last = 0.0
    deadline = time.monotonic() + timeout_s
    queue = deque(batches)
    turn = 0
    while (queue or inflight) and time.monotonic() < deadline:
        while queue and len(inflight) < window:
            body = queue.popleft()
            node = turn % len(clients)
            turn += 1
            t0 = time.monotonic()
            first = first or t0
            try:
                _, data = clients[node].request("POST", "/v1/txs", body, "application/msgpack")
            except ClientError:
                errors += 1
                continue
            results = json.loads(data)["results"]
            ok = [r for r in results if r["status"] == "pending"]
            errors += len(results) - len(ok)
            if ok:
                inflight.append((t0, bytes.fromhex(ok[-1]["tx_id"]), len(ok), node))
        if not inflight:
            continue
        t0, tx_id, n, node = inflight[0]
        try:  # the node answers when a commit settles the batch's last tx (no busy polling)
            st = clients[node].tx_status(tx_id, wait_ms=2_000)["status"]
        except ClientError:
            st = "error"
        if st == "committed":
            now = time.monotonic()
            inflight.popleft()
            lat.append((now - t0, n))
            committed += n
            last = now
        elif st in ("rejected", "unknown"):
            inflight.popleft()
            errors += n
    for c in clients:
        c.close()
    return ClientResult(committed, lat, first, last, errors)


def _quantile(samples: list[tuple[float, int]], q: float) -> float:
    expanded = sorted(samples)
    total = sum(n for _, n in expanded)
    if total == 0:
        return float("nan")
    target, acc = q * total, 0
    for v, n in expanded:
        acc += n
        if acc >= target:
            return v
    return expanded[-1][0]


# The pause after each commit before the next height (``[consensus] timeout_commit_ms``; the
# node default, 100 ms, is meant for validators on separate hosts). On one host the last
# precommits arrive within a millisecond, and a long pause only leaves the CPUs idle.
LOCAL_TIMEOUT_COMMIT_MS = 10


def run(claims: int = 20_000, clients: int = 4, batch: int = 500, window: int = 2,
        validators: int = 4, out_json: Path | None = None,
        timeout_s: float = 300.0,
        timeout_commit_ms: int = LOCAL_TIMEOUT_COMMIT_MS, registry: int = 0) -> dict[str, Any]:
    from tpledger.cli.cluster import LocalCluster, init_cluster
    from tpledger.node.submission import encode_submission

    cores = os.cpu_count() or 1
    vps_before = ed25519_verifies_per_s()
    print(f"machine: {cores} cores; Ed25519 verify {vps_before:,.0f}/s/core before the run "
          f"(bound {cores} x {vps_before:,.0f} / {validators} validators = "
          f"{cores * vps_before / validators:,.0f} claims/s; measured again after it)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="tpledger-bench-") as tmp:
        root = Path(tmp) / "cluster"
        info = init_cluster(root, validators=validators)
        for node in info.nodes:
            with node.config.open("a") as fh:
                fh.write(f"\n[consensus]\ntimeout_commit_ms = {timeout_commit_ms}\n")
        with LocalCluster(root, validators=validators, startup_timeout_s=60) as cluster:
            extra: dict[str, Any] = {"registry": 0}
            if registry:
                extra = warm_registry(root, cluster.urls, cluster.admin_key(REGISTRY_GOV_ORG),
                                      registry, clients, batch, window, timeout_s)
            pairs = [("optic-paris", "mutuelle-a"), ("optic-lyon", "mutuelle-b")]
            per = claims // clients
            t_gen = time.monotonic()
            with mp.get_context("spawn").Pool(min(clients, cores)) as pool:
                made = pool.map(_make_claims, [
                    (str(root), *pairs[i % 2], per, 1000 + i) for i in range(clients)])
            print(f"pre-signed {per * clients:,} claims in {time.monotonic() - t_gen:.1f} s "
                  "(not timed)", flush=True)
            jobs = []
            for i, items in enumerate(made):
                batches = [encode_submission(items[j:j + batch])
                           for j in range(0, len(items), batch)]
                jobs.append((cluster.urls, str(root), pairs[i % 2][0], batches, window,
                             timeout_s))
            h0 = int(_status(cluster.urls[0])["height"])
            pids = [p.pid for p in cluster.procs.values()]
            cpu0 = _cpu_seconds(pids)
            with mp.get_context("spawn").Pool(clients) as pool:
                results = pool.map(_client, jobs)
            cpu1 = _cpu_seconds(pids)
            h1 = int(_status(cluster.urls[0])["height"])
            dead = cluster.dead_nodes()
            extra["store_bytes"] = store_bytes(root / "nodes" / "v0" / "data")
    return _report(results, cores, validators, vps_before, cpu0, cpu1, h1 - h0, dead,
                   {"claims": claims, "clients": clients, "batch": batch, "window": window,
                    **extra}, timeout_commit_ms, out_json)


def _report(results: list[ClientResult], cores: int, validators: int, vps_before: float,
            cpu0: float | None, cpu1: float | None, blocks: int, dead: list[str],
            load: dict[str, Any], timeout_commit_ms: int,
            out_json: Path | None) -> dict[str, Any]:
    """The figures of a run (printed, and written to ``out_json`` if given)."""
    # The machine's speed drifts: the bound uses the mean of the rates before and after the run
    # (both on an idle machine), and the JSON keeps both.
    vps_after = ed25519_verifies_per_s()
    vps = (vps_before + vps_after) / 2
    bound = cores * vps / validators
    committed = sum(r.committed for r in results)
    errors = sum(r.errors for r in results)
    first = min(r.first_submit for r in results if r.first_submit)
    last = max(r.last_commit for r in results)
    elapsed = max(1e-9, last - first)
    lat = [x for r in results for x in r.latencies_s]
    rate = committed / elapsed
    node_cpu_us = (None if cpu0 is None or cpu1 is None or not committed
                   else 1e6 * (cpu1 - cpu0) / committed / validators)
    out = {
        "cores": cores, "validators": validators, "ed25519_verify_per_s": round(vps),
        "ed25519_verify_per_s_before": round(vps_before),
        "ed25519_verify_per_s_after": round(vps_after),
        "bound_claims_per_s": round(bound), **load, "committed": committed, "errors": errors,
        "elapsed_s": round(elapsed, 2), "committed_per_s": round(rate, 1),
        "fraction_of_bound": round(rate / bound, 3),
        "latency_p50_s": round(_quantile(lat, 0.5), 3),
        "latency_p99_s": round(_quantile(lat, 0.99), 3),
        "latency_mean_s": round(statistics.fmean(v for v, _ in lat), 3) if lat else None,
        "blocks": blocks, "dead_nodes": dead, "timeout_commit_ms": timeout_commit_ms,
        "node_cpu_us_per_claim": None if node_cpu_us is None else round(node_cpu_us, 1),
        "verify_us": round(1e6 / vps, 1),
    }
    print(f"Ed25519 verify {vps_after:,.0f}/s/core after the run; bound = {cores} x "
          f"{vps:,.0f} (mean) / {validators} validators = {bound:,.0f} claims/s", flush=True)
    print(f"committed {committed:,} claims in {elapsed:.2f} s = {rate:,.0f} claims/s "
          f"({100 * rate / bound:.0f}% of the bound); latency p50 {out['latency_p50_s']} s, "
          f"p99 {out['latency_p99_s']} s; {blocks} blocks; errors {errors}", flush=True)
    print(f"registry of {out['registry']:,} shops; store of v0 on disk at the end: "
          f"{out['store_bytes'] / 1e6:,.1f} MB", flush=True)
    if node_cpu_us is not None:
        print(f"validator CPU per committed claim: {node_cpu_us:.0f} us each "
              f"(one Ed25519 verification: {1e6 / vps:.0f} us)", flush=True)
    if out_json is not None:
        out_json.write_text(json.dumps(out, indent=2) + "\n")
    return out


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU time of these processes so far (Linux ``/proc``; None elsewhere)."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            # fields after the parenthesised command name; utime and stime are 14th and 15th
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / tick
    except (OSError, ValueError, IndexError):
        return None


def _status(url: str) -> dict[str, Any]:
    from tpledger.cli.client import NodeClient

    with NodeClient(url, timeout_s=10, max_retries=0) as c:
        return c.status()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--timeout-commit-ms", type=int, default=LOCAL_TIMEOUT_COMMIT_MS)
    ap.add_argument("--registry", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.claims, a.clients, a.batch, a.window, out_json=a.json,
        timeout_commit_ms=a.timeout_commit_ms, registry=a.registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
