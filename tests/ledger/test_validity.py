"""Block validity (``ledger.validity``): each numbered step refuses what it must, with its step
name; and no other module keeps a copy of a block-validity rule (they call this module)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ledger import helpers as h
from tpledger.ledger.blocks import Block
from tpledger.ledger.merkle import leaf_hash
from tpledger.ledger.merkle_tree import MemoryNodeStore
from tpledger.ledger.rules import RulesContext
from tpledger.ledger.validity import (
    BlockInvalid,
    Head,
    check_certificate,
    check_link,
    check_shape,
    execute,
)

ROOT = Path(__file__).resolve().parents[2]
WORLD = h.make_world("validity")


@pytest.fixture(scope="module")
def first() -> tuple[Block, Any]:
    """A valid block 1 (built by a scratch store) and its certificate."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = h.open_store(Path(d) / "s", WORLD)
        block, cert = h.make_block(WORLD, store, [h.make_claim(WORLD) for _ in range(3)])
        store.close()
    return block, cert


def _hdr(block: Block, **kw: Any) -> Any:
    return dataclasses.replace(block.header, **kw)


@pytest.mark.parametrize("change, step", [
    ({"chain_id": "other-chain"}, "chain"), ({"height": 2}, "height"),
    ({"prev_hash": bytes(32)}, "prev_hash"), ({"time_ms": h.GENESIS_TIME_MS}, "time"),
    ({"proposer": 9}, "proposer"),
])
def test_link_steps(first: tuple[Block, Any], change: dict[str, Any], step: str) -> None:
    head = Head.of_genesis(WORLD.genesis)
    check_link(first[0].header, head, WORLD.genesis)
    with pytest.raises(BlockInvalid) as ei:
        check_link(_hdr(first[0], **change), head, WORLD.genesis)
    assert ei.value.step == step


def test_clock_drift_bound(first: tuple[Block, Any]) -> None:
    head, hd = Head.of_genesis(WORLD.genesis), first[0].header
    drift = WORLD.genesis.params.max_clock_drift_ms
    check_link(hd, head, WORLD.genesis, now_ms=hd.time_ms - drift)
    with pytest.raises(BlockInvalid) as ei:
        check_link(hd, head, WORLD.genesis, now_ms=hd.time_ms - drift - 1)
    assert ei.value.step == "clock"


def test_shape_and_certificate(first: tuple[Block, Any]) -> None:
    block, cert = first
    stxs, leaves = check_shape(block, WORLD.genesis.params)
    assert leaves == [leaf_hash(t) for t in block.txs] and len(stxs) == 3
    with pytest.raises(BlockInvalid) as ei:
        check_shape(Block(_hdr(block, txs_root=bytes(32)), block.txs), WORLD.genesis.params)
    assert ei.value.step == "txs_root"
    small = dataclasses.replace(WORLD.genesis.params, max_block_txs=2)
    with pytest.raises(BlockInvalid, match="max_block_txs"):
        check_shape(block, small)
    args = (WORLD.genesis.chain_id, WORLD.genesis.validator_keys)
    check_certificate(block.header, cert, *args)
    for bad in (dataclasses.replace(cert, height=2),
                dataclasses.replace(cert, block_hash=bytes(32)),
                dataclasses.replace(cert, signatures=cert.signatures[:1])):
        with pytest.raises(BlockInvalid) as ei:
            check_certificate(block.header, bad, *args)
        assert ei.value.step == "certificate"


@pytest.mark.parametrize("field, step", [("tree_size", "tree_size"), ("tree_root", "tree_root"),
                                         ("state_digest", "state_digest")])
def test_execution_steps(first: tuple[Block, Any], field: str, step: str) -> None:
    block = first[0]
    ctx = RulesContext(WORLD.chain_id, WORLD.genesis, WORLD.lpp)
    head = Head.of_genesis(WORLD.genesis)
    stxs, leaves = check_shape(block, WORLD.genesis.params)
    done = execute(block.header, head, ctx, WORLD.state(), MemoryNodeStore(), stxs, leaves)
    assert done.state_digest == block.header.state_digest
    value = 99 if field == "tree_size" else bytes(32)
    with pytest.raises(BlockInvalid) as ei:
        execute(_hdr(block, **{field: value}), head, ctx, WORLD.state(), MemoryNodeStore(), stxs,
                leaves)
    assert ei.value.step == step


# -- every block-validity rule is written once -------------------------------------------------
# A copy of a rule elsewhere: a certificate checked by hand, a block hash or txs_root compared,
# the clock-drift bound, the previous-hash link or the proposer bound.
COPIES = re.compile(
    r"\bcert\w*\.check\(|block_hash\s*!=|!=\s*[\w.()]*block_hash\b|txs_root\s*!=|"
    r"!=\s*[\w.()]*txs_root\b|\+\s*[\w.]*max_clock_drift_ms|prev_hash\s*!=|\.proposer\s*>="
)
OWNERS = {"ledger/validity.py", "ledger/votes.py"}  # votes.py defines the certificate check


def copies_in(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if COPIES.search(line)]


def test_no_module_keeps_its_own_copy_of_a_block_rule() -> None:
    found = {}
    for pkg in ("ledger", "node", "cli"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in OWNERS and (hits := copies_in(path.read_text())):
                found[rel] = hits
    assert found == {}, f"call ledger.validity instead: {found}"


def test_the_guard_catches_the_old_copies() -> None:
    """The broken variant: the copies this module replaced are caught by the guard."""
    old = {
        "cli/block_stats.check_block": "if cert.height != height or cert.block_hash != h.hash():",
        "ledger/audit._audit": "    cert.check(genesis.chain_id, keys)",
        "ledger/audit txs_root": "if txs_root(raws) != header.txs_root:",
        "node/runtime._validate":
            "too_new = hdr.time_ms > now_ms() + self.genesis.params.max_clock_drift_ms",
        "store._check_shape": "if h.prev_hash != prev.hash:",
        "proofs._check_header": "if header.proposer >= len(self.validator_keys):",
    }
    for where, line in old.items():
        assert copies_in(line), where
