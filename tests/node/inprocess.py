"""A one-validator node run in this process (real aiohttp server, real LMDB), for the tests
of the node's modules."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from tpledger.cli.claims import ClaimBuilder, ClaimInput
from tpledger.cli.cluster import init_cluster
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.node.config import NodeConfig
from tpledger.node.runtime import Node


def node_config(tmp_path: Path, retention_days: int) -> tuple[NodeConfig, Path]:
    root = tmp_path / "c"
    info = init_cluster(root, validators=1, base_port=0)
    cfg_path = info.nodes[0].config
    with cfg_path.open("a") as fh:
        fh.write(f"\n[limits]\nretention_days = {retention_days}\n"
                 "\n[consensus]\ntimeout_commit_ms = 10\nempty_block_interval_ms = 50\n")
    return NodeConfig.load(cfg_path), root


Item = tuple[bytes, list[tuple[str, bytes]]]


async def commit_claims(node: Node, root: Path, n: int) -> tuple[list[bytes], list[Item]]:
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


def run_with_node(cfg: NodeConfig, scenario: Callable[[Node], Awaitable[None]]) -> None:
    """Start a node on ``cfg``, run ``scenario`` on it, stop it."""

    async def main() -> None:
        node = Node(cfg)
        await node.start()
        try:
            await scenario(node)
        finally:
            await node.stop()

    asyncio.run(main())
