"""A one-validator node run in-process (real aiohttp server, real LMDB): retention of sealed
openings, and the node's own bookkeeping of transaction status."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from cli.claims import ClaimBuilder, ClaimInput
from cli.cluster import init_cluster
from ledger.encoding import pack
from ledger.genesis import Genesis
from ledger.keys import KeyFile
from ledger.patient import make_test_birth_date, make_test_nir
from node.clock import now_ms
from node.config import NodeConfig
from node.runtime import Node


def _config(tmp_path: Path, retention_days: int) -> tuple[NodeConfig, Path]:
    root = tmp_path / "c"
    info = init_cluster(root, validators=1, base_port=0)
    cfg_path = info.nodes[0].config
    with cfg_path.open("a") as fh:
        fh.write(f"\n[limits]\nretention_days = {retention_days}\n"
                 "\n[consensus]\ntimeout_commit_ms = 10\nempty_block_interval_ms = 50\n")
    return NodeConfig.load(cfg_path), root


Item = tuple[bytes, list[tuple[str, bytes]]]


async def _commit_claims(node: Node, root: Path, n: int) -> tuple[list[bytes], list[Item]]:
    """Submit ``n`` claims to ``node`` and wait for their commit; return ids and items."""
    genesis = Genesis.load(root / "genesis.json")
    builder = ClaimBuilder(KeyFile.load(root / "keys" / "optic-paris.key"), genesis)
    rng = random.Random(5)
    items: list[Item] = []
    ids: list[bytes] = []
    for i in range(n):
        pc = builder.build(ClaimInput(f"claim {i}", "mutuelle-a", make_test_nir(rng),
                                      make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
        items.append((pc.stx.encode(), list(pc.sealed)))
        ids.append(pc.claim_id)
    results = node.admission.admit_batch(items, gossip=True)
    assert [r["status"] for r in results] == ["pending"] * n
    for _ in range(200):
        if all(node.admission.tx_status(i)["status"] == "committed" for i in ids):
            return ids, items
        await asyncio.sleep(0.05)
    raise AssertionError("claims not committed")


def test_openings_expire_after_retention(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path, retention_days=30)

    async def scenario() -> None:
        node = Node(cfg)
        await node.start()
        try:
            ids, submitted = await _commit_claims(node, root, 3)
            assert all(sorted(node.openings_service.held(i)) == ["cnam", "mutuelle-a"] for i in ids)
            # Within the retention period nothing is deleted.
            assert node.openings_service.expire(now_ms() + 29 * 86_400_000) == 0
            assert node.openings.count() == 6
            # After it, every opening of these claims goes; the ledger keeps the claims.
            assert node.openings_service.expire(now_ms() + 31 * 86_400_000) == 6
            assert node.openings.count() == 0
            assert all(node.store.claim(i) is not None for i in ids)
            # Replaying a forgotten claim with its sealed boxes does not bring them back.
            raw, sealed = submitted[0]
            results = node.admission.admit_batch([(raw, sealed)], gossip=False)
            assert results[0]["code"] == "duplicate_tx"
            assert node.openings.count() == 0
            assert "tpledger_openings_expired_total 6" in (node.refresh_metrics()
                                                          or node.metrics.render())
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_no_retention_keeps_openings(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path, retention_days=0)

    async def scenario() -> None:
        node = Node(cfg)
        await node.start()
        try:
            await _commit_claims(node, root, 2)
            assert node.openings_service.expire(now_ms() + 10_000 * 86_400_000) == 0
            assert node.openings.count() == 4
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_commit_latency_summary_counts_every_committed_tx(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path, retention_days=0)

    async def scenario() -> None:
        node = Node(cfg)
        await node.start()
        try:
            await _commit_claims(node, root, 4)
            text = node.refresh_metrics() or node.metrics.render()
            assert "tpledger_commit_latency_seconds_count 4" in text
            quantiles = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith('tpledger_commit_latency_seconds{quantile=')]
            assert len(quantiles) == 3 and quantiles == sorted(quantiles)
            assert 0.0 <= quantiles[0] < 30.0  # admission to commit, in seconds
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_restart_resumes_from_disk(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path, retention_days=0)

    async def first() -> tuple[int, bytes]:
        node = Node(cfg)
        await node.start()
        try:
            await _commit_claims(node, root, 2)
            return node.store.height, node.store.head_hash
        finally:
            await node.stop()

    height, head = asyncio.run(first())

    async def second() -> None:
        node = Node(cfg)
        await node.start()
        try:
            assert node.store.height >= height
            assert node.store.header(height).hash() == head
            for _ in range(100):  # and it keeps committing
                if node.store.height > height + 1:
                    return
                await asyncio.sleep(0.05)
            pytest.fail("restarted node does not commit")
        finally:
            await node.stop()

    asyncio.run(second())


def test_full_mempool_answers_503_with_retry_after(tmp_path: Path) -> None:
    import dataclasses

    import aiohttp

    from node.config import Limits

    cfg, root = _config(tmp_path, retention_days=0)
    cfg = dataclasses.replace(cfg, limits=Limits(mempool_max_txs=3))
    genesis = Genesis.load(root / "genesis.json")
    builder = ClaimBuilder(KeyFile.load(root / "keys" / "optic-lyon.key"), genesis)
    rng = random.Random(11)
    items = []
    for i in range(8):
        pc = builder.build(ClaimInput(f"claim {i}", "mutuelle-b", make_test_nir(rng),
                                      make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
        items.append([pc.stx.encode(), [list(s) for s in pc.sealed]])
    headers = {"Content-Type": "application/msgpack"}

    async def scenario() -> None:
        node = Node(cfg)
        # Hold block production, so that nothing leaves the mempool during the test.
        node._maybe_propose = lambda force: None  # type: ignore[method-assign]
        await node.start()
        try:
            url = f"http://127.0.0.1:{node.port}/v1/txs"
            async with aiohttp.ClientSession() as http:
                async with http.post(url, data=pack(items[:3]), headers=headers) as r:
                    first = await r.json()
                async with http.post(url, data=pack(items[3:]), headers=headers) as r:
                    assert r.status == 503
                    assert r.headers["Retry-After"] == "1"
                    err = await r.json()
            assert [x["status"] for x in first["results"]] == ["pending"] * 3
            assert err["error"]["code"] == "mempool_full"
            assert len(node.mempool) == 3
        finally:
            await node.stop()

    asyncio.run(scenario())
