"""Helpers of the deployment tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.node.conftest import wait_until
from tpledger.cli.claims import PreparedClaim
from tpledger.cli.client import NodeClient


def commit(c: NodeClient, claims: list[PreparedClaim], timeout_s: float = 30) -> None:
    """Submit claims through ``c`` and wait until every one is committed."""
    with c:
        res = c.submit([pc.item for pc in claims])
        assert all(r.get("status") != "rejected" for r in res), res
        for pc in claims:
            tx = pc.stx.tx_id().hex()
            wait_until(lambda tx=tx: c.tx_status(tx, wait_ms=1000)["status"] == "committed",
                       timeout_s, f"claim {tx[:12]} committed")


def load_netns() -> ModuleType:
    """deploy/netns.py (a script, not a package) as a module."""
    if "deploy_netns" in sys.modules:
        return sys.modules["deploy_netns"]
    path = Path(__file__).resolve().parents[2] / "deploy" / "netns.py"
    spec = importlib.util.spec_from_file_location("deploy_netns", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_netns"] = module
    spec.loader.exec_module(module)
    return module
