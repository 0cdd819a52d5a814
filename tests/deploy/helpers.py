"""Helpers of the deployment tests."""

from __future__ import annotations

from cli.claims import PreparedClaim
from cli.client import NodeClient
from tests.node.conftest import wait_until


def commit(c: NodeClient, claims: list[PreparedClaim], timeout_s: float = 30) -> None:
    """Submit claims through ``c`` and wait until every one is committed."""
    with c:
        res = c.submit([pc.item for pc in claims])
        assert all(r.get("status") != "rejected" for r in res), res
        for pc in claims:
            tx = pc.stx.tx_id().hex()
            wait_until(lambda tx=tx: c.tx_status(tx, wait_ms=1000)["status"] == "committed",
                       timeout_s, f"claim {tx[:12]} committed")
