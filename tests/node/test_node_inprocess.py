"""A one-validator node run in-process (real aiohttp server, real LMDB): commit latencies,
restart from disk, and a full mempool seen over HTTP. Retention and erasure of openings on such
a node are in test_openings_service.py."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.node.inprocess import commit_claims, node_config
from tpledger.cli.claims import ClaimBuilder, ClaimInput
from tpledger.ledger.encoding import pack
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.node.runtime import Node


def test_commit_latency_histogram_counts_every_committed_tx(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    async def scenario() -> None:
        node = Node(cfg)
        await node.start()
        try:
            await commit_claims(node, root, 4)
            text = node.metrics_text()
            assert "tpledger_commit_latency_seconds_count 4.0" in text
            assert 'tpledger_commit_latency_seconds_bucket{le="30.0"} 4.0' in text
            total_s = float(text.split("tpledger_commit_latency_seconds_sum ")[1].split()[0])
            assert 0.0 <= total_s < 4 * 30.0  # admission to commit, in seconds
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_restart_resumes_from_disk(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    async def first() -> tuple[int, bytes]:
        node = Node(cfg)
        await node.start()
        try:
            await commit_claims(node, root, 2)
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

    from tpledger.node.config import Limits

    cfg, root = node_config(tmp_path, retention_days=0)
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
