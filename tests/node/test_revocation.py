"""Revocation on a node: the block that revokes a key drops that key's pending txs from the
mempool (status ``revoked_signer``), admission and gossip refuse its new txs (nothing is
gossiped), and its signed reads are refused (403 ``revoked_signer``). Each check is shown
with its broken variant: the hook or the registry lookup patched away, the attack passes."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.node.inprocess import commit_claims, node_config, run_with_node
from tpledger.cli.claims import ClaimBuilder, ClaimInput
from tpledger.cli.participants import build_change
from tpledger.consensus.messages import Commit
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.ledger.registry import Registry
from tpledger.ledger.tx import REVOKE, SignedTx
from tpledger.ledger.votes import PRECOMMIT, CommitCertificate, Vote
from tpledger.node.auth import sign_request
from tpledger.node.peers import FRAME_TXS
from tpledger.node.runtime import Node
from tpledger.node.submission import encode_submission

Item = tuple[bytes, list[tuple[str, bytes]]]


def _claim(root: Path, seed: int) -> Item:
    genesis = Genesis.load(root / "genesis.json")
    builder = ClaimBuilder(KeyFile.load(root / "keys" / "optic-paris.key"), genesis)
    rng = random.Random(seed)
    pc = builder.build(ClaimInput(f"claim {seed}", "mutuelle-a", make_test_nir(rng),
                                  make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
    return pc.stx.encode(), list(pc.sealed)


def _revoke(root: Path, org: str = "optic-paris") -> SignedTx:
    genesis = Genesis.load(root / "genesis.json")
    admin = KeyFile.load(root / "admin" / "federation.admin.json")
    return build_change(genesis.chain_id, admin.signer, org, REVOKE, None, "phished")


def _commit_block(node: Node, root: Path, txs: list[SignedTx]) -> None:
    """Certify a block of ``txs`` with the validator's key and hand it to the node as the
    consensus does (``_apply_commit``): the real apply path and its hooks."""
    h = node.store.height + 1
    prev = node.store.header(node.store.height).time_ms if node.store.height else 0
    checked, rejected = node.store.build_block(txs, node.index, max(int(time.time() * 1000),
                                                                    prev + 1))
    assert not rejected, rejected
    vote = Vote(h, 0, PRECOMMIT, checked.header.hash(), node.index).sign(
        node.chain_id, KeyFile.load(root / "nodes" / "v0" / "validator.key").signer)
    node._apply_commit(Commit(h, 0, checked.header.hash(), checked.block.encode(),
                              CommitCertificate.from_votes([vote])))
    assert node.store.height == h


def _pending_node(tmp_path: Path) -> tuple[Node, Path, bytes]:
    """A node (not started: no consensus proposes) with a claim of optic-paris pending."""
    cfg, root = node_config(tmp_path, 30)
    node = Node(cfg)
    [res] = node.admission.admit_batch([_claim(root, 1)], gossip=False)
    assert res["status"] == "pending"
    return node, root, bytes.fromhex(res["tx_id"])


def test_revocation_drops_the_pending_txs_of_the_key(tmp_path: Path) -> None:
    node, root, tx_id = _pending_node(tmp_path)
    try:
        _commit_block(node, root, [_revoke(root)])
        assert tx_id not in node.mempool and len(node.mempool) == 0
        status = node.admission.tx_status(tx_id)
        assert (status["status"], status["code"]) == ("rejected", "revoked_signer")
        assert "tpledger_mempool_dropped_revoked_total 1.0" in node.metrics_text()
    finally:
        node.store.close()


def test_broken_variant_without_the_hook_the_tx_stays_pending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node, root, tx_id = _pending_node(tmp_path)
    try:
        monkeypatch.setattr(node, "_drop_retired", lambda *a: None)
        _commit_block(node, root, [_revoke(root)])
        assert tx_id in node.mempool
        assert node.admission.tx_status(tx_id)["status"] == "pending"
    finally:
        node.store.close()


def test_a_block_without_governance_drops_nothing(tmp_path: Path) -> None:
    """The zero-cost path: the registry snapshot is unchanged, no mempool scan."""
    node, root, tx_id = _pending_node(tmp_path)
    try:
        before = node.store.registry()
        _commit_block(node, root, [SignedTx.decode(_claim(root, 2)[0])])
        assert node.store.registry() is before and tx_id in node.mempool
    finally:
        node.store.close()


def test_after_the_revocation_admission_and_gossip_refuse_the_key(tmp_path: Path) -> None:
    """Its new txs are refused with ``revoked_signer`` and never gossiped; a peer's gossip of
    one is not admitted either (peers stop gossiping it within the block)."""
    node, root, _ = _pending_node(tmp_path)
    sent: list[int] = []
    node.admission._broadcast = lambda kind, payload: sent.append(kind)
    try:
        _commit_block(node, root, [_revoke(root)])
        [res] = node.admission.admit_batch([_claim(root, 3)], gossip=True)
        assert (res["status"], res["code"]) == ("rejected", "revoked_signer")
        node.admission.on_gossip(encode_submission([_claim(root, 4)]))
        assert len(node.mempool) == 0 and FRAME_TXS not in sent
        [ok] = node.admission.admit_batch([_other_claim(root)], gossip=True)
        assert ok["status"] == "pending" and sent == [FRAME_TXS]  # the others still gossip
    finally:
        node.store.close()


def _other_claim(root: Path) -> Item:
    genesis = Genesis.load(root / "genesis.json")
    builder = ClaimBuilder(KeyFile.load(root / "keys" / "optic-lyon.key"), genesis)
    rng = random.Random(9)
    pc = builder.build(ClaimInput("claim", "mutuelle-b", make_test_nir(rng),
                                  make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
    return pc.stx.encode(), list(pc.sealed)


# -- signed reads -----------------------------------------------------------------------------
async def _get(node: Node, key: KeyFile, path: str) -> tuple[int, Any]:
    auth = sign_request(node.chain_id, key.signer, "GET", path, b"", int(time.time() * 1000))
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{node.port}{path}", headers={"Authorization": auth}) as r:
        return r.status, await r.json()


async def _wait_committed(node: Node, tx_id: bytes) -> None:
    for _ in range(200):
        if node.admission.tx_status(tx_id)["status"] == "committed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("tx not committed")


def _read_scenario(tmp_path: Path, patch_registry: bool) -> list[tuple[int, Any]]:
    cfg, root = node_config(tmp_path, 30)
    shop = KeyFile.load(root / "keys" / "optic-paris.key")
    answers: list[tuple[int, Any]] = []

    async def scenario(node: Node) -> None:
        ids, _ = await commit_claims(node, root, 1)
        path = f"/v1/claims/{ids[0].hex()}"
        answers.append(await _get(node, shop, path))
        stx = _revoke(root)
        [res] = node.admission.admit_batch([(stx.encode(), [])], gossip=False)
        assert res["status"] == "pending", res
        await _wait_committed(node, stx.tx_id())
        if patch_registry:  # the broken variant: the reader looked up in the genesis
            genesis_registry = Registry.of_genesis(node.genesis)
            node.store.registry = lambda: genesis_registry  # type: ignore[method-assign]
        answers.append(await _get(node, shop, path))
        answers.append(await _get(node, shop, "/v1/participants/optic-paris"))

    run_with_node(cfg, scenario)
    return answers


def test_signed_reads_with_a_revoked_key_are_refused(tmp_path: Path) -> None:
    before, after, record = _read_scenario(tmp_path, patch_registry=False)
    assert before[0] == 200
    assert after == (403, {"error": {"code": "revoked_signer",
                                     "message": after[1]["error"]["message"]}})
    assert record[0] == 403


def test_broken_variant_genesis_lookup_lets_the_revoked_key_read(tmp_path: Path) -> None:
    before, after, _ = _read_scenario(tmp_path, patch_registry=True)
    assert before[0] == 200 and after[0] == 200
