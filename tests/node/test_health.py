"""Health, readiness and version on real in-process nodes (real aiohttp server, real LMDB):
``/healthz`` (alive), ``/readyz`` (store verified, a quorum of validators reachable counting
itself, not catching up) and ``version``/``catching_up`` in ``/v1/status``."""

from __future__ import annotations

import asyncio
import importlib.metadata
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.node.inprocess import node_config, run_with_node
from tpledger.cli.cluster import init_cluster
from tpledger.node import metrics
from tpledger.node.config import NodeConfig
from tpledger.node.runtime import Node


async def _get(node: Node, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{node.port}{path}") as r:
        return r.status, await r.json()


def test_a_one_validator_node_is_alive_and_ready(tmp_path: Path) -> None:
    cfg, _ = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        assert await _get(node, "/healthz") == (200, {"status": "ok"})
        assert await _get(node, "/readyz") == (200, {"status": "ready", "reasons": []})
        code, status = await _get(node, "/v1/status")
        assert code == 200 and status["catching_up"] is False
        assert status["version"] == metrics.node_version() == importlib.metadata.version(
            "tpledger")

    run_with_node(cfg, scenario)


def test_a_validator_without_a_quorum_of_peers_is_alive_but_not_ready(tmp_path: Path) -> None:
    """One of four validators up: 1 reachable counting itself, a quorum needs 3."""
    info = init_cluster(tmp_path / "c", validators=4, base_port=0)
    cfg = NodeConfig.load(info.nodes[0].config)

    async def scenario(node: Node) -> None:
        assert (await _get(node, "/healthz"))[0] == 200
        code, body = await _get(node, "/readyz")
        assert code == 503 and body["status"] == "not_ready"
        assert body["reasons"] == ["1 of 4 validators reachable counting itself, "
                                   "a quorum needs 3"]

    run_with_node(cfg, scenario)


def test_catching_up_shows_in_status_and_readiness(tmp_path: Path) -> None:
    cfg, _ = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        # A catch-up under way towards a peer 5 blocks ahead (the fetch itself is held).
        node._catch_up_task = asyncio.create_task(asyncio.sleep(30))
        node._catch_up_goal = node.store.height + 5
        code, body = await _get(node, "/readyz")
        assert code == 503 and body["reasons"][0].startswith("catching up: height ")
        assert (await _get(node, "/v1/status"))[1]["catching_up"] is True
        node._catch_up_task.cancel()  # done: ready again
        await asyncio.sleep(0)
        assert await _get(node, "/readyz") == (200, {"status": "ready", "reasons": []})
        assert (await _get(node, "/v1/status"))[1]["catching_up"] is False

    run_with_node(cfg, scenario)


def test_a_known_damaged_row_makes_the_node_not_ready(tmp_path: Path) -> None:
    cfg, _ = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        node.damaged["headers/00"] = "api"
        code, body = await _get(node, "/readyz")
        assert code == 503 and body["reasons"] == ["store damaged (1 rows): resync this node"]

    run_with_node(cfg, scenario)


def test_version_falls_back_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metrics, "version", missing)
    assert metrics.node_version() == metrics.FALLBACK_VERSION
