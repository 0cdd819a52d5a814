"""The openings service (``node/openings_service.py``) on a one-validator node run in-process:
retention, and erasure on a payer's signed request (refused to anyone else, shown switched
off), replayed requests and relayed frames."""

from __future__ import annotations

from pathlib import Path

import pytest

import tpledger.node.openings_service as openings_service
from tests.node.inprocess import commit_claims, node_config, run_with_node
from tpledger.ledger.keys import KeyFile
from tpledger.node.clock import now_ms
from tpledger.node.erasure import ForgetRefused, sign_forget
from tpledger.node.runtime import Node


def test_openings_expire_after_retention(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=30)

    async def scenario(node: Node) -> None:
        ids, submitted = await commit_claims(node, root, 3)
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

    run_with_node(cfg, scenario)


def test_no_retention_keeps_openings(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        await commit_claims(node, root, 2)
        assert node.openings_service.expire(now_ms() + 10_000 * 86_400_000) == 0
        assert node.openings.count() == 4

    run_with_node(cfg, scenario)


def _forget_request(node: Node, root: Path, org: str, claim_id: bytes) -> bytes:
    key = KeyFile.load(root / "keys" / f"{org}.key")
    return sign_forget(node.chain_id, key.signer, claim_id, now_ms()).encode()


def test_a_payer_forgets_once_and_nobody_else_can(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        svc = node.openings_service
        ids, _ = await commit_claims(node, root, 2)
        with pytest.raises(ForgetRefused) as info:  # the optician is not a payer
            svc.forget(_forget_request(node, root, "optic-paris", ids[0]), "test")
        assert info.value.code == "forbidden" and svc.held(ids[0]) == ["cnam", "mutuelle-a"]
        raw = _forget_request(node, root, "mutuelle-a", ids[0])
        assert svc.forget(raw, "test") == (2, True)
        assert svc.held(ids[0]) == [] and svc.get(ids[0], "mutuelle-a") is None
        assert svc.forget(raw, "test") == (0, False)  # a replay changes nothing
        svc.on_forget_frame(3, b"garbage")  # a relayed frame that is no request
        assert "tpledger_forget_frames_refused_total 1" in node.metrics_text()
        assert await svc.fetch(ids[0], "mutuelle-a", "/x", "") is None  # forgotten
        # Broken variant: without the entitlement check the optician erases openings.
        monkeypatch.setattr(openings_service, "check_forget", lambda *a, **k: "x")
        assert svc.forget(_forget_request(node, root, "optic-paris", ids[1]), "t")[0] == 2

    run_with_node(cfg, scenario)

